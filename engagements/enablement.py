"""Enablement and handoff: training sessions, the hypercare window and its KPIs, the retention path and the
check-in."""

import csv
import io
import operator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from playbooks.schema import Kpi

from .models import (
    CheckpointStatus,
    Engagement,
    Gate,
    GateStatus,
    KpiReading,
    RetentionAction,
    RetentionStep,
    TrainingSession,
)

HYPERCARE_KPI = "hypercare_kpi"


@transaction.atomic
def record_training(
    *,
    engagement: Engagement,
    training_type: str,
    held_on: date,
    actor,
    audience: str = "",
    recorded: bool = False,
    notes: str = "",
    request=None,
) -> TrainingSession:
    types = {t.key: t for t in (engagement.spec.enablement.training_types if engagement.spec.enablement else [])}
    if training_type not in types:
        raise DomainError(
            f"This playbook has no training type {training_type!r}; choose one of: {', '.join(types) or 'none'}."
        )
    session = TrainingSession.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        training_type=training_type,
        audience=audience or ", ".join(types[training_type].audience),
        held_on=held_on,
        recorded=recorded,
        notes=notes,
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="training.recorded",
        data={"type": training_type, "recorded": recorded},
    )
    return session


@transaction.atomic
def set_hypercare(*, engagement: Engagement, start: date, actor, end: date | None = None, request=None) -> Engagement:
    hypercare = engagement.spec.hypercare
    if hypercare is None:
        raise DomainError("This playbook has no hypercare period.")
    if engagement.sub_phases.filter(key=hypercare.sub_phase, skipped=True).exists():
        raise DomainError("Hypercare was skipped for this engagement.")
    end = end or start + timedelta(days=hypercare.duration_days)
    if end <= start:
        raise DomainError("Hypercare must end after it starts.")
    engagement.hypercare_start, engagement.hypercare_end = start, end
    engagement.save(update_fields=["hypercare_start", "hypercare_end"])
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="hypercare.scheduled",
        data={"start": start.isoformat(), "end": end.isoformat()},
    )
    return engagement


def next_retention_step(engagement: Engagement):
    """The seed's single-project path: each step applies when the previous answer meets its condition
    (upsell; "if no" → downsell; "if yes" → retry the retainer at the end of that project). None: finished."""
    retention = engagement.spec.retention
    if retention is None:
        return None
    steps = sorted(retention.single_project.steps, key=lambda step: step.order)
    taken = list(engagement.retention.order_by("created_at").values_list("outcome", flat=True))
    if len(taken) >= len(steps):
        return None
    if taken:
        wanted = {"if no": "declined", "if yes": "accepted"}.get((steps[len(taken)].condition or "").lower())
        if wanted is not None and taken[-1] != wanted:
            return None
    return steps[len(taken)]


@transaction.atomic
def record_retention_step(
    *, engagement: Engagement, action: str, outcome: str, actor, offer: str = "", note: str = "", request=None
) -> RetentionStep:
    Engagement.objects.for_org(engagement.organization_id).select_for_update().get(pk=engagement.pk)
    if action not in RetentionAction.values:
        raise DomainError(f"Unknown retention step {action!r}.")
    if outcome not in ("accepted", "declined"):
        raise DomainError("The outcome must be accepted or declined.")
    expected = next_retention_step(engagement)
    if expected is None:
        raise DomainError("The retention path is finished for this engagement.")
    if action != expected.action:
        raise DomainError(
            f"The next retention step is {expected.action.replace('_', ' ')}, not {action.replace('_', ' ')}."
        )
    step = RetentionStep.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        action=action,
        outcome=outcome,
        offer=offer or expected.offer,
        note=note,
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="retention.recorded",
        data={"action": action, "outcome": outcome},
    )
    return step


def check_ins_due(today: date | None = None):
    """Engagements whose refinement check-in is two weeks away (or closer) and not yet reminded."""
    today = today or timezone.localdate()
    return Engagement.objects.across_tenants("beat: check-in reminders for every tenant").filter(
        check_in_date__isnull=False, check_in_date__lte=today + timedelta(days=14), check_in_reminder_sent_at=None
    )


# --------------------------------------------------------------------------------------------------
# Hypercare KPIs (playbook ``hypercare.kpis``): figures entered by hand, judged against the seed's target
# and red flag for the day they were measured, within the window the playbook states from hypercare start.

PERIOD_DAYS = {"day": 1, "week": 7, "month": 30, "quarter": 91, "year": 365}
OPS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
OP_WORDS = {"gt": "above", "gte": "at least", "lt": "below", "lte": "at most"}
UNIT_WORDS = {"pct": "%", "per_week": " a week", "count": "", "hours": " hours", "days": " days"}
# Where the seed judges a KPI per manager or per rep, the figure to enter is the lowest one.
PER_WORDS = {"manager": "the lowest manager's figure", "rep": "the lowest rep's figure"}


