"""The change plan: a spec compared with the live CRM, one operation per difference, each with its effect in records.

Operations are data, so apply (next) can run them one by one and undo them from their prior state:

    {"id", "kind": add_value | relabel_value | set_probability | deactivate_value | create_field |
     create_pipeline_stage, "object", "field", "pipeline", "value", "label", "probability" (0-100 or null),
     "prior": the CRM's state of that value or field today (null when absent), "target": the state after,
     "mapping": the value a retired value's records move to (deactivate_value only), "records": records affected}

A deactivation without a mapping target is never planned: it is listed under `held` with the reason, so nothing
destructive can run before a consultant names where its records go. The CRM is read through the connector
(`ConnectorCatalog`: describe / properties and pipelines, then aggregate counts), and nothing is assumed to exist.

Records may also hold values no option lists (and the spec does not name): apply has nothing to retire there, yet the
audit counts them as drift. The plan reads them (`unlisted`, kind move_records: the value, its records and the
mapping target the spec's "unlisted" value names) for record moves to move; without a target they are held too.
"""

from __future__ import annotations

from typing import Any

from crm_connectors.base import CrmConnector, CrmField, Pipeline
from crm_connectors.mapping import ConnectorCatalog, find_field, stage_field

from . import spec as specs

UNLISTED_RECORDS = 2_000  # records read per field to name the values no option lists (HubSpot pages them)


class ImplausibleFigure(ValueError):
    """A count the CRM gave that cannot be true (negative): a defect to report, not a figure to show."""


class Counter:
    """Records per value, read once per field (Salesforce GROUP BY) or per pipeline object (stage counts)."""

    def __init__(self, connector: CrmConnector) -> None:
        self.connector = connector
        self._fields: dict[tuple[str, str], dict[str, int]] = {}
        self._stages: dict[str, Any] = {}

    def field(self, kind: str, field: str, values: list[str]) -> dict[str, int]:
        key = (kind, field)
        missing = [v for v in values if v.lower() not in self._fields.get(key, {})]
        if missing:
            held = self.connector.held_counts(kind, field, missing)
            known = self._fields.setdefault(key, {})
            for v in missing:
                known[v.lower()] = next((n for held_value, n in held.items() if held_value.lower() == v.lower()), 0)
        return self._fields[key]

    def count(self, kind: str, field: str, pipeline: str | None, value: str) -> int:
        if pipeline is not None:
            if kind not in self._stages:
                self._stages[kind] = self.connector.stage_counts(kind)
            n = self._stages[kind].count(value, pipeline)
        else:
            n = self.field(kind, field, [value]).get(value.lower(), 0)
        if n < 0:
            raise ImplausibleFigure(
                f"The CRM counted {n} records holding {value!r} in {kind}.{field}: a count cannot be negative."
            )
        return n


def _state(label: str, active: bool, probability: float | None) -> dict:
    return {"label": label, "active": active, "probability": _percent(probability)}


def _percent(probability: float | None) -> int | None:
    """The CRM's 0..1 probability as the spec's 0..100."""
    return None if probability is None else round(probability * 100)


def _live_options(found: CrmField | None, pipeline: Pipeline | None) -> list[tuple[str, str, bool, float | None]]:
    if pipeline is not None:
        return [(s.id, s.label, s.active, s.probability) for s in pipeline.stages]
    return [(v.api_value, v.label, v.active, v.probability) for v in (found.values if found else ())]


def _match(options: list, value: str, label: str) -> tuple | None:
    wanted = {specs.norm(value), specs.norm(label)}
    return next((o for o in options if specs.norm(o[0]) == specs.norm(value)), None) or next(
        (o for o in options if specs.norm(o[1]) in wanted), None
    )


def unlisted_reader(connector: CrmConnector) -> specs.Unlisted:
    """The spec's reading of the values records hold that no option (nor the spec) lists."""

    def read(kind: str, field: str, pipeline: str | None, listed: list[str]) -> dict[str, int]:
        return connector.unlisted_values(kind, field, listed, pipeline, UNLISTED_RECORDS)[0]

    return read


def _unlisted(
    connector: CrmConnector, f: dict, field: str, options: list, held: list[dict], unreadable: list[str]
) -> list[dict]:
    """One move_records operation per value records hold that neither the CRM's options nor the spec list; held
    without the mapping target the spec names for it."""
    base = {"object": f["object"], "field": field, "pipeline": f["pipeline"]}
    listed = [o[0] for o in options] + [v["value"] for v in f["values"] if v["action"] != "unlisted"]
    found, total = connector.unlisted_values(f["object"], field, listed, f["pipeline"], UNLISTED_RECORDS)
    named = {specs.norm(v["value"]): v for v in f["values"] if v["action"] == "unlisted"}
    planned = []
    for value, n in sorted(found.items()):
        if n < 0:
            raise ImplausibleFigure(
                f"The CRM counted {n} records holding {value!r} in {f['object']}.{field}: a count cannot be negative."
            )
        entry = named.get(specs.norm(value))
        mapping = entry["maps_to"] if entry else None
        op = {**base, "kind": "move_records", "value": value, "label": value, "probability": None, "prior": None}
        op.update(target=None, mapping=mapping, records=n)
        if mapping:
            planned.append(op)
        elif entry:
            held.append({**op, "reason": "no mapping target: choose the signed value its records move to first"})
        else:
            held.append({**op, "reason": "not in the spec (new since it was made): generate a new version to choose"})
    if total > sum(found.values()):
        unreadable.append(
            f"{total:,} records hold values no option of {f['object_label']} {f['field_label']} lists; the values of "
            f"the first {sum(found.values()):,} are planned: move them, then compare again"
        )
    return planned


