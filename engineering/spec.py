"""The CRM Configuration Spec as data: built from a signed definitions version and the CRM's metadata (seed 001, 2a).

`build(content, ...)` returns the JSON document described in `schema.py`. It reads the CRM only through a
`crm_connectors.mapping.Catalog` (what describe / properties and the pipelines returned), the same reading the
audit and the health checks place signed stages with, and assumes no field exists: a field the catalog does not
show is a field to create. The document holds no timestamp and no database id, so the same inputs give the same
bytes and the same SHA-256.

Where each signed stage is configured:
- a stage the definitions map (`crm_object`, `crm_field`, `crm_values`) lives where `mapping.place` finds it;
- an unmapped stage takes its domain's usual home on the platform (`_default_place`): the lead lifecycle field, the
  first deal pipeline, a customer pipeline of tickets (or a company field), the company lifecycle field.
Around them the spec adds what seed 001 asks on every build: a Contact and a Company lifecycle field (which the
automation sets), a status field apart from lifecycle (Lead Status / Contact Status), drop-off reason picklists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from crm_connectors.base import CrmField
from crm_connectors.mapping import (
    Catalog,
    Place,
    Placed,
    field_place,
    find_field,
    loss_reason_field,
    norm,
    object_kind,
    pipeline_place,
    place,
    stage_field,
)

from .schema import SCHEMA_VERSION

KIND = "crm_configuration_spec"
OBJECT_NAMES = {
    "salesforce": {"lead": "Lead", "contact": "Contact", "company": "Account", "deal": "Opportunity", "ticket": "Case"},
    "hubspot": {"lead": "Leads", "contact": "Contacts", "company": "Companies", "deal": "Deals", "ticket": "Tickets"},
}
# Custom fields the spec creates when the CRM has none in their role (Salesforce suffixes its custom API names).
NEW_FIELDS = {
    "salesforce": {
        "lifecycle": ("Lifecycle_Stage__c", "Lifecycle Stage"),
        "status": ("Contact_Status__c", "Contact Status"),
        "drop_off": ("Drop_Off_Reason__c", "Drop-off Reason"),
        "customer": ("Customer_Stage__c", "Customer Stage"),
    },
    "hubspot": {
        "lifecycle": ("lifecyclestage", "Lifecycle Stage"),
        "status": ("hs_lead_status", "Lead Status"),
        "drop_off": ("drop_off_reason", "Drop-off Reason"),
        "customer": ("customer_stage", "Customer Stage"),
    },
}
# Seed 001's vocabulary: Contact Status is the working state (New, Working, Engaged, Nurture), apart from lifecycle;
# Unqualified is where a record leaves with a drop-off reason.
STATUS_VALUES = ("New", "Working", "Engaged", "Nurture", "Unqualified")
DROP_OFF_VALUES = ("No Budget", "No Decision", "Lost to Competitor", "Timing", "Not a Fit", "Unresponsive")
# The lifecycle values the seed's automation rules set on contacts (and companies roll up), after the lead stages.
AUTOMATION_VALUES = ("Opportunity", "Customer")
# Seed 001, 2a: Opportunity Stage probabilities; open stages take the last ones, the won stage 100.
OPEN_PROBABILITIES = (25, 50, 75, 90)
EARLY_PROBABILITY = 10  # open stages before the four the seed weights
# Words that mark a value as an old copy of another ("MQL - Legacy"): its records belong to the value it copies.
OLD_COPY = frozenset({"legacy", "old", "deprecated", "archived", "obsolete", "retired", "copy"})
# The values whose records move to a mapping target: options retired, and values records hold that no option lists.
MOVED_OFF = ("retire", "unlisted")
# Values a platform needs whatever the architecture says: Salesforce converts a lead only into a "Converted" status.
KEEP_ALWAYS = {("salesforce", "lead", "Status"): {"converted"}}
BUILD_ORDER = (
    "Create/update lifecycle stage field values (add new stages, rename, remove deprecated)",
    "Create/update pipeline stages (if applicable)",
    "Build automation rules for stage transitions",
    "Build dashboards and reports",
    "Test with sample records",
)
HUBSPOT_WARNING = (
    "Turn off HubSpot's native lifecycle automation before configuring these rules "
    "(Settings → Objects → Contacts → Lifecycle Stage): it would set stages the rules below also set."
)
REPORTS = (
    ("production", "Production by stage", "Records entering each stage per month"),
    ("conversion", "Stage conversion", "Share of records entering a stage that enter the next, per monthly cohort"),
    ("time-in-stage", "Time in stage", "Average days between entering one stage and the next"),
    ("drop-off", "Drop-off reasons", "Records leaving each stage by drop-off reason, top three per stage"),
    (
        "cost",
        "Cost to enter stage",
        "Marketing spend per record entering MQL, SQL and Closed Won (spend entered by hand)",
    ),
    ("segmentation", "Segmentation", "Every report above grouped by segment, region and owner"),
)


def canonical(document: dict) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(document: Any) -> str:
    return hashlib.sha256(canonical(document).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- the metadata the spec is built on


def metadata(catalog: Catalog, kinds: Iterable[str] = ("lead", "contact", "company", "deal", "ticket")) -> dict:
    """The picklists and pipelines the spec and the plan compare against, as plain data: hashed to bind a spec or a
    plan to what the CRM looked like."""
    out: dict[str, Any] = {"fields": {}, "pipelines": {}}
    for kind in kinds:
        fields = catalog.fields(kind)
        if fields is None:
            continue
        out["fields"][kind] = [
            {
                "name": f.api_name,
                "label": f.label,
                "role": f.role,
                "values": [[v.api_value, v.label, v.active, v.probability, v.is_closed, v.is_won] for v in f.values],
            }
            for f in sorted(fields, key=lambda f: f.api_name)
            if f.is_picklist or f.role
        ]
        pipelines = catalog.pipelines(kind)
        if pipelines:
            out["pipelines"][kind] = [
                {
                    "id": p.id,
                    "label": p.label,
                    "stages": [[s.id, s.label, s.active, s.probability, s.is_closed, s.is_won] for s in p.stages],
                }
                for p in pipelines
            ]
    return out


# ---------------------------------------------------------------- the places the spec configures


class Target:
    """A field (or one pipeline of a stage field) being specified, and its values in order."""

    def __init__(
        self,
        platform: str,
        kind: str,
        field: str,
        label: str,
        section: str,
        *,
        existing: Place | None,
        pipeline: tuple[str, str] | None = None,
        stage_like: bool = False,
    ) -> None:
        self.platform, self.kind, self.field, self.label, self.section = platform, kind, field, label, section
        self.existing = existing
        self.pipeline = pipeline
        self.stage_like = stage_like  # deal/ticket stages: probabilities, closed and won flags
        self.values: list[dict] = []

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.kind, self.field, self.pipeline[0] if self.pipeline else None)

    @property
    def id(self) -> str:
        return "field:" + ":".join(p for p in self.key if p)

    def find(self, value: str) -> dict | None:
        wanted = norm(value)
        return next((v for v in self.values if wanted in (norm(v["value"]), norm(v["label"]))), None)

    def add(self, *, value: str, label: str, stage: str | None, by_name: bool) -> dict:
        """One value of the target: the existing option it names (by API value, then label), or a new one. A value
        added by a stage's name relabels the option it matched when the label differs; a value the definitions
        named keeps the CRM's label (the signer chose that option)."""
        found = self.find(value)
        if found is not None:
            if stage and not found["stage"]:
                found["stage"] = stage
            return found
        option = self.existing.option(value) if self.existing else None
        entry: dict[str, Any] = {
            "id": "",
            "value": option.value if option else value,
            "label": label if by_name or option is None else option.label,
            "stage": stage,
            "order": len(self.values) + 1,
            "action": "add",
            "current_label": option.label if option else None,
            "probability": None,
            "closed": bool(option and option.lost),
            "won": False,
            "maps_to": None,
        }
        if option is not None:
            entry["action"] = "keep" if norm(entry["label"]) == norm(option.label) else "relabel"
            if not option.active:
                entry["action"] = "add"  # retired in the CRM, wanted by the spec: offered again
        entry["id"] = f"{self.id}/value:{entry['value']}"
        self.values.append(entry)
        return entry

    def retire_the_rest(self) -> None:
        """Every active option the spec does not name is retired (a mapping target is chosen by a consultant). Lost
        stages stay on pipelines: they are the exit, with the drop-off reason beside them."""
        if self.existing is None:
            return
        keep = KEEP_ALWAYS.get((self.platform, self.kind, self.field), set())
        for option in self.existing.options:
            if not option.active or self.find(option.value) or self.find(option.label):
                continue
            lost_exit = self.stage_like and option.lost
            entry = self.add(value=option.value, label=option.label, stage=None, by_name=False)
            entry["action"] = "keep" if lost_exit or norm(option.label) in keep else "retire"
            if lost_exit:
                entry["closed"], entry["probability"] = True, 0

    def weigh(self, won: set[str]) -> None:
        """Deal stages: probabilities 25/50/75/90 on the last open stages, 100 on the won one, 0 on lost; a lost
        exit is added when the pipeline has none. Ticket stages carry no forecast, so no probability."""
        if not self.stage_like or self.kind != "deal":
            return
        for v in self.values:
            if v["action"] != "retire" and (norm(v["label"]) in won or norm(v["value"]) in won):
                v.update(won=True, closed=True, probability=100)
        if not any(v["closed"] and not v["won"] for v in self.values):
            lost = self.add(value="Closed Lost", label="Closed Lost", stage=None, by_name=True)
            lost.update(closed=True, probability=0)
        open_stages = list(
            dict.fromkeys(v["stage"] for v in self.values if v["stage"] and not v["closed"] and v["action"] != "retire")
        )
        n = len(open_stages)
        weights = {
            stage: OPEN_PROBABILITIES[i + 4 - n] if i + 4 >= n else EARLY_PROBABILITY
            for i, stage in enumerate(open_stages)
        }
        for v in self.values:
            if v["closed"] and not v["won"]:
                v["probability"] = 0
            elif v["stage"] in weights and not v["closed"]:
                v["probability"] = weights[v["stage"]]

    def add_unlisted(self, held: dict[str, int]) -> None:
        """Values records hold that no option lists and the architecture does not name: nothing to retire (the CRM
        never listed them), but their records must move to a signed value, chosen like a retired value's target."""
        for value in sorted(held):
            if held[value] > 0 and self.find(value) is None:
                self.add(value=value, label=value, stage=None, by_name=True)["action"] = "unlisted"

    def suggest_targets(self, weights: dict[str, float] | None = None) -> None:
        """A retired or unlisted value's records move to the kept value it most plainly names: its acronym
        ("Marketing Qualified Lead" -> MQL), its words ("Lead" -> Known Lead), its stem ("Nurturing" -> Nurture) or
        itself marked old ("MQL - Legacy" -> MQL). On a deal pipeline, an open stage nothing names goes to the kept
        open stage whose probability is nearest its own in the CRM (`weights`: stage -> 0..1), the lower on a tie:
        the forecast weighs its deals as before, and no open deal is closed by a move. Only a suggestion, adjusted
        before approval; a value with no such match has no target, and the plan holds its records back. Values on
        other fields get no nearest-stage guess: their order mixes stages with catch-alls (Other, Closed Lost)."""
        kept = [v for v in self.values if v["action"] not in MOVED_OFF and not (v["closed"] and not v["won"])]
        open_stages = [v for v in kept if self.kind == "deal" and not v["closed"] and v["probability"] is not None]
        for v in self.values:
            if v["action"] in MOVED_OFF and v["maps_to"] is None:
                v["maps_to"] = _plainly_named(v["label"], kept)
                weight = (weights or {}).get(v["value"])
                if v["maps_to"] is None and weight is not None and open_stages:
                    nearest = min(open_stages, key=lambda k: (abs(k["probability"] - weight * 100), k["probability"]))
                    v["maps_to"] = nearest["value"]

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "section": self.section,
            "object": self.kind,
            "object_label": OBJECT_NAMES[self.platform][self.kind],
            "field": self.field,
            "field_label": self.label,
            "pipeline": self.pipeline[0] if self.pipeline else None,
            "pipeline_label": self.pipeline[1] if self.pipeline else None,
            "action": "update" if self.existing else "create",
            "type": "picklist",
            "values": self.values,
        }


