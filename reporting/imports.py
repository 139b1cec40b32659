"""Figures uploaded as CSV on the health page: a small file is imported in the request, a large one by a worker
(engagements.imports says where the line is and why); both check every line first and write in one transaction."""

from engagements import imports
from engagements.models import CsvImport, ImportKind

from . import health_actions


def start_figures_import(*, engagement, text: str, file_name: str, actor, metrics) -> int | CsvImport:
    from .tasks_imports import import_figures  # the task module imports this one

    return imports.start(
        engagement=engagement,
        kind=ImportKind.METRICS,
        text=text,
        file_name=file_name,
        actor=actor,
        task=import_figures,
        run_now=lambda: health_actions.import_figures(engagement=engagement, text=text, actor=actor, metrics=metrics),
    )


def run_figures_import(job_id: int) -> None:
    """The worker's side. The metric names are read when the import runs: the schedule's, as the page listed them."""

    def check(job: CsvImport, progress) -> list[dict]:
        schedule = job.engagement.maintenance_schedule
        metrics = dict(health_actions.schedule_metrics(schedule.tasks.all())).keys()
        return health_actions.check_figures(job.text, metrics, progress)

    imports.run(
        job_id,
        kind=ImportKind.METRICS,
        check=check,
        save=lambda job, rows: health_actions.save_figures(engagement=job.engagement, rows=rows, actor=job.created_by),
    )


def shown(engagement) -> list[CsvImport]:
    return imports.shown(engagement, ImportKind.METRICS)
