"""The worker's side of large figure uploads (figures.start_figures_import)."""

from celery import shared_task

from . import figures


# acks_late: a worker that dies mid-import leaves the message to be redelivered; the import is all or nothing and
# replaces figures of the same metric, key and period, so running it again is safe.
@shared_task(acks_late=True)
def import_figures(job_id: int) -> None:
    figures.run_figures_import(job_id)
