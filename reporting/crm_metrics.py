"""Health-check metrics computed from the client's CRM, against the signed stage architecture.

Where each signed stage lives (object, field, pipeline, values) comes from `crm_connectors.mapping`, the reading
the audit shares. From it and the connector's calls (aggregates, and on Salesforce the history rows of the month)
come: records entering each stage in the month, conversion between consecutive stages of one domain in one place,
values present that the signed version does not allow, records in retired values, records without a stage, time
in stage and drop-off reason shares.

A figure is never invented. What cannot be computed is recorded with the reason in words: in `missing` per metric
(what the rule shows as "not evaluable") and in `notes` per metric and key. A number that cannot be true (a
conversion above 100%, a negative count) is a defect of the metric on this org, stored as not evaluable with its
reason, never as a figure that could raise a flag.
"""

import logging
from datetime import UTC, date, datetime, timedelta

from crm_connectors.base import CrmError
from crm_connectors.mapping import OBJECT_LABELS, Architecture, ConnectorCatalog, Judged, loss_reason_field
from crm_connectors.models import CrmConnection
from engagements import definitions

from .models import Granularity, MetricValue

logger = logging.getLogger(__name__)
NO_ARCHITECTURE = "no signed stage architecture with CRM values to measure against"


def _month(period: date) -> tuple[datetime, datetime]:
    start = datetime(period.year, period.month, 1, tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _pct(value: float) -> str:
    return f"{value:.0f}%"


class CrmFigures:
    def __init__(self, engagement, connector, stages: list[dict]):
        self.engagement = engagement
        self.connector = connector
        self.stages = stages  # the signed version's stages that name CRM values
        self.catalog = ConnectorCatalog(connector)
        self.missing: dict[str, str] = {}  # metric -> why (some of) its figures are not evaluable
        self.notes: dict[tuple[str, str], str] = {}  # (metric, key) -> why that figure is not evaluable
        self.errors: list[str] = []
        self._cache: dict = {}

    @classmethod
    def for_engagement(cls, engagement) -> "CrmFigures | None":
        connection = (
            CrmConnection.objects.for_org(engagement.organization).active().filter(client=engagement.client).first()
        )
        if connection is None:
            return None
        version = definitions.latest_version(engagement)
        signed = version.content["stages"] if version is not None and version.signed_at else []
        return cls(engagement, connection.connector(), [s for s in signed if s["crm_field"] and s["crm_values"]])

    @property
    def calls(self) -> int:
        return self.connector.calls_spent

    def close(self) -> None:
        self.connector.close()

    def reason(self, metric: str, key: str = "") -> str:
        """Why one figure (metric, key) is not evaluable; the metric's reason when the key has none of its own."""
        return self.notes.get((metric, key)) or self.missing.get(metric, "")

    # ------------------------------------------------------------------------------------------

    @property
    def architecture(self) -> Architecture:
        """The signed stages placed in the CRM, read once; a stage with nowhere to live makes the run partial and
        only its own figures not evaluable."""
        if "architecture" not in self._cache:
            arch = Architecture.of(self.stages, self.catalog)
            for lost in arch.unplaced:
                self.errors.append(f"signed stage “{lost.name}”: {lost.reason}")
            self._cache["architecture"] = arch
        return self._cache["architecture"]

    def _store(self, metric: str, period: date, values: dict[str, float | None] | None = None, breakdown=None) -> None:
        # One upsert for every key of the metric: a row per key and query was a tenth of a run's CPU
        org = self.engagement.organization
        rows = [
            MetricValue(
                organization=org,
                engagement=self.engagement,
                metric=metric,
                key=key,
                period=period,
                granularity=Granularity.MONTH,
                value=value,
                breakdown=breakdown if key == "" else None,
                source="crm",
            )
            for key, value in (values or {"": None}).items()
        ]
        MetricValue.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["engagement", "metric", "key", "granularity", "period"],
            update_fields=["value", "breakdown", "source"],
        )

    def _not_evaluable(self, metric: str, key: str, reason: str) -> None:
        """Record why one figure is not evaluable; the metric's reason lists each distinct reason once."""
        self.notes[(metric, key)] = reason
        by_reason: dict[str, list[str]] = {}
        for (m, k), text in self.notes.items():
            if m == metric:
                by_reason.setdefault(text, []).append(k)
        if len(by_reason) == 1:
            self.missing[metric] = reason
        else:
            self.missing[metric] = "; ".join(
                f"{', '.join(k for k in keys if k) or 'overall'}: {text}" for text, keys in by_reason.items()
            )

    # ------------------------------------------------------------------------------------------ entries

    def _entries(self, period: date) -> dict[str, float | None]:
        """Records that entered each signed stage in the month, by stage name (None: not measured, see notes)."""
        if ("entries", period) in self._cache:
            return self._cache[("entries", period)]
        start, end = _month(period)
        counts: dict[str, float | None] = {}
        reasons: dict[str, str] = {}
        for lost in self.architecture.unplaced:
            counts[lost.name], reasons[lost.name] = None, f"not evaluated: {lost.reason}"
        for (kind, field_name), placed in self.architecture.fields().items():
            values = list(dict.fromkeys(v for p in placed for v in p.values))
            try:
                moves = self.connector.stage_transitions(kind, field_name, start, end, values=values)
            except CrmError as exc:
                self.errors.append(f"stage entries of {kind}.{field_name}: {exc}")
                for p in placed:
                    counts[p.name], reasons[p.name] = None, f"the CRM could not be read: {exc}"
                continue
            # Records created in a value entered it, as HubSpot's 'date entered' counts them (on Salesforce the
            # connector reads their first values apart; for a month long past it cannot, and only changes count)
            for p in placed:
                found = [moves.entered(v) for v in p.values]
                if any(c is None for c in found):
                    counts[p.name] = None
                    reasons[p.name] = (
                        moves.note or f"the CRM does not say when records entered {p.place.field_label}"
                    ).strip()
                elif any(c < 0 for c in found):
                    counts[p.name] = None
                    reasons[p.name] = f"the CRM returned a negative count for {p.name}: a defect, not a figure"
                else:
                    # A stage of several values (Proposal Sent, Contract Negotiated) is entered once, usually at its
                    # first value: the largest count is the closest aggregate figure; their sum counts moves within.
                    counts[p.name] = float(max(found))
        self._cache[("entries", period)] = counts
        self._cache[("entry reasons", period)] = reasons
        return counts

    def _entry_reason(self, period: date, stage: str) -> str:
        return self._cache.get(("entry reasons", period), {}).get(stage, "")

    def compute(self, metric: str, period: date) -> None:
        if not self.stages:
            self.missing[metric] = NO_ARCHITECTURE
            return
        method = getattr(self, f"_{metric}", None)
        if method is None:
            self.missing[metric] = f"{metric.replace('_', ' ')} is not computed from the CRM yet: enter it by hand"
            return
        try:
            method(period)
        except CrmError as exc:
            self.errors.append(f"{metric}: {exc}")
            self.missing[metric] = f"the CRM could not be read: {exc}"

    def _stage_entry_volume(self, period: date) -> None:
        entries = self._entries(period)
        for stage, count in entries.items():
            if count is None:
                self._not_evaluable("stage_entry_volume", stage, self._entry_reason(period, stage))
        self._store("stage_entry_volume", period, entries)

    # ------------------------------------------------------------------------------------------ conversion

    def _rate(self, metric: str, key: str, earlier: str, later: str, period: date) -> float | None:
        """Entries into `later` over entries into `earlier` in the month, in percent; None (with the reason noted)
        when either is unmeasured, nothing entered `earlier`, or the rate cannot be a conversion."""
        entries = self._entries(period)
        a, b = entries.get(earlier), entries.get(later)
        if a is None or b is None:
            unmeasured = earlier if a is None else later
            self._not_evaluable(metric, key, self._entry_reason(period, unmeasured) or f"{unmeasured} is not measured")
            return None
        if a == 0:
            self._not_evaluable(metric, key, f"no record entered {earlier} this month, so there is nothing to convert")
            return None
        rate = b / a * 100
        if rate > 100:
            self._not_evaluable(
                metric,
                key,
                f"more records entered {later} ({b:,.0f}) than {earlier} ({a:,.0f}) this month, a rate of "
                f"{_pct(rate)}: records reach {later} without passing {earlier}, so this is not a conversion rate "
                "(check the stage mapping or the way records enter these stages)",
            )
            return None
        return round(rate, 1)

    def _stage_conversion_rate(self, period: date) -> None:
        metric = "stage_conversion_rate"
        pairs = self.architecture.transitions()
        if not pairs:
            self.missing[metric] = (
                "no two consecutive signed stages of one domain share a field or pipeline, so no conversion is measured"
            )
            return
        rates = {}
        for earlier, later in pairs:
            key = f"{earlier.name}→{later.name}"
            rates[key] = self._rate(metric, key, earlier.name, later.name, period)
        self._store(metric, period, rates)

    def _mql_to_sql_rate(self, period: date) -> None:
        metric = "mql_to_sql_rate"
        mql, sql = self.architecture.stage("MQL"), self.architecture.stage("SQL")
        lost = [u for u in self.architecture.unplaced if u.name in ("MQL", "SQL")]
        if lost:
            self.missing[metric] = f"not evaluated: {lost[0].reason}"
            return
        if mql is None or sql is None:
            self.missing[metric] = "MQL and SQL are not both signed with CRM values"
            return
        if (mql.domain, mql.place.key) != (sql.domain, sql.place.key):
            self.missing[metric] = (
                f"MQL ({mql.place.title}) and SQL ({sql.place.title}) are signed on different places, so one "
                "cannot be read as the conversion of the other"
            )
            return
        rate = self._rate(metric, "", "MQL", "SQL", period)
        self._store(metric, period, {"": rate})

    def _time_in_stage_days(self, period: date) -> None:
        metric = "time_in_stage_days"
        start, end = _month(period)
        days: dict[str, float | None] = {}
        for lost in self.architecture.unplaced:
            days[lost.name] = None
            self._not_evaluable(metric, lost.name, f"not evaluated: {lost.reason}")
        for (kind, field_name), placed in self.architecture.fields().items():
            values = list(dict.fromkeys(v for p in placed for v in p.values))
            durations = self.connector.time_in_stage(kind, field_name, start, end, values=values)
            for p in placed:
                measured = [durations.stage(v) for v in p.values]
                averages = [m.average_days for m in measured if m is not None and m.average_days is not None]
                if averages and min(averages) >= 0:
                    days[p.name] = round(sum(averages) / len(averages), 1)
                    if durations.sampled and durations.note:  # a partial average: say which stays it covers
                        self.notes[(metric, p.name)] = durations.note
                    continue
                days[p.name] = None
                if averages:
                    reason = f"the CRM's history gives a negative time in {p.name}: a defect, not a figure"
                elif not durations.available:
                    reason = durations.note or f"the CRM keeps no history of {p.place.field_label}"
                else:
                    reason = f"no record left {p.name} this month"
                self._not_evaluable(metric, p.name, reason)
        self._store(metric, period, days)

    # ------------------------------------------------------------------------------------------ values present

    def _counts(self, judged: Judged) -> list[tuple[str, int]]:
        """(value, records) held in one judged place; values no option names are included."""
        place = judged.place
        if self.connector.counts_per_value:
            return self._judged_counts(judged)
        if place.role == "stage":
            if ("stage counts", place.kind) not in self._cache:
                self._cache[("stage counts", place.kind)] = self.connector.stage_counts(place.kind)
            counts = self._cache[("stage counts", place.kind)]
            return [(s.value, s.count) for s in counts.stages if s.count > 0 and place.holds(s.value, s.pipeline_id)]
        counts = self.connector.value_counts(place.kind, place.field)
        held = [(v.value, v.count) for v in counts.values if v.count > 0]
        unnamed = counts.unknown_total - sum(v.count for v in counts.values if not v.known)
        if unnamed > 0:  # HubSpot names values no option lists only when records are read (deep)
            held.append(("", unnamed))
        return held

    def _judged_counts(self, judged: Judged) -> list[tuple[str, int]]:
        """Where each value counted costs a request: only the values a rule judges (rogue or retired options), and
        values no option lists once per field. Signed values held by records change no figure, so they are not
        counted."""
        place = judged.place
        wanted = [o.value for o in place.options if judged.rogue(o.value) or judged.retired(o.value)]
        held = list(self.connector.held_counts(place.kind, place.field, wanted).items())
        if place.pipeline_id is None:  # a stage no pipeline lists belongs to no pipeline's place
            key = ("unlisted", place.kind, place.field)
            if key not in self._cache:
                self._cache[key] = self.connector.count_unlisted(place.kind, place.field)
            if self._cache[key] > 0:
                held.append(("", self._cache[key]))
        return held

    def _judged_values(self) -> list[tuple[Judged, str, int]]:
        """(place, value, records) for every value held in a judged place, read once per run."""
        if "judged" not in self._cache:
            rows = []
            for judged in self.architecture.judged(self.catalog):
                try:
                    rows += [(judged, value, n) for value, n in self._counts(judged)]
                except CrmError as exc:
                    self.errors.append(f"values of {judged.place.title}: {exc}")
                    if judged.is_signed:
                        self._cache["judged error"] = f"the CRM could not be read: {exc}"
            self._cache["judged"] = rows
        return self._cache["judged"]

    @staticmethod
    def _named(judged: Judged, value: str) -> str:
        """A value as a consultant reads it: its label, with the place it was found in."""
        place = judged.place
        shown = place.label(value) if value else "values outside the field's options (a deep audit names them)"
        return f"{shown} ({place.name}, {OBJECT_LABELS[place.kind]})"

    def _unapproved_stage_values(self, period: date) -> None:
        self._judged_values()
        if "judged error" in self._cache:
            self.missing["unapproved_stage_values"] = self._cache["judged error"]

    def present_and_signed(self) -> tuple[set | None, set | None]:
        """The values held by records in the judged places, and those among them the signed architecture allows,
        each named with its place: a value is judged on its own field or pipeline, so Contact "MQL" is not hidden
        behind Lead "MQL". Rogue = held but not allowed on a signed place, or listed by no option anywhere."""
        if not self.stages:
            return None, None
        try:
            rows = self._judged_values()
        except CrmError as exc:
            self.errors.append(f"rogue values: {exc}")
            self.missing["unapproved_stage_values"] = f"the CRM could not be read: {exc}"
            return None, set()
        if "judged error" in self._cache:
            self.missing["unapproved_stage_values"] = self._cache["judged error"]
            return None, set()
        present = {self._named(j, v) for j, v, _ in rows}
        allowed = {self._named(j, v) for j, v, _ in rows if v and not j.rogue(v)}
        return present, allowed

    def _records_in_deprecated_stages(self, period: date) -> None:
        """Records in retired values only: options the CRM keeps inactive (Salesforce) or hidden (HubSpot), on every
        judged place of a signed object. Unsigned active values are the rogue audit's business."""
        retired = sum(n for j, v, n in self._judged_values() if v and j.retired(v))
        self._store("records_in_deprecated_stages", period, {"": float(retired)})

    def _records_without_stage(self, period: date) -> None:
        metric = "records_without_stage"
        unreadable = list(dict.fromkeys(lost.reason for lost in self.architecture.unplaced if lost.missing_field))
        if unreadable:  # a total that leaves out a field would undercount without saying so
            self.missing[metric] = f"not evaluated: {'; '.join(unreadable)}"
            return
        if not self.architecture.placed:
            self.missing[metric] = "no signed stage could be placed in the CRM"
            return
        total = sum(self.connector.count_without_value(kind, name) for kind, name in self.architecture.fields())
        self._store(metric, period, {"": float(total)})

    # ------------------------------------------------------------------------------------------ drop-off reasons

    def _drop_off_reason_share(self, period: date) -> None:
        metric = "drop_off_reason_share"
        deal_fields = self.catalog.fields("deal")
        if deal_fields is None:
            self.missing[metric] = "the CRM has no deal object here"
            return
        reason = loss_reason_field(deal_fields)
        if reason is None:
            self.missing[metric] = "no drop-off reason field on deals that this user can read"
            return
        free_text = not reason.is_picklist
        try:
            counts = self.connector.value_counts("deal", reason.api_name)
        except CrmError as exc:
            what = "free text, and the CRM could not group it" if free_text else "could not be read"
            self.missing[metric] = f"deals' {reason.label} is {what}: {exc}"
            return
        breakdown: dict[str, int] = {}
        for v in counts.values:
            if v.count <= 0 or not v.value:
                continue
            name = v.label or v.value
            if free_text:  # grouped as written (case and spacing aside): say so where it is read
                name = f"“{name}” (free text)"
            breakdown[name] = breakdown.get(name, 0) + v.count
        if not breakdown:
            self.missing[metric] = f"no deal has a {reason.label} yet"
            return
        self._store(metric, period, breakdown=breakdown)
        if free_text and counts.note:
            self.notes[(metric, "")] = counts.note


__all__ = ["CrmFigures"]
