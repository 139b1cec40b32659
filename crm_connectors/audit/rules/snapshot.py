"""What a rule reads: the engine's snapshot (objects, fields, pipelines, counts, and the fields the connector
could not read) and the Context it judges it in (thresholds, the signed stages, earlier audits)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ... import mapping, vocabulary
from ...base import field_role
from .lexicon import (
    FORECAST_FIELD,
    PEOPLE,
    REASON_FIELD,
    SEGMENT_CONCEPTS,
    SEGMENT_FIELDS_READ,
    THRESHOLDS,
    norm,
)


class Snapshot:
    """Read-only helpers over the engine's snapshot dict."""

    def __init__(self, data: dict) -> None:
        self.data = data or {}
        self.unread: dict[str, str] = {}  # "object.field" -> why, for the rule being evaluated

    def unreadable(self, kind: str, *, roles: tuple[str, ...] = (), pattern: re.Pattern | None = None) -> list[dict]:
        """Fields of `kind` the connector expected but could not read (missing, or hidden from this user by
        field-level security), narrowed to those whose name reads as one of `roles` or matches `pattern`."""
        out = []
        for row in self.data.get("unreadable") or []:
            if row.get("object") != kind:
                continue
            name = row.get("field") or ""
            if roles and field_role(kind, name, "") not in roles:
                continue
            if pattern is not None and not pattern.search(norm(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name))):
                continue
            out.append(row)
        return out

    def not_read(self, rows: Iterable[dict]) -> None:
        """Note fields a rule wanted and could not read (it judges the rest and says which it did not read)."""
        for row in rows:
            self.unread[f"{row['object']}.{row['field']}"] = unreadable_reason([row])

    @property
    def platform(self) -> str:
        return self.data.get("platform", "")

    @property
    def crm(self) -> str:
        return {"salesforce": "Salesforce", "hubspot": "HubSpot"}.get(self.platform, "the CRM")

    @property
    def deep(self) -> bool:
        return bool(self.data.get("deep"))

    def has(self, section: str) -> bool:
        return bool((self.data.get("sections") or {}).get(section))

    def available(self, kind: str) -> bool:
        return bool((self.data.get("objects") or {}).get(kind, {}).get("available"))

    def records(self, kind: str) -> int | None:
        return (self.data.get("objects") or {}).get(kind, {}).get("records")

    def fields(self, kind: str) -> list[dict]:
        return (self.data.get("fields") or {}).get(kind) or []

    def field(self, kind: str, name: str) -> dict | None:
        wanted = (name or "").lower()
        for f in self.fields(kind):
            if f["name"].lower() == wanted or norm(f.get("label")) == norm(name):
                return f
        return None

    def role_fields(self, kind: str, *roles: str) -> list[dict]:
        return [f for f in self.fields(kind) if f.get("role") and (not roles or f["role"] in roles)]

    def pipelines(self, kind: str = "deal") -> list[dict]:
        return (self.data.get("pipelines") or {}).get(kind) or []

    def active_pipelines(self, kind: str = "deal") -> list[dict]:
        return [p for p in self.pipelines(kind) if p.get("active", True)]

    def value_counts(self, kind: str, name: str) -> dict | None:
        return (self.data.get("value_counts") or {}).get(f"{kind}.{name}")

    def stage_counts(self, kind: str) -> dict | None:
        return (self.data.get("stage_counts") or {}).get(kind)

    def empty_count(self, kind: str, name: str) -> int | None:
        return (self.data.get("empty_counts") or {}).get(f"{kind}.{name}")

    @property
    def quality(self) -> dict:
        return self.data.get("data_quality") or {}

    def stage_field(self, kind: str) -> str | None:
        return next((f["name"] for f in self.fields(kind) if f.get("role") == "stage"), None)


@dataclass
class Context:
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))
    signed: list[dict] | None = None  # the signed version's stages that name CRM values
    signed_version: int | None = None
    previous: Snapshot | None = None  # the client's previous audit (same platform)
    baseline: Snapshot | None = None  # the first audit after sign-off: labels as they were signed

    def threshold(self, name: str) -> float:
        return float(self.thresholds.get(name, THRESHOLDS[name]))


def unreadable_reason(rows: Iterable[dict]) -> str:
    """ "Leads.Phone is missing or not readable by this user", as the connector worded it, for each field."""
    return "; ".join(
        dict.fromkeys(
            row.get("reason") or f"{row['object']}.{row['field']} is missing or not readable by this user"
            for row in rows
        )
    )


def lifecycle_like(snap: Snapshot, kinds: Iterable[str] = PEOPLE, roles: tuple[str, ...] = ("lifecycle", "status")):
    for kind in kinds:
        for f in snap.role_fields(kind, *roles):
            yield kind, f


def unread_people_fields(snap: Snapshot, kinds: Iterable[str] = PEOPLE) -> list[dict]:
    """Lifecycle and status fields the connector expected on these objects and could not read."""
    return [row for kind in kinds for row in snap.unreadable(kind, roles=("lifecycle", "status"))]


def value_class(value: dict) -> str:
    """stage / status / outcome / unknown, from the documented vocabulary (crm_connectors.vocabulary)."""
    return vocabulary.classify(value.get("label"), value.get("value", value.get("id")))


def documented(value: dict) -> bool:
    return vocabulary.documented(value.get("label"), value.get("value", value.get("id")))


def field_label(f: dict) -> str:
    return f"{f.get('label') or f['name']} ({f['name']})"


def forecast_field(snap: Snapshot) -> dict | None:
    return next(
        (f for f in snap.fields("deal") if f["type"] == "picklist" and FORECAST_FIELD.search(norm(f.get("label")))),
        None,
    )


def reason_field(snap: Snapshot) -> dict | None:
    for f in snap.fields("deal"):
        name = norm(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", f["name"]))
        if REASON_FIELD.search(norm(f.get("label"))) or REASON_FIELD.search(name):
            return f
    return None


def segment_objects(snap: Snapshot) -> list[str]:
    """The objects a lifecycle metric is broken down on: leads (HubSpot: contacts, it has no lead object) and deals."""
    people = "lead" if snap.available("lead") else "contact"
    return [kind for kind in (people, "deal") if snap.available(kind)]


def segment_fields(snap: Snapshot, kind: str) -> dict[str, list[dict]]:
    """concept -> the fields of `kind` that hold it (SEGMENT_CONCEPTS), at most SEGMENT_FIELDS_READ each: the
    object's own fields before the CRM's system ones (hs_*), dates and flags left out (an owner's assignment date
    is no owner)."""
    found: dict[str, list[dict]] = {}
    candidates = [f for f in snap.fields(kind) if f["type"] not in ("date", "datetime", "boolean")]
    candidates.sort(key=lambda f: f["name"].lower().startswith("hs_"))
    for concept, pattern in SEGMENT_CONCEPTS.items():
        matches = [
            f
            for f in candidates
            if pattern.search(norm(f.get("label")))
            or pattern.search(norm(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", f["name"])))
        ]
        found[concept] = matches[:SEGMENT_FIELDS_READ]
    return found


def object_kind(text: str) -> str | None:
    """lead / contact / company / deal / ticket for an object as people name it (crm_connectors.mapping reads it)."""
    return mapping.object_kind(text)


def signed_architecture(snap: Snapshot, ctx: Context) -> mapping.Architecture:
    """The signed stages placed in this snapshot by the same placement the health checks use."""
    return mapping.Architecture.of(ctx.signed or [], mapping.SnapshotCatalog(snap.data))
