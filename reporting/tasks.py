from celery import shared_task
from django.conf import settings

from . import services


@shared_task(acks_late=True)
def render_artifact(artifact_id: int) -> None:
    services.render(artifact_id)


@shared_task(expires=3600)
def queue_health_checks() -> None:
    """Beat, daily: one run per engagement with an active schedule for the month just ended (created once)."""
    from . import health

    health.queue_due_runs()


@shared_task(acks_late=True)
def run_health_check(run_id: int) -> None:
    """On the CRM queue (mostly waiting on the CRM); the render and the emails go back to the default queue."""
    from . import health
    from .models import RunStatus

    run = health.execute_run(run_id)
    if run is None or run.status == RunStatus.FAILED:
        return  # another worker has it, or the failure is on the run for the consultants to see
    report_health_check.delay(run_id)


@shared_task(acks_late=True)
def catch_up_health_checks(schedule_id: int) -> None:
    """On the CRM queue: the months since go-live, one after the other (each month's baselines feed the next)."""
    from . import health

    health.catch_up(schedule_id)


@shared_task(acks_late=True)
def report_health_check(run_id: int) -> None:
    from . import health
    from .models import HealthCheckRun

    health.complete_run(
        HealthCheckRun.objects.for_task(run_id).select_related("engagement__client", "organization").get()
    )


@shared_task(bind=True, acks_late=True, max_retries=5)
def send_health_report(self, delivery_id: int) -> None:
    """Send one recipient's monthly email exactly once: claim the row, send, mark it sent."""
    from django.db.models import F
    from django.utils import timezone

    from accounts.emails import send_email
    from accounts.tasks import MAIL_ERRORS

    from .models import DeliveryStatus, ReportDelivery

    claimed = (
        ReportDelivery.objects.for_task(delivery_id)
        .filter(status=DeliveryStatus.PENDING)
        .update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1)
    )
    if not claimed:
        return
    delivery = (
        ReportDelivery.objects.for_task(delivery_id)
        .select_related("run__engagement__client", "run__report", "organization")
        .get()
    )
    try:
        send_email(
            "health-report",
            to=delivery.email,
            context=services.health_email_context(delivery),
            attachments=services.health_attachments(delivery.run),
        )
    except MAIL_ERRORS as exc:
        final = self.request.retries >= self.max_retries
        ReportDelivery.objects.for_task(delivery_id).update(
            status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING, last_error=str(exc)[:1000]
        )
        if not final:
            raise self.retry(exc=exc, countdown=min(600, settings.EMAIL_RETRY_DELAY * 2**self.request.retries)) from exc
        return
    ReportDelivery.objects.for_task(delivery_id).update(
        status=DeliveryStatus.SENT, sent_at=timezone.now(), last_error=""
    )
