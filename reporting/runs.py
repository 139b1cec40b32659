"""Health runs: creating them (beat's monthly tick, "run now", the months since go-live, the command line) and
taking each through its steps in the run lifecycle (gtm_ops/runs.py): evaluate -> report -> send -> done.

A run is one unique row per engagement and month, so a duplicate tick or a second worker creates nothing. Each step
is saved before the next begins (`HealthCheckRun.step`), so a run taken back from a worker that stopped resumes where
it was: the figures are not judged twice, the report is not rendered twice, a sent email is not sent again. A run
ends succeeded only when every step up to its `goal` is done; while it is not, its status says what is pending
("Sending 2 of 4"). Emails the mail server refused past the retry budget end the run partial; a person resends them
(`resend`), which takes the run back to its send step.
"""

import logging
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from accounts.tasks import MAIL_ERRORS
from deliverables import services as pipeline
from deliverables.models import ArtifactStatus
from gtm_ops.runs import lease_seconds

from . import monthly_report, verdicts
from .models import (
    DELIVERIES,
    HEALTH_RUNS,
    STEP_ORDER,
    DeliveryStatus,
    HealthCheckRun,
    HealthResult,
    MaintenanceSchedule,
    ReportDelivery,
    RunStatus,
    RunStep,
)
from .periods import catch_up_periods, due_period, month_start, previous_month

logger = logging.getLogger(__name__)

# The first try and five retries: with the default EMAIL_RETRY_DELAY (30 s, doubling) about 15 minutes.
SEND_ATTEMPTS = 6
FINISHED = (RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED)


class Later(Exception):
    """The run waits (a mail server refused, its report is being rendered elsewhere): released, due again in
    `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.0, seconds)


class ReportFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The report could not be rendered ({reason}); retry the report: its emails go out once it is ready."
        )


# --------------------------------------------------------------------------------------------------
# Creating runs


def create_run(engagement, period: date) -> tuple[HealthCheckRun, bool]:
    """The run for (engagement, period): created once, whatever the number of ticks or workers."""
    try:
        with transaction.atomic():
            return HealthCheckRun.objects.get_or_create(
                organization=engagement.organization, engagement=engagement, period=month_start(period)
            )
    except IntegrityError:  # a concurrent creator won the race
        return HealthCheckRun.objects.get(engagement=engagement, period=month_start(period)), False


def due_schedules(period: date, schedules=None):
    """The active schedules that have a run for `period`: live before the month ended (`schedules` narrows)."""
    every_tenant = MaintenanceSchedule.objects.across_tenants("beat: the month-end queue covers every tenant")
    queryset = every_tenant if schedules is None else schedules
    return queryset.filter(active=True, live_since__lt=month_start(period) + timedelta(days=31))


def queue_due_runs(today: date | None = None) -> int:
    """Beat, across all organizations: one run per engagement with an active schedule, for last month."""
    from .tasks import run_health_check

    period = previous_month(today or timezone.localdate())
    queued = 0
    for schedule in due_schedules(period).select_related("engagement__organization"):
        run, created = create_run(schedule.engagement, period)
        if created:
            transaction.on_commit(partial(run_health_check.delay, run.pk))
            queued += 1
    return queued


@transaction.atomic
def run_month_now(*, engagement, actor, request=None, today: date | None = None) -> tuple[HealthCheckRun, bool]:
    """Create the run of the month just ended now rather than at beat's next tick, and queue it on commit."""
    from .tasks import run_health_check  # the tasks call into this module

    schedule = MaintenanceSchedule.objects.filter(engagement=engagement).first()
    if schedule is None:
        raise DomainError("Start the maintenance schedule first.")
    if not schedule.active:
        raise DomainError("This maintenance schedule is paused.")
    period = due_period(today)
    run, created = create_run(engagement, period)
    if created:
        activity.record(
            organization=engagement.organization,
            actor=actor,
            request=request,
            target=engagement,
            verb="health.run_requested",
            data={"period": f"{period:%Y-%m}", "run": str(run.uuid)},
        )
        transaction.on_commit(lambda: run_health_check.delay(run.pk))
    return run, created


def catch_up(schedule_id: int, today: date | None = None) -> list[HealthCheckRun]:
    """Check the months that passed between go-live and the start of the schedule, oldest first, so the first
    business cycle sets the baselines and every trend has its history. Their reports are rendered but not emailed:
    nobody wants last spring's health check in their inbox. The month just ended is beat's (or "run now"), as usual.
    A retry re-runs nothing: each month's run is claimed once."""
    schedule = MaintenanceSchedule.objects.for_task(schedule_id).select_related("engagement__organization").get()
    done = []
    for period in catch_up_periods(schedule, today):
        run, _ = create_run(schedule.engagement, period)
        finished = execute_run(run.pk, goal=RunStep.REPORT)
        if finished is not None:
            done.append(finished)
    return done