class Builder:
    def __init__(self, platform: str, catalog: Catalog) -> None:
        self.platform = platform
        self.catalog = catalog
        self.targets: dict[tuple, Target] = {}
        self.unplaced: list[dict] = []

    def fields(self, kind: str) -> list[CrmField]:
        return self.catalog.fields(kind) or []

    def target_for_place(self, found: Place, section: str) -> Target:
        key = found.key
        if key not in self.targets:
            self.targets[key] = Target(
                self.platform,
                found.kind,
                found.field,
                found.field_label,
                section,
                existing=found,
                pipeline=(found.pipeline_id, found.pipeline_label or "") if found.pipeline_id else None,
                stage_like=found.role == "stage",
            )
        return self.targets[key]

    def field_target(self, kind: str, role: str, section: str, *, name: str | None = None) -> Target:
        """The object's field in a role (lifecycle, status), found by role, else by the name the spec would give it,
        else to create."""
        fields = self.fields(kind)
        api_name, label = NEW_FIELDS[self.platform][name or role]
        found = next((f for f in fields if f.is_picklist and f.role == role), None) if role else None
        found = found or find_field(fields, api_name)
        if found is not None:
            return self.target_for_place(field_place(found), section)
        key = (kind, api_name, None)
        if key not in self.targets:
            self.targets[key] = Target(self.platform, kind, api_name, label, section, existing=None)
        return self.targets[key]

    def open_weights(self, target: Target) -> dict[str, float]:
        """The CRM's probability of each open stage of a deal pipeline target (nothing for other targets)."""
        if target.kind != "deal" or target.pipeline is None:
            return {}
        pipeline = next((p for p in self.catalog.pipelines("deal") if p.id == target.pipeline[0]), None)
        stages = pipeline.stages if pipeline else ()
        return {s.id: s.probability for s in stages if s.probability is not None and not s.is_closed}

    def default_target(self, domain: str) -> Target | None:
        lead_kind = "lead" if self.platform == "salesforce" else "contact"
        if domain == "lead":
            return self.field_target(lead_kind, "lifecycle", "lifecycle")
        if domain == "company":
            return self.field_target("company", "lifecycle", "company")
        if domain == "sales":
            holder = stage_field(self.fields("deal"))
            pipelines = sorted(self.catalog.pipelines("deal"), key=lambda p: p.order)
            if holder is None or not pipelines:
                return None
            return self.target_for_place(pipeline_place(holder, pipelines[0]), "pipeline")
        if domain == "customer":
            holder = stage_field(self.fields("ticket"))
            pipeline = next(
                (
                    p
                    for p in self.catalog.pipelines("ticket")
                    if {"customer", "onboarding"} & set(norm(p.label).split())
                ),
                None,
            )
            if holder is not None and pipeline is not None:
                return self.target_for_place(pipeline_place(holder, pipeline), "customer")
            return self.field_target("company", "", "customer", name="customer")
        return None

    def place_stages(self, stages: list[dict]) -> None:
        for stage in sorted(stages, key=lambda s: (s.get("domain", ""), s.get("order", 0))):
            if stage.get("crm_field") and stage.get("crm_values"):
                found = place(stage, self.catalog)
                if isinstance(found, Placed):
                    section = _section_of(found.place, stage.get("domain", ""))
                    target = self.target_for_place(found.place, section)
                    for value in found.values:
                        target.add(value=value, label=found.place.label(value), stage=stage["name"], by_name=False)
                    continue
                if not found.missing_field:
                    self.unplaced.append(
                        {"stage": stage["name"], "domain": stage.get("domain", ""), "reason": found.reason}
                    )
                    continue
                # the signed field is not there yet: the spec creates it under the name the definitions gave
                kind = object_kind(str(stage.get("crm_object")))
                key = (kind, str(stage["crm_field"]), None)
                target = self.targets.get(key) or Target(
                    self.platform,
                    str(kind),
                    str(stage["crm_field"]),
                    str(stage["crm_field"]),
                    _section_of(None, stage.get("domain", "")),
                    existing=None,
                )
                self.targets[key] = target
                for value in stage["crm_values"]:
                    target.add(value=str(value), label=str(value), stage=stage["name"], by_name=True)
                continue
            if "anonymous" in norm(stage.get("name")):
                self.unplaced.append(
                    {
                        "stage": stage["name"],
                        "domain": stage.get("domain", ""),
                        "reason": "anonymous visitors are not CRM records: web analytics counts them",
                    }
                )
                continue
            home = self.default_target(stage.get("domain", ""))
            if home is None:
                self.unplaced.append(
                    {
                        "stage": stage["name"],
                        "domain": stage.get("domain", ""),
                        "reason": "no usual CRM home for this domain: name its object and field in the definitions",
                    }
                )
                continue
            home.add(value=stage["name"], label=stage["name"], stage=stage["name"], by_name=True)

    def lifecycle_fields(self, lead_stage_labels: list[str]) -> None:
        """The Contact lifecycle (Salesforce: a custom field; HubSpot: the lifecycle stage property) and the Company
        lifecycle that rolls up from it: the lead stages, then the values the automation sets."""
        wanted = [*lead_stage_labels, *AUTOMATION_VALUES]
        for kind, section in (("contact", "lifecycle"), ("company", "company")):
            target = self.field_target(kind, "lifecycle", section)
            for label in wanted:
                if target.find(label) is None:
                    target.add(value=label, label=label, stage=None, by_name=True)

    def status_fields(self) -> None:
        kinds = ("lead", "contact") if self.platform == "salesforce" else ("contact",)
        for kind in kinds:
            target = self.field_target(kind, "status", "status")
            for label in STATUS_VALUES:
                target.add(value=label, label=label, stage=None, by_name=True)

    def drop_off_fields(self) -> None:
        kinds = ("lead", "deal") if self.platform == "salesforce" else ("contact", "deal")
        for kind in kinds:
            found = loss_reason_field(self.fields(kind))
            if found is not None and found.is_picklist:
                target = self.target_for_place(field_place(found), "drop_off")
                target.section = "drop_off"
                for option in target.existing.options if target.existing else ():
                    if option.active:
                        target.add(value=option.value, label=option.label, stage=None, by_name=False)
                continue
            api_name, label = NEW_FIELDS[self.platform]["drop_off"]
            target = Target(self.platform, kind, api_name, label, "drop_off", existing=None)
            self.targets[target.key] = target
            for reason in DROP_OFF_VALUES:
                target.add(value=reason, label=reason, stage=None, by_name=True)


