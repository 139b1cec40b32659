"""The audit rule catalogue against the CRM sandbox: every rule fires on an org that has its gotcha and stays
silent on the healthy org, on Salesforce and HubSpot alike (real simple-salesforce and hubspot-api-client over
HTTP). Rules without a sandbox gotcha are shown firing on a read snapshot changed by hand."""

from __future__ import annotations

import copy
import uuid

import pytest

from crm_connectors.audit import engine, rules
from crm_connectors.http import LocalStore
from crm_connectors.hubspot import HubSpotConnector
from crm_connectors.salesforce import SalesforceConnector
from crm_connectors.sandbox import GOTCHAS, HubSpotSandbox, SalesforceSandbox, custom_profile

UNLIMITED = {"salesforce": "1000000/1", "hubspot": "1000000/1", "hubspot-search": "1000000/1"}
PLATFORMS = ("salesforce", "hubspot")
# gotchas whose rules read records (deep mode): duplicates; each record's stage history (field_history)
DEEP_GOTCHAS = {"duplicate_records", "stage_skips_and_backward_moves"}
# rules no sandbox gotcha triggers: each is shown firing on an edited snapshot below
WITHOUT_GOTCHA = {
    "LC-DEPRECATED-STAGE-RECORDS",
    "LC-DOMINANT-LOSS-REASON",
    "LC-RETIRED-DATE-PROPERTIES",
    "PIPE-FORECAST-CATEGORY",
    "DQ-INCONSISTENT-STAGE-DEFS",
    "DQ-FREE-TEXT-FINITE",
    "CUST-FRAGMENTED",
}
DRIFT = {"DRIFT-UNAPPROVED-VALUES", "DRIFT-MISSING-STAGES", "DRIFT-RENAMED-STAGES", "DRIFT-NEW-SINCE-LAST-AUDIT"}


@pytest.fixture(autouse=True)
def _crm_settings(settings):
    settings.CRM_ALLOW_HTTP = True
    settings.CRM_RATE_LIMITS = UNLIMITED


def sandbox(platform: str, profile, size: int = 1_000, seed: int = 3):
    cls = SalesforceSandbox if platform == "salesforce" else HubSpotSandbox
    return cls(profile=profile, seed=seed, size=size)


def connector(sb):
    # module-scoped fixtures cannot use the `settings` fixture: the options say what the settings would
    options = {"store": LocalStore(), "key": uuid.uuid4().hex, "allow_http": True, "rates": UNLIMITED}
    if sb.platform == "salesforce":
        return SalesforceConnector(
            base_url=sb.base_url,
            username=sb.username,
            password=sb.password,
            security_token=sb.security_token,
            **options,
        )
    return HubSpotConnector(base_url=sb.base_url, access_token=sb.access_token, **options)


def read(platform: str, profile, *, deep: bool = False, **kwargs) -> dict:
    with sandbox(platform, profile, **kwargs) as sb:
        c = connector(sb)
        snapshot = engine.collect(c, deep=deep)
        assert snapshot["calls"] == sb.stats["total"]  # every request is counted, logins included
        return snapshot


def rule_ids(snapshot: dict, ctx: rules.Context | None = None) -> set[str]:
    return {h.rule_id for h in rules.evaluate(snapshot, ctx).hits}


@pytest.fixture(scope="module")
def healthy() -> dict[str, dict]:
    return {p: read(p, "healthy", deep=True) for p in PLATFORMS}


@pytest.fixture(scope="module")
def messy() -> dict[str, dict]:
    return {p: read(p, "messy", deep=True) for p in PLATFORMS}


# ---------------------------------------------------------------- the catalogue itself


def test_catalogue_rules_have_one_stable_id_a_seed_and_the_seeds_fix():
    assert len(rules.CATALOGUE) >= 30
    for rule_id, r in rules.CATALOGUE.items():
        assert r.id == rule_id and rule_id == rule_id.upper()
        assert r.domain in rules.DOMAINS and r.severity in rules.SEVERITIES
        assert r.seed and r.recommendation and r.title and r.detects
    every_gotcha_rule = {rid for ids, _ in GOTCHAS.values() for rid in ids.split()}
    assert every_gotcha_rule <= set(rules.CATALOGUE)
    assert [r["id"] for r in rules.catalogue_rows()] == list(rules.CATALOGUE)


