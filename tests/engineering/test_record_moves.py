"""Moving records off retired values, through the real client libraries against the sandbox: the count (the dry
run) equals what the sandbox's own record sets hold and sends no write; the move leaves every record on the mapped
value (read back by a separate search with the library), recorded per value; a non-owner, a move not opted into
and a confirmation that does not name the client are refused; an operation without a mapping is not offered."""

from __future__ import annotations

import copy

import pytest
from django.urls import reverse
from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest

from accounts.models import ActivityEntry, DomainError
from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from crm_sandbox.connection import sandbox_connection
from engineering import record_moves, services
from engineering.models import MoveStatus
from tests.crm_connectors.test_audit import make_engagement
from tests.engineering.test_apply import SIZE, act, approved_plan, writes

pytestmark = pytest.mark.django_db
SF_OBJECTS = {"lead": "Lead", "contact": "Contact", "company": "Account", "deal": "Opportunity", "ticket": "Case"}
OBJECT_TYPES = {"contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets"}


def held_in_sandbox(hs, kind: str, field: str, value: str, pipeline: str | None) -> int:
    """Records holding `value`, summed over the sandbox's record slots (its data, not a search)."""
    name = OBJECT_TYPES[kind]
    table = hs.model.sets[hs.types[name]]
    prop = hs.props[name]["dealstage" if pipeline else field]
    total = 0
    for rank in range(table.nslots):
        static = table.static(rank)
        if prop.to_hs(static.get(prop.static)) != value:
            continue
        if pipeline and static["pipeline"].hs_id != pipeline:
            continue
        total += table.k_count(rank)
    return total


def held_in_org(sf, kind: str, field: str, value: str, pipeline: str | None) -> int:
    """Records holding `value` in the Salesforce sandbox's record slots (its data, not a query)."""
    obj = sf.objects[SF_OBJECTS[kind]]
    table, f = sf.model.sets[obj.table], obj.field(field)
    total = 0
    for rank in range(table.nslots):
        static = table.static(rank)
        if f.to_sf(static.get(f.static)) != value:
            continue
        if pipeline not in (None, "master") and static["pipeline"].sf_record_type_id != pipeline:
            continue
        total += table.k_count(rank)
    return total


def searched(hs, kind: str, prop: str, value: str) -> int:
    request = PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name=prop, operator="EQ", value=value)])], limit=1
    )
    return hs.client().crm.objects.search_api.do_search(OBJECT_TYPES[kind], public_object_search_request=request).total


def sent_writes(hs) -> int:
    """POST, PATCH, PUT and DELETE requests the portal answered, less searches (HubSpot reads by POST there)."""
    return writes(hs) - hs.stats["by_kind"].get("search", 0)


def moves(cast, plan, action, capture, actor=None, **kwargs):
    with capture(execute=True):
        record_moves.request(plan=plan, action=action, actor=actor or cast.owner, **kwargs)
    return record_moves.move_of(plan)


