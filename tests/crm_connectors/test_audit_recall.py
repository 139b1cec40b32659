"""Recall: every gotcha a sandbox org is built with is found by the audit, with the right counts.

Each org holds one gotcha and is read the way a real audit reads it (engine.collect through the real connectors
over HTTP); the expected figures come from `sandbox.truth`, which walks the generator's model and never the
servers, the connectors or the audit. Findings name values by label, as the client sees them.
"""

from __future__ import annotations

import uuid

import pytest

from crm_connectors.audit import engine, rules
from crm_connectors.http import LocalStore
from crm_connectors.hubspot import HubSpotConnector
from crm_connectors.salesforce import SalesforceConnector
from crm_sandbox import GOTCHAS, HubSpotSandbox, SalesforceSandbox, custom_profile, truth

UNLIMITED = {"salesforce": "1000000/1", "hubspot": "1000000/1", "hubspot-search": "1000000/1"}
PLATFORMS = ("salesforce", "hubspot")
SIZE = 1_200
# the people objects each platform shows: HubSpot has no lead object, its people are contacts
PEOPLE = {"salesforce": ("lead", "contact"), "hubspot": ("contact",)}


def audit(platform: str, gotcha: str, *, deep: bool = False):
    """(snapshot, evaluation, the generator's model) for an org with exactly this gotcha."""
    cls = SalesforceSandbox if platform == "salesforce" else HubSpotSandbox
    options = {"store": LocalStore(), "key": uuid.uuid4().hex, "allow_http": True, "rates": UNLIMITED}
    with cls(profile=custom_profile(gotcha, {gotcha}), seed=5, size=SIZE) as sb:
        if platform == "salesforce":
            connector = SalesforceConnector(
                base_url=sb.base_url,
                username=sb.username,
                password=sb.password,
                security_token=sb.security_token,
                **options,
            )
        else:
            connector = HubSpotConnector(base_url=sb.base_url, access_token=sb.access_token, **options)
        snapshot = engine.collect(connector, deep=deep)
        return snapshot, rules.evaluate(snapshot), sb.model


def by_field(evaluation: rules.Evaluation, rule_id: str) -> dict[tuple[str, str], rules.Hit]:
    return {(h.object, h.field): h for h in evaluation.hits if h.rule_id == rule_id}


def role_field(snapshot: dict, kind: str, role: str) -> dict:
    return next(f for f in snapshot["fields"][kind] if f.get("role") == role)


LABEL = {"salesforce": "label", "hubspot": "hs_text"}  # how each platform labels a value


def test_every_gotcha_with_a_rule_is_recalled_on_both_crms():
    # the catalogue has a rule for every gotcha the sandbox names one for (the per-gotcha tests below count them)
    named = {rid for ids, _ in GOTCHAS.values() for rid in ids.split()}
    assert named <= set(rules.CATALOGUE)
    assert {"LC-DOMINANT-DROP-OFF-REASON", "LC-DEPRECATED-STAGE-RECORDS", "LC-OVERLAPPING-SYSTEMS"} <= named


@pytest.mark.parametrize("platform", PLATFORMS)
def test_retired_values_still_on_records(platform):
    snapshot, evaluation, model = audit(platform, "inactive_values_on_records")
    found = by_field(evaluation, "LC-DEPRECATED-STAGE-RECORDS")
    for kind in PEOPLE[platform]:
        status = role_field(snapshot, kind, "status")
        hit = found[(kind, status["name"])]
        expected = truth.retired_counts(model, kind=kind, attr="status", by=LABEL[platform])
        assert hit.counts == expected and hit.count == sum(expected.values()) > 0
        share = hit.count / truth.records(model, kind=kind)
        # the gotcha puts about 5% of people there: low below 5%, medium from 5% (THRESHOLDS)
        assert hit.severity == ("medium" if share >= rules.THRESHOLDS["retired_share_medium"] else "low")
        internal = truth.retired_counts(model, kind=kind, attr="status", by="hs" if platform == "hubspot" else "label")
        assert sorted(hit.evidence["internal_values"].values()) == sorted(internal)
        # retired is not rogue: the field's rogue-value finding (if any) names none of them
        rogue = by_field(evaluation, "LC-UNAPPROVED-VALUES").get((kind, status["name"]))
        assert rogue is None or not set(rogue.counts) & (set(expected) | set(internal))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_blank_lead_statuses(platform):
    snapshot, evaluation, model = audit(platform, "blank_lead_status")
    found = by_field(evaluation, "LC-NULL-STAGE")
    for kind in PEOPLE[platform]:
        status = role_field(snapshot, kind, "status")
        hit = found[(kind, status["name"])]
        assert hit.count == truth.blanks(model, kind=kind, attr="status") > 0
        assert hit.counts["total"] == truth.records(model, kind=kind)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_records_without_a_lifecycle_stage(platform):
    snapshot, evaluation, model = audit(platform, "records_without_stage")
    found = by_field(evaluation, "LC-NULL-STAGE")
    for kind in PEOPLE[platform]:
        lifecycle = role_field(snapshot, kind, "lifecycle")
        assert found[(kind, lifecycle["name"])].count == truth.blanks(model, kind=kind, attr="lifecycle") > 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_rogue_values_are_named_and_counted(platform):
    snapshot, evaluation, model = audit(platform, "rogue_picklist_values", deep=True)
    found = by_field(evaluation, "LC-UNAPPROVED-VALUES")
    by = "label" if platform == "salesforce" else "hs"  # a rogue value has no label: as the records hold it
    for kind in PEOPLE[platform]:
        lifecycle = role_field(snapshot, kind, "lifecycle")
        expected = truth.rogue_counts(model, kind=kind, attr="lifecycle", by=by)
        assert found[(kind, lifecycle["name"])].counts == expected and expected


