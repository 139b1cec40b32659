"""Moving records off retired values onto their mapped signed values: separate from apply, opt-in, counted first.

Apply never rewrites a record (engineering/apply.py). An owner may, after it, move the records that still hold a
retired value to the value the spec maps it to: only deactivate_value operations with a mapping target, and only
once apply has run that operation (its step applied, or the value was inactive already). After, not before: the
mapping target may be a value the same apply adds, and records moved first would land on a value the CRM lacks.
Records on values no option lists (the plan's `unlisted`, each with the target the spec names) move the same way,
once apply has run every operation of the plan (there is nothing of theirs to retire; their target may be new).

- `request` asks for a count (the dry run, the default) or a move. A move is refused unless the owner ticked
  "move records off retired values" and typed the client's name, and the records were counted first.
- A count reads the ids of the records holding each retired value through the connector and writes nothing.
- A move finds the records again (what was counted may have changed), sends them to the mapped value (HubSpot
  batch update, Salesforce Bulk API 2.0), records how many moved per value and stops at the first failure, in
  words; moving again picks up the records still on the retired value.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from accounts import activity
from accounts.models import DomainError, Membership
from crm_connectors.base import CrmError
from crm_connectors.crypto import SecretUnreadable
from crm_connectors.mapping import norm
from gtm_ops.runs import requeue

from .models import MOVE_COUNTS, MOVE_LIFECYCLES, MOVES, ApplyStep, ChangePlan, MoveStatus, RecordMove, StepStatus

logger = logging.getLogger(__name__)
M = MoveStatus
ACTIONS = {"count": M.COUNT_QUEUED, "move": M.MOVE_QUEUED}
MOST = 10_000  # records per retired value a move handles in one run: larger moves are moved again


def movable(plan: ChangePlan) -> list[dict[str, Any]]:
    """The plan's operations whose records can move: a value retired with a mapping target, and the values no
    option lists that have one."""
    retired = [op for op in plan.operations if op["kind"] == "deactivate_value" and op.get("mapping")]
    return retired + [op for op in plan.unlisted if op.get("mapping")]


def move_of(plan: ChangePlan) -> RecordMove:
    entries = [
        {
            "op": op["id"],
            "object": op["object"],
            "field": op["field"],
            "pipeline": op["pipeline"],
            "value": op["value"],
            "label": op["label"],
            "mapping": op["mapping"],
            "planned": op["records"],
            "counted": None,
            "moved": None,
            "error": "",
        }
        for op in movable(plan)
    ]
    run, _ = RecordMove.objects.for_org(plan.organization_id).get_or_create(
        plan=plan, defaults={"organization_id": plan.organization_id, "moves": entries}
    )
    return run


def request(*, plan: ChangePlan, action: str, actor, opted_in: bool = False, confirmation: str = "", request=None):
    """Queue a count (the default) or a move. Refused in words: not an owner, nothing to move, a move not opted
    into or not confirmed by the client's name, or a state that does not allow it."""
    if action not in ACTIONS:
        raise DomainError(f"Unknown action {action!r}: count or move.")
    if not Membership.objects.for_org(plan.organization_id).owners().filter(user=actor).exists():
        raise DomainError("Only an owner of the organization may move the client's CRM records.")
    if not movable(plan):
        raise DomainError("This plan retires no value with a mapping target: there are no records to move.")
    client = plan.spec.engagement.client
    if action == "move":
        if not opted_in:
            raise DomainError("Tick “Move records off retired values” to move records: the CRM's records change.")
        if not norm(confirmation) or norm(confirmation) != norm(client.name):
            raise DomainError(f"Type the client's name ({client.name}) to confirm the move.")
    target = ACTIONS[action]

    def check(run: RecordMove) -> None:
        if not run.can_become(target):
            first = " Count the records first." if action == "move" and run.status == M.PLANNED else ""
            raise DomainError(
                f"The record move is {run.get_status_display().lower()}: a {action} is not possible now.{first}"
            )

    rows, pk = RecordMove.objects.for_org(plan.organization_id), move_of(plan).pk
    with transaction.atomic():
        run = requeue(rows, pk, target, check=check, dispatch=_dispatch, requested_by=actor, outcome="")
        activity.record(
            organization=plan.spec.engagement.organization,
            actor=actor,
            request=request,
            target=plan.spec,
            verb=f"crm_records.{action}_requested",
            data={"plan": str(plan.uuid), "values": len(run.moves)},
        )
    run.refresh_from_db()
    return run


def _dispatch(pk: int) -> None:
    from .tasks import queued, run_record_move

    queued(run_record_move, pk)


