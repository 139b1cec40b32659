"""Audit tasks. Each takes ids, claims its row through the run lifecycle and is safe to run twice.

Runs whose worker stopped are swept with every other background run (deliverables.tasks.sweep_runs)."""

from celery import shared_task


@shared_task(acks_late=True)
def run_audit(run_id: int) -> None:
    from .audit import services

    services.execute_run(run_id)