def make(document: dict, connector: CrmConnector, *, moves: bool = True) -> dict:
    """Compare the spec document with the CRM the connector reads now. Returns operations, held operations, the
    records on unlisted values to move (with `moves`; a verification reads configuration only), what could not be
    read, the metadata hash of this read and the calls it spent."""
    catalog = ConnectorCatalog(connector)
    counter = Counter(connector)
    operations: list[dict] = []
    held: list[dict] = []
    unlisted: list[dict] = []
    unreadable: list[str] = []
    for f in document["fields"]:
        kind, field, pipeline_id = f["object"], f["field"], f["pipeline"]
        base = {"object": kind, "field": field, "pipeline": pipeline_id}
        fields = catalog.fields(kind)
        if fields is None:
            unreadable.append(
                f"{catalog.crm} has no {f['object_label']} object here: {f['field_label']} is not planned"
            )
            continue
        pipeline = None
        if pipeline_id is not None:
            pipeline = next((p for p in catalog.pipelines(kind) if p.id == pipeline_id), None)
            if pipeline is None or stage_field(fields) is None:
                unreadable.append(f"the {f['pipeline_label']} pipeline of {f['object_label']} is not in the CRM now")
                continue
        live_field = find_field(fields, field) if pipeline is None else stage_field(fields)
        if live_field is None:
            kept = [v for v in f["values"] if v["action"] != "retire"]
            operations.append(
                {
                    **base,
                    "kind": "create_field",
                    "value": None,
                    "label": f["field_label"],
                    "probability": None,
                    "prior": None,
                    "target": {"type": f["type"], "values": [v["label"] for v in kept]},
                    "mapping": None,
                    "records": 0,
                }
            )
            continue
        options = _live_options(live_field, pipeline)
        stage_like = kind == "deal"
        if moves:
            unlisted += _unlisted(connector, f, live_field.api_name, options, held, unreadable)
        for v in f["values"]:
            if v["action"] == "unlisted":
                continue  # records only: read above
            found = _match(options, v["value"], v["label"])
            if v["action"] == "retire":
                if found is None or not found[2]:
                    continue  # gone or retired already
                op = {
                    **base,
                    "kind": "deactivate_value",
                    "value": found[0],
                    "label": found[1],
                    "probability": None,
                    "prior": _state(found[1], True, found[3]),
                    "target": _state(found[1], False, found[3]),
                    "mapping": v["maps_to"],
                    "records": counter.count(kind, live_field.api_name, pipeline_id, found[0]),
                }
                if v["maps_to"]:
                    operations.append(op)
                else:
                    held.append({**op, "reason": "no mapping target: choose the value its records move to first"})
                continue
            target = _state(v["label"], True, (v["probability"] / 100) if v["probability"] is not None else None)
            if found is None:
                add = "create_pipeline_stage" if pipeline_id is not None else "add_value"
                operations.append(
                    {
                        **base,
                        "kind": add,
                        "value": v["value"],
                        "label": v["label"],
                        "probability": v["probability"],
                        "prior": None,
                        "target": target,
                        "mapping": None,
                        "records": counter.count(kind, live_field.api_name, pipeline_id, v["value"]),
                    }
                )
                continue
            prior = _state(found[1], found[2], found[3])
            records = None
            if not found[2] or found[1] != v["label"]:
                records = counter.count(kind, live_field.api_name, pipeline_id, found[0])
            if not found[2]:
                operations.append(
                    {
                        **base,
                        "kind": "add_value",
                        "value": found[0],
                        "label": v["label"],
                        "probability": v["probability"],
                        "prior": prior,
                        "target": target,
                        "mapping": None,
                        "records": records,
                    }
                )
            elif found[1] != v["label"]:
                operations.append(
                    {
                        **base,
                        "kind": "relabel_value",
                        "value": found[0],
                        "label": v["label"],
                        "probability": None,
                        "prior": prior,
                        "target": target,
                        "mapping": None,
                        "records": records,
                    }
                )
            if stage_like and v["probability"] is not None and prior["probability"] != v["probability"]:
                operations.append(
                    {
                        **base,
                        "kind": "set_probability",
                        "value": found[0],
                        "label": v["label"],
                        "probability": v["probability"],
                        "prior": prior,
                        "target": target,
                        "mapping": None,
                        "records": counter.count(kind, live_field.api_name, pipeline_id, found[0]),
                    }
                )
    for n, op in enumerate([*operations, *held, *unlisted], start=1):
        op["id"] = f"op-{n}"
    return {
        "operations": operations,
        "held": held,
        "unlisted": unlisted,
        "unreadable": unreadable,
        "metadata_hash": specs.digest(specs.metadata(catalog)),
        "calls": connector.calls_spent,
    }