RAN, ALREADY_FINISHED, IN_PROGRESS = "ran", "already_finished", "in_progress"


def check_now(
    engagement, period: date, *, actor=None, actor_label: str = "", crm_factory=None, email: bool = True
) -> tuple[HealthCheckRun, str]:
    """The run of (engagement, period), created once, executed in this process, then reported and emailed as the
    run_health_check task does (without `email`, reported only: a back-filled month is not emailed unless asked).
    Returns the run and what happened to it here:

    RAN               executed now (created now, or queued earlier and not yet picked up by a worker)
    ALREADY_FINISHED  it had already run: not re-run, no second report or email
    IN_PROGRESS       a worker is running it right now: left to that worker
    """
    with transaction.atomic():
        run, created = create_run(engagement, period)
        if created:
            activity.record(
                organization=engagement.organization,
                actor=actor,
                actor_label=actor_label,
                target=engagement,
                verb="health.run_requested",
                data={"period": f"{month_start(period):%Y-%m}", "run": str(run.uuid), "in_process": True},
            )
    goal = RunStep.SEND if email else RunStep.REPORT
    done = execute_run(run.pk, crm_factory=crm_factory, goal=goal) if run.status == RunStatus.QUEUED else None
    if done is None:
        run.refresh_from_db()
        return run, IN_PROGRESS if run.status in (RunStatus.QUEUED, RunStatus.RUNNING) else ALREADY_FINISHED
    return done, RAN


def execute_run(run_id: int, *, crm_factory=None, goal: str = RunStep.EVALUATE) -> HealthCheckRun | None:
    """Claim a queued run and take it to `goal` (by default: evaluate every due rule, no report, no email).
    Returns None when another worker has it."""
    return advance(run_id, goal=goal, crm_factory=crm_factory)


# --------------------------------------------------------------------------------------------------
# A run's steps


def _reached(run: HealthCheckRun, step: str) -> bool:
    return STEP_ORDER.index(run.step) >= STEP_ORDER.index(step)


def advance(
    run_id: int, *, goal: str | None = None, crm_factory=None, hand_over: Callable[[int], None] | None = None
) -> HealthCheckRun | None:
    """Claim the run and do its steps up to its goal. Returns the run, or None when another worker has it.

    With `hand_over` (the CRM queue's task), the run is released after the CRM step and handed to it: renders
    and emails run on the default queue."""
    fields = {"goal": goal} if goal else {}
    token = HEALTH_RUNS.claim(run_id, started_at=Coalesce(F("started_at"), timezone.now()), **fields)
    if token is None:
        return None
    run = HealthCheckRun.objects.for_task(run_id).select_related("engagement__client", "organization").get()
    try:
        with HEALTH_RUNS.beating(run_id, token):
            _steps(run, token, crm_factory, hand_over)
    except Later as later:
        if HEALTH_RUNS.release(run_id, token, retry_in=later.seconds):
            _dispatch_later(run_id, later.seconds)
    except ReportFailed as exc:
        HEALTH_RUNS.finish(run_id, token, RunStatus.FAILED, str(exc))
    except Exception as exc:  # recorded on the run in plain words; never shown as healthy, never left running
        logger.exception("Health check %s failed at %s", run_id, run.step)
        HEALTH_RUNS.finish(run_id, token, RunStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000])
    return HealthCheckRun.objects.for_task(run_id).get()


def _steps(run: HealthCheckRun, token: str, crm_factory, hand_over) -> None:
    if run.step == RunStep.EVALUATE:
        _evaluate(run, token, crm_factory)
    if run.goal == RunStep.EVALUATE or run.step == RunStep.DONE:
        _finish(run, token)
        return
    if hand_over is not None:
        if HEALTH_RUNS.release(run.pk, token, retry_in=0):
            transaction.on_commit(lambda: hand_over(run.pk))
        return
    if run.step == RunStep.REPORT:
        _report(run, token)
    if run.goal == RunStep.SEND and run.step == RunStep.SEND:
        _send(run, token)
    _finish(run, token)


def _next_step(run: HealthCheckRun, token: str, step: str, **fields) -> None:
    """The step is durable once this lands; losing the claim here means another worker owns the run now."""
    # progress made: the bound on recoveries is per step, so a run stopped once at each step still finishes
    if not HEALTH_RUNS.held(run.pk, token).update(step=step, recoveries=0, **fields):
        raise RuntimeError(f"Health check {run.pk} was taken back from this worker during {run.step}.")
    run.step = step
    for name, value in fields.items():
        setattr(run, name, value)


