"""Where the signed stage architecture lives in the CRM: one reading shared by the audit and the health checks.

A signed stage names its CRM home the way people name it: the object ("Opportunity", "Deals", "Contacts"), a
field by API name or label ("Lifecycle_Stage__c", "Lifecycle Stage") or, on deals and tickets, a pipeline by id
or label ("New Business"), and its values by API value or label. `place` resolves one stage to a `Placed`: the
object kind, the field's API name, the pipeline (or None for a whole field), its values as the CRM spells them and
their labels. Nothing is assumed to exist: every field is looked up in what describe / properties returned first,
and a field this user cannot see (missing, or hidden by field-level security) gives an `Unplaced` whose reason
says so, so only the figures and rules that need that field are not evaluated.

`Architecture` holds every placement of a signed version and answers the questions both readers ask:

- `places()`        the signed places (field or pipeline) and the stages each holds;
- `transitions()`   consecutive signed stages of one domain in one place, the only pairs a conversion rate may
                    join (never across domains, fields or pipelines);
- `judged(...)`     every place whose values are judged for rogue and retired values: the signed places, every
                    other lifecycle/status picklist of a signed object and every pipeline of a signed object.

The catalogue the placement reads is either a live connector (`ConnectorCatalog`, used by the health checks) or
an audit snapshot (`SnapshotCatalog`), so both readers place a stage identically. This module imports neither
reporting nor engagements: a signed stage is a plain dict with `name`, `domain`, `order`, `crm_object`,
`crm_field` and `crm_values`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .base import STAGE_OBJECTS, CrmField, CrmQueryError, CrmUnsupported, FieldValue, Pipeline, Stage

OBJECT_WORDS = {
    "lead": "lead",
    "leads": "lead",
    "contact": "contact",
    "contacts": "contact",
    "person": "contact",
    "people": "contact",
    "account": "company",
    "accounts": "company",
    "company": "company",
    "companies": "company",
    "opportunity": "deal",
    "opportunities": "deal",
    "deal": "deal",
    "deals": "deal",
    "case": "ticket",
    "cases": "ticket",
    "ticket": "ticket",
    "tickets": "ticket",
}
OBJECT_LABELS = {"lead": "leads", "contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets"}
# The roles of picklists whose values are funnel positions or working states: judged for rogue and retired values.
JUDGED_ROLES = ("lifecycle", "status", "stage")
LOSS_REASON = re.compile(r"(loss|lost|drop\s*off|disqualif\w*)\s*reason|reason\s*(lost|for\s*loss)")
FREE_TEXT_TYPES = ("string", "text")


def norm(text: Any) -> str:
    """Lower case, underscores and hyphens as spaces: 'Lifecycle_Stage__c' and 'lifecycle stage c' read alike."""
    return re.sub(r"[_\-\s]+", " ", str(text or "")).lower().strip()


def object_kind(text: str) -> str | None:
    """The platform-neutral kind of an object as people name it ("Opportunity", "Deals", "Contacts")."""
    return OBJECT_WORDS.get(norm(text).replace(" ", ""))


def unreadable(crm_object: str, crm_field: str) -> str:
    """The reason a figure or rule that needs a field is not evaluated when describe/properties do not show it."""
    return f"{crm_object}.{crm_field} is missing or not readable by this user"


# ---------------------------------------------------------------- what the placement reads


class Catalog(Protocol):
    """The CRM's metadata as the placement reads it."""

    crm: str  # "Salesforce", "HubSpot": for messages

    def fields(self, kind: str) -> list[CrmField] | None:
        """Every field of the object this user can read; None when the CRM has no such object here."""

    def pipelines(self, kind: str) -> list[Pipeline]:
        """The deal or ticket pipelines with their stages ([] for other objects)."""


class ConnectorCatalog:
    """A live connector's describe / properties and pipelines, each read once."""

    def __init__(self, connector: Any) -> None:
        self.connector = connector
        self.crm = getattr(connector, "label", "the CRM")
        self._fields: dict[str, list[CrmField] | None] = {}
        self._pipelines: dict[str, list[Pipeline]] = {}

    def fields(self, kind: str) -> list[CrmField] | None:
        if kind not in self._fields:
            try:
                self._fields[kind] = self.connector.fields(kind)
            except (CrmUnsupported, CrmQueryError):  # no such object here (HubSpot has no lead object)
                self._fields[kind] = None
        return self._fields[kind]

    def pipelines(self, kind: str) -> list[Pipeline]:
        if kind not in STAGE_OBJECTS:
            return []
        if kind not in self._pipelines:
            try:
                self._pipelines[kind] = self.connector.pipelines(kind)
            except (CrmUnsupported, CrmQueryError):
                self._pipelines[kind] = []
        return self._pipelines[kind]


