"""Applying a change plan to the CRM, safely: a dry run first, then apply (resumable), and undo.

Every action is asked for by an owner (`request`: typed confirmation for apply and undo) and runs on the CRM queue
(`execute`, through the run lifecycle). The engine calls only the connector's configuration-write interface
(`write_access`, `config_state`, `write_config`: crm_connectors.base), so every CRM that implements it plugs in.

- A dry run reads the state of every operation's value, stage or field and the connection's write access, reports
  what would change, and sends no write.
- Apply refuses without write access (the reason in words), when the spec was adjusted after the plan, and when the
  CRM's metadata is neither what the plan read nor what our own last write left ("the CRM changed since this plan
  was made: make a new plan"). Then, operation by operation: read the state; skip it when it already is the target
  (so applying twice changes nothing); record the prior state (the first read only: what undo restores); write the
  target; read the state after. A failure stops the run `partial` with the failed step, its error and the next step
  in words; applying again resumes.
- Undo restores the recorded prior states in reverse order, one operation at a time.
- One plan writes to a client's CRM at a time: an apply or undo asked while another plan's is queued or running is
  refused in words. A step is saved "sent, not confirmed" before its write, so a worker killed during the write
  leaves a step that resume (it finds the write done and does not send it again) and undo still count as ours.
Record values are never rewritten here: moving records is a separate, opt-in operation (record_moves.py).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError, Membership
from crm_connectors.base import CrmError
from crm_connectors.crypto import SecretUnreadable
from crm_connectors.mapping import ConnectorCatalog, norm
from engagements.models import ClientAccount
from gtm_ops.runs import requeue

from . import spec as specs
from .models import (
    APPLIES,
    DRY_RUNS,
    LIFECYCLES,
    UNDOS,
    ApplyRun,
    ApplyStatus,
    ApplyStep,
    ChangePlan,
    StepStatus,
)

logger = logging.getLogger(__name__)
S = ApplyStatus
ACTIONS: dict[str, str] = {"dry_run": S.DRY_RUN_QUEUED, "apply": S.APPLY_QUEUED, "undo": S.UNDO_QUEUED}
CHANGED = "The CRM changed since this plan was made: make a new plan."
ADJUSTED = "The spec was adjusted after this plan was made: make a new plan."
# A plan in these writes to its client's CRM: no other plan may apply or undo meanwhile.
WRITING_STATUSES = (S.APPLY_QUEUED, S.APPLYING, S.UNDO_QUEUED, S.UNDOING)
# Steps a write of this plan may have reached the CRM for: their prior state is ours to keep and to restore.
WRITTEN = (StepStatus.APPLIED, StepStatus.FAILED, StepStatus.WRITING)


def matches(state: dict[str, Any] | None, wanted: dict[str, Any] | None) -> bool:
    """Whether the CRM's state already is `wanted`: a field holds every wanted value; a value or stage has the label
    and active flag (and the probability, where one is wanted); a value gone from the CRM counts as retired."""
    if wanted is None or state is None:
        return state is wanted or (wanted is not None and wanted.get("active") is False)
    if "values" in wanted:
        have = {norm(v) for v in state.get("values") or []}
        return state.get("type") == wanted.get("type") and all(norm(v) in have for v in wanted["values"])
    return (
        state.get("label") == wanted.get("label")
        and state.get("active") == wanted.get("active")
        and (wanted.get("probability") is None or state.get("probability") == wanted["probability"])
    )


def describe(op: dict[str, Any]) -> str:
    where = f"{op['object']} {op['field']}" + (f" ({op['pipeline']})" if op.get("pipeline") else "")
    what = op["kind"].replace("_", " ")
    return f"{what} {op.get('label') or op.get('value') or ''} on {where}".replace("  ", " ")


# ---------------------------------------------------------------- asking


def run_of(plan: ChangePlan) -> ApplyRun:
    """The plan's apply run, made with one step per operation the first time it is asked for."""
    with transaction.atomic():
        run, created = ApplyRun.objects.for_org(plan.organization_id).get_or_create(
            plan=plan, defaults={"organization_id": plan.organization_id}
        )
        if created:
            ApplyStep.objects.bulk_create(
                ApplyStep(organization_id=plan.organization_id, run=run, position=n, op=op)
                for n, op in enumerate(plan.operations, start=1)
            )
    return run