class KpiStatus:
    MET = "met"
    NOT_YET_DUE = "not_yet_due"
    BELOW_TARGET = "below_target"
    RED_FLAG = "red_flag"
    NOT_RECORDED = "not_recorded"


@dataclass(frozen=True)
class KpiState:
    kpi: Kpi
    reading: KpiReading | None
    status: str
    verdict: str
    target_text: str
    due_on: date | None

    @property
    def entry_hint(self) -> str:
        per = PER_WORDS.get(self.kpi.rule.per or "")
        unit = self.kpi.rule.target.unit if self.kpi.rule.target else self.kpi.rule.unit
        words = {"pct": "a percentage (0-100)", "per_week": "times a week", "count": "a count"}
        what = words.get(unit or "", "a figure")
        return f"{what}{f', {per}' if per else ''}"


def _fmt(value: float, unit: str | None) -> str:
    number = f"{value:g}"
    return f"{number}{UNIT_WORDS.get(unit or '', '')}"


def _window_days(window) -> int:
    return window.n * PERIOD_DAYS[window.period]


def _window_words(window) -> str:
    return f"{window.n} {window.period}{'s' if window.n > 1 else ''}"


def kpi_specs(engagement: Engagement) -> list:
    hypercare = engagement.spec.hypercare
    return list(hypercare.kpis) if hypercare else []


def _red_flag(rule, value: float) -> bool:
    if rule.comparison == "below":
        return value < rule.threshold
    if rule.comparison in ("above", "count_above"):
        return value > rule.threshold
    return False


def kpi_state(engagement: Engagement, kpi, reading: KpiReading | None) -> KpiState:
    """Judge one KPI's figure for the day it was measured (never for today), so a late entry reads the same."""
    rule, target = kpi.rule, kpi.rule.target
    target_text = (
        f"{OP_WORDS[target.op]} {_fmt(target.value, target.unit)}"
        + (f" within {_window_words(target.within)}" if target.within else "")
        if target
        else f"not {kpi.red_flag[0].lower()}{kpi.red_flag[1:]}"
    )
    window = (target.within if target else None) or rule.evaluate_after
    start = engagement.hypercare_start
    due_on = start + timedelta(days=_window_days(window)) if start and window else None

    def state(status: str, verdict: str) -> KpiState:
        return KpiState(kpi, reading, status, verdict, target_text, due_on)

    if reading is None:
        return state(KpiStatus.NOT_RECORDED, "No figure recorded yet.")
    value = float(reading.value)
    # Without a hypercare start the window cannot have elapsed: the figure is not judged against it yet.
    elapsed = window is None or (due_on is not None and reading.measured_on >= due_on)
    if target is not None and OPS[target.op](value, target.value):
        return state(KpiStatus.MET, f"At target ({target_text}).")
    red = _red_flag(rule, value)
    if red and (rule.evaluate_after is None or elapsed):
        return state(KpiStatus.RED_FLAG, f"Red flag: {kpi.red_flag}.")
    if red or target is not None:
        if not elapsed:
            when = f"on {due_on:%-d %b %Y}" if due_on else "once hypercare is scheduled"
            return state(
                KpiStatus.NOT_YET_DUE, f"Not there yet; judged {when}, {_window_words(window)} into hypercare."
            )
        if target is not None:
            return state(KpiStatus.BELOW_TARGET, f"Below target at the end of its window ({target_text}).")
    return state(KpiStatus.MET, f"No red flag ({kpi.red_flag.lower()} would be one).")


def latest_readings(engagement: Engagement) -> dict[str, KpiReading]:
    latest: dict[str, KpiReading] = {}
    for reading in KpiReading.objects.filter(engagement=engagement).order_by("measured_on", "created_at"):
        latest[reading.kpi] = reading
    return latest


def hypercare_kpis(engagement: Engagement) -> list[KpiState]:
    """Each of the playbook's hypercare KPIs with its latest figure, target and verdict."""
    latest = latest_readings(engagement)
    return [kpi_state(engagement, kpi, latest.get(kpi.key)) for kpi in kpi_specs(engagement)]


def kpi_meets_target(engagement: Engagement, kpi_key: str) -> bool:
    """The KPI's latest figure meets the seed's target (the checkpoints that name a KPI read this)."""
    kpi = next((k for k in kpi_specs(engagement) if k.key == kpi_key), None)
    if kpi is None or kpi.rule.target is None:
        return False
    reading = latest_readings(engagement).get(kpi_key)
    target = kpi.rule.target
    return reading is not None and OPS[target.op](float(reading.value), target.value)