class SnapshotCatalog:
    """An audit snapshot (`audit.engine.collect`) read as a catalogue, so the audit places stages as health does."""

    def __init__(self, snapshot: dict) -> None:
        self.data = snapshot or {}
        self.crm = {"salesforce": "Salesforce", "hubspot": "HubSpot"}.get(self.data.get("platform", ""), "the CRM")

    def fields(self, kind: str) -> list[CrmField] | None:
        if not (self.data.get("objects") or {}).get(kind, {}).get("available"):
            return None
        return [
            CrmField(
                object=kind,
                api_name=f["name"],
                label=f.get("label") or f["name"],
                type=f.get("type", "other"),
                custom=bool(f.get("custom")),
                required=bool(f.get("required")),
                role=f.get("role"),
                values=tuple(
                    FieldValue(
                        api_value=v["value"],
                        label=v.get("label") or v["value"],
                        active=v.get("active", True),
                        order=v.get("order", i),
                        probability=v.get("probability"),
                        is_closed=v.get("is_closed"),
                        is_won=v.get("is_won"),
                    )
                    for i, v in enumerate(f.get("values") or [])
                ),
            )
            for f in (self.data.get("fields") or {}).get(kind) or []
        ]

    def pipelines(self, kind: str) -> list[Pipeline]:
        return [
            Pipeline(
                kind,
                p["id"],
                p.get("label") or p["id"],
                p.get("order", 0),
                p.get("active", True),
                tuple(
                    Stage(
                        s["id"],
                        s.get("label") or s["id"],
                        s.get("order", i),
                        s.get("probability"),
                        bool(s.get("is_closed")),
                        bool(s.get("is_won")),
                        s.get("active", True),
                    )
                    for i, s in enumerate(p.get("stages") or [])
                ),
            )
            for p in (self.data.get("pipelines") or {}).get(kind) or []
        ]


# ---------------------------------------------------------------- places


@dataclass(frozen=True)
class Option:
    """One value of a place: a picklist option or a pipeline stage, as the CRM spells it."""

    value: str
    label: str
    active: bool = True
    order: int = 0
    lost: bool = False  # a stage that closes the record as lost: the pipeline's exit, not a step of it


@dataclass(frozen=True)
class Place:
    """A field of an object, or one pipeline's stages on the object's stage field."""

    kind: str
    field: str  # API name
    field_label: str
    role: str | None
    options: tuple[Option, ...]
    pipeline_id: str | None = None
    pipeline_label: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.kind, self.field, self.pipeline_id)

    @property
    def name(self) -> str:
        """How a person names the place: the pipeline's label, else the field's label."""
        return self.pipeline_label or self.field_label

    @property
    def title(self) -> str:
        """The place in a sentence: "the New Business pipeline of deals", "Lead Status of leads"."""
        if self.pipeline_id is not None:
            return f"the {self.pipeline_label} pipeline of {OBJECT_LABELS[self.kind]}"
        return f"{self.field_label} of {OBJECT_LABELS[self.kind]}"

    def option(self, value: str) -> Option | None:
        """The option a value names, by API value first, then by label."""
        wanted = norm(value)
        return next((o for o in self.options if norm(o.value) == wanted), None) or next(
            (o for o in self.options if norm(o.label) == wanted), None
        )

    def spell(self, value: str) -> str:
        """A value as the CRM spells it (a label or an API value in any case gives the API value)."""
        found = self.option(value)
        return found.value if found else str(value)

    def label(self, value: str) -> str:
        found = self.option(value)
        return found.label if found else str(value)

    def holds(self, value: str, pipeline_id: str | None = None) -> bool:
        """Whether a value counted on the field belongs to this place: any value of a whole field; on a pipeline,
        its own stages (by the count's pipeline where the CRM gives it), values no pipeline lists included."""
        if self.pipeline_id is None:
            return True
        if pipeline_id is not None:
            return pipeline_id == self.pipeline_id
        return self.option(value) is not None


def field_place(f: CrmField) -> Place:
    return Place(
        f.object,
        f.api_name,
        f.label,
        f.role,
        tuple(Option(v.api_value, v.label, v.active, v.order, bool(v.is_closed and not v.is_won)) for v in f.values),
    )


