"""One lifecycle for every background run (audit runs, health runs, artifact renders, email deliveries).

    queued --claim--> running --finish--> succeeded / partial / failed (or done / sent: the model's own words)
       ^                 |
       +---release-------+   (waiting for a retry: lease_until says when it is due)
       +---sweep---------+   (the lease expired: the worker died; taken back, at most `max_recoveries` times)

- `claim` is a conditional UPDATE (queued -> running, a lease, attempts + 1, a worker token): of two workers
  handed the same id, one gets the row and the other gets nothing, so nothing runs twice at once.
- While it works, the worker extends its lease (`beating`, a side thread: a CRM call or a PDF can be long).
  Every later write of the worker is conditioned on its token, so a worker that lost its lease (swept while
  frozen) cannot overwrite the run that was taken back.
- `finish` is the one way out of running. `sweep` (beat, and every worker that starts) takes back runs whose
  lease expired: queued again and re-dispatched, resumed from their last durable step by their own code, or
  failed with the reason in words once they stopped too often. It never leaves a run running.
This module is in the bottom layer and imports none of our apps: each app declares its `Lifecycle`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

logger = logging.getLogger(__name__)


_SWEPT: list[Lifecycle] = []


def sweep_all(now=None) -> int:
    """Beat and every worker that starts: sweep every declared lifecycle. Returns how many rows moved."""
    return sum(lifecycle.sweep(now) for lifecycle in _SWEPT)


class Leased(models.Model):
    """The fields the lifecycle needs on a run's row."""

    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="Running: the worker's lease. Queued: when its retry is due."
    )
    worker = models.CharField(max_length=120, blank=True, help_text="Token of the claim that holds the lease.")
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker claimed it.")
    recoveries = models.PositiveSmallIntegerField(
        default=0, help_text="Times the sweep took it back from a worker that stopped."
    )

    class Meta:
        abstract = True


def lease_seconds() -> float:
    """How long a claim holds without a heartbeat. Heartbeats come every third of it."""
    return float(getattr(settings, "RUN_LEASE_SECONDS", 300))


def new_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