def sync_kpi_checkpoints(gate: Gate, actor=None) -> list[str]:
    """Check the open gate's KPI checkpoints whose KPI is at target; reopen those whose KPI fell back.
    A waiver is left alone: it is a person's decision. Returns the keys that changed."""
    if gate.status != GateStatus.OPEN:
        return []
    changed = []
    for checkpoint in gate.checkpoints.filter(auto=HYPERCARE_KPI).exclude(status=CheckpointStatus.WAIVED):
        met = kpi_meets_target(gate.engagement, checkpoint.kpi)
        wanted = CheckpointStatus.CHECKED if met else CheckpointStatus.OPEN
        if checkpoint.status == wanted:
            continue
        checkpoint.status = wanted
        checkpoint.resolved_by, checkpoint.resolved_at = (actor, timezone.now()) if met else (None, None)
        checkpoint.save(update_fields=["status", "resolved_by", "resolved_at"])
        changed.append(checkpoint.key)
    return changed


def check_kpi_value(kpi, value: Decimal) -> None:
    """A figure a person could not have measured is refused, in words."""
    unit = kpi.rule.target.unit if kpi.rule.target else kpi.rule.unit
    if value < 0:
        raise DomainError(f"{kpi.metric} cannot be negative ({value:g}).")
    if unit == "pct" and value > 100:
        raise DomainError(f"{kpi.metric} is a percentage; {value:g}% is more than 100%.")


@transaction.atomic
def record_kpi_reading(
    *,
    engagement: Engagement,
    kpi: str,
    measured_on: date,
    value: Decimal,
    actor,
    note: str = "",
    request=None,
) -> KpiReading:
    engagement = Engagement.objects.for_org(engagement.organization_id).select_for_update().get(pk=engagement.pk)
    specs = {k.key: k for k in kpi_specs(engagement)}
    if kpi not in specs:
        raise DomainError(
            f"This playbook has no hypercare KPI {kpi!r}; choose one of: {', '.join(specs) or 'none'}."
        )
    if measured_on > timezone.localdate():
        raise DomainError("A figure cannot be measured in the future.")
    check_kpi_value(specs[kpi], value)
    reading = KpiReading.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        kpi=kpi,
        measured_on=measured_on,
        value=value,
        note=note.strip(),
        recorded_by=actor,
    )
    checked = _sync_open_gates(engagement, actor)
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="hypercare.kpi_recorded",
        data={"kpi": kpi, "value": str(value), "measured_on": measured_on.isoformat(), "checkpoints": checked},
    )
    return reading


def _sync_open_gates(engagement: Engagement, actor) -> list[str]:
    checked = []
    for gate in Gate.objects.for_org(engagement.organization).filter(engagement=engagement, status=GateStatus.OPEN):
        gate.engagement = engagement
        checked += sync_kpi_checkpoints(gate, actor=actor)
    return checked


# --------------------------------------------------------------------------------------------------
# Hypercare KPI readings as CSV: one reading a line, the same columns down and up, so a downloaded file can be
# corrected and uploaded again.

KPI_CSV_COLUMNS = ["kpi", "measured_on", "value", "note"]
KPI_CSV_MAX_ROWS = 5000
MAX_VALUE = Decimal(10) ** 10  # KpiReading.value holds 12 digits, 2 of them decimals
# A note a spreadsheet would run as a formula is written with a leading apostrophe, and read back without it.
FORMULA_START = ("=", "+", "-", "@")


def kpi_readings_csv(engagement: Engagement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KPI_CSV_COLUMNS)
    readings = KpiReading.objects.for_org(engagement.organization).filter(engagement=engagement)
    for r in readings.order_by("measured_on", "kpi", "created_at"):
        note = f"'{r.note}" if r.note.startswith(FORMULA_START) else r.note
        writer.writerow([r.kpi, r.measured_on.isoformat(), f"{r.value:f}", note])
    return out.getvalue()