def _plainly_named(label: str, kept: list[dict]) -> str | None:
    words = norm(label).split()
    if not words:
        return None
    if len(words) > 1 and words[-1].strip("()[]") in OLD_COPY:
        found = next((v for v in kept if norm(v["label"]).split() == words[:-1]), None)
        if found is not None:
            return found["value"]
    acronym = "".join(w[0] for w in words) if len(words) > 1 else ""
    for v in kept:
        theirs = norm(v["label"]).split()
        if (acronym and theirs == [acronym]) or (len(words) == 1 and words[0] in theirs and len(theirs) <= 2):
            return v["value"]
    for v in kept:
        spelled = norm(v["label"])
        if len(spelled) >= 5 and norm(label)[:5] == spelled[:5] and len(words) == 1:
            return v["value"]
    return None


def _section_of(found: Place | None, domain: str) -> str:
    if found is not None and found.pipeline_id is not None:
        return "customer" if domain == "customer" else "pipeline"
    return {"company": "company", "customer": "customer", "sales": "pipeline"}.get(domain, "lifecycle")


def _stage_names(stages: list[dict], domain: str) -> list[str]:
    return [s["name"] for s in sorted(stages, key=lambda s: s.get("order", 0)) if s.get("domain") == domain]


def validation_rules(platform: str, stages: list[dict]) -> list[dict]:
    noun = "Validation rule" if platform == "salesforce" else "Required properties on the stage"
    return [
        {
            "id": f"rule:{s['key']}",
            "stage": s["name"],
            "domain": s.get("domain", ""),
            "kind": noun,
            "text": f"A record cannot enter {s['name']} unless: {s['entry_criteria'].strip()}",
        }
        for s in sorted(stages, key=lambda s: (s.get("domain", ""), s.get("order", 0)))
        if (s.get("entry_criteria") or "").strip()
    ]