@dataclass(frozen=True)
class Lifecycle:
    """How one model's rows move: its status words, how a taken-back row is dispatched again, how often."""

    name: str  # "health check", in the reason people read
    model: Any
    queued: str
    running: str
    failed: str
    reason_field: str = "error"
    finished_field: str = "finished_at"
    # how many times the sweep re-queues a row whose worker died before it fails it
    max_recoveries: int = 2
    # row id -> None: queue its task again (called after the sweep's transaction commits)
    dispatch: Callable[[int], None] | None = None
    # what failed rows say; {name}, {times} and {minutes} are filled in
    gave_up: str = "The worker stopped {times} time(s) while running the {name} (no sign of life for {minutes} min)."
    # a setting naming the seconds after which a row no worker picked up is failed with `never_started`
    queue_timeout_setting: str = ""
    never_started: str = "No worker picked the {name} up within {minutes} minutes."
    # False for rows only ever worked on inside a parent's claim: the parent takes them back
    swept: bool = True

    def __post_init__(self) -> None:
        if self.swept:
            _SWEPT.append(self)

    def _rows(self, reason: str = "a run's lifecycle acts on the row it was handed by id"):
        return self.model.objects.across_tenants(reason)

    def lease(self, now=None):
        return (now or timezone.now()) + timedelta(seconds=lease_seconds())

    # ---------------------------------------------------------------- the worker's side

    def claim(self, pk: int, **fields: Any) -> str | None:
        """queued -> running under a new lease; the token, or None when another worker has it."""
        token, now = new_token(), timezone.now()
        claimed = (
            self._rows()
            .filter(pk=pk, status=self.queued)
            .update(
                status=self.running,
                lease_until=self.lease(now),
                worker=token,
                attempts=F("attempts") + 1,
                **fields,
            )
        )
        return token if claimed else None

    def held(self, pk: int, token: str):
        """The row while this claim still holds it: every write of the worker goes through here."""
        return self._rows().filter(pk=pk, status=self.running, worker=token)

    def heartbeat(self, pk: int, token: str) -> bool:
        return bool(self.held(pk, token).update(lease_until=self.lease()))

    def beating(self, pk: int, token: str) -> Heartbeat:
        return Heartbeat(self, pk, token)

    def finish(self, pk: int, token: str, status: str, reason: str = "", **fields: Any) -> bool:
        """running -> `status`, once; False when the claim was lost (the sweep took the row back)."""
        if status in (self.queued, self.running):
            raise ValueError(f"A {self.name} cannot finish as {status!r}.")
        fields.update(self._ending(reason))
        done = self.held(pk, token).update(status=status, lease_until=None, **fields)
        if not done:
            logger.warning("%s %s finished after its lease was lost; its result is dropped", self.name, pk)
        return bool(done)

    def release(self, pk: int, token: str, *, retry_in: float, **fields: Any) -> bool:
        """running -> queued, to be picked up again in `retry_in` seconds (the sweep re-sends it if it is not)."""
        due = timezone.now() + timedelta(seconds=retry_in)
        return bool(self.held(pk, token).update(status=self.queued, lease_until=due, worker="", **fields))

    def reopen(self, pk: int, statuses: tuple[str, ...], **fields: Any) -> bool:
        """A finished row back to the queue (a person resends or retries): dispatched after commit."""
        with transaction.atomic():
            moved = (
                self._rows()
                .filter(pk=pk, status__in=statuses)
                .update(status=self.queued, lease_until=None, worker="", recoveries=0, **fields)
            )
            if moved and self.dispatch is not None:
                transaction.on_commit(partial(self.dispatch, pk))
        return bool(moved)

    def _ending(self, reason: str) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.reason_field:  # PostgreSQL text cannot hold NUL, and a reason may quote input
            fields[self.reason_field] = reason.replace("\x00", "")[:4000]
        if self.finished_field:
            fields[self.finished_field] = timezone.now()
        return fields

    # ---------------------------------------------------------------- the sweep's side

    def stale(self, now=None):
        """Rows whose worker stopped: running with an expired lease (or none, as rows from before leases)."""
        now = now or timezone.now()
        return (
            self._rows("beat: the sweep covers every tenant's runs")
            .filter(status=self.running)
            .filter(Q(lease_until__lt=now) | Q(lease_until__isnull=True))
        )

    def take_back(self, rows) -> list[int]:
        """Take back the given running rows whose worker stopped (the caller knows they are orphans, or they
        come from `stale`): queued again while recoveries remain, else failed with the reason. The ids requeued."""
        minutes = max(1, round(lease_seconds() / 60))
        requeued = []
        for pk, recoveries, worker in rows.values_list("pk", "recoveries", "worker"):
            # conditioned on the token it had: a worker that comes back to life between the read and here wins
            row = self._rows().filter(pk=pk, status=self.running, worker=worker)
            if recoveries < self.max_recoveries:
                if row.update(status=self.queued, lease_until=None, worker="", recoveries=F("recoveries") + 1):
                    requeued.append(pk)
            else:
                reason = self.gave_up.format(name=self.name, times=recoveries + 1, minutes=minutes)
                row.update(status=self.failed, lease_until=None, **self._ending(reason))
        return requeued

    def sweep(self, now=None) -> int:
        """Beat: take back every run whose lease expired and re-send the retries whose message was lost.
        Returns how many rows it moved or re-sent."""
        now = now or timezone.now()
        with transaction.atomic():
            stale = self.stale(now)
            count = stale.count()
            requeued = self.take_back(stale)
            # queued with a due date long past: the retry's message was lost (a broker restart); send it again
            overdue = self._rows("beat: the sweep covers every tenant's runs").filter(
                status=self.queued, lease_until__lt=now - timedelta(seconds=lease_seconds())
            )
            late = list(overdue.values_list("pk", flat=True))
            overdue.filter(pk__in=late).update(lease_until=None)
            count += self._fail_never_started(now)
            if self.dispatch is not None:
                for pk in requeued + late:
                    transaction.on_commit(partial(self.dispatch, pk))
        if count or late:
            logger.warning(
                "Sweep of %ss: %d stopped (%d queued again), %d retries re-sent",
                self.name,
                count,
                len(requeued),
                len(late),
            )
        return count + len(late)

    def _fail_never_started(self, now) -> int:
        if not self.queue_timeout_setting:
            return 0
        timeout = float(getattr(settings, self.queue_timeout_setting, 3600))
        reason = self.never_started.format(name=self.name, minutes=max(1, round(timeout / 60)))
        return (
            self._rows("beat: the sweep covers every tenant's runs")
            .filter(status=self.queued, lease_until__isnull=True, created_at__lt=now - timedelta(seconds=timeout))
            .update(status=self.failed, **self._ending(reason))
        )


def requeue(rows, pk: int, status: str, *, check: Callable[[Any], None], dispatch: Callable[[int], None], **fields):
    """A person asks for the next action on a run (a dry run, an apply, a count...): lock its row, let `check` refuse
    (it raises the caller's own error, in words, when the row's state does not allow `status`), queue it as `status`
    with no lease and no recoveries, and dispatch it once the transaction commits. Inside the caller's transaction,
    so what it records beside commits with it. Returns the row as it was before."""
    with transaction.atomic():
        row = rows.select_for_update().get(pk=pk)
        check(row)
        rows.filter(pk=pk).update(status=status, lease_until=None, worker="", recoveries=0, **fields)
        transaction.on_commit(partial(dispatch, pk))
    return row


class Heartbeat:
    """Extends a claim's lease from a side thread while the worker lives; stops when the claim is lost."""

    def __init__(self, lifecycle: Lifecycle, pk: int, token: str) -> None:
        self.lifecycle, self.pk, self.token = lifecycle, pk, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{lifecycle.name}-{pk}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(lease_seconds() / 3):
                try:
                    if not self.lifecycle.heartbeat(self.pk, self.token):
                        return  # finished, or taken back: nothing left to keep alive
                except Exception:  # a missed beat is not worth failing the run for; the next one may land
                    logger.debug("Heartbeat of %s %s missed", self.lifecycle.name, self.pk, exc_info=True)
        finally:
            connection.close()