def _evaluate(run: HealthCheckRun, token: str, crm_factory) -> None:
    results, counts = verdicts.evaluate(run, crm_factory=crm_factory)
    with transaction.atomic():
        HealthResult.objects.filter(run=run).delete()  # nothing is saved before this step lands; never twice
        HealthResult.objects.bulk_create(results)
        _next_step(run, token, RunStep.REPORT if run.goal != RunStep.EVALUATE else RunStep.DONE, **counts)


def _report(run: HealthCheckRun, token: str) -> None:
    run.refresh_from_db(fields=["report"])
    report = run.report or monthly_report.render_health_report(run)
    if report.status == ArtifactStatus.QUEUED:  # requested by an attempt that stopped before rendering it
        pipeline.render(report.pk)
        report.refresh_from_db()
    if report.status == ArtifactStatus.RENDERING:  # a stopped attempt's render, until the sweep takes it back
        due = (report.lease_until - timezone.now()).total_seconds() if report.lease_until else lease_seconds()
        raise Later(due + 1)
    if report.status == ArtifactStatus.FAILED:
        raise ReportFailed(report.error)
    _next_step(run, token, RunStep.SEND if run.goal == RunStep.SEND else RunStep.DONE)


def _send(run: HealthCheckRun, token: str) -> None:
    # Only this run's worker sends its emails and the run is ours now: one still "sending" belongs to a worker
    # that stopped mid-send. It may have reached the mail server: sent once more, then failed for a person.
    deliveries = ReportDelivery.objects.for_org(run.organization_id).filter(run=run)
    DELIVERIES.take_back(deliveries.filter(status=DeliveryStatus.SENDING))
    monthly_report.plan_deliveries(run)
    waiting = 0
    for delivery_id in deliveries.filter(status=DeliveryStatus.PENDING).order_by("pk").values_list("pk", flat=True):
        delivery = monthly_report.claim_delivery(delivery_id)
        if delivery is None:
            continue
        try:
            monthly_report.send_delivery(delivery)
        except MAIL_ERRORS as exc:
            final = delivery.attempts >= SEND_ATTEMPTS
            monthly_report.delivery_failed(delivery, str(exc), final=final)
            if not final:
                waiting = max(waiting, delivery.attempts)
        HEALTH_RUNS.heartbeat(run.pk, token)
    if waiting:
        raise Later(min(600, settings.EMAIL_RETRY_DELAY * 2 ** (waiting - 1)))
    _next_step(run, token, RunStep.DONE)


def _finish(run: HealthCheckRun, token: str) -> None:
    """Every step up to the goal is done: succeeded, or partial when the CRM had errors or emails were refused."""
    refused = run.deliveries.filter(status=DeliveryStatus.FAILED).exists()
    status = RunStatus.PARTIAL if run.error or refused else RunStatus.SUCCEEDED
    HEALTH_RUNS.finish(run.pk, token, status, run.error)


def _dispatch_later(run_id: int, seconds: float) -> None:
    from .tasks import report_health_check  # the tasks call into this module

    transaction.on_commit(lambda: report_health_check.apply_async((run_id,), countdown=seconds))


# --------------------------------------------------------------------------------------------------
# A person's side


def report_rendered(run: HealthCheckRun) -> None:
    """Its report is ready (retried by a person, or rendered again after a stop): a run that failed or waits
    for it goes on to its emails."""
    if run.step != RunStep.REPORT:
        return
    if not HEALTH_RUNS.reopen(run.pk, (RunStatus.FAILED,), error="") and run.status == RunStatus.QUEUED:
        from .tasks import resume_health_check

        transaction.on_commit(lambda: resume_health_check(run.pk))


def resend(run: HealthCheckRun, *, force: bool = False) -> int:
    """Send the run's failed emails again (with `force`, the sent ones too): each recipient at most once more.
    Returns how many were put back in the queue; the run goes back to its send step to send them."""
    if not _reached(run, RunStep.SEND) or run.goal != RunStep.SEND:
        return 0
    statuses = [DeliveryStatus.FAILED] + ([DeliveryStatus.SENT] if force else [])
    with transaction.atomic():
        again = (
            ReportDelivery.objects.for_org(run.organization_id)
            .filter(run=run, status__in=statuses)
            .update(status=DeliveryStatus.PENDING, attempts=0, recoveries=0, last_error="", lease_until=None)
        )
        if again:
            # a run still sending picks them up itself; a finished one goes back to its send step
            HEALTH_RUNS.reopen(run.pk, FINISHED, step=RunStep.SEND)
    return again
