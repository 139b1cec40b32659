"""Apply, safely, against the Salesforce sandbox through the real simple-salesforce (Tooling API REST), on the demo's
Acme shape (the playbook's stages in their usual Salesforce homes): a dry run sends no write (counted by HTTP method
at the sandbox), apply brings the org to the spec (verify finds zero drift and ticks the 2d checks), applying again
writes nothing, undo gives back the describe as it was (read by a separate client, compared structurally); a fault on
the third write leaves a partial apply that resumes and undoes; a user without Customize Application and an org
changed after planning are refused in words."""

from __future__ import annotations

import pytest

from accounts.models import ActivityEntry
from crm_sandbox import SalesforceSandbox, variant
from engagements.models import ChecklistItem, CheckpointStatus, GateCheckpoint
from engineering import apply, services
from engineering.models import ApplyStatus, StepStatus
from tests.engineering.test_apply import act, approved_plan, steps

pytestmark = pytest.mark.django_db
WRITES = ("POST", "PATCH", "PUT", "DELETE")
SIZE = 300
OBJECTS = ("Lead", "Contact", "Account", "Opportunity", "Case")
STAGES = "SELECT ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability, SortOrder FROM OpportunityStage"
LEAD_STATUS = "SELECT Id, Metadata FROM StandardValueSet WHERE MasterLabel = 'LeadStatus'"


def org(sf) -> dict:
    """The org's configuration as a separate simple-salesforce client reads it: every picklist of the objects the
    writes touch (value, label, active, default), the custom fields, the stage rows with their probabilities and
    flags, and the stages each record type offers."""
    client = sf.client()
    out: dict = {}
    for name in OBJECTS:
        described = getattr(client, name).describe()
        out[name] = {
            f["name"]: (
                f["label"],
                f["type"],
                [(v["value"], v["label"], v["active"], v["defaultValue"]) for v in f["picklistValues"] or []],
            )
            for f in described["fields"]
        }
    out["stages"] = [{k: v for k, v in row.items() if k != "attributes"} for row in client.query_all(STAGES)["records"]]
    for name, field in (("Opportunity", "StageName"), ("Case", "Status")):
        types = client.query_all(f"SELECT Id FROM RecordType WHERE SobjectType = '{name}'")["records"]
        for rt in sorted(r["Id"] for r in types):
            values = client.restful(f"ui-api/object-info/{name}/picklist-values/{rt}/{field}")["values"]
            out[f"{name}-{rt}"] = [(v["value"], v["label"], v["attributes"]) for v in values]
    return out


def writes(sf) -> int:
    return sum(sf.by_method[m] for m in WRITES)


def acme_plan(cast, sf):
    return approved_plan(cast, sf, stages="usual homes")


