"""Health-check metrics computed from the client's CRM, against the signed stage architecture.

Each signed stage says which CRM object, field and values represent it. From that and the connector's
aggregate calls (cost flat in record count) come: records entering each stage in the month, stage-to-stage
conversion, values present that the signed version does not allow, records in deprecated values, records
without a stage, time in stage and drop-off reason shares. What cannot be computed is recorded in
`missing` with the reason, so the rule reports "not evaluable" instead of passing.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from crm_connectors.audit.rules import object_kind
from crm_connectors.base import CrmError, FieldValue, ValueCount
from crm_connectors.models import CrmConnection
from engagements import definitions

from .models import MetricValue

logger = logging.getLogger(__name__)
REASON_WORDS = ("loss_reason", "lost_reason", "closed_lost_reason", "drop_off_reason", "reason_lost")


def _month(period: date) -> tuple[datetime, datetime]:
    start = datetime(period.year, period.month, 1, tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


@dataclass(frozen=True)
class Scope:
    """The values of a field that signed stages speak for: all of them (`values` None) or one pipeline's stages."""

    values: frozenset | set | None
    labels: dict[str, str]  # value (lower) -> label

    def covers(self, value: str) -> bool:
        return self.values is None or value.lower() in self.values

    def union(self, other: "Scope") -> "Scope":
        values = None if self.values is None or other.values is None else {*self.values, *other.values}
        return Scope(values, {**self.labels, **other.labels})