def automation_rules(platform: str, stages: list[dict]) -> list[dict]:
    """The seed's four rules, then one per signed transition whose later stage names what triggers it."""
    tool = "Flow" if platform == "salesforce" else "Workflow"
    rules = [
        ("deal-won", "When a deal moves to Closed Won, set Contact Lifecycle to Customer"),
        ("meeting-booked", "When a meeting is booked, set Contact Lifecycle to SAL (if not already SQL or higher)"),
        ("deal-created", "When a deal is created, set Contact Lifecycle to Opportunity"),
        ("company-rollup", "Company lifecycle rolls up from the most advanced Contact lifecycle stage"),
    ]
    out = [{"id": f"automation:{key}", "tool": tool, "source": "seed", "text": text} for key, text in rules]
    by_domain: dict[str, list[dict]] = {}
    for s in sorted(stages, key=lambda s: s.get("order", 0)):
        by_domain.setdefault(s.get("domain", ""), []).append(s)
    for seq in by_domain.values():
        for before, after in zip(seq, seq[1:], strict=False):
            trigger = (after.get("entry_criteria") or "").strip()
            if not trigger:
                continue
            owner = (after.get("transition_owner") or "").strip()
            text = f"When {trigger[0].lower()}{trigger[1:]}, move the record from {before['name']} to {after['name']}"
            out.append(
                {
                    "id": f"automation:{before['key']}->{after['key']}",
                    "tool": tool,
                    "source": "signed transition",
                    "text": text + (f" (owner: {owner})" if owner else ""),
                }
            )
    return out