def request(*, plan: ChangePlan, action: str, actor, confirmation: str = "", request=None) -> ApplyRun:
    """Queue a dry run, an apply (a resume, a re-apply) or an undo of the plan. Refused in words: not an owner,
    the typed confirmation does not name the engagement or the client, or the plan's state does not allow it."""
    if action not in ACTIONS:
        raise DomainError(f"Unknown action {action!r}: dry_run, apply or undo.")
    engagement = plan.spec.engagement
    if not Membership.objects.for_org(plan.organization_id).owners().filter(user=actor).exists():
        raise DomainError("Only an owner of the organization may change the client's CRM.")
    if plan.purpose != "plan":
        raise DomainError("A verification read is not a plan: make a plan to apply.")
    if action != "dry_run":
        typed = norm(confirmation)
        if not typed or typed not in {norm(engagement.name), norm(engagement.client.name)}:
            raise DomainError(
                f"Type the engagement's name ({engagement.name}) or the client's ({engagement.client.name}) to "
                f"confirm the {'undo' if action == 'undo' else 'apply'}."
            )
    target = ACTIONS[action]

    def check(run: ApplyRun) -> None:
        if not run.can_become(target):
            first = " Run a dry run first." if run.status == S.PLANNED and action == "apply" else ""
            raise DomainError(
                f"The plan is {run.get_status_display().lower()}: a {action.replace('_', ' ')} is not possible "
                f"now.{first}"
            )
        if target != S.DRY_RUN_QUEUED:
            _one_writer(run, engagement)

    rows, pk = ApplyRun.objects.for_org(plan.organization_id), run_of(plan).pk
    with transaction.atomic():
        # one writer per client's CRM: a second plan's apply or undo waits for this lock, then sees the first
        ClientAccount.objects.for_org(plan.organization_id).select_for_update().filter(pk=engagement.client_id).first()
        run = requeue(rows, pk, target, check=check, dispatch=_dispatch, requested_by=actor, outcome="")
        activity.record(
            organization=engagement.organization,
            actor=actor,
            request=request,
            target=plan.spec,
            verb=f"crm_apply.{action}_requested",
            data={"plan": str(plan.uuid), "operations": len(plan.operations)},
        )
    run.refresh_from_db()
    return run


def _one_writer(run: ApplyRun, engagement) -> None:
    """Refuse a write while another plan writes to the same client's CRM: two plans interleaved would leave a CRM
    neither describes, and each one's undo would restore states the other changed."""
    other = (
        ApplyRun.objects.for_org(run.organization_id)
        .filter(plan__spec__engagement__client_id=engagement.client_id, status__in=WRITING_STATUSES)
        .exclude(pk=run.pk)
        .select_related("plan__spec__engagement")
        .first()
    )
    if other is not None:
        spec = other.plan.spec
        raise DomainError(
            f"Another plan is being written to {engagement.client}'s CRM ({spec} of {spec.engagement.name}: "
            f"{other.get_status_display().lower()}). Wait until it ends, then make a new plan: the CRM will have "
            "changed."
        )


def _dispatch(pk: int) -> None:
    from .tasks import queued, run_apply  # the task module imports this one

    queued(run_apply, pk)


# ---------------------------------------------------------------- working


def execute(run_id: int, *, connector_options: dict[str, Any] | None = None) -> ApplyRun | None:
    """The worker's side: claim the queued action and run it. None when there is nothing to claim."""
    status = ApplyRun.objects.for_task(run_id).values_list("status", flat=True).first()
    lifecycle = LIFECYCLES.get(status or "")
    if lifecycle is None:
        return None
    token = lifecycle.claim(run_id, writes=0, calls=0)
    if token is None:
        return None
    run = (
        ApplyRun.objects.for_task(run_id)
        .select_related("plan__spec__engagement__client", "plan__spec__engagement__organization", "requested_by")
        .get()
    )
    work = {DRY_RUNS: _dry_run, APPLIES: _apply, UNDOS: _undo}[lifecycle]
    try:
        with lifecycle.beating(run_id, token):
            work(run, token, connector_options or {})
    except Exception as exc:  # a bug must not leave the run running: say so on the row
        logger.exception("Apply run %s failed", run_id)
        _settle(run, token, lifecycle, f"GTM Ops could not finish the {lifecycle.name} ({type(exc).__name__}).")
    run.refresh_from_db()
    return run


def _steps(run: ApplyRun) -> list[ApplyStep]:
    return list(ApplyStep.objects.for_org(run.organization_id).filter(run=run).order_by("position"))


def _settled_status(steps: list[ApplyStep]) -> str:
    """Where an apply that stopped leaves the plan: nothing changed, all of it, or part of it."""
    done = [s for s in steps if s.status in (StepStatus.APPLIED, StepStatus.UNCHANGED)]
    if not any(s.status == StepStatus.APPLIED for s in steps) and len(done) < len(steps):
        return S.FAILED
    return S.APPLIED if len(done) == len(steps) else S.PARTIAL