def test_dry_run_apply_verify_reapply_undo(cast, crm_sandbox_settings, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    with SalesforceSandbox(profile="demo", seed=3, size=SIZE) as sf:
        engagement, plan = acme_plan(cast, sf)
        original = org(sf)
        n = len(plan.operations)

        before = writes(sf)
        run = act(cast, plan, "dry_run", capture)
        assert writes(sf) == before  # not one POST, PATCH, PUT or DELETE reached the org
        assert run.status == ApplyStatus.DRY_RUN_DONE and run.write_allowed is True and not run.refusal, run.outcome
        would = sum(s.status == StepStatus.WOULD_CHANGE for s in steps(run))
        assert would > 0 and f"{would} of {n} operations would change" in run.outcome
        assert org(sf) == original

        run = act(cast, plan, "apply", capture)
        assert run.status == ApplyStatus.APPLIED, run.outcome
        applied = [s for s in steps(run) if s.status == StepStatus.APPLIED]
        assert len(applied) == would and all(apply.matches(s.after, s.op["target"]) for s in applied)
        assert all(s.prior == s.op["prior"] for s in applied)  # read just before the write: what the plan saw
        # a stage new to Salesforce is two writes (Opportunity Stage, then the record type's process); others one
        requests = would + sum(s.op["kind"] == "create_pipeline_stage" for s in applied)
        # and a created field is granted to a permission set (one FieldPermissions each), made and assigned once
        fields = sum(s.op["kind"] == "create_field" for s in applied)
        granting = fields + (2 if fields else 0)
        assert run.writes == would and writes(sf) - before == requests + granting

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

        before = writes(sf)
        run = act(cast, plan, "apply", capture)
        assert run.status == ApplyStatus.APPLIED and writes(sf) == before and run.writes == 0, run.outcome

        run = act(cast, plan, "undo", capture, confirmation=cast.client.name)
        assert run.status == ApplyStatus.UNDONE, run.outcome
        assert run.writes == would and writes(sf) - before == requests + fields  # a field's grant goes with it
        assert org(sf) == original

    verbs = list(
        ActivityEntry.objects.for_org(cast.org)
        .filter(verb__startswith="crm_apply.")
        .exclude(verb__endswith="_requested")
        .order_by("created_at", "id")
        .values_list("verb", flat=True)
    )
    assert verbs == ["crm_apply.dry_run", "crm_apply.applied", "crm_apply.applied", "crm_apply.undone"]


def test_a_fault_on_the_third_write_resumes_undoes_and_a_changed_org_is_refused(
    cast, crm_sandbox_settings, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    with SalesforceSandbox(profile="demo", seed=3, size=SIZE) as sf:
        _, plan = acme_plan(cast, sf)
        original = org(sf)
        act(cast, plan, "dry_run", capture)
        sf.inject("rejected", path=r"/tooling/sobjects/", skip=2)  # each of the first steps is one PATCH

        run = act(cast, plan, "apply", capture)

        assert run.status == ApplyStatus.PARTIAL, run.outcome
        done = [s for s in steps(run) if s.status == StepStatus.APPLIED]
        failed = next(s for s in steps(run) if s.status == StepStatus.FAILED)
        assert len(done) == 2 and failed.position == 3 and failed.after is None
        assert "FIELD_INTEGRITY_EXCEPTION" in failed.error
        remaining = len(steps(run)) - 2 - sum(s.status == StepStatus.UNCHANGED for s in steps(run))
        assert f"Step 3 of {len(plan.operations)} failed" in run.outcome
        assert f"Resume applies the remaining {remaining} operations; Undo restores the 2 applied." in run.outcome

        # the field's create goes through but its answer is lost: the guard's retry meets DUPLICATE_DEVELOPER_NAME
        lost = sf.inject("truncated_json", path=r"/tooling/sobjects/CustomField$", method="POST")
        run = act(cast, plan, "apply", capture)  # resume
        assert run.status == ApplyStatus.APPLIED and run.writes == remaining, run.outcome
        # the field twice, then its permission set, the set's assignment and the field's grant
        assert lost.fired == 1 and sf.by_method["POST"] == 2 + 3
        stages = {row["ApiName"]: row for row in sf.client().query_all(STAGES)["records"]}
        assert [stages[s]["DefaultProbability"] for s in ("SQL", "SAO")] == [25, 50]  # the playbook's weightings

        run = act(cast, plan, "undo", capture, confirmation=cast.client.name)
        assert run.status == ApplyStatus.UNDONE, run.outcome
        assert org(sf) == original

        # the client's admin relabels a lead status after the plan was made: applying it again is refused
        client = sf.client()
        row = client.toolingexecute("query/", params={"q": LEAD_STATUS})["records"][0]
        row["Metadata"]["standardValue"][0]["label"] = "Renamed by the client"
        client.toolingexecute(
            f"sobjects/StandardValueSet/{row['Id']}", method="PATCH", data={"Metadata": row["Metadata"]}
        )
        act(cast, plan, "dry_run", capture)
        before = writes(sf)
        run = act(cast, plan, "apply", capture)
        assert run.status == ApplyStatus.FAILED and run.outcome == apply.CHANGED
        assert writes(sf) == before


def test_a_user_without_customize_application_is_refused(
    cast, crm_sandbox_settings, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    profile = variant("demo", "no-customize", withheld_permissions=frozenset({"PermissionsCustomizeApplication"}))
    with SalesforceSandbox(profile=profile, seed=3, size=SIZE) as sf:
        _, plan = acme_plan(cast, sf)
        run = act(cast, plan, "dry_run", capture)
        assert run.status == ApplyStatus.DRY_RUN_DONE and run.write_allowed is False
        assert "lacks the Customize Application permission" in run.refusal
        before = writes(sf)
        run = act(cast, plan, "apply", capture)
        assert run.status == ApplyStatus.FAILED and "lacks the Customize Application permission" in run.outcome
        assert writes(sf) == before