def execute(run_id: int, *, connector_options: dict[str, Any] | None = None) -> RecordMove | None:
    """The worker's side: claim the queued count or move and run it."""
    status = RecordMove.objects.for_task(run_id).values_list("status", flat=True).first()
    lifecycle = MOVE_LIFECYCLES.get(status or "")
    if lifecycle is None:
        return None
    token = lifecycle.claim(run_id, writes=0)
    if token is None:
        return None
    run = RecordMove.objects.for_task(run_id).select_related("plan__spec__engagement__organization").get()
    try:
        with lifecycle.beating(run_id, token):
            (_count if lifecycle is MOVE_COUNTS else _move)(run, token, connector_options or {})
    except Exception as exc:  # a bug must not leave the run running: say so on the row
        logger.exception("Record move %s failed", run_id)
        lifecycle.finish(
            run_id, token, lifecycle.failed, f"GTM Ops could not finish the {lifecycle.name} ({type(exc).__name__})."
        )
    run.refresh_from_db()
    return run


def _connector(run: RecordMove, options: dict[str, Any]):
    from .services import connection_of

    connection = connection_of(run.plan.spec.engagement)
    if connection is None:
        raise DomainError(f"{run.plan.spec.engagement.client} has no CRM connection with credentials.")
    return connection.connector(**options)


def _applied(run: RecordMove) -> set[str]:
    """The moves apply has made ready: a retired value's once its step applied (or the value was inactive already);
    an unlisted value's once every operation of the plan has (its target may be a value apply adds)."""
    done = ApplyStep.objects.for_org(run.organization_id).filter(
        run__plan=run.plan, status__in=(StepStatus.APPLIED, StepStatus.UNCHANGED)
    )
    ready = {s.op["id"] for s in done}
    if len(ready) == len(run.plan.operations):
        ready |= {op["id"] for op in run.plan.unlisted}
    return ready


def _ids(connector, entry: dict[str, Any]) -> list[str]:
    return connector.records_holding(entry["object"], entry["field"], entry["value"], entry["pipeline"], MOST)


def _words(entry: dict[str, Any], n: int) -> str:
    return f"{entry['label']} → {entry['mapping']}: {n} record{'s' if n != 1 else ''}"


def _log(run: RecordMove, verb: str, **data: Any) -> None:
    activity.record(
        organization=run.plan.spec.engagement.organization,
        actor=run.requested_by,
        target=run.plan.spec,
        verb=verb,
        data={"plan": str(run.plan.uuid), **data},
    )


def _count(run: RecordMove, token: str, options: dict[str, Any]) -> None:
    entries = [dict(e) for e in run.moves]
    try:
        with _connector(run, options) as connector:
            for entry in entries:
                entry["counted"], entry["error"] = len(_ids(connector, entry)), ""
    except (CrmError, SecretUnreadable, DomainError) as exc:
        MOVE_COUNTS.finish(run.pk, token, M.PLANNED, f"The records could not be counted: {exc}")
        return
    applied = _applied(run)
    waiting = [e for e in entries if e["op"] not in applied]
    total = sum(e["counted"] for e in entries)
    outcome = f"Count: {total} records would move ({'; '.join(_words(e, e['counted']) for e in entries)}). "
    outcome += "No record was changed."
    if waiting:
        outcome += f" {len(waiting)} of these values wait for apply: apply the plan before moving their records."
    MOVE_COUNTS.finish(run.pk, token, M.COUNTED, outcome, moves=entries)
    _log(run, "crm_records.counted", records=total, values=len(entries))


def _move(run: RecordMove, token: str, options: dict[str, Any]) -> None:
    entries = [dict(e) for e in run.moves]
    applied, moved_total, failed = _applied(run), 0, None
    try:
        with _connector(run, options) as connector:
            for entry in entries:
                if entry["op"] not in applied:
                    entry["error"] = "not moved: apply the plan first"
                    continue
                ids = _ids(connector, entry)
                try:
                    moved = connector.move_records(entry["object"], entry["field"], ids, entry["mapping"]) if ids else 0
                except CrmError as exc:
                    entry["error"], failed = str(exc), entry
                    break
                if not 0 <= moved <= len(ids):  # a count the CRM gave that cannot be true
                    entry["error"] = f"the CRM reported {moved} records moved of {len(ids)} sent: not plausible"
                    failed = entry
                    break
                entry["moved"], entry["error"] = moved, ""
                moved_total += moved
                MOVES.held(run.pk, token).update(writes=moved_total, lease_until=MOVES.lease())
    except (CrmError, SecretUnreadable, DomainError) as exc:
        MOVES.finish(
            run.pk, token, M.MOVE_PARTIAL, f"The records could not be read before moving: {exc}", moves=entries
        )
        return
    done = [e for e in entries if e["moved"] is not None and not e["error"]]
    outcome = f"Moved {moved_total} records ({'; '.join(_words(e, e['moved']) for e in done) or 'none'})."
    if failed is not None:
        outcome += f" Moving {failed['label']} failed: {failed['error']}. Move again to move the records still on it."
    skipped = [e for e in entries if e["error"].startswith("not moved")]
    if skipped:
        outcome += f" {len(skipped)} values were left: apply the plan first."
    status = M.MOVED if failed is None and not skipped else M.MOVE_PARTIAL
    MOVES.finish(run.pk, token, status, outcome, moves=entries, writes=moved_total)
    _log(
        run,
        "crm_records.moved" if status == M.MOVED else "crm_records.partial",
        moved={e["op"]: e["moved"] for e in entries},
        records=moved_total,
    )
