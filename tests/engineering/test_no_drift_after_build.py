"""The engagement's audit after the build shows no drift, on the demo profile `make run` uses, through the real client
libraries: a fully signed architecture, the spec generated from it (every retired value and every value records hold
that no option lists given a signed target), planned, applied, the records moved; then the audit as the app runs it
(standard mode) finds nothing in the drift domain. The records moved per value are counted from the sandbox's own
record slots, and the unlisted values the plan names are the generator's rogue values (crm_sandbox.truth)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm_connectors.audit import services as audits
from crm_sandbox import HubSpotSandbox, SalesforceSandbox, truth
from engineering import record_moves
from engineering.models import ApplyStatus, MoveStatus
from tests.engineering.test_apply import SIZE, act, approved_plan
from tests.engineering.test_record_moves import held_in_org, held_in_sandbox, moves

pytestmark = pytest.mark.django_db
# Acme's architecture as a Salesforce org keeps it (the Globex mapping's Salesforce twin): lead stages on the Lead's
# lifecycle field, sales stages on the New Business record type's process, customer stages on the onboarding cases.
ACME_SALESFORCE = [
    ("lead", "Known Lead", "Lead", "Lifecycle_Stage__c", ["Subscriber", "Known Lead"]),
    ("lead", "MQL", "Lead", "Lifecycle_Stage__c", ["MQL"]),
    ("lead", "SQL", "Lead", "Lifecycle_Stage__c", ["SQL", "Opportunity", "Customer", "Evangelist"]),
    ("sales", "SAO", "Opportunity", "New Business", ["Discovery Completed"]),
    ("sales", "Evaluation/Use Case", "Opportunity", "New Business", ["Solution Validated"]),
    ("sales", "Proposal/Negotiation", "Opportunity", "New Business", ["Proposal Sent", "Contract Negotiated"]),
    ("sales", "Closed Won", "Opportunity", "New Business", ["Closed Won"]),
    ("customer", "Onboarding", "Case", "Customer Onboarding", ["Pre-Onboarding", "Onboarding", "Implementation"]),
    ("customer", "Adoption", "Case", "Customer Onboarding", ["Early Adoption", "Mature Adoption"]),
]


def build_and_audit(cast, sandbox, stages, held_in, capture):
    """Plan, apply and move every record with a target; the records each move found, what the sandbox's slots
    held before, and the audit run after."""
    engagement, plan = approved_plan(cast, sandbox, stages)
    movable = record_moves.movable(plan)
    expected = {op["id"]: held_in(sandbox, op["object"], op["field"], op["value"], op["pipeline"]) for op in movable}
    assert act(cast, plan, "dry_run", capture).status == ApplyStatus.DRY_RUN_DONE
    assert act(cast, plan, "apply", capture).status == ApplyStatus.APPLIED
    assert moves(cast, plan, "count", capture).status == MoveStatus.COUNTED
    run = moves(cast, plan, "move", capture, opted_in=True, confirmation=cast.client.name)
    assert run.status == MoveStatus.MOVED, run.outcome
    audit, created = audits.start_audit(client=cast.client, actor=cast.owner, engagement=engagement, queue=False)
    assert created
    return plan, {e["op"]: e["moved"] for e in run.moves}, expected, audits.execute_run(audit.pk)


def drift(audit) -> list[str]:
    return [f"{f.rule_id}: {f.message}" for f in audit.findings.filter(domain="drift")]


def test_hubspot_demo_audits_clean_after_apply_and_moves(
    cast, client, crm_sandbox_settings, django_capture_on_commit_callbacks
):
    with HubSpotSandbox(profile="demo", seed=3, size=SIZE) as hs:
        rogue = truth.rogue_counts(hs.model, kind="contact", attr="lifecycle", by="hs")
        assert rogue  # the demo's contacts hold lifecycle values no option lists
        plan, moved, expected, audit = build_and_audit(
            cast, hs, "globex", held_in_sandbox, django_capture_on_commit_callbacks
        )
    unlisted = {op["value"]: op["records"] for op in plan.unlisted if op["field"] == "lifecyclestage"}
    assert unlisted == rogue
    client.force_login(cast.consultant)
    page = client.get(reverse("engineering:plan", args=[cast.org.slug, plan.spec.engagement.uuid])).content.decode()
    assert all(f"<td>{value}</td><td>{n}</td>" in page for value, n in rogue.items())  # which value, how many
    assert moved == expected and sum(expected.values()) > sum(rogue.values())  # retired and unlisted alike
    assert audit.status in ("succeeded", "partial"), audit.error
    assert drift(audit) == []


def test_salesforce_demo_audits_clean_after_apply_and_moves(
    cast, crm_sandbox_settings, django_capture_on_commit_callbacks
):
    with SalesforceSandbox(profile="demo", seed=3, size=SIZE) as sf:
        rogue = truth.rogue_counts(sf.model, kind="lead", attr="lifecycle")
        rogue_stages = truth.rogue_counts(sf.model, kind="deal", attr="stage")
        assert rogue and rogue_stages  # values records hold that no picklist entry lists
        plan, moved, expected, audit = build_and_audit(
            cast, sf, ACME_SALESFORCE, held_in_org, django_capture_on_commit_callbacks
        )
    found = {(op["object"], op["field"], op["value"]): op["records"] for op in plan.unlisted}
    assert {v: n for (kind, field, v), n in found.items() if (kind, field) == ("lead", "Lifecycle_Stage__c")} == rogue
    assert {v: n for (kind, _, v), n in found.items() if kind == "deal"} == rogue_stages
    assert moved == expected and sum(expected.values()) > 0
    assert audit.status in ("succeeded", "partial"), audit.error
    assert drift(audit) == []