def pipeline_place(stage_field: CrmField, pipeline: Pipeline) -> Place:
    return Place(
        stage_field.object,
        stage_field.api_name,
        stage_field.label,
        "stage",
        tuple(Option(s.id, s.label, s.active, s.order, bool(s.is_closed and not s.is_won)) for s in pipeline.stages),
        pipeline.id,
        pipeline.label,
    )


def find_field(fields: Iterable[CrmField], name: str) -> CrmField | None:
    """A field by API name or label (any case; underscores, hyphens and spaces alike)."""
    wanted = norm(name)
    fields = list(fields)
    return next((f for f in fields if norm(f.api_name) == wanted), None) or next(
        (f for f in fields if norm(f.label) == wanted), None
    )


def stage_field(fields: Iterable[CrmField]) -> CrmField | None:
    """The stage field of a deal or ticket object (StageName, dealstage, hs_pipeline_stage)."""
    return next((f for f in fields if f.role == "stage"), None)


def loss_reason_field(fields: Iterable[CrmField]) -> CrmField | None:
    """The deal field holding why deals were lost, picklist first (countable by option), else free text
    (HubSpot's closed_lost_reason): its values are grouped as written."""
    found = [
        f
        for f in fields
        if LOSS_REASON.search(norm(f.label))
        or LOSS_REASON.search(norm(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", f.api_name)))
    ]
    return next((f for f in found if f.is_picklist), None) or next(
        (f for f in found if f.type in FREE_TEXT_TYPES), None
    )


# ---------------------------------------------------------------- placement of signed stages


class _SignedStage:
    """What Placed and Unplaced read off the signed stage they carry."""

    stage: dict

    @property
    def name(self) -> str:
        return self.stage["name"]

    @property
    def domain(self) -> str:
        return self.stage.get("domain", "")

    @property
    def order(self) -> int:
        return self.stage.get("order", 0)


@dataclass(frozen=True)
class Placed(_SignedStage):
    """A signed stage and where it lives."""

    stage: dict
    place: Place
    values: tuple[str, ...]  # as the CRM spells them (signed values no option lists are kept as signed)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.place.label(v) for v in self.values)


@dataclass(frozen=True)
class Unplaced(_SignedStage):
    """A signed stage with nowhere to live, and why in plain words."""

    stage: dict
    reason: str
    missing_field: bool = False  # the object is there but the field cannot be read: a hidden or absent field

    @property
    def signed_key(self) -> tuple[str, str, str]:
        """Where the stage was signed to live, as signed: stages signed on the same place stay one sequence."""
        return ("signed", norm(self.stage.get("crm_object")), norm(self.stage.get("crm_field")))


def place(stage: dict, catalog: Catalog) -> Placed | Unplaced:
    """Where one signed stage lives, or why it cannot be placed."""
    crm_object, crm_field = str(stage.get("crm_object") or ""), str(stage.get("crm_field") or "")
    kind = object_kind(crm_object)
    if kind is None:
        return Unplaced(
            stage,
            f"“{crm_object}” is not a CRM object GTM Ops knows "
            "(lead, contact, account/company, opportunity/deal, case/ticket)",
        )
    fields = catalog.fields(kind)
    if fields is None:
        return Unplaced(stage, f"{catalog.crm} has no {OBJECT_LABELS[kind]} object here")
    found: Place | None = None
    if kind in STAGE_OBJECTS:
        wanted = norm(crm_field)
        pipeline = next(
            (p for p in catalog.pipelines(kind) if wanted in (norm(p.id), norm(p.label))),
            None,
        )
        if pipeline is not None:
            holder = stage_field(fields)
            if holder is None:
                return Unplaced(stage, unreadable(crm_object, "stage"), missing_field=True)
            found = pipeline_place(holder, pipeline)
    if found is None:
        f = find_field(fields, crm_field)
        if f is None:
            return Unplaced(stage, unreadable(crm_object, crm_field), missing_field=True)
        found = field_place(f)
    values = tuple(dict.fromkeys(found.spell(str(v)) for v in stage.get("crm_values") or []))
    return Placed(stage, found, values)


@dataclass(frozen=True)
class Judged:
    """A place whose values are judged: `signed` is the set of signed values (lower case), empty for a place no
    signed stage names (its options are then its own business; only values no option lists and retired ones
    count)."""

    place: Place
    signed: frozenset[str]

    @property
    def is_signed(self) -> bool:
        return bool(self.signed)

    def allows(self, value: str) -> bool:
        return norm(self.place.spell(value)) in self.signed

    def retired(self, value: str) -> bool:
        """An option the CRM keeps but no longer offers (Salesforce inactive, HubSpot hidden or archived)."""
        option = self.place.option(value)
        return option is not None and not option.active

    def rogue(self, value: str) -> bool:
        """A value the signed architecture does not allow, on a signed place; a value no option lists, anywhere.
        Retired options are not rogue: they were approved once, and are counted as retired."""
        option = self.place.option(value)
        if option is None:
            return not self.allows(value)
        if not option.active or option.lost:  # lost deals are the drop-off rules' business, not a rogue stage
            return False
        return self.is_signed and not self.allows(value)


@dataclass
class Architecture:
    """Every signed stage placed (or not) in one CRM."""

    placed: list[Placed] = field(default_factory=list)
    unplaced: list[Unplaced] = field(default_factory=list)

    @classmethod
    def of(cls, stages: Iterable[dict], catalog: Catalog) -> Architecture:
        """Place the signed stages that name CRM values, in domain and stage order."""
        arch = cls()
        for stage in sorted(stages, key=lambda s: (s.get("domain", ""), s.get("order", 0))):
            if not stage.get("crm_field") or not stage.get("crm_values"):
                continue
            found = place(stage, catalog)
            (arch.placed if isinstance(found, Placed) else arch.unplaced).append(found)
        return arch

    def places(self) -> dict[tuple, tuple[Place, list[Placed]]]:
        """The signed places, each with its stages in domain and stage order."""
        out: dict[tuple, tuple[Place, list[Placed]]] = {}
        for p in self.placed:
            out.setdefault(p.place.key, (p.place, []))[1].append(p)
        return out

    def fields(self) -> dict[tuple[str, str], list[Placed]]:
        """The signed stages grouped by (object kind, field API name): one read of a field serves all its pipelines."""
        out: dict[tuple[str, str], list[Placed]] = {}
        for p in self.placed:
            out.setdefault((p.place.kind, p.place.field), []).append(p)
        return out

    def sequences(self) -> list[list[Placed | Unplaced]]:
        """The signed stages of one domain in one place, in stage order: the lifecycle as the records travel it.
        Stages that could not be placed keep the place they were signed on, so their conversions are still listed
        (and reported as not evaluated)."""
        out: dict[tuple, list[Placed | Unplaced]] = {}
        for p in self.placed:
            out.setdefault((p.domain, *p.place.key), []).append(p)
        for u in self.unplaced:
            out.setdefault((u.domain, *u.signed_key), []).append(u)
        return [sorted(stages, key=lambda p: p.order) for stages in out.values()]

    def transitions(self) -> list[tuple[Placed | Unplaced, Placed | Unplaced]]:
        """Consecutive stages of one domain in one place: the only pairs a conversion rate joins. A stage mapped on
        another field, pipeline or domain starts its own sequence, so Mature Adoption never converts into
        Anonymous Visitor."""
        return [(a, b) for seq in self.sequences() for a, b in zip(seq, seq[1:], strict=False)]

    def stage(self, name: str) -> Placed | None:
        return next((p for p in self.placed if norm(p.name) == norm(name)), None)

    def judged(self, catalog: Catalog) -> list[Judged]:
        """Every place of a signed object whose values are judged, each once: the signed places (against the signed
        values), every other lifecycle/status picklist and every pipeline of the object (against their options and
        the CRM's inactive/hidden flags)."""
        signed: dict[tuple, set[str]] = {}
        places: dict[tuple, Place] = {}
        for p in self.placed:
            places[p.place.key] = p.place
            signed.setdefault(p.place.key, set()).update(norm(v) for v in p.values)
        whole_fields = {(k, f) for k, f, pipeline in places if pipeline is None}
        for kind in dict.fromkeys(p.place.kind for p in self.placed):
            fields = catalog.fields(kind) or []
            for f in fields:
                if f.is_picklist and f.role in JUDGED_ROLES and f.role != "stage":
                    places.setdefault((kind, f.api_name, None), field_place(f))
            holder = stage_field(fields)
            if holder is not None and (kind, holder.api_name) not in whole_fields:
                for pipeline in catalog.pipelines(kind):
                    places.setdefault((kind, holder.api_name, pipeline.id), pipeline_place(holder, pipeline))
        return [Judged(pl, frozenset(signed.get(key, ()))) for key, pl in places.items()]


__all__ = [
    "Architecture",
    "Catalog",
    "ConnectorCatalog",
    "Judged",
    "Option",
    "Place",
    "Placed",
    "SnapshotCatalog",
    "Unplaced",
    "find_field",
    "loss_reason_field",
    "norm",
    "object_kind",
    "place",
    "stage_field",
    "unreadable",
]