def test_hubspot_count_then_move(cast, client, crm_sandbox_settings, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    with HubSpotSandbox(profile="demo", seed=3, size=SIZE) as hs:
        engagement, plan = approved_plan(cast, hs)
        movable = record_moves.movable(plan)
        retired = [op for op in plan.operations if op["kind"] == "deactivate_value"]
        assert movable == retired + plan.unlisted and retired  # every retired or unlisted value has a target

        unmapped = copy.copy(plan)
        unmapped.operations = [{**op, "mapping": None} for op in plan.operations]
        unmapped.unlisted = [{**op, "mapping": None} for op in plan.unlisted]
        assert record_moves.movable(unmapped) == []
        with pytest.raises(DomainError, match="no records to move"):
            record_moves.request(plan=unmapped, action="count", actor=cast.owner)

        with pytest.raises(DomainError, match="Only an owner"):
            record_moves.request(plan=plan, action="count", actor=cast.consultant)
        page_url = reverse("engineering:plan", args=[cast.org.slug, engagement.uuid])
        client.force_login(cast.consultant)
        page = client.get(page_url).content.decode()
        assert "Move records off retired values" in page and "Count the records" not in page

        expected = {
            op["id"]: held_in_sandbox(hs, op["object"], op["field"], op["value"], op["pipeline"]) for op in movable
        }
        assert sum(expected.values()) > 0
        before = sent_writes(hs)
        run = moves(cast, plan, "count", capture)
        assert sent_writes(hs) == before  # not one POST, PATCH, PUT or DELETE
        assert run.status == MoveStatus.COUNTED, run.outcome
        assert {e["op"]: e["counted"] for e in run.moves} == expected
        assert f"{sum(expected.values())} records would move" in run.outcome

        act(cast, plan, "dry_run", capture)
        act(cast, plan, "apply", capture)
        with pytest.raises(DomainError, match="Tick"):
            record_moves.request(plan=plan, action="move", actor=cast.owner, confirmation=cast.client.name)
        with pytest.raises(DomainError, match="Type the client's name"):
            record_moves.request(plan=plan, action="move", actor=cast.owner, opted_in=True, confirmation="yes")

        targets: dict[tuple[str, str, str | None], int] = {}
        for op in movable:
            key = (op["object"], op["field"], op["pipeline"])
            targets.setdefault((*key[:2], op["mapping"]), held_in_sandbox(hs, *key[:2], op["mapping"], key[2]))
            targets[(*key[:2], op["mapping"])] += expected[op["id"]]
        run = moves(cast, plan, "move", capture, opted_in=True, confirmation=cast.client.name)
        assert run.status == MoveStatus.MOVED, run.outcome
        assert {e["op"]: e["moved"] for e in run.moves} == expected
        assert run.writes == sum(expected.values())
        for op in movable:
            prop = "dealstage" if op["pipeline"] else op["field"]
            assert searched(hs, op["object"], prop, op["value"]) == 0
        for (kind, field, mapping), n in targets.items():
            assert searched(hs, kind, "dealstage" if kind == "deal" else field, mapping) == n

        client.force_login(cast.owner)
        page = client.get(page_url).content.decode()
        assert "Moved" in page and "Count the records" in page

    verbs = (
        ActivityEntry.objects.for_org(cast.org)
        .filter(verb__startswith="crm_records.")
        .order_by("created_at", "id")
        .values_list("verb", flat=True)
    )
    assert [v for v in verbs if not v.endswith("_requested")] == ["crm_records.counted", "crm_records.moved"]


def test_salesforce_count_then_move_through_bulk_api(cast, crm_sandbox_settings, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    with SalesforceSandbox(profile="demo", seed=3, size=SIZE) as sf:
        engagement = make_engagement(cast)
        sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner)
        spec = services.generate(engagement=engagement, actor=cast.consultant)
        services.approve(spec=spec, actor=cast.owner)
        plan = services.make_plan(spec=spec, actor=cast.consultant)
        movable = record_moves.movable(plan)
        expected = {op["id"]: held_in_org(sf, op["object"], op["field"], op["value"], op["pipeline"]) for op in movable}
        assert sum(expected.values()) > 0

        bulk = sf.extensions[0]
        before = sum(bulk.by_method[m] for m in ("POST", "PATCH", "PUT", "DELETE"))
        run = moves(cast, plan, "count", capture)
        assert sum(bulk.by_method[m] for m in ("POST", "PATCH", "PUT", "DELETE")) == before
        assert run.status == MoveStatus.COUNTED and {e["op"]: e["counted"] for e in run.moves} == expected

        act(cast, plan, "dry_run", capture)
        act(cast, plan, "apply", capture)
        targets: dict[tuple[str, str, str], int] = {}
        for op in movable:
            key = (op["object"], op["field"], op["mapping"])
            targets.setdefault(key, held_in_org(sf, *key, None))
            targets[key] += expected[op["id"]]
        run = moves(cast, plan, "move", capture, opted_in=True, confirmation=cast.client.name)
        assert run.status == MoveStatus.MOVED, run.outcome
        assert {e["op"]: e["moved"] for e in run.moves} == expected
        assert bulk.by_method["PUT"] == sum(1 for n in expected.values() if n)  # one ingest job per moved value
        client = sf.client()
        for op in movable:
            soql = f"SELECT COUNT() FROM {SF_OBJECTS[op['object']]} WHERE {op['field']} = '{op['value']}'"
            assert client.query(soql)["totalSize"] == 0
        for (kind, field, mapping), n in targets.items():
            assert client.query(f"SELECT COUNT() FROM {SF_OBJECTS[kind]} WHERE {field} = '{mapping}'")["totalSize"] == n