@pytest.mark.parametrize("platform", PLATFORMS)
def test_one_loss_reason_dominating(platform):
    snapshot, evaluation, model = audit(platform, "dominant_loss_reason")
    [hit] = [h for h in evaluation.hits if h.rule_id == "LC-DOMINANT-DROP-OFF-REASON"]
    reasons = truth.loss_reasons(model)
    top = max(reasons, key=reasons.get)
    assert truth.normalise_reason(hit.values[0]) == truth.normalise_reason(top)
    assert hit.count == reasons[top] and hit.evidence["recorded"] == sum(reasons.values())
    share = reasons[top] / sum(reasons.values())
    assert hit.evidence["share"] == pytest.approx(share, abs=1e-4) and share > 0.30
    assert hit.severity == "medium"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_free_text_loss_reasons_are_advice_not_a_missing_field(platform):
    snapshot, evaluation, model = audit(platform, "free_text_loss_reasons")
    found = {h.rule_id: h for h in evaluation.hits}
    reason = rules.reason_field(rules.Snapshot(snapshot))
    assert reason is not None and reason["type"] in ("string", "text")
    advice = [h for h in evaluation.hits if h.rule_id == "DQ-FREE-TEXT-FINITE" and h.field == reason["name"]]
    assert [(h.severity, h.values) for h in advice] == [("low", ["loss reason"])]
    no_field = found.get("LC-NO-DROP-OFF-REASON")
    assert no_field is None or "no drop-off (loss) reason field" not in no_field.message


@pytest.mark.parametrize("platform", PLATFORMS)
def test_leads_and_contacts_tracking_the_funnel_in_different_fields(platform):
    snapshot, evaluation, model = audit(platform, "overlapping_lifecycle_across_objects")
    hits = [h for h in evaluation.hits if h.rule_id == "LC-OVERLAPPING-SYSTEMS"]
    assert hits and all(h.severity == "medium" for h in hits)
    funnel = {v for h in hits for v in h.values}
    assert {"MQL", "SQL"} <= funnel
    if platform == "salesforce":  # leads exist: Lead Status on leads against the contacts' lifecycle field
        across = next(h for h in hits if h.key == "across-objects")
        assert "Status" in across.field.split(", ")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_date_fields_of_a_stage_that_no_longer_exists(platform):
    snapshot, evaluation, model = audit(platform, "retired_date_properties")
    kind = "lead" if platform == "salesforce" else "contact"
    [hit] = [h for h in evaluation.hits if h.rule_id == "LC-RETIRED-DATE-PROPERTIES"]
    # what the generator left behind (profiles.GOTCHAS): Lead.SAO_Date__c; the deleted HubSpot stage 1000431
    expected = {"SAO_Date__c"} if platform == "salesforce" else {"hs_date_entered_1000431", "hs_date_exited_1000431"}
    assert (hit.object, set(hit.evidence["fields"]), hit.severity) == (kind, expected, "low")
    # the date fields of current stages are not reported
    current = {f["name"] for f in snapshot["fields"][kind] if f["type"] in ("date", "datetime")} - expected
    assert not current & set(hit.evidence["fields"])


@pytest.mark.parametrize("platform", PLATFORMS)
def test_leads_and_deals_that_cannot_be_segmented(platform):
    snapshot, evaluation, model = audit(platform, "no_segment_fields")
    found = {h.object: h for h in evaluation.hits if h.rule_id == "DATA-NO-SEGMENT-FIELDS"}
    people = PEOPLE[platform][0]  # Salesforce leads, HubSpot contacts
    assert set(found) == {people, "deal"} and {h.severity for h in found.values()} == {"low"}
    # deals have an owner (always filled) and neither a segment nor a region field
    assert found["deal"].counts == {"segment": 0.0, "region": 0.0}
    assert "no segment or region field is visible to this user" in found["deal"].message
    # leads: no region field, and Industry left blank on most of them (the generator's count, not the CRM's)
    filled = 1 - truth.blanks(model, kind=people, attr="industry") / truth.records(model, kind=people)
    assert 0 < filled < rules.THRESHOLDS["segment_fill_min"]
    industry = next(f["name"] for f in snapshot["fields"][people] if f["label"] == "Industry")
    assert found[people].counts == {"region": 0.0, "segment": round(filled * 1000) / 10}
    assert found[people].evidence["filled"] == {industry: round(filled, 4)}
    assert f"is filled on {filled * 100:.0f}% of" in found[people].message


@pytest.mark.parametrize(
    "gotcha,absent",
    [
        ("customer_stages_on_custom_object", "CUST-NO-LIFECYCLE"),
        ("relabelled_default_stages", "PIPE-DEFAULT-STAGES"),
        ("same_timestamp_history", "LC-BACKWARD-MOVES"),
    ],
)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_shapes_real_orgs_have_are_not_reported_as_defects(platform, gotcha, absent):
    snapshot, evaluation, model = audit(platform, gotcha, deep=gotcha == "same_timestamp_history")
    assert absent in evaluation.evaluated
    assert [h.message for h in evaluation.hits if h.rule_id == absent] == []
    if gotcha == "same_timestamp_history":
        assert truth.same_instant(model, kind="contact") > 0  # the ties are there, read in stage order