def _settle(run: ApplyRun, token: str, lifecycle, reason: str, **fields: Any) -> None:
    status: str
    if lifecycle is DRY_RUNS:
        status = S.PLANNED
    elif lifecycle is UNDOS:
        status = S.UNDO_PARTIAL
    else:
        status = _settled_status(_steps(run))
    lifecycle.finish(run.pk, token, status, reason, **fields)


def _connector(run: ApplyRun, options: dict[str, Any]):
    from .services import connection_of

    connection = connection_of(run.plan.spec.engagement)
    if connection is None:
        raise DomainError(f"{run.plan.spec.engagement.client} has no CRM connection with credentials.")
    return connection.connector(**options)


def _stale(run: ApplyRun, connector) -> str:
    """Why the plan no longer fits the CRM, or "": the spec was adjusted, or the metadata is neither what the plan
    read nor what our own last write left (nor, after a worker stopped mid-apply, explained by this plan)."""
    plan = run.plan
    if plan.spec_sha256 != plan.spec.sha256:
        return ADJUSTED
    now = specs.digest(specs.metadata(ConnectorCatalog(connector)))
    if now in {plan.metadata_hash, run.metadata_after} or _left_by_us(run, connector):
        return ""
    return CHANGED


def _left_by_us(run: ApplyRun, connector) -> bool:
    """A worker that stopped mid-apply never recorded the metadata its writes left: the CRM still fits the plan when
    every operation's value is as the plan found it or as this plan set it, read operation by operation."""
    steps = _steps(run)
    if not any(s.status in WRITTEN for s in steps):
        return False
    for s in steps:
        state = connector.config_state(s.op)
        found = s.prior if s.prior_read else s.op["prior"]
        if not (matches(state, s.op["target"]) or (s.status != StepStatus.APPLIED and matches(state, found))):
            return False
    return True


def _log(run: ApplyRun, verb: str, **data: Any) -> None:
    activity.record(
        organization=run.plan.spec.engagement.organization,
        actor=run.requested_by,
        target=run.plan.spec,
        verb=verb,
        data={"plan": str(run.plan.uuid), **data},
    )


def _dry_run(run: ApplyRun, token: str, options: dict[str, Any]) -> None:
    steps = _steps(run)
    try:
        with _connector(run, options) as connector:
            access = connector.write_access()
            stale = _stale(run, connector)
            for step in steps:
                state = connector.config_state(step.op)
                step.status = StepStatus.UNCHANGED if matches(state, step.op["target"]) else StepStatus.WOULD_CHANGE
                step.prior, step.prior_read, step.after, step.error, step.written_at = state, True, None, "", None
            calls = connector.calls_spent
    except (CrmError, SecretUnreadable, DomainError) as exc:
        DRY_RUNS.finish(run.pk, token, S.PLANNED, f"The dry run could not read the CRM: {exc}")
        return
    with transaction.atomic():
        ApplyStep.objects.bulk_update(steps, ["status", "prior", "prior_read", "after", "error", "written_at"])
        would = sum(s.status == StepStatus.WOULD_CHANGE for s in steps)
        refusal = access.reason if not access.allowed else stale
        outcome = (
            f"Dry run: {would} of {len(steps)} operations would change the CRM, {len(steps) - would} already match. "
            "No write was sent."
        )
        if refusal:
            outcome += f" Apply would be refused: {refusal}"
        DRY_RUNS.finish(
            run.pk, token, S.DRY_RUN_DONE, outcome, write_allowed=access.allowed, refusal=refusal, calls=calls
        )
        _log(run, "crm_apply.dry_run", would_change=would, operations=len(steps), refused=bool(refusal))


def _apply(run: ApplyRun, token: str, options: dict[str, Any]) -> None:
    steps, writes = _steps(run), 0
    failed: ApplyStep | None = None
    try:
        with _connector(run, options) as connector:
            access = connector.write_access()
            refusal = access.reason if not access.allowed else _stale(run, connector)
            if refusal:
                _settle(run, token, APPLIES, refusal, write_allowed=access.allowed, refusal=refusal)
                _log(run, "crm_apply.refused", reason=refusal)
                return
            for step in steps:
                if not _apply_step(connector, step):
                    if step.status == StepStatus.FAILED:
                        failed = step
                        break
                    continue
                writes += 1
                APPLIES.held(run.pk, token).update(writes=writes, lease_until=APPLIES.lease())
            try:
                after = specs.digest(specs.metadata(ConnectorCatalog(connector)))
            except CrmError:  # the CRM went away after the writes: a resume re-reads it and may ask for a new plan
                after = run.metadata_after
            calls = connector.calls_spent
    except (CrmError, SecretUnreadable, DomainError) as exc:
        _settle(run, token, APPLIES, f"The CRM could not be read before applying: {exc}")
        return
    status = _settled_status(steps)
    applied = sum(s.status == StepStatus.APPLIED for s in steps)
    unchanged = sum(s.status == StepStatus.UNCHANGED for s in steps)
    if failed is not None:
        remaining = len(steps) - applied - unchanged
        outcome = f"Step {failed.position} of {len(steps)} failed ({describe(failed.op)}): {failed.error} "
        outcome += (
            f"Resume applies the remaining {remaining} operation{'s' if remaining != 1 else ''}; "
            f"Undo restores the {applied} applied."
            if applied
            else "Nothing was changed: apply again once the cause is fixed."
        )
    elif writes:
        outcome = (
            f"Applied: {writes} write{'s' if writes != 1 else ''}; {applied} operations applied, {unchanged} already "
            "matched."
        )
    else:
        outcome = f"Applied again: all {len(steps)} operations already matched the plan, no write was sent."
    APPLIES.finish(
        run.pk, token, status, outcome, writes=writes, calls=calls, metadata_after=after, write_allowed=True, refusal=""
    )
    _log(
        run,
        {
            S.APPLIED.value: "crm_apply.applied",
            S.PARTIAL.value: "crm_apply.partial",
            S.FAILED.value: "crm_apply.failed",
        }[status],
        writes=writes,
        applied=applied,
        unchanged=unchanged,
        failed=failed.position if failed is not None else None,
    )


