import logging

from celery import shared_task
from celery.signals import worker_ready

from gtm_ops import runs

from . import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def render_artifact(artifact_id: int) -> None:
    services.render(artifact_id)


@shared_task(expires=60)
def sweep_runs() -> None:
    """Beat, every minute: take back every background run (audit, health check, render) whose worker stopped."""
    runs.sweep_all()


@worker_ready.connect
def sweep_on_worker_start(sender=None, **kwargs) -> None:
    """A worker that starts (after a crash, a deploy) takes back what a dead worker left running."""
    from django.db import close_old_connections

    try:
        runs.sweep_all()
    except Exception:  # the worker must start even if the database is not there yet
        logger.exception("Sweep on worker start failed")
    finally:
        close_old_connections()