class CrmFigures:
    def __init__(self, engagement, connector, stages: list[dict]):
        self.engagement = engagement
        self.connector = connector
        self.stages = stages  # the signed version's stages that name CRM values
        self.missing: dict[str, str] = {}
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

    # ------------------------------------------------------------------------------------------

    def _store(
        self, metric: str, period: date, values: dict[str, float | None] | None = None, breakdown: dict | None = None
    ) -> None:
        org = self.engagement.organization
        for key, value in (values or {"": None}).items():
            MetricValue.objects.update_or_create(
                organization=org,
                engagement=self.engagement,
                metric=metric,
                key=key,
                period=period,
                defaults={"value": value, "breakdown": breakdown if key == "" else None, "source": "crm"},
            )

    def _fields(self) -> dict[tuple[str, str], list[dict]]:
        """Signed stages grouped by the CRM (object kind, field API name) that holds them, in stage order, each
        with `values`: its CRM values as the CRM spells them."""
        if "fields" not in self._cache:
            grouped: dict[tuple[str, str], list[dict]] = {}
            scopes: dict[tuple[str, str], Scope] = {}
            for stage in sorted(self.stages, key=lambda s: (s["domain"], s["order"])):
                place = self._place(stage)
                if isinstance(place, str):
                    self.errors.append(f"signed stage “{stage['name']}”: {place}")
                    continue
                kind, field_name, values, scope = place
                key = (kind, field_name)
                grouped.setdefault(key, []).append({**stage, "values": values})
                scopes[key] = scopes[key].union(scope) if key in scopes else scope
            self._cache["fields"], self._cache["scopes"] = grouped, scopes
        return self._cache["fields"]

    def _place(self, stage: dict) -> tuple[str, str, list[str], "Scope"] | str:
        """Where a signed stage lives, read the way the audit reads it: the object as people name it
        ("Opportunity", "Deals"), the field by API name or label, or a pipeline by id or label (its stage field)."""
        kind = object_kind(stage["crm_object"])
        if kind is None:
            return f"“{stage['crm_object']}” is not a CRM object GTM Ops knows"
        wanted = stage["crm_field"].strip().lower()
        fields = self.connector.fields(kind)
        found = next((f for f in fields if wanted in (f.api_name.lower(), f.label.lower())), None)
        options, whole_field = (found.values if found else ()), True
        if found is None and kind in ("deal", "ticket"):
            pipelines = self.connector.pipelines(kind)
            pipeline = next((p for p in pipelines if wanted in (p.id.lower(), p.label.lower())), None)
            found = next((f for f in fields if f.role == "stage"), None) if pipeline else None
            options = [FieldValue(s.id, s.label) for s in pipeline.stages] if pipeline else ()
            whole_field = False
        if found is None:
            return f"the CRM has no {kind} field or pipeline “{stage['crm_field']}”"
        spelled = {o.api_value.lower(): o.api_value for o in options} | {o.label.lower(): o.api_value for o in options}
        values = [spelled.get(str(v).lower(), str(v)) for v in stage["crm_values"]]
        labels = {o.api_value.lower(): o.label for o in (found.values or options)}
        return (
            kind,
            found.api_name,
            values,
            Scope(None if whole_field else {o.api_value.lower() for o in options}, labels),
        )

    def _in_scope(self) -> list[tuple[ValueCount, str, bool]]:
        """(count, label, signed) for every value present in the signed fields: the whole field, or only the stages
        of the signed pipelines (another pipeline's stages are its own business), plus values no option lists."""
        rows = []
        for key, stages in self._fields().items():
            scope, signed = self._cache["scopes"][key], {v.lower() for v in self._signed_values(stages)}
            for v in self._values()[key].values:
                if v.count > 0 and (not v.known or scope.covers(v.value)):
                    rows.append((v, scope.labels.get(v.value.lower(), v.label or v.value), v.value.lower() in signed))
        return rows

    def _signed_values(self, stages: list[dict]) -> list[str]:
        return [v for stage in stages for v in stage["values"]]

    def _entries(self, period: date) -> dict[str, float | None]:
        if ("entries", period) not in self._cache:
            start, end = _month(period)
            counts: dict[str, float | None] = {}
            for (kind, field_name), stages in self._fields().items():
                moves = self.connector.stage_transitions(
                    kind, field_name, start, end, values=self._signed_values(stages)
                )
                if not moves.available:
                    note = moves.note or f"the CRM does not count entries into {field_name}"
                    self._cache[("unmeasured", period)] = note
                for stage in stages:
                    found = [moves.count(v) for v in stage["values"]]
                    # A stage of several values (Proposal Sent, Contract Negotiated) is entered once, usually at its
                    # first value: the largest count is the closest aggregate figure; their sum counts moves within.
                    counts[stage["name"]] = None if any(c is None for c in found) else float(max(found))
            self._cache[("entries", period)] = counts
        return self._cache[("entries", period)]

    def _note_unmeasured(self, metric: str, period: date) -> None:
        if ("unmeasured", period) in self._cache:
            self.missing[metric] = self._cache[("unmeasured", period)]

    def compute(self, metric: str, period: date) -> None:
        if not self.stages:
            self.missing[metric] = "no signed stage architecture with CRM values to measure against"
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
        self._store("stage_entry_volume", period, self._entries(period))
        self._note_unmeasured("stage_entry_volume", period)

    def _stage_conversion_rate(self, period: date) -> None:
        entries = self._entries(period)
        self._note_unmeasured("stage_conversion_rate", period)
        rates = {}
        for stages in self._fields().values():
            for earlier, later in zip(stages, stages[1:], strict=False):
                a, b = entries.get(earlier["name"]), entries.get(later["name"])
                if a and b is not None:
                    rates[f"{earlier['name']}→{later['name']}"] = round(b / a * 100, 1)
        if rates:
            self._store("stage_conversion_rate", period, rates)
        else:
            self.missing["stage_conversion_rate"] = "no stage entries this month to compute conversion from"

    def _values(self) -> dict[tuple[str, str], object]:
        if "values" not in self._cache:
            self._cache["values"] = {key: self.connector.value_counts(*key) for key in self._fields()}
        return self._cache["values"]

    def present_and_signed(self) -> tuple[set | None, set | None]:
        if not self.stages:
            return None, None
        try:
            rows = self._in_scope()
        except CrmError as exc:
            self.errors.append(f"rogue values: {exc}")
            self.missing["unapproved_stage_values"] = f"the CRM could not be read: {exc}"
            return None, {v for s in self.stages for v in s["crm_values"]}
        # Compared by label, as people read them ("Verbal Commit", not a stage id); both sides are spelled alike.
        signed = {
            self._cache["scopes"][key].labels.get(v.lower(), v)
            for key, stages in self._fields().items()
            for v in self._signed_values(stages)
        }
        return {label for _, label, _ in rows}, signed

    def _records_in_deprecated_stages(self, period: date) -> None:
        stale = sum(v.count for v, _, signed in self._in_scope() if not signed)
        self._store("records_in_deprecated_stages", period, {"": float(stale)})

    def _records_without_stage(self, period: date) -> None:
        total = sum(self.connector.count_without_value(kind, field_name) for kind, field_name in self._fields())
        self._store("records_without_stage", period, {"": float(total)})

    def _time_in_stage_days(self, period: date) -> None:
        start, end = _month(period)
        days = {}
        for (kind, field_name), stages in self._fields().items():
            durations = self.connector.time_in_stage(kind, field_name, start, end, values=self._signed_values(stages))
            for stage in stages:
                measured = [durations.stage(v) for v in stage["values"]]
                averages = [m.average_days for m in measured if m is not None and m.average_days is not None]
                if averages:
                    days[stage["name"]] = round(sum(averages) / len(averages), 1)
        if days:
            self._store("time_in_stage_days", period, days)
        else:
            self.missing["time_in_stage_days"] = "the CRM keeps no stage history for these fields"

    def _drop_off_reason_share(self, period: date) -> None:
        deal_fields = self.connector.fields("deal")
        # Only a picklist can be counted by value; a free-text reason (HubSpot's closed_lost_reason) cannot.
        reason = next(
            (f for f in deal_fields if f.is_picklist and any(w in f.api_name.lower() for w in REASON_WORDS)), None
        )
        if reason is None:
            self.missing["drop_off_reason_share"] = "no drop-off reason field on deals"
            return
        counts = self.connector.value_counts("deal", reason.api_name)
        breakdown = {v.label or v.value: v.count for v in counts.values if v.count > 0}
        if not breakdown:
            self.missing["drop_off_reason_share"] = f"no deal has a {reason.label} yet"
            return
        self._store("drop_off_reason_share", period, breakdown=breakdown)
