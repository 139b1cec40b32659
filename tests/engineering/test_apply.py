"""Apply, safely, against the HubSpot sandbox through the real hubspot-api-client: a dry run sends no write (counted
by HTTP method at the sandbox), apply brings the CRM to the spec (verify finds zero drift and ticks the 2d checks),
applying again writes nothing, undo gives back the properties and pipelines as they were (read with the library,
compared structurally); a fault on the third write leaves a partial apply that resumes and undoes; a read-only token
and a CRM changed after planning are refused in words."""

from __future__ import annotations

import pytest
from django.urls import reverse
from hubspot.crm.properties import PropertyUpdate

from accounts.models import ActivityEntry, DomainError
from crm_sandbox import HubSpotSandbox, variant
from crm_sandbox.connection import sandbox_connection
from engagements.models import ChecklistItem, CheckpointStatus, GateCheckpoint
from engineering import apply, services
from engineering.models import ApplyStatus, StepStatus
from tests.crm_connectors.test_audit import make_engagement
from tests.engineering.test_spec import globex_stages

pytestmark = pytest.mark.django_db
WRITES = ("POST", "PATCH", "PUT", "DELETE")
SIZE = 300


def portal(hs) -> dict:
    """The portal's configuration as the library reads it: every property with its options, every pipeline with
    its stages (the writes' whole surface)."""
    client = hs.client()
    out: dict = {}
    for object_type in ("contacts", "companies", "deals", "tickets"):
        props = client.crm.properties.core_api.get_all(object_type).results
        out[object_type] = {
            p.name: (p.label, p.type, [(o.value, o.label, o.hidden, o.display_order) for o in p.options or []])
            for p in props
        }
    for object_type in ("deals", "tickets"):
        out[f"{object_type}-pipelines"] = [
            (p.id, p.label, [(s.id, s.label, s.display_order, dict(s.metadata or {})) for s in p.stages])
            for p in client.crm.pipelines.pipelines_api.get_all(object_type).results
        ]
    return out


def writes(hs) -> int:
    return sum(hs.extensions[0].by_method[m] for m in WRITES)


def approved_plan(cast, hs, stages="globex"):
    """Generate the spec (on the Globex mapping, on the playbook's stages in their usual homes, or on the stages
    given), give every retired or unlisted value a target (so nothing is held back), approve it and plan it."""
    mapped = {"globex": globex_stages(), "usual homes": None}
    engagement = make_engagement(cast, mapped[stages] if isinstance(stages, str) else stages)
    sandbox_connection(client=cast.client, sandbox=hs, actor=cast.owner)
    spec = services.generate(engagement=engagement, actor=cast.consultant)
    moved_off = ("retire", "unlisted")
    for f in spec.document["fields"]:
        kept = [v["value"] for v in f["values"] if v["action"] not in moved_off and not (v["closed"] and not v["won"])]
        for v in f["values"]:
            if v["action"] in moved_off and not v["maps_to"]:
                services.annotate(spec=spec, item=v["id"], attribute="maps_to", value=kept[0], actor=cast.consultant)
    spec.refresh_from_db()
    services.approve(spec=spec, actor=cast.owner)
    plan = services.make_plan(spec=spec, actor=cast.consultant)
    assert plan.operations and not plan.held
    return engagement, plan


def act(cast, plan, action, capture, actor=None, confirmation="Lifecycle rebuild"):
    with capture(execute=True):
        apply.request(plan=plan, action=action, actor=actor or cast.owner, confirmation=confirmation)
    return apply.run_of(plan)


def steps(run) -> list:
    return list(run.steps.order_by("position"))