def _parse_kpi_row(engagement: Engagement, specs: dict, row: dict, line: int) -> KpiReading:
    """One CSV line as an unsaved reading, or a DomainError naming the line and the column."""
    kpi = row["kpi"].strip()
    if kpi not in specs:
        raise DomainError(
            f"Line {line}, column kpi: unknown KPI {kpi!r}; this playbook's hypercare KPIs are {', '.join(specs)}."
        )
    raw_day = row["measured_on"].strip()
    try:
        measured_on = date.fromisoformat(raw_day)
    except ValueError:
        raise DomainError(f"Line {line}, column measured_on: write the day as YYYY-MM-DD (got {raw_day!r}).") from None
    if measured_on > timezone.localdate():
        raise DomainError(f"Line {line}, column measured_on: {raw_day} is in the future; a figure is measured first.")
    if measured_on < engagement.start_date:
        raise DomainError(
            f"Line {line}, column measured_on: {raw_day} is before the engagement started "
            f"({engagement.start_date:%-d %b %Y})."
        )
    raw_value = row["value"].strip()
    try:
        value = Decimal(raw_value)
    except InvalidOperation:
        raise DomainError(f"Line {line}, column value: a number is needed (got {raw_value!r}).") from None
    if not value.is_finite() or abs(value) >= MAX_VALUE:
        raise DomainError(
            f"Line {line}, column value: a finite number below {MAX_VALUE:,} is needed (got {raw_value!r})."
        )
    value = value.quantize(Decimal("0.01"))
    try:
        check_kpi_value(specs[kpi], value)
    except DomainError as exc:
        raise DomainError(f"Line {line}, column value: {exc}") from None
    note = (row.get("note") or "").strip()
    if note.startswith("'") and note[1:].startswith(FORMULA_START):
        note = note[1:]
    return KpiReading(
        organization=engagement.organization,
        engagement=engagement,
        kpi=kpi,
        measured_on=measured_on,
        value=value,
        note=note,
    )


def read_kpi_csv(engagement: Engagement, text: str, progress=None) -> list[KpiReading]:
    """Every line checked before anything is written; the first bad one is named with its line and column.
    progress(n), when given, hears how many readings are checked so far. NUL bytes are refused by imports.decode."""
    specs = {k.key: k for k in kpi_specs(engagement)}
    if not specs:
        raise DomainError("This playbook has no hypercare KPIs to record.")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        fields = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise DomainError(f"Line 1: not readable as CSV ({exc}).") from None
    if not fields:
        raise DomainError(f"The file is empty: line 1 must name the columns {', '.join(KPI_CSV_COLUMNS)}.")
    missing = [c for c in KPI_CSV_COLUMNS[:3] if c not in fields]
    unknown = [f or "(blank)" for f in fields if f not in KPI_CSV_COLUMNS]
    if missing or unknown:
        raise DomainError(
            f"Line 1: the columns are {', '.join(KPI_CSV_COLUMNS)} (note is optional)"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
            + "."
        )
    reader.fieldnames = fields
    readings: list[KpiReading] = []
    first_line: dict[tuple[str, date], int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if len(readings) >= KPI_CSV_MAX_ROWS:
                raise DomainError(f"Line {line}: at most {KPI_CSV_MAX_ROWS} readings per upload.")
            if None in row or any(row.get(c) is None for c in KPI_CSV_COLUMNS[:3]):
                raise DomainError(
                    f"Line {line}: expected the columns {', '.join(fields)}; the line has a different count of cells."
                )
            reading = _parse_kpi_row(engagement, specs, row, line)
            day = (reading.kpi, reading.measured_on)
            if day in first_line:
                raise DomainError(
                    f"Line {line}: {reading.kpi} on {reading.measured_on.isoformat()} is already on line "
                    f"{first_line[day]}; give one reading per KPI and day."
                )
            first_line[day] = line
            readings.append(reading)
            if progress:
                progress(len(readings))
    except csv.Error as exc:
        raise DomainError(f"Line {reader.line_num}: not readable as CSV ({exc}).") from None
    if not readings:
        raise DomainError("Line 2: the file has a header but no readings.")
    return readings


def import_kpi_readings(*, engagement: Engagement, text: str, actor, request=None) -> int:
    """Import a CSV of readings (columns kpi, measured_on, value, note): all of it or, on the first bad line,
    nothing. A reading already recorded for the same KPI and day is replaced, so a corrected file can be uploaded
    again. Returns how many readings were imported."""
    return save_kpi_readings(
        engagement=engagement, readings=read_kpi_csv(engagement, text), actor=actor, request=request
    )


@transaction.atomic
def save_kpi_readings(*, engagement: Engagement, readings: list[KpiReading], actor, request=None) -> int:
    """Write readings checked by read_kpi_csv in one transaction (checking stays outside it, so a worker's progress
    is visible while it checks)."""
    engagement = Engagement.objects.for_org(engagement.organization).select_for_update().get(pk=engagement.pk)
    same_day = Q()
    for r in readings:
        same_day |= Q(kpi=r.kpi, measured_on=r.measured_on)
    replaced, _ = (
        KpiReading.objects.for_org(engagement.organization).filter(engagement=engagement).filter(same_day).delete()
    )
    for r in readings:
        r.recorded_by = actor
    KpiReading.objects.bulk_create(readings)
    checked = _sync_open_gates(engagement, actor)
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="hypercare.kpis_imported",
        data={"readings": len(readings), "replaced": replaced, "checkpoints": checked},
    )
    return len(readings)
