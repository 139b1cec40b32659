"""Precision: an audit of a well-built org finds nothing high or medium.

Each well-built sandbox profile is read the way a real audit reads it (engine.collect through the real
simple-salesforce / hubspot-api-client connectors over HTTP, deep mode so the stage-history rules run too) and
judged by the whole catalogue. The profiles are shaped unlike the demo org: the platforms' standard lifecycle
names (Marketing Engaged, Subscriber, Evangelist, SAL) on a custom field of Lead and Contact, the platforms'
default lead statuses (HubSpot's Open Deal, Salesforce's Open - Not Contacted…), three milestone pipelines,
customer stages on a custom object or a ticket pipeline, HubSpot's default pipeline relabelled to milestones,
loss reasons filled in. Whatever such an org gets is advice (low, info), never a defect.
"""

from __future__ import annotations

import uuid

import pytest

from crm_connectors.audit import engine, rules
from crm_connectors.http import LocalStore
from crm_connectors.hubspot import HubSpotConnector
from crm_connectors.salesforce import SalesforceConnector
from crm_sandbox import GOTCHAS, HubSpotSandbox, SalesforceSandbox, variant
from crm_sandbox.profiles import PROFILES

UNLIMITED = {"salesforce": "1000000/1", "hubspot": "1000000/1", "hubspot-search": "1000000/1"}
PLATFORMS = ("salesforce", "hubspot")
# every profile whose only gotchas are shapes real orgs have (no rule to fire: profiles.GOTCHAS)
WELL_BUILT = tuple(name for name, p in PROFILES.items() if all(not GOTCHAS[g][0] for g in p.gotchas))


def test_the_well_built_profiles_are_all_judged():
    assert {"healthy", "wellbuilt", "wellbuilt-relabelled"} <= set(WELL_BUILT) and "demo" not in WELL_BUILT


def audit(
    platform: str, profile, *, deep: bool = True, size: int = 1_000, seed: int = 11
) -> tuple[dict, rules.Evaluation]:
    cls = SalesforceSandbox if platform == "salesforce" else HubSpotSandbox
    options = {"store": LocalStore(), "key": uuid.uuid4().hex, "allow_http": True, "rates": UNLIMITED}
    with cls(profile=profile, seed=seed, size=size) as sb:
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
    return snapshot, rules.evaluate(snapshot)


def defects(evaluation: rules.Evaluation) -> list[tuple[str, str, str, str]]:
    return [(h.rule_id, h.severity, h.field, h.message) for h in evaluation.hits if h.severity in ("high", "medium")]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("profile", WELL_BUILT)
def test_a_well_built_org_has_no_high_or_medium_finding(platform, profile):
    snapshot, evaluation = audit(platform, profile)
    assert snapshot["errors"] == [] and snapshot["unreadable"] == []
    assert defects(evaluation) == []
    # every rule that can run ran: the clean result is a judgement, not a skipped rule
    assert evaluation.not_evaluated == {} and evaluation.partial == {}
    assert "LC-STATUS-MIX" in evaluation.evaluated and "LC-BACKWARD-MOVES" in evaluation.evaluated
    # leads (HubSpot contacts) and deals carry a segment, a region and an owner, filled: nothing to say, not even low
    assert "DATA-NO-SEGMENT-FIELDS" in evaluation.evaluated
    assert [h.message for h in evaluation.hits if h.rule_id == "DATA-NO-SEGMENT-FIELDS"] == []
    read = {(row["object"], row["field"]) for row in snapshot["segment_fill"]}
    for kind in rules.segment_objects(rules.Snapshot(snapshot)):
        for concept, fields in rules.segment_fields(rules.Snapshot(snapshot), kind).items():
            assert fields and {(kind, f["name"]) for f in fields} <= read, (kind, concept)
    for h in evaluation.hits:
        assert h.severity in ("low", "info") and h.message and h.recommendation


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_well_built_orgs_standard_names_are_read_as_stages_and_statuses(platform):
    snapshot, evaluation = audit(platform, "wellbuilt", deep=False)
    people = [f for kind in ("lead", "contact") for f in snapshot["fields"].get(kind) or [] if f.get("role")]
    labels = {v["label"] for f in people for v in f["values"]}
    # the shapes the precision claim is about are really in the org the audit read
    assert {"Marketing Engaged", "Subscriber", "Evangelist"} <= labels
    assert ("Open Deal" if platform == "hubspot" else "Open - Not Contacted") in labels
    assert any(o["fields"] for o in snapshot["custom_objects"])
    assert not {"LC-STATUS-MIX", "CUST-NO-LIFECYCLE", "LC-NO-SAL"} & {h.rule_id for h in evaluation.hits}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_field_hidden_by_field_level_security_marks_only_its_rule(platform):
    profile = variant("wellbuilt", "wellbuilt-fls", hidden_fields={"lead.phone", "contact.phone"})
    snapshot, evaluation = audit(platform, profile, deep=False)
    assert {(u["object"], u["field"].lower()) for u in snapshot["unreadable"]} >= {("contact", "phone")}
    assert defects(evaluation) == []
    assert evaluation.not_evaluated == {}
    assert "phone is missing or not readable by this user" in evaluation.partial["DQ-MISSING-FIELDS"].lower()
    assert set(evaluation.partial) == {"DQ-MISSING-FIELDS"}
