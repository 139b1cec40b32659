"""The worker's side of large figure uploads (reporting.imports)."""

from celery import shared_task

from . import imports


# acks_late: a worker that dies mid-import leaves the message to be redelivered; the import is all or nothing and
# replaces figures of the same metric, key and period, so running it again is safe.
@shared_task(acks_late=True)
def import_figures(job_id: int) -> None:
    imports.run_figures_import(job_id)
