"""Health-check tasks: ids in, one service call. Each claims its row, so a retried or duplicate task is harmless."""

from celery import shared_task

from . import runs
from .models import HealthCheckRun, RunStep


@shared_task(expires=3600)
def queue_health_checks() -> None:
    """Beat, daily: one run per engagement with an active schedule for the month just ended (created once)."""
    runs.queue_due_runs()


@shared_task(acks_late=True)
def run_health_check(run_id: int) -> None:
    """On the CRM queue (mostly waiting on the CRM): the CRM step, then the run is handed to the default queue
    for its report and emails."""
    runs.advance(run_id, hand_over=report_health_check.delay)


@shared_task(acks_late=True)
def catch_up_health_checks(schedule_id: int) -> None:
    """On the CRM queue: the months since go-live, one after the other (each month's baselines feed the next)."""
    runs.catch_up(schedule_id)


@shared_task(acks_late=True)
def report_health_check(run_id: int) -> None:
    """On the default queue: the run's report and emails (and its CRM step, if it got here without one)."""
    runs.advance(run_id)


def resume_health_check(run_id: int) -> None:
    """Queue a run again (the sweep took it back, a person resends): to the task of the step it is at."""
    step = HealthCheckRun.objects.for_task(run_id).values_list("step", flat=True).first()
    (run_health_check if step == RunStep.EVALUATE else report_health_check).delay(run_id)
