"""Reading any org: hidden fields, refused metadata objects, custom objects, history ties and free text.

Through the CRM sandbox over HTTP with the real simple-salesforce and hubspot-api-client. The sandbox's knobs shape
the org (field-level security hides a field: absent from describe/properties, INVALID_FIELD / VALIDATION_ERROR when
named anyway; a refused object answers 403 / INVALID_TYPE). Expected figures come from the sandbox's generator
(`truth`, `OrgModel`), never from the connector under test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from crm_connectors import services
from crm_connectors.audit import engine
from crm_connectors.base import order_history, stage_order
from crm_connectors.hubspot import FREE_TEXT_RECORDS, HubSpotConnector
from crm_connectors.salesforce import SalesforceConnector
from crm_sandbox import HubSpotSandbox, SalesforceSandbox, custom_profile, truth, variant
from crm_sandbox.connection import sandbox_connection
from crm_sandbox.truth import month_window
from tests.crm_connectors.connectors import UNLIMITED, connector

AS_OF = datetime(2025, 6, 15, tzinfo=UTC)
MONTH = date(2025, 5, 1)  # the last whole month before AS_OF
SECTIONS = {"fields", "pipelines", "custom_objects", "counts", "data_quality"}
LIFECYCLE = {"salesforce": ("contact", "Lifecycle_Stage__c"), "hubspot": ("contact", "lifecyclestage")}
SANDBOXES = {"salesforce": SalesforceSandbox, "hubspot": HubSpotSandbox}
CONNECTORS = {"salesforce": SalesforceConnector, "hubspot": HubSpotConnector}


@pytest.fixture(autouse=True)
def _crm_settings(settings):
    settings.CRM_ALLOW_HTTP = True
    settings.CRM_RATE_LIMITS = UNLIMITED
    settings.CRM_SECRET_KEY = Fernet.generate_key().decode()



def sandbox(platform: str, profile, *, size: int = 300, seed: int = 5):
    return SANDBOXES[platform](profile=profile, seed=seed, size=size, as_of=AS_OF)


def _month() -> tuple[datetime, datetime]:
    start, end = month_window(MONTH)
    return datetime.fromtimestamp(start / 1000, UTC), datetime.fromtimestamp(end / 1000, UTC)


# ---------------------------------------------------------------- one hidden field at a time


def _hidden_cases() -> list[tuple[str, str, str]]:
    """Every field each connector reads by name, plus the lifecycle field the health check reads."""
    cases = []
    for platform, cls in CONNECTORS.items():
        for kind, field_name in (*cls.fields_read(), LIFECYCLE[platform]):
            cases.append((platform, kind, field_name))
    return cases


@pytest.mark.parametrize(("platform", "kind", "field_name"), _hidden_cases())
def test_hiding_any_field_the_audit_or_health_check_reads_never_stops_the_reading(platform, kind, field_name):
    profile = variant("healthy", f"hide-{kind}-{field_name}", hidden_fields={f"{kind}.{field_name}"})
    with sandbox(platform, profile) as sb:
        c = connector(sb)
        snapshot = engine.collect(c, as_of=AS_OF)
        assert not [e for e in snapshot["errors"] if e["fatal"]], snapshot["errors"]
        assert set(snapshot["sections"]) == SECTIONS
        dq = snapshot["data_quality"]
        assert dq["stale"] and dq["missing"], "the rest of the data-quality section was measured"
        assert (kind, field_name.lower()) not in {(m["object"], m["field"].lower()) for m in dq["missing"]}
        if (kind, field_name) in CONNECTORS[platform].fields_read():
            [row] = [u for u in snapshot["unreadable"] if (u["object"], u["field"]) == (kind, field_name)]
            assert f".{field_name} is missing or not readable by this user" in row["reason"]
            if field_name in ("NextStep", "IsClosed", "hs_next_step", "hs_is_closed"):
                assert dq["open_deals_without_next_step"] is None
            else:
                assert dq["open_deals_without_next_step"] is not None
        else:
            assert not any(f["name"] == field_name for f in snapshot["fields"][kind]), "gone from describe"
        # the health figures' connector calls on the (other) lifecycle field and the deal stage still answer
        start, end = _month()
        lifecycle_kind, lifecycle = LIFECYCLE[platform]
        if (kind, field_name) != LIFECYCLE[platform]:
            assert c.stage_transitions(lifecycle_kind, lifecycle, start, end).available
            assert c.time_in_stage(lifecycle_kind, lifecycle, start, end).available
            assert c.value_counts(lifecycle_kind, lifecycle).total == truth.records(sb.model, kind=lifecycle_kind)
        stage = "StageName" if platform == "salesforce" else "dealstage"
        assert c.stage_transitions("deal", stage, start, end).available


@pytest.mark.parametrize("platform", ["salesforce", "hubspot"])
def test_deep_mode_still_finds_duplicates_and_reads_history_with_an_email_hidden(platform):
    hidden = "contact.Email" if platform == "salesforce" else "contact.email"
    profile = variant("demo", "no-email", hidden_fields={hidden})
    with sandbox(platform, profile, size=400) as sb:
        snapshot = engine.collect(connector(sb), deep=True, as_of=AS_OF)
    assert not [e for e in snapshot["errors"] if e["fatal"]], snapshot["errors"]
    assert {"deep", "history"} <= set(snapshot["sections"])
    duplicates = {d["object"] for d in snapshot["data_quality"]["duplicates"]}
    assert "company" in duplicates and "contact" not in duplicates
    assert snapshot["history"], "stage history was still read"
    assert any(u["object"] == "contact" and u["field"].lower() == "email" for u in snapshot["unreadable"])


def test_a_field_describe_lists_but_the_crm_refuses_is_dropped_and_the_aggregate_asked_again():
    """Field-level security that describe does not reflect: the query names the field and Salesforce refuses it."""
    profile = variant("healthy", "fls", hidden_fields={"lead.Phone"})
    with sandbox("salesforce", profile) as sb:
        c = connector(sb)
        quality = c.data_quality(as_of=AS_OF, required={"lead": ["Email", "Phone", "Company"]})
        # describe does not list Phone: skipped without a query
        assert [u.field for u in quality.unreadable] == ["Phone"]
        before = sb.stats["total"]
        total, filled, refused = c._fill_counts("lead", ["Email", "Phone", "Company"])
        assert [u.field for u in refused] == ["Phone"] and "refused when queried" in refused[0].reason
        assert set(filled) == {"Email", "Company"} and total == truth.records(sb.model, kind="lead")
        assert sb.stats["total"] - before == 2  # the refused aggregate and the retry without Phone


# ---------------------------------------------------------------- refused metadata objects


@pytest.mark.django_db
def test_a_refused_case_status_is_a_note_and_the_case_object_is_still_found(cast):
    profile = variant("healthy", "no-case-status", refused_objects={"CaseStatus"})
    with sandbox("salesforce", profile) as sb:
        connection = sandbox_connection(client=cast.client, sandbox=sb)
        summary = services.test_connection(connection=connection)
        assert summary["ok"], summary.get("error")
        assert any("CaseStatus" in n for n in summary["notes"])
        [case] = [o for o in summary["objects"] if o["kind"] == "ticket"]
        assert case["available"] and case["records"] == truth.records(sb.model, kind="ticket") > 0
        assert any(p["object"] == "ticket" for p in summary["pipelines"])
        snapshot = engine.collect(connector(sb), as_of=AS_OF)
    assert snapshot["objects"]["ticket"]["available"] and snapshot["pipelines"]["ticket"]
    assert any("CaseStatus" in n for n in snapshot["notes"])
    assert not [e for e in snapshot["errors"] if e["fatal"]]


@pytest.mark.django_db
@pytest.mark.parametrize(("platform", "refused"), [("salesforce", "Case"), ("hubspot", "tickets")])
def test_a_refused_ticket_object_is_a_note_in_the_test_and_the_audit(cast, platform, refused):
    profile = variant("healthy", f"no-{refused}", refused_objects={refused})
    with sandbox(platform, profile) as sb:
        connection = sandbox_connection(client=cast.client, sandbox=sb)
        summary = services.test_connection(connection=connection)
        snapshot = engine.collect(connector(sb), as_of=AS_OF)
        contacts = truth.records(sb.model, kind="contact")
    assert summary["ok"], summary.get("error")
    assert any("not readable" in n for n in summary["notes"])
    [contact] = [o for o in summary["objects"] if o["kind"] == "contact"]
    assert contact["records"] == contacts
    assert not [e for e in snapshot["errors"] if e["fatal"]], snapshot["errors"]
    assert not snapshot["objects"]["ticket"]["available"] and snapshot["objects"]["deal"]["available"]
    assert snapshot["objects"]["ticket"]["readable"] is False, "refused, not missing"
    assert any("not readable by this user" in n for n in snapshot["notes"])
    assert snapshot["data_quality"]["missing"] and snapshot["stage_counts"]["deal"]


@pytest.mark.parametrize(("platform", "refused"), [("salesforce", "LeadHistory"), ("hubspot", "schemas")])
def test_a_refused_history_or_schema_object_leaves_only_its_own_figure_out(platform, refused):
    profile = variant("healthy", f"no-{refused}", refused_objects={refused})
    with sandbox(platform, profile) as sb:
        c = connector(sb)
        snapshot = engine.collect(c, as_of=AS_OF)
        assert not [e for e in snapshot["errors"] if e["fatal"]] and set(snapshot["sections"]) == SECTIONS
        if platform == "salesforce":
            start, end = _month()
            moves = c.stage_transitions("lead", "Status", start, end)
            assert not moves.available and "LeadHistory" in moves.note
            assert c.stage_transitions("contact", "Lifecycle_Stage__c", start, end).available
        else:
            assert snapshot["custom_objects"] == [] and any("custom objects" in n for n in snapshot["notes"])


# ---------------------------------------------------------------- custom objects


@pytest.mark.parametrize("platform", ["salesforce", "hubspot"])
def test_customer_stages_on_a_custom_object_are_discovered(platform):
    with sandbox(platform, "wellbuilt", size=400) as sb:
        found = connector(sb).custom_objects()
        snapshot = engine.collect(connector(sb), as_of=AS_OF)
        expected = truth.records(sb.model, kind="customer_health")
        stages = truth.value_counts(sb.model, kind="customer_health", attr="stage", by="key")
    assert expected > 0 and found.objects
    [health] = [o for o in snapshot["custom_objects"] if o["records"] == expected]
    assert any(o.records == expected for o in found.objects)
    [stage] = [f for f in health["fields"] if f["role"] in ("lifecycle", "stage", "status")]
    assert len(stage["values"]) >= len([k for k in stages if k is not None])


# ---------------------------------------------------------------- Salesforce answers what HubSpot answers


def test_salesforce_and_hubspot_count_the_same_monthly_mql_and_sql_entries():
    start, end = _month()
    got = {}
    for platform in ("salesforce", "hubspot"):
        with sandbox(platform, "wellbuilt", size=2_000, seed=11) as sb:
            c = connector(sb)
            kind, name = LIFECYCLE[platform]
            f = next(f for f in c.fields(kind) if f.api_name == name)
            moves = c.stage_transitions(kind, name, start, end)
            assert moves.available, moves.note
            got[platform] = {}
            for key in ("mql", "sql"):
                option = next(o for o in sb.model.schema.lifecycle if o.key == key)
                spelled = option.label if platform == "salesforce" else option.hs
                # Salesforce field history has no row for the value a record is created with; HubSpot's
                # 'date entered' does: the generator counts both ways
                expected = truth.entries(
                    sb.model,
                    kind=kind,
                    path="lifecycle",
                    value=key,
                    start=start,
                    end=end,
                    first=platform == "hubspot",
                )
                assert f.value(spelled) is not None
                assert moves.count(spelled) == expected, (platform, key)
                got[platform][key] = moves.count(spelled)
            if platform == "salesforce":  # the records whose first value has no history row
                assert moves.created == truth.created(sb.model, kind=kind, start=start, end=end) > 0
    assert got["salesforce"] == got["hubspot"] and got["salesforce"]["mql"] > 0


def test_salesforce_history_pages_are_followed_within_the_month():
    start, end = _month()
    with sandbox("salesforce", "healthy", size=60_000, seed=2) as sb:
        c = connector(sb)
        before = sb.stats["total"]
        moves = c.stage_transitions("contact", "Lifecycle_Stage__c", start, end)
        spent = sb.stats["total"] - before
        durations = c.time_in_stage("contact", "Lifecycle_Stage__c", start, end)
        assert sb.stats["total"] - before == spent, "time in stage reuses the month's rows"
        expected = {
            o.label: truth.entries(
                sb.model, kind="contact", path="lifecycle", value=o.key, start=start, end=end, first=False
            )
            for o in sb.model.schema.lifecycle
        }
    assert moves.total_changes == sum(expected.values()) > 2_000  # more than one page
    assert {o: moves.count(o) for o in expected} == expected
    pages = -(-moves.total_changes // 2_000)
    # login, global describe, the Contact describe, the pages, the records created and, for their first values, the
    # field's changes after the month (at most salesforce.AFTER_PAGES pages, plus one COUNT)
    assert spent <= pages + 5 + 2
    assert durations.available and durations.sampled and any(s.sample_size for s in durations.stages)


# ---------------------------------------------------------------- history ties


def test_entries_sharing_a_timestamp_are_ordered_by_stage_order_then_sequence():
    at = datetime(2025, 5, 3, 10, 0, tzinfo=UTC)
    order = stage_order([("Lead", 0), ("MQL", 1), ("SQL", 2)])
    rows = [("SQL", at, "017b"), ("MQL", at, "017c"), ("Lead", at - timedelta(days=1), "017a"), ("Odd", at, "017d")]
    ordered = order_history(rows, at=lambda r: r[1], value=lambda r: r[0], sequence=lambda r: r[2], order=order)
    assert [r[0] for r in ordered] == ["Lead", "MQL", "SQL", "Odd"]
    twins = [("MQL", at, "017f"), ("MQL", at, "017e")]
    ordered = order_history(twins, at=lambda r: r[1], value=lambda r: r[0], sequence=lambda r: r[2], order=order)
    assert [r[2] for r in ordered] == ["017e", "017f"]


@pytest.mark.parametrize("platform", ["salesforce", "hubspot"])
def test_a_workflow_setting_two_stages_at_once_never_reads_as_a_backward_move(platform):
    profile = custom_profile("ties", {"same_timestamp_history"})
    with sandbox(platform, profile, size=1_500, seed=4) as sb:
        c = connector(sb)
        kind, name = LIFECYCLE[platform]
        tied = truth.same_instant(sb.model, kind=kind, path="lifecycle")
        f = next(f for f in c.fields(kind) if f.api_name == name)
        history = c.field_history(kind, name, AS_OF - timedelta(days=3 * 365), AS_OF, limit=2_000)
    assert tied > 0 and history.available and history.records_read
    order = {v.api_value: v.order for v in f.values}
    backward = [
        r.path for r in history.records if any(order[b] < order[a] for a, b in zip(r.path, r.path[1:], strict=False))
    ]
    assert backward == []


# ---------------------------------------------------------------- free text


def test_free_text_loss_reasons_are_grouped_by_wording_and_said_to_be_free_text():
    profile = custom_profile("free-text", {"free_text_loss_reasons"})
    with sandbox("hubspot", profile, size=600) as sb:
        c = connector(sb)
        reason = next(f for f in c.fields("deal") if f.api_name == "closed_lost_reason")
        counts = c.value_counts("deal", reason.api_name)
        snapshot = engine.collect(connector(sb), as_of=AS_OF)
        expected = truth.loss_reasons(sb.model)
    assert 0 < sum(expected.values()) <= FREE_TEXT_RECORDS, "every reason fits the one page read"
    assert counts.free_text and "free text" in counts.note and counts.calls == 1
    assert {truth.normalise_reason(v.value): v.count for v in counts.values} == expected
    assert all(v.label == v.value and v.value == " ".join(v.value.split()) for v in counts.values)
    stored = snapshot["value_counts"]["deal.closed_lost_reason"]
    assert (
        stored["free_text"] and {truth.normalise_reason(v["value"]): v["count"] for v in stored["values"]} == expected
    )