# ---------------------------------------------------------------- fires on its gotcha, silent on healthy


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_healthy_org_has_no_finding_but_advice(healthy, platform):
    snapshot = healthy[platform]
    evaluation = rules.evaluate(snapshot)
    # HubSpot's own Closed Lost Reason is a text property: advice to make it a picklist, nothing more
    text_reasons = [
        f["name"] for f in snapshot["fields"]["deal"] if f["type"] == "text" and "reason" in f["label"].lower()
    ]
    assert [(h.rule_id, h.severity, h.field) for h in evaluation.hits] == [
        ("DQ-FREE-TEXT-FINITE", "low", name) for name in text_reasons
    ]
    assert evaluation.not_evaluated == {} and snapshot["errors"] == []
    assert set(evaluation.not_run) == DRIFT  # deep ran; nothing signed, no earlier audit


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("gotcha", sorted(GOTCHAS))
def test_every_rule_fires_on_an_org_with_its_gotcha(gotcha, platform):
    expected = set(GOTCHAS[gotcha][0].split())
    snapshot = read(platform, custom_profile(gotcha, {gotcha}), deep=gotcha in DEEP_GOTCHAS)
    hits = rules.evaluate(snapshot).hits
    assert expected <= {h.rule_id for h in hits}
    for h in hits:
        if h.rule_id in expected:
            assert h.message and h.recommendation and h.seed and len(h.fingerprint) == 40


def test_messy_orgs_give_the_same_rules_on_both_crms(messy):
    # HubSpot keeps a (free-text) Closed Lost Reason even where Salesforce has no reason field at all
    found = {p: rule_ids(messy[p]) - {"DQ-FREE-TEXT-FINITE"} for p in PLATFORMS}
    assert found["salesforce"] == found["hubspot"]
    expected = set(rules.CATALOGUE) - DRIFT - WITHOUT_GOTCHA
    assert found["salesforce"] == expected
    assert "DQ-FREE-TEXT-FINITE" in rule_ids(messy["hubspot"])


def test_rule_evidence_names_the_offending_values(messy):
    hits = {(h.rule_id, h.object, h.field): h for h in rules.evaluate(messy["salesforce"]).hits}
    renewal = next(h for (rid, _, field), h in hits.items() if rid == "PIPE-TIME-BASED-STAGES" and field == "Renewals")
    assert renewal.values == ["Renewal due in 120 days", "90 Days Out", "60 Days Out", "30 Days Out"]
    rogue = hits[("LC-UNAPPROVED-VALUES", "lead", "Status")]
    assert list(rogue.counts) == ["Contacted (old)"] and rogue.count == sum(rogue.counts.values()) > 0
    mixed = hits[("COMP-FIELD-MIXED", "company", "Type")]
    assert set(mixed.evidence["classes"]) == {"lifecycle", "type", "status"}
    hs = {(h.rule_id, h.object, h.field): h for h in rules.evaluate(messy["hubspot"]).hits}
    assert (
        hs[("LC-NO-CONTACT-STATUS", "contact", "hs_lead_status")].count
        == messy["hubspot"]["objects"]["contact"]["records"]
    )
    assert set(hs[("LC-UNAPPROVED-VALUES", "contact", "lifecyclestage")].counts) == {"recycled", "mql_legacy"}


# ---------------------------------------------------------------- rules without a sandbox gotcha


def _find(snapshot: dict, kind: str, name: str) -> dict:
    return next(f for f in snapshot["fields"][kind] if f["name"] == name)


def test_deals_outside_the_forecast_categories(healthy):
    snapshot = copy.deepcopy(healthy["salesforce"])
    assert "PIPE-FORECAST-CATEGORY" not in rule_ids(snapshot)
    snapshot["value_counts"]["deal.ForecastCategoryName"]["values"].append(
        {"value": "Upside", "label": "Upside", "count": 7, "known": False, "active": None}
    )
    hit = next(h for h in rules.evaluate(snapshot).hits if h.rule_id == "PIPE-FORECAST-CATEGORY")
    assert hit.counts == {"Upside": 7} and hit.severity == "medium"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_records_in_retired_values_and_archived_stages(healthy, platform):
    snapshot = copy.deepcopy(healthy[platform])
    life = "Lifecycle_Stage__c" if platform == "salesforce" else "lifecyclestage"
    counts = snapshot["value_counts"][f"contact.{life}"]
    retired = next(v for v in counts["values"] if v["count"])
    retired["active"] = False
    stage = next(s for s in snapshot["stage_counts"]["deal"]["stages"] if s["count"])
    stage["active"] = False
    hits = [h for h in rules.evaluate(snapshot).hits if h.rule_id == "LC-DEPRECATED-STAGE-RECORDS"]
    assert {(h.object, h.count) for h in hits} == {("contact", retired["count"]), ("deal", stage["count"])}