def _apply_step(connector, step: ApplyStep) -> bool:
    """One operation: True when it wrote. A CRM error marks the step failed with the error in words."""
    target = step.op["target"]
    try:
        state = connector.config_state(step.op)
        if not step.prior_read or step.status not in WRITTEN:
            step.prior, step.prior_read = state, True  # the state before our first write: what undo restores
        if matches(state, target):
            # ours when an earlier write of this plan made it so (a failed write that went through, or one whose
            # worker was killed before it heard back, included)
            ours = step.status in WRITTEN and not matches(step.prior, target)
            step.status, step.error = (StepStatus.APPLIED if ours else StepStatus.UNCHANGED), ""
            step.save(update_fields=["status", "prior", "prior_read", "error"])
            return False
        # saved before the write: a worker killed during it leaves a step that resume and undo know may be ours
        step.status = StepStatus.WRITING
        step.save(update_fields=["status", "prior", "prior_read"])
        connector.write_config(step.op, target)
        step.after = connector.config_state(step.op)
    except CrmError as exc:
        step.status, step.error = StepStatus.FAILED, str(exc)
        step.save(update_fields=["status", "prior", "prior_read", "error"])
        return False
    step.status, step.error, step.written_at = StepStatus.APPLIED, "", timezone.now()
    step.save(update_fields=["status", "prior", "prior_read", "after", "error", "written_at"])
    return True


def _undo(run: ApplyRun, token: str, options: dict[str, Any]) -> None:
    steps = _steps(run)
    todo = [s for s in reversed(steps) if s.prior_read and s.status in WRITTEN]
    writes, stopped = 0, None
    try:
        with _connector(run, options) as connector:
            access = connector.write_access()
            if not access.allowed:
                UNDOS.finish(run.pk, token, S.UNDO_PARTIAL, f"Undo refused: {access.reason}", write_allowed=False)
                _log(run, "crm_apply.refused", reason=access.reason)
                return
            for step in todo:
                try:
                    if not matches(connector.config_state(step.op), step.prior):
                        connector.write_config(step.op, step.prior)
                        writes += 1
                    step.after = connector.config_state(step.op)
                except CrmError as exc:
                    step.error, stopped = str(exc), step
                    step.save(update_fields=["error"])
                    break
                step.status, step.error, step.written_at = StepStatus.UNDONE, "", timezone.now()
                step.save(update_fields=["status", "after", "error", "written_at"])
                UNDOS.held(run.pk, token).update(writes=writes, lease_until=UNDOS.lease())
            calls = connector.calls_spent
    except (CrmError, SecretUnreadable, DomainError) as exc:
        UNDOS.finish(run.pk, token, S.UNDO_PARTIAL, f"The CRM could not be read before undoing: {exc}")
        return
    undone = sum(s.status == StepStatus.UNDONE for s in todo)
    if stopped is not None:
        left = len(todo) - undone
        outcome = (
            f"Undo stopped at step {stopped.position} ({describe(stopped.op)}): {stopped.error} "
            f"Undo again restores the remaining {left}."
        )
    else:
        outcome = f"Undone: {writes} write{'s' if writes != 1 else ''} restored the prior state of {undone} operations."
    status = S.UNDO_PARTIAL if stopped is not None else S.UNDONE
    UNDOS.finish(run.pk, token, status, outcome, writes=writes, calls=calls, metadata_after="")
    _log(run, "crm_apply.undone" if stopped is None else "crm_apply.undo_partial", writes=writes, undone=undone)
