"""2d QA read from the CRM: the engineering checkpoints the CRM can decide check themselves when a verification read
finds zero drift against the approved spec, and say what still differs otherwise.

A verification is a change plan made for an approved spec (`purpose` "verify"): each operation it would still need is
a difference. Each check below reads only the differences that concern it. A check the read ticked (no person named
on it) is unticked again by a later read that finds drift; a tick or waiver a person made is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts import activity
from engagements.models import ChecklistItem, CheckpointStatus, GateCheckpoint, GateStatus

from .models import ChangePlan

STAGE_SECTIONS = {"lifecycle", "status", "pipeline", "customer", "company"}


@dataclass
class Check:
    where: str  # "checkpoint" (engineering gate) or "checklist" (2d)
    key: str
    text: str
    differences: list[str]

    @property
    def passed(self) -> bool:
        return not self.differences


def _section(document: dict, op: dict) -> str:
    return next(
        (
            f["section"]
            for f in document["fields"]
            if (f["object"], f["field"], f["pipeline"]) == (op["object"], op["field"], op["pipeline"])
        ),
        "",
    )


def _words(op: dict) -> str:
    where = f"{op['object']} {op['field']}" + (f" ({op['pipeline']})" if op["pipeline"] else "")
    what = {
        "add_value": f"{op['label']} is missing",
        "create_pipeline_stage": f"stage {op['label']} is missing",
        "create_field": "the field does not exist",
        "relabel_value": f"{op['value']} is labelled “{(op['prior'] or {}).get('label')}”, not “{op['label']}”",
        "set_probability": f"{op['label']} is at {(op['prior'] or {}).get('probability')}%, not {op['probability']}%",
        "deactivate_value": f"{op['label']} is still active",
    }[op["kind"]]
    records = f" ({op['records']} records)" if op.get("records") else ""
    return f"{where}: {what}{records}"


def checks(plan: ChangePlan) -> list[Check]:
    document = plan.spec.document
    ops = [*plan.operations, *plan.held]
    in_sections = [(op, _section(document, op)) for op in ops]
    return [
        Check(
            "checkpoint",
            "matches-architecture",
            "CRM configuration matches the approved lifecycle architecture",
            [_words(op) for op in ops] + list(plan.unreadable),
        ),
        Check(
            "checklist",
            "stage-values-appear",
            "All lifecycle stage values appear correctly in the CRM",
            [_words(op) for op, s in in_sections if s in STAGE_SECTIONS and op["kind"] != "set_probability"],
        ),
        Check(
            "checklist",
            "probability-weightings",
            "Pipeline stages have correct probability weightings",
            [_words(op) for op in ops if op["kind"] in ("set_probability", "create_pipeline_stage")],
        ),
        Check(
            "checklist",
            "drop-off-required",
            "Drop-off reason fields appear",
            [_words(op) for op, s in in_sections if s == "drop_off"],
        ),
    ]


@transaction.atomic
def settle(plan: ChangePlan, *, actor=None, request=None) -> list[Check]:
    """Tick the checks the read passed, untick the ones it ticked before and now fail; record the verification."""
    engagement = plan.spec.engagement
    org, now = engagement.organization_id, timezone.now()
    results = checks(plan)
    for check in results:
        if check.where == "checkpoint":
            rows = GateCheckpoint.objects.for_org(org).filter(
                gate__engagement=engagement, key=check.key, gate__status__in=[GateStatus.OPEN, GateStatus.PENDING]
            )
            if check.passed:
                rows.filter(status=CheckpointStatus.OPEN).update(
                    status=CheckpointStatus.CHECKED, resolved_by=None, resolved_at=now
                )
            else:
                rows.filter(status=CheckpointStatus.CHECKED, resolved_by=None).update(
                    status=CheckpointStatus.OPEN, resolved_at=None
                )
        else:
            items = ChecklistItem.objects.for_org(org).filter(engagement=engagement, key=check.key)
            if check.passed:
                items.filter(done=False).update(done=True, done_by=None, done_at=now)
            else:
                items.filter(done=True, done_by=None).update(done=False, done_at=None)
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=plan.spec,
        verb="crm_spec.verified",
        data={"drift": plan.drift, "passed": [c.key for c in results if c.passed]},
    )
    return results