def test_inconsistent_stage_definitions_across_pipelines(healthy):
    snapshot = copy.deepcopy(healthy["hubspot"])
    won = next(s for s in snapshot["pipelines"]["deal"][1]["stages"] if s["label"] == "Closed Won")
    won["probability"] = 0.9
    snapshot["pipelines"]["deal"][2]["stages"][-1]["label"] = "Closed-Lost"
    hits = {h.field: h for h in rules.evaluate(snapshot).hits if h.rule_id == "DQ-INCONSISTENT-STAGE-DEFS"}
    assert "different probability or closed/won flags" in hits["Closed Won"].message
    assert "different spellings (Closed Lost, Closed-Lost)" in hits["Closed Lost"].message


def test_finite_concepts_stored_as_text(healthy):
    snapshot = copy.deepcopy(healthy["salesforce"])
    _find(snapshot, "company", "Industry")["type"] = "string"
    snapshot["fields"]["deal"].append({"name": "Region__c", "label": "Sales Region", "type": "text", "role": None})
    hits = {(h.object, h.field): h for h in rules.evaluate(snapshot).hits if h.rule_id == "DQ-FREE-TEXT-FINITE"}
    assert set(hits) == {("company", "Industry"), ("deal", "Region__c")}
    assert hits[("deal", "Region__c")].values == ["region"]


def test_post_sale_stages_on_two_objects_are_fragmented(healthy):
    snapshot = copy.deepcopy(healthy["salesforce"])
    lifecycle = _find(snapshot, "company", "Lifecycle_Stage__c")
    lifecycle["values"].append({"value": "Onboarding", "label": "Onboarding", "active": True})
    hit = next(h for h in rules.evaluate(snapshot).hits if h.rule_id == "CUST-FRAGMENTED")
    assert hit.counts == {"ticket": 5, "company": 1}  # the CS ticket pipeline, and now the company field


def test_signal_words_the_seed_only_proposes_are_low_and_falling_probabilities_are_info(healthy):
    snapshot = copy.deepcopy(healthy["hubspot"])
    stages = snapshot["pipelines"]["deal"][0]["stages"]
    stages[1]["label"] = "At Risk"
    stages[2]["probability"], stages[3]["probability"] = 0.9, 0.75
    hits = {h.rule_id: h for h in rules.evaluate(snapshot).hits}
    assert hits["PIPE-INTERNAL-SIGNAL-STAGES"].severity == "low"
    assert hits["PIPE-PROBABILITY-SPEC"].severity == "info" and "decrease" in hits["PIPE-PROBABILITY-SPEC"].message


def test_new_values_and_pipelines_since_the_last_audit(healthy):
    before = healthy["salesforce"]
    now = copy.deepcopy(before)
    _find(now, "lead", "Status")["values"].append({"value": "Recycled", "label": "Recycled", "active": True})
    extra = copy.deepcopy(now["pipelines"]["deal"][0])
    extra.update(id="0125gNEW", label="Channel")
    now["pipelines"]["deal"].append(extra)
    ctx = rules.Context(previous=rules.Snapshot(before))
    hits = {(h.object, h.field): h for h in rules.evaluate(now, ctx).hits if h.rule_id == "DRIFT-NEW-SINCE-LAST-AUDIT"}
    assert hits[("lead", "Status")].values == ["Recycled"] and ("deal", "Channel") in hits
    assert "DRIFT-NEW-SINCE-LAST-AUDIT" not in rule_ids(before, rules.Context(previous=rules.Snapshot(before)))


def test_thresholds_the_seeds_leave_open_can_be_changed(healthy):
    snapshot = healthy["salesforce"]
    strict = rules.Context(thresholds={**rules.THRESHOLDS, "missing_field_share": 0.05, "stale_share": 0.01})
    assert {"DQ-MISSING-FIELDS", "DQ-STALE-RECORDS"} <= rule_ids(snapshot, strict)


def test_a_section_that_could_not_be_read_is_not_evaluated_never_clean(healthy):
    snapshot = copy.deepcopy(healthy["hubspot"])
    snapshot["sections"].pop("data_quality")
    evaluation = rules.evaluate(snapshot)
    assert {"DQ-MISSING-FIELDS", "DQ-STALE-RECORDS", "DQ-NO-NEXT-STEP"} <= set(evaluation.not_evaluated)
    assert "could not read data quality from HubSpot" in evaluation.not_evaluated["DQ-MISSING-FIELDS"]
    assert "DQ-MISSING-FIELDS" not in evaluation.evaluated


# ---------------------------------------------------------------- cost


@pytest.mark.parametrize("platform", PLATFORMS)
def test_audit_cost_does_not_grow_with_the_record_count(platform):
    small = read(platform, "messy", size=200)
    large = read(platform, "messy", size=100_000)
    assert small["calls"] == large["calls"]
    assert large["calls"] <= (60 if platform == "salesforce" else 150)
    assert large["objects"]["contact"]["records"] == 100_000
