"""Figures the health checks read besides the CRM's: entered by hand, uploaded as CSV (a small file in the request,
a large one by a worker: engagements.imports says where the line is and why; both check every line first and write
in one transaction), baselines set by hand, and every figure's last months for the pages.

Services here change state only inside a transaction and write the activity log there.
"""

import csv
import io
import math
from datetime import date

from django.db import transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from engagements import imports
from engagements.models import CsvImport, ImportKind

from .models import Baseline, Granularity, MetricValue
from .periods import TREND_MONTHS, month_axis, month_start, week_start
from .schedules import schedule_metrics

CSV_MAX_LINES = 5000


def figure_period(text: str) -> tuple[str, date]:
    """(granularity, first day) of a figure's period written YYYY-MM (a month) or YYYY-Www (an ISO week).
    Raises ValueError with what is wrong."""
    text = text.strip()
    if len(text) == 8 and text[4:6].upper() == "-W" and text[:4].isdigit() and text[6:].isdigit():
        return Granularity.WEEK, date.fromisocalendar(int(text[:4]), int(text[6:]), 1)
    if len(text) != 7 or text[4] != "-":
        raise ValueError("a period is written YYYY-MM, or YYYY-Www for a weekly figure")
    return Granularity.MONTH, date.fromisoformat(f"{text}-01")


def check_not_future(period: date, today: date | None = None) -> None:
    """A figure is for a period that has begun: 2031 is a typing error, not a forecast."""
    if period > (today or timezone.localdate()):
        raise DomainError(f"{period:%B %Y} has not begun yet: figures are entered for periods up to the current one.")


@transaction.atomic
def record_metric(
    *,
    engagement,
    metric: str,
    period: date,
    actor=None,
    value: float | None = None,
    breakdown: dict | None = None,
    key: str = "",
    source: str = "manual",
    granularity: str = Granularity.MONTH,
) -> MetricValue:
    """Store one figure for the month of `period` (or, weekly, for the week containing it)."""
    if value is None and not breakdown:
        raise DomainError(f"{metric}: give a value.")
    start = week_start(period) if granularity == Granularity.WEEK else month_start(period)
    check_not_future(start)
    row, _ = MetricValue.objects.update_or_create(
        organization=engagement.organization,
        engagement=engagement,
        metric=metric,
        key=key,
        granularity=granularity,
        period=start,
        defaults={"value": value, "breakdown": breakdown, "source": source, "entered_by": actor},
    )
    return row


@transaction.atomic
def set_baseline(
    *, engagement, metric: str, value: float, actor, key: str = "", source: str = "set by hand", request=None
) -> Baseline:
    baseline, _ = Baseline.objects.update_or_create(
        organization=engagement.organization,
        engagement=engagement,
        metric=metric,
        key=key,
        defaults={"value": value, "established_on": timezone.localdate(), "source": source},
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="baseline.set",
        data={"metric": metric, "key": key, "value": value, "source": source},
    )
    return baseline


# --------------------------------------------------------------------------------------------------
# CSV uploads


def import_figures(*, engagement, text: str, actor, metrics) -> int:
    """Check an uploaded CSV line by line (each error names its line), then write every figure in one transaction.

    Columns: metric, key (optional), period (YYYY-MM, or YYYY-Www), value. Metric names must be ones the schedule
    reads. Large files go through start_figures_import, which runs the same two steps in a worker.
    """
    return save_figures(engagement=engagement, rows=check_figures(text, metrics), actor=actor)


def check_figures(text: str, metrics, progress=None) -> list[dict]:
    """Every line of the CSV checked, nothing written: the rows to save, or DomainError naming the first bad line.
    progress(n), when given, hears how many lines are checked so far."""
    text = text.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    try:
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise DomainError(f"Line 1: not readable as CSV ({exc}).") from None
    missing = {"metric", "period", "value"} - set(fields)
    if not fields:
        raise DomainError("The file is empty: line 1 must name the columns metric, key, period, value.")
    if missing:
        raise DomainError(
            f"Line 1: the CSV needs the column(s) {', '.join(sorted(missing))} (found {', '.join(fields)})."
        )
    reader.fieldnames = fields
    checked: list[dict] = []
    try:
        for row in reader:
            checked.append(_check_figure(row, reader.line_num, fields, metrics, len(checked)))
            if progress:
                progress(len(checked))
    except csv.Error as exc:
        raise DomainError(f"Line {reader.line_num}: not readable as CSV ({exc}).") from None
    if not checked:
        raise DomainError("Line 2: the file has a header but no figures.")
    return checked


