"""Audit tasks. Each takes ids, claims its row with a conditional UPDATE and is safe to run twice."""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import close_old_connections

from .audit import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def run_audit(run_id: int) -> None:
    services.execute_run(run_id)


@shared_task(expires=10 * 60)
def sweep_stuck_audits() -> None:
    """Beat, every few minutes: fail runs whose worker died mid-run (no heartbeat) or that never started."""
    services.sweep_stuck_runs()


@worker_ready.connect
def sweep_on_worker_start(sender=None, **kwargs) -> None:
    """A worker that starts (after a crash, a deploy) fails the runs a dead worker left `running`."""
    try:
        services.sweep_stuck_runs()
    except Exception:  # the worker must start even if the database is not there yet
        logger.exception("Audit sweep on worker start failed")
    finally:
        close_old_connections()
