"""Health-check tasks: ids in, one service call. Each claims its row, so a retried or duplicate task is harmless."""

from celery import shared_task
from django.conf import settings

from accounts.tasks import MAIL_ERRORS

from . import health, monthly_report
from .models import HealthCheckRun, RunStatus


@shared_task(expires=3600)
def queue_health_checks() -> None:
    """Beat, daily: one run per engagement with an active schedule for the month just ended (created once)."""
    health.queue_due_runs()


@shared_task(acks_late=True)
def run_health_check(run_id: int) -> None:
    """On the CRM queue (mostly waiting on the CRM); the render and the emails go back to the default queue."""
    run = health.execute_run(run_id)
    if run is None or run.status == RunStatus.FAILED:
        return  # another worker has it, or the failure is on the run for the consultants to see
    report_health_check.delay(run_id)


@shared_task(acks_late=True)
def catch_up_health_checks(schedule_id: int) -> None:
    """On the CRM queue: the months since go-live, one after the other (each month's baselines feed the next)."""
    health.catch_up(schedule_id)


@shared_task(acks_late=True)
def report_health_check(run_id: int) -> None:
    monthly_report.complete_run(
        HealthCheckRun.objects.for_task(run_id).select_related("engagement__client", "organization").get()
    )


@shared_task(bind=True, acks_late=True, max_retries=5)
def send_health_report(self, delivery_id: int) -> None:
    """Send one recipient's monthly email exactly once: claim the row, send, mark it sent."""
    delivery = monthly_report.claim_delivery(delivery_id)
    if delivery is None:
        return
    try:
        monthly_report.send_delivery(delivery)
    except MAIL_ERRORS as exc:
        final = self.request.retries >= self.max_retries
        monthly_report.delivery_failed(delivery_id, str(exc), final=final)
        if not final:
            raise self.retry(exc=exc, countdown=min(600, settings.EMAIL_RETRY_DELAY * 2**self.request.retries)) from exc