def test_dry_run_apply_verify_reapply_undo(cast, crm_sandbox_settings, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    with HubSpotSandbox(profile="demo", seed=3, size=SIZE) as hs:
        engagement, plan = approved_plan(cast, hs)
        original = portal(hs)
        n = len(plan.operations)

        with pytest.raises(DomainError, match="Only an owner"):
            apply.request(plan=plan, action="dry_run", actor=cast.consultant)
        with pytest.raises(DomainError, match="dry run first"):
            act(cast, plan, "apply", capture)
        before = writes(hs)
        run = act(cast, plan, "dry_run", capture)
        assert writes(hs) == before  # not one POST, PATCH, PUT or DELETE reached the portal
        assert run.status == ApplyStatus.DRY_RUN_DONE and run.write_allowed is True and not run.refusal
        assert {s.status for s in steps(run)} <= {StepStatus.WOULD_CHANGE, StepStatus.UNCHANGED}
        would = sum(s.status == StepStatus.WOULD_CHANGE for s in steps(run))
        assert would > 0 and f"{would} of {n} operations would change" in run.outcome
        assert portal(hs) == original

        with pytest.raises(DomainError, match="Type the engagement's name"):
            act(cast, plan, "apply", capture, confirmation="yes")
        run = act(cast, plan, "apply", capture)
        assert run.status == ApplyStatus.APPLIED, run.outcome
        assert run.writes == writes(hs) - before == would
        applied = [s for s in steps(run) if s.status == StepStatus.APPLIED]
        assert len(applied) == would and all(apply.matches(s.after, s.op["target"]) for s in applied)
        assert all(s.prior == s.op["prior"] for s in applied)  # read just before the write: what the plan saw

        plan.spec.refresh_from_db()
        checks = services.verify(spec=plan.spec, actor=cast.owner)
        assert [(c.key, c.differences) for c in checks if not c.passed] == []
        checkpoint = GateCheckpoint.objects.for_org(cast.org).get(
            gate__engagement=engagement, key="matches-architecture"
        )
        assert checkpoint.status == CheckpointStatus.CHECKED
        keys = ("stage-values-appear", "probability-weightings", "drop-off-required")
        items = ChecklistItem.objects.for_org(cast.org).filter(engagement=engagement, key__in=keys)
        assert {i.key: i.done for i in items} == dict.fromkeys(keys, True)

        before = writes(hs)
        run = act(cast, plan, "apply", capture)
        assert run.status == ApplyStatus.APPLIED and writes(hs) == before and run.writes == 0
        assert "no write was sent" in run.outcome

        run = act(cast, plan, "undo", capture, confirmation=cast.client.name)
        assert run.status == ApplyStatus.UNDONE, run.outcome
        assert run.writes == would
        assert portal(hs) == original

    entries = ActivityEntry.objects.for_org(cast.org).filter(verb__startswith="crm_apply.").order_by("created_at", "id")
    verbs = list(entries.values_list("verb", "data"))
    assert [v for v, _ in verbs if not v.endswith("_requested")] == [
        "crm_apply.dry_run",
        "crm_apply.applied",
        "crm_apply.applied",
        "crm_apply.undone",
    ]
    assert [d["writes"] for v, d in verbs if v in ("crm_apply.applied", "crm_apply.undone")] == [would, 0, would]


def test_a_fault_on_the_third_write_resumes_and_undoes(cast, crm_sandbox_settings, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    crm_sandbox_settings.CRM_MAX_RETRIES = 0  # the 5xx is not retried: the fault fires once
    with HubSpotSandbox(profile="demo", seed=3, size=SIZE) as hs:
        _, plan = approved_plan(cast, hs, stages="usual homes")  # the sales stages are new on the deal pipeline
        original = portal(hs)
        created = [op for op in plan.operations if op["kind"] == "create_pipeline_stage"]
        assert [(op["label"], op["probability"]) for op in created][:2] == [("SQL", 25), ("SAO", 50)]
        act(cast, plan, "dry_run", capture)
        hs.inject("server_error", method="WRITE", skip=2, count=1, status=503)

        run = act(cast, plan, "apply", capture)

        assert run.status == ApplyStatus.PARTIAL
        done = [s for s in steps(run) if s.status == StepStatus.APPLIED]
        failed = next(s for s in steps(run) if s.status == StepStatus.FAILED)
        assert len(done) == 2 and failed.error and failed.after is None
        remaining = len(steps(run)) - 2 - sum(s.status == StepStatus.UNCHANGED for s in steps(run))
        assert f"Step {failed.position} of {len(plan.operations)} failed" in run.outcome
        assert f"Resume applies the remaining {remaining} operations; Undo restores the 2 applied." in run.outcome

        run = act(cast, plan, "apply", capture)  # resume
        assert run.status == ApplyStatus.APPLIED and run.writes == remaining, run.outcome
        stages = {label: meta for _, _, listed in portal(hs)["deals-pipelines"] for _, label, _, meta in listed}
        assert stages["SQL"] == {"probability": "0.25", "isClosed": "false"}  # as HubSpot spells it

        run = act(cast, plan, "undo", capture)
        assert run.status == ApplyStatus.UNDONE, run.outcome
        assert portal(hs) == original


def test_read_only_token_and_a_changed_crm_are_refused(
    cast, client, crm_sandbox_settings, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    with HubSpotSandbox(profile=variant("demo", "read-only", read_only=True), seed=3, size=SIZE) as hs:
        engagement, plan = approved_plan(cast, hs)
        page_url = reverse("engineering:plan", args=[cast.org.slug, engagement.uuid])
        apply_url = reverse("engineering:plan-apply", args=[cast.org.slug, engagement.uuid])
        client.force_login(cast.consultant)  # a consultant sees the plan, no apply button; the server refuses too
        page = client.get(page_url).content.decode()
        assert "Compare" in page and "Dry run" not in page and "Only an owner" in page
        client.post(apply_url, {"spec": "1", "action": "dry_run"})
        assert apply.run_of(plan).status == ApplyStatus.PLANNED

        client.force_login(cast.owner)
        with capture(execute=True):
            client.post(apply_url, {"spec": "1", "action": "dry_run"})
        run = apply.run_of(plan)
        assert run.status == ApplyStatus.DRY_RUN_DONE and run.write_allowed is False
        assert "lacks the scopes crm.schemas.contacts.write" in run.refusal
        page = client.get(page_url).content.decode()
        assert "Apply is refused" in page and "crm.objects.deals.write" in page
        before = writes(hs)
        run = act(cast, plan, "apply", capture)
        assert run.status == ApplyStatus.FAILED and "may read the CRM but not change" in run.outcome
        assert writes(hs) == before

    with HubSpotSandbox(profile="demo", seed=4, size=SIZE) as hs:
        engagement = make_engagement(cast, globex_stages(), name="Second rebuild")
        sandbox_connection(client=cast.client, sandbox=hs, actor=cast.owner)
        spec = services.generate(engagement=engagement, actor=cast.consultant)
        plan = services.make_plan(spec=spec, actor=cast.consultant)
        act(cast, plan, "dry_run", capture)
        hs.client().crm.properties.core_api.update(
            "contacts", "hs_lead_status", PropertyUpdate(label="Lead status (renamed by the client)")
        )
        before = writes(hs)
        run = act(cast, plan, "apply", capture, confirmation="Second rebuild")
        assert run.status == ApplyStatus.FAILED
        assert run.outcome == "The CRM changed since this plan was made: make a new plan."
        assert writes(hs) == before


def test_a_second_plan_for_the_same_crm_waits_for_the_first(
    cast, crm_sandbox_settings, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    with HubSpotSandbox(profile="demo", seed=3, size=SIZE) as hs:
        _, first = approved_plan(cast, hs)
        second = services.make_plan(spec=first.spec, actor=cast.consultant)
        act(cast, first, "dry_run", capture)
        act(cast, second, "dry_run", capture)
        with capture(execute=False):  # the first plan's apply is queued, no worker has it yet
            apply.request(plan=first, action="apply", actor=cast.owner, confirmation="Lifecycle rebuild")
        before = writes(hs)
        with pytest.raises(DomainError, match=r"Another plan is being written to Acme Robotics's CRM \(CRM Config"):
            apply.request(plan=second, action="apply", actor=cast.owner, confirmation="Lifecycle rebuild")
        assert apply.run_of(second).status == ApplyStatus.DRY_RUN_DONE
        first_run = apply.execute(apply.run_of(first).pk)
        assert first_run is not None and first_run.status == ApplyStatus.APPLIED
        # once the first has ended the second may go, and finds the CRM changed under it: no write of its own
        run = act(cast, second, "apply", capture)
        assert run.status == ApplyStatus.FAILED and run.outcome == apply.CHANGED
        assert writes(hs) - before == first_run.writes
