"""Stage skips and backward moves (LC-STAGE-SKIPS, LC-BACKWARD-MOVES): deep mode reads each record's stage history
through the real simple-salesforce / hubspot-api-client against the sandbox over HTTP (Salesforce SOQL on the history
objects with nextRecordsUrl paging; HubSpot search + batch read with propertiesWithHistory).

Expected counts come from the sandbox's generator: every record's stage path (`OrgModel` rows), cut to the audit's
window, judged against the generator's own funnel order (`schema.progression`) and each deal's own pipeline, never
from the rule's output."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from crm_connectors.audit import engine, rules
from crm_connectors.hubspot import HISTORY_BATCH, SEARCH_PAGE
from crm_connectors.salesforce import _history_pages
from crm_sandbox import HubSpotSandbox, SalesforceSandbox, custom_profile, truth
from tests.crm_connectors.connectors import UNLIMITED, connector

PLATFORMS = ("salesforce", "hubspot")
RULES = ("LC-STAGE-SKIPS", "LC-BACKWARD-MOVES")
SKIPS_ONLY = custom_profile("skips", {"stage_skips_and_backward_moves"})
DAY_MS = 86_400_000
STATUS_KEYS = {"working", "nurture"}  # the status-mix gotcha's values: no funnel step


@pytest.fixture(autouse=True)
def _crm_settings(settings):
    settings.CRM_ALLOW_HTTP = True
    settings.CRM_RATE_LIMITS = UNLIMITED



def audit(platform: str, profile, *, deep: bool, size: int = 1_000, seed: int = 3):
    """(snapshot, expected moves per object, sandbox request count)"""
    cls = SalesforceSandbox if platform == "salesforce" else HubSpotSandbox
    with cls(profile=profile, seed=seed, size=size) as sb:
        as_of = datetime.fromtimestamp(sb.model.as_of / 1000, UTC)
        snapshot = engine.collect(connector(sb), deep=deep, as_of=as_of)
        assert snapshot["calls"] == sb.stats["total"]  # every request counted, logins included
        return snapshot, sb


# ---------------------------------------------------------------- the generator's answer


def _window(steps: list[tuple[object, int]], start: int, end: int) -> list[object]:
    held, inside = None, []
    for opt, ms in sorted(steps, key=lambda s: s[1]):
        if ms >= end:
            break
        if ms < start:
            held = opt
        else:
            inside.append(opt)
    out: list[object] = []
    for opt in ([held] if held is not None else []) + inside:
        if not out or out[-1] != opt:
            out.append(opt)
    return out


def expected_moves(model, platform: str, kind: str) -> dict[str, dict]:
    """{"skips": {...}, "backward": {...}} with records, moves and "from → to" counts, straight from the model."""
    end = model.as_of
    start = end - 365 * DAY_MS
    hs = platform == "hubspot"
    schema = model.schema
    if kind == "deal":
        path_name = "stage"
    else:
        path_name = "lifecycle"
        funnel = [k for k in schema.progression if k not in STATUS_KEYS]
    table = model.sets[kind]
    out = {name: {"records": 0, "moves": 0, "transitions": {}} for name in ("skips", "backward")}
    for i in range(table.size):
        row = table.row_at(i)
        steps = [(o, ms) for o, ms in row["paths"].get(path_name, []) if not (hs and o.sf_only)]
        path = _window(steps, start, end)
        if kind == "deal":
            steps_in_order = [s for s in row["pipeline"].open_stages if not (hs and s.sf_only)]
            rank = {s.key: n for n, s in enumerate(steps_in_order)}
            exits = {s.key for s in row["pipeline"].stages if s.closed}
        else:
            steps_in_order = [schema.lifecycle_option(k) for k in funnel]
            rank = {k: n for n, k in enumerate(funnel)}
            exits = {"closed_lost", "other"}
        skips, backs = [], []
        for a, b in zip(path, path[1:], strict=False):
            ra = math.inf if a.key in exits else rank.get(a.key)
            rb = math.inf if b.key in exits else rank.get(b.key)
            if ra is None or rb is None or ra == rb:
                continue
            if rb < ra:
                backs.append((a, b))
            elif rb != math.inf and rb > ra + 1:
                skips.append((a, b))
        for name, moves in (("skips", skips), ("backward", backs)):
            if moves:
                out[name]["records"] += 1
                out[name]["moves"] += len(moves)
                for a, b in moves:
                    label = f"{a.hs_text if hs else a.label} → {b.hs_text if hs else b.label}"
                    out[name]["transitions"][label] = out[name]["transitions"].get(label, 0) + 1
    return out


def hits_by(snapshot, rule_id: str, ctx=None) -> dict[str, rules.Hit]:
    return {h.object: h for h in rules.evaluate(snapshot, ctx).hits if h.rule_id == rule_id}


# ---------------------------------------------------------------- the rules on the sandbox


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("profile", [SKIPS_ONLY, "messy"], ids=["skips-gotcha", "messy"])
def test_skips_and_backward_moves_match_the_generator(platform, profile):
    snapshot, sb = audit(platform, profile, deep=True)
    evaluation = rules.evaluate(snapshot)
    assert set(RULES) <= set(evaluation.evaluated)
    kinds = ["contact", "deal"] + (["lead"] if platform == "salesforce" else [])
    fired = set()
    for rule_id, name in zip(RULES, ("skips", "backward"), strict=True):
        hits = hits_by(snapshot, rule_id)
        for kind in kinds:
            want = expected_moves(sb.model, platform, kind)[name]
            hit = hits.get(kind)
            if not want["records"]:
                assert hit is None
                continue
            fired.add((rule_id, kind))
            assert hit is not None, (rule_id, kind, want)
            assert (hit.count, hit.evidence["records"], hit.evidence["moves"]) == (
                want["records"],
                want["records"],
                want["moves"],
            )
            assert hit.counts == want["transitions"]
            assert hit.domain == ("sales_pipelines" if kind == "deal" else "lead_lifecycle")
            assert hit.severity == ("low" if rule_id == "LC-STAGE-SKIPS" else "medium")
            assert hit.message and hit.recommendation and hit.seed
            assert hit.evidence["records_read"] >= want["records"] and not hit.evidence["sampled"]
    # the gotcha puts both kinds of move on contacts and deals alike
    assert {(r, k) for r in RULES for k in ("contact", "deal")} <= fired


def test_skipped_stages_are_named_in_the_evidence():
    snapshot, _ = audit("salesforce", SKIPS_ONLY, deep=True)
    hit = hits_by(snapshot, "LC-STAGE-SKIPS")["contact"]
    assert hit.evidence["skipped_stages"] and sum(hit.evidence["skipped_stages"].values()) >= hit.evidence["moves"]
    assert hit.evidence["order"] == ["the picklist order of Lifecycle_Stage__c"]
    assert hit.field == "Lifecycle_Stage__c" and hit.evidence["window_days"] == 365


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_healthy_org_has_no_skip_and_no_backward_move(platform):
    snapshot, sb = audit(platform, "healthy", deep=True)
    evaluation = rules.evaluate(snapshot)
    assert set(RULES) <= set(evaluation.evaluated)
    assert [h for h in evaluation.hits if h.rule_id in RULES] == []
    for kind in ("contact", "deal"):
        want = expected_moves(sb.model, platform, kind)
        assert want["skips"]["records"] == want["backward"]["records"] == 0
    # the history was read, not skipped: records with stage changes in the window
    assert all(e["records_read"] > 0 for k, e in snapshot["history"].items() if not k.startswith("lead."))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_without_deep_mode_the_rules_are_not_evaluated_and_nothing_is_read(platform):
    snapshot, _ = audit(platform, "messy", deep=False)
    evaluation = rules.evaluate(snapshot)
    for rule_id in RULES:
        assert evaluation.not_run[rule_id] == evaluation.not_run["DQ-DUPLICATE-ACCOUNTS"]
        assert evaluation.not_run[rule_id] == "deep mode only (reads records)"
        assert rule_id not in evaluation.evaluated and rule_id not in evaluation.not_evaluated
    assert snapshot["history"] == {} and "history" not in snapshot["cost"]


def test_a_signed_stage_order_is_used_instead_of_the_picklist():
    snapshot, _ = audit("hubspot", SKIPS_ONLY, deep=True)
    # signed: a stage "Engaged" between Lead and MQL that the CRM does not have, so every Lead -> MQL move skips it
    names = [
        ("Lead", ["lead"]),
        ("Engaged", ["engaged"]),
        ("MQL", ["marketingqualifiedlead"]),
        ("SAL", ["salesacceptedlead"]),
        ("SQL", ["salesqualifiedlead"]),
        ("Opportunity", ["opportunity"]),
        ("Customer", ["customer"]),
        ("Evangelist", ["evangelist"]),
    ]
    signed = [
        {"name": name, "order": n, "crm_object": "Contact", "crm_field": "lifecyclestage", "crm_values": values}
        for n, (name, values) in enumerate(names, start=1)
    ]
    ctx = rules.Context(signed=signed, signed_version=2)
    hit = hits_by(snapshot, "LC-STAGE-SKIPS", ctx)["contact"]
    assert hit.evidence["order"] == ["the signed architecture (v2)"]
    later = {v for _, values in names[2:] for v in values}
    past_engaged = sum(  # moves from Lead to any signed stage after Engaged, in the paths the audit read
        p["records"]
        for p in snapshot["history"]["contact.lifecyclestage"]["paths"]
        for a, b in zip(p["values"], p["values"][1:], strict=False)
        if a == "lead" and b in later
    )
    assert past_engaged > 0 and hit.evidence["skipped_stages"]["Engaged"] == past_engaged
    assert set(hit.evidence["skipped_stages"]) <= {n for n, _ in names}  # the signed names
    assert "Engaged" not in hits_by(snapshot, "LC-STAGE-SKIPS")["contact"].evidence["skipped_stages"]


# ---------------------------------------------------------------- cost


@pytest.mark.parametrize("platform", PLATFORMS)
def test_deep_history_cost_is_capped_whatever_the_org_size(platform):
    snapshot, sb = audit(platform, "messy", deep=True, size=60_000)
    history = snapshot["history"]
    assert history and snapshot["cost"]["history"] == sum(e["calls"] for e in history.values())
    cap = engine.HISTORY_RECORDS
    if platform == "salesforce":
        per_field = 1 + _history_pages(cap)  # a COUNT() and at most that many SOQL pages
    else:
        per_field = math.ceil(cap / SEARCH_PAGE) + math.ceil(cap / HISTORY_BATCH)  # searches + batch reads
    assert all(e["calls"] <= per_field for e in history.values())
    assert all(e["records_read"] <= cap for e in history.values())
    big = [e for e in history.values() if e["population"] and e["population"] > cap * 4]
    assert big and all(e["sampled"] for e in big)  # large populations are sampled, and say so
    assert snapshot["cost"]["history"] <= len(history) * per_field
    # the deep audit still decides the rules on the sample
    assert {h.rule_id for h in rules.evaluate(snapshot).hits} >= set(RULES)


def test_the_default_estimate_counts_the_history_reads():
    snapshot, _ = audit("hubspot", "healthy", deep=False)
    deep, _ = audit("hubspot", "healthy", deep=True)
    estimate = engine.deep_cost_estimate(snapshot)
    spent = deep["cost"]["deep"] + deep["cost"]["history"]
    assert estimate >= spent


# ---------------------------------------------------------------- the sandbox's wire formats


def test_salesforce_history_pages_follow_next_records_url():
    with SalesforceSandbox(profile=SKIPS_ONLY, seed=3, size=3_000) as sb:
        sf = sb.client()
        start = datetime.fromtimestamp(sb.model.as_of / 1000, UTC) - timedelta(days=365)
        start = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        soql = (
            "SELECT ContactId, OldValue, NewValue, CreatedDate FROM ContactHistory "
            f"WHERE Field = 'Lifecycle_Stage__c' AND CreatedDate >= {start} ORDER BY ContactId, CreatedDate"
        )
        first = sf.query(soql)
        assert not first["done"] and first["nextRecordsUrl"].startswith("/services/data/")
        rows = list(sf.query_all_iter(soql))
        assert len(rows) == first["totalSize"] > 2_000
        keys = [(r["ContactId"], r["CreatedDate"]) for r in rows]
        assert keys == sorted(keys)  # by record, then in time
        for a, b in zip(rows, rows[1:], strict=False):
            if a["ContactId"] == b["ContactId"]:
                assert b["OldValue"] == a["NewValue"]
        with pytest.raises(Exception, match="sandbox: ORDER BY ContactId without Field"):
            sf.query("SELECT ContactId FROM ContactHistory ORDER BY ContactId, CreatedDate")


def test_hubspot_batch_read_returns_properties_with_history():
    with HubSpotSandbox(profile=SKIPS_ONLY, seed=3, size=200) as hs:
        from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        api = hs.client().crm.objects.batch_api
        body = BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=str(i)) for i in range(1, 51)],
            properties=["pipeline"],
            properties_with_history=["dealstage"],
        )
        result = api.read("deals", batch_read_input_simple_public_object_id=body)
        assert result.status == "COMPLETE" and len(result.results) == 40  # 200 contacts -> 40 deals
        for r in result.results:
            history = r.properties_with_history["dealstage"]
            assert history and all(h.value and h.timestamp and h.source_type for h in history)
            assert [h.timestamp for h in history] == sorted((h.timestamp for h in history), reverse=True)
            row = hs.model.sets["deal"].row_at(int(r.id) - 1)
            assert history[0].value == row["stage"].hs and r.properties["pipeline"] == row["pipeline"].hs_id
        body.inputs = [SimplePublicObjectId(id=str(i)) for i in range(1, 52)]
        with pytest.raises(Exception, match="at most 50"):
            api.read("deals", batch_read_input_simple_public_object_id=body)


# ---------------------------------------------------------------- first-stage and ticket-stage entries

FIRST_STAGE_MONTH = (datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_records_created_in_a_stage_count_as_entries_into_it_on_both_crms(platform):
    """Salesforce field history has no row for the value a record is created with; the records created in the month
    are counted into their first value, so the first stage's entries match HubSpot's 'date entered'. The org's "now"
    is the month's end, as for a month-end run (a record changed only after the month counts at its current value)."""
    start, end = FIRST_STAGE_MONTH
    cls = SalesforceSandbox if platform == "salesforce" else HubSpotSandbox
    with cls(profile="wellbuilt", seed=11, size=2_000, as_of=end) as sb:
        name = "Lifecycle_Stage__c" if platform == "salesforce" else "lifecyclestage"
        moves = connector(sb).stage_transitions("contact", name, start, end)
        window = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))
        firsts = sb.model.schema.progression[:2]  # a path starts at the first or the second stage
        got, expected = {}, {}
        for option in sb.model.schema.lifecycle:
            spelled = option.label if platform == "salesforce" else option.hs
            expected[option.key] = truth.entries(
                sb.model, kind="contact", path="lifecycle", value=option.key, start=window[0], end=window[1]
            )
            got[option.key] = moves.entered(spelled)
    assert moves.available, moves.note
    assert got == expected
    assert all(expected[k] > 0 for k in firsts), "records are created in each first stage this month"


def test_customer_stages_on_ticket_pipelines_are_measured_from_their_date_entered_properties():
    """HubSpot keeps hs_v2_date_entered_<stage id> (and _exited_) for every ticket pipeline stage: customer stages
    kept on a ticket pipeline have monthly entries and time in stage, as deal stages do."""
    start, end = FIRST_STAGE_MONTH
    with HubSpotSandbox(profile="demo", seed=11, size=4_000, as_of=end) as sb:
        c = connector(sb)
        moves = c.stage_transitions("ticket", "hs_pipeline_stage", start, end)
        stays = c.time_in_stage("ticket", "hs_pipeline_stage", start, end)
        window = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))
        stages = [st for pl in sb.model.schema.ticket_pipelines for st in pl.stages if st.listed and not st.sf_only]
        expected = {
            st.hs: truth.entries(
                sb.model, kind="ticket", path="stage", value=st.hs, by="hs", start=window[0], end=window[1], latest=True
            )
            for st in stages
        }
    assert moves.available and stays.available, moves.note or stays.note
    assert {st.hs: moves.count(st.hs) for st in stages} == expected
    assert sum(expected.values()) > 0
    assert any(s.sample_size for s in stays.stages), "stays that ended this month are measured"