def _check_figure(row: dict, line: int, fields: list[str], metrics, checked: int) -> dict:
    # `line` is the physical line, blank lines included.
    if checked >= CSV_MAX_LINES:
        raise DomainError(f"Line {line}: at most {CSV_MAX_LINES} figures per upload.")
    if None in row or any(row.get(name) is None for name in ("metric", "period", "value")):
        raise DomainError(f"Line {line}: expected the columns {', '.join(fields)}; the line has a different count.")
    metric = row["metric"].strip()
    if metric not in metrics:
        raise DomainError(f"Line {line}: unknown metric {metric!r}; use one the schedule reads (see the list).")
    period = row["period"].strip()
    try:
        granularity, start = figure_period(period)
    except ValueError:
        raise DomainError(
            f"Line {line}, column period: write the month as YYYY-MM, or the week as YYYY-Www (got {period!r})."
        ) from None
    if start > timezone.localdate():
        raise DomainError(
            f"Line {line}, column period: {period} has not begun yet; figures are entered for months (or weeks) "
            "up to the current one."
        )
    try:
        value = float(row["value"])
        if not math.isfinite(value):
            raise ValueError(value)
    except ValueError:
        raise DomainError(f"Line {line}, column value: a finite number is needed (got {row['value']!r}).") from None
    return {
        "metric": metric,
        "key": (row.get("key") or "").strip(),
        "granularity": granularity,
        "period": start,
        "value": value,
    }


@transaction.atomic
def save_figures(*, engagement, rows: list[dict], actor) -> int:
    """Write checked figures in one statement: a figure already stored for the same metric, key and period is
    replaced, and of two lines for the same figure the later one wins (as when they were entered one by one)."""
    figures = {(r["metric"], r["key"], r["granularity"], r["period"]): r["value"] for r in rows}
    MetricValue.objects.bulk_create(
        [
            MetricValue(
                organization=engagement.organization,
                engagement=engagement,
                metric=metric,
                key=key,
                granularity=granularity,
                period=period,
                value=value,
                breakdown=None,
                source="csv",
                entered_by=actor,
            )
            for (metric, key, granularity, period), value in figures.items()
        ],
        update_conflicts=True,
        unique_fields=["engagement", "metric", "key", "granularity", "period"],
        update_fields=["value", "breakdown", "source", "entered_by"],
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        target=engagement,
        verb="metrics.imported",
        data={"rows": len(rows)},
    )
    return len(rows)


def start_figures_import(*, engagement, text: str, file_name: str, actor, metrics) -> int | CsvImport:
    from .tasks_imports import import_figures as import_task  # the task module imports this one

    return imports.start(
        engagement=engagement,
        kind=ImportKind.METRICS,
        text=text,
        file_name=file_name,
        actor=actor,
        task=import_task,
        run_now=lambda: import_figures(engagement=engagement, text=text, actor=actor, metrics=metrics),
    )


def run_figures_import(job_id: int) -> None:
    """The worker's side. The metric names are read when the import runs: the schedule's, as the page listed them."""

    def check(job: CsvImport, progress) -> list[dict]:
        schedule = job.engagement.maintenance_schedule
        metrics = dict(schedule_metrics(schedule.tasks.all())).keys()
        return check_figures(job.text, metrics, progress)

    imports.run(
        job_id,
        kind=ImportKind.METRICS,
        check=check,
        save=lambda job, rows: save_figures(engagement=job.engagement, rows=rows, actor=job.created_by),
    )


def imports_shown(engagement) -> list[CsvImport]:
    return imports.shown(engagement, ImportKind.METRICS)


# --------------------------------------------------------------------------------------------------
# History


def metric_history(engagement, *, last: date, months: int = TREND_MONTHS) -> tuple[list[date], dict]:
    """Every figure of the `months` months ending with `last`: (axis, {(metric, key): {period: MetricValue}})."""
    axis = month_axis(last, months)
    series: dict[tuple[str, str], dict[date, MetricValue]] = {}
    for row in (
        MetricValue.objects.for_org(engagement.organization)
        .filter(engagement=engagement, granularity=Granularity.MONTH, period__gte=axis[0], period__lte=axis[-1])
        .order_by("metric", "key", "period")
    ):
        series.setdefault((row.metric, row.key), {})[row.period] = row
    return axis, series
