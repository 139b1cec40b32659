"""The worker's side of large CSV imports (engagements.imports): hypercare KPI readings."""

from celery import shared_task

from . import enablement, imports
from .models import ImportKind


# acks_late: a worker that dies mid-import leaves the message to be redelivered; the import is all or nothing and
# replaces readings of the same KPI and day, so running it again is safe.
@shared_task(acks_late=True)
def import_kpi_readings(job_id: int) -> None:
    imports.run(
        job_id,
        kind=ImportKind.KPI_READINGS,
        check=lambda job, progress: enablement.read_kpi_csv(job.engagement, job.text, progress),
        save=lambda job, readings: enablement.save_kpi_readings(
            engagement=job.engagement, readings=readings, actor=job.created_by
        ),
    )