Unlisted = Callable[[str, str, str | None, list[str]], dict[str, int]]


def build(
    *,
    content: dict,
    version_number: int,
    version_hash: str,
    platform: str,
    catalog: Catalog,
    metadata_hash: str,
    unlisted: Unlisted | None = None,
) -> dict:
    """The spec document for one platform (see schema.py). `unlisted(kind, field, pipeline, listed)` reads the
    values records hold that `listed` does not name: each becomes a value whose records move to a chosen target."""
    if platform not in OBJECT_NAMES:
        raise ValueError(f"No CRM Configuration Spec for the platform {platform!r} (salesforce or hubspot).")
    stages = list(content.get("stages") or [])
    b = Builder(platform, catalog)
    b.place_stages(stages)
    lead_labels = [
        v["label"]
        for t in b.targets.values()
        if t.section == "lifecycle"
        for v in t.values
        if v["stage"] and any(s["name"] == v["stage"] and s.get("domain") == "lead" for s in stages)
    ]
    b.lifecycle_fields(list(dict.fromkeys(lead_labels)))
    b.status_fields()
    b.drop_off_fields()
    won = {norm(n) for n in _stage_names(stages, "sales") if "won" in norm(n)} | {"closed won", "closedwon"}
    for target in b.targets.values():
        target.retire_the_rest()
        target.weigh(won)
        if unlisted is not None and target.existing is not None:
            listed = [o.value for o in target.existing.options] + [v["value"] for v in target.values]
            target.add_unlisted(unlisted(target.kind, target.field, target.key[2], listed))
        target.suggest_targets(b.open_weights(target))
    section_order = ["lifecycle", "status", "pipeline", "customer", "company", "drop_off"]
    fields = sorted(
        (t.as_json() for t in b.targets.values()),
        key=lambda f: (section_order.index(f["section"]), f["object"], f["field"], f["pipeline"] or ""),
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "platform": platform,
        "source": {
            "definition_version": version_number,
            "definition_hash": version_hash,
            "metadata_hash": metadata_hash,
        },
        "fields": fields,
        "unplaced": b.unplaced,
        "validation_rules": validation_rules(platform, stages),
        "automation": automation_rules(platform, stages),
        "reports": [{"id": f"report:{key}", "name": name, "measures": what} for key, name, what in REPORTS],
        "warnings": [HUBSPOT_WARNING] if platform == "hubspot" else [],
        "build_order": list(BUILD_ORDER),
    }
