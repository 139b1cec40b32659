"""The engineering phase's CRM work on the CRM queue: ids in, one service call; each claims its row through the run
lifecycle, so a message delivered twice runs once. They are sent to the CRM queue (`queued`)."""

from celery import shared_task

from . import apply, reads


@shared_task(acks_late=True)
def run_read(run_id: int) -> None:
    reads.execute(run_id)


@shared_task(acks_late=True)
def run_apply(run_id: int) -> None:
    apply.execute(run_id)


def queued(task, pk: int) -> None:
    """Send to the CRM queue, with the audits and health checks (settings.CELERY_CRM_QUEUE)."""
    from django.conf import settings

    task.apply_async((pk,), queue=settings.CELERY_CRM_QUEUE)


@shared_task(acks_late=True)
def run_record_move(run_id: int) -> None:
    from . import record_moves

    record_moves.execute(run_id)
