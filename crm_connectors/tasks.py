"""Audit tasks. Each takes ids, claims its row through the run lifecycle and is safe to run twice.

Runs whose worker stopped are swept with every other background run (deliverables.tasks.sweep_runs)."""

from celery import shared_task

from .audit import services


@shared_task(acks_late=True)
def run_audit(run_id: int) -> None:
    services.execute_run(run_id)
