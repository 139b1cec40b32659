"""The CRM audit rule catalogue (DOMAIN.md section 8), as pure functions over a snapshot.

A snapshot is the JSON the engine stores on the run (`engine.collect`): objects, fields with their
picklist values, pipelines with their stages, record counts per value, data-quality figures. Every
rule reads only the snapshot, so a rule means the same on Salesforce and HubSpot, can be re-run on an
old run's snapshot, and is tested by changing a snapshot.

Each rule has one stable id (the catalogue's), a domain, a default severity, the seed it comes from and
the seed's fix as its recommendation. A rule returns `Hit`s; the service stores them as findings.
Rules declare which snapshot sections they need: when a section could not be read the rule is
"not evaluated" (the run is partial), never silently clean. A field the connector could not read (missing, or
hidden by field-level security: snapshot["unreadable"]) stops only the rules that need it ("not evaluated:
Lead.Phone is missing or not readable by this user"); a rule reading several fields judges the readable ones and
names the others (`Evaluation.partial`). Counts that do not add up (a share above 100%) are not evaluated, with
the reason, never shown as a finding. Rules that need walking records run only in deep mode (`needs` has "deep").

Values are judged by meaning through the documented vocabulary (`crm_connectors.vocabulary`): Marketing Engaged
is a stage, Open Deal a status; a value only a word pattern recognises is at most advisory. Findings name values
by their labels, internal values in the evidence. Signed stages are placed by `crm_connectors.mapping`, the
placement the health checks use. Lexicons are DOMAIN.md 8.8 (seed words plus the proposed ones it lists).
Thresholds the seeds leave open are in THRESHOLDS and can be overridden with settings.CRM_AUDIT_THRESHOLDS.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import mapping, vocabulary
from ..base import field_role

# ---------------------------------------------------------------- vocabulary

HIGH, MEDIUM, LOW, INFO = "high", "medium", "low", "info"
SEVERITIES = (HIGH, MEDIUM, LOW, INFO)

LEAD_LIFECYCLE = "lead_lifecycle"
SALES_PIPELINES = "sales_pipelines"
CUSTOMER_LIFECYCLE = "customer_lifecycle"
COMPANY_LIFECYCLE = "company_lifecycle"
DATA_QUALITY = "data_quality"
DRIFT = "drift"
DOMAINS = (LEAD_LIFECYCLE, SALES_PIPELINES, CUSTOMER_LIFECYCLE, COMPANY_LIFECYCLE, DATA_QUALITY, DRIFT)
DOMAIN_LABELS = {
    LEAD_LIFECYCLE: "Lead / contact lifecycle",
    SALES_PIPELINES: "Sales pipelines",
    CUSTOMER_LIFECYCLE: "Customer lifecycle",
    COMPANY_LIFECYCLE: "Company lifecycle",
    DATA_QUALITY: "Data quality",
    DRIFT: "Drift from the signed architecture",
}
OBJECT_LABELS = {"lead": "leads", "contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets"}
PEOPLE = ("lead", "contact")

THRESHOLDS: dict[str, float] = {
    # the seeds name these checks but no number: share of records above which a finding is raised
    "missing_field_share": 0.20,  # DQ-MISSING-FIELDS: "% complete per field < target (configurable)"
    "stale_share": 0.20,  # DQ-STALE-RECORDS: records untouched for more than stale_days
    "stale_days": 180,
    "no_next_step_share": 0.25,  # DQ-NO-NEXT-STEP: open deals without a next step
    "lost_without_reason_share": 0.20,  # LC-NO-DROP-OFF-REASON: lost deals without a reason
    # LC-DOMINANT-DROP-OFF-REASON: the seed's own red flag (S1 §4a, >30%), and the fewest recorded reasons worth judging
    "dominant_reason_share": 0.30,
    "dominant_reason_min": 30,
    "default_stage_share": 0.6,
    # LC-DEPRECATED-STAGE-RECORDS: share of a field's records still in retired values (medium from, high from)
    "retired_share_medium": 0.05,
    "retired_share_high": 0.25,  # PIPE-DEFAULT-STAGES: share of the platform's default stages still in use
}
MAX_PIPELINES = 3  # C1: New Business, Renewal, Expansion
SPEC_PROBABILITIES = (0.25, 0.5, 0.75, 0.9, 1.0)  # C4
FORECAST_CATEGORIES = {"pipeline", "best case", "most likely", "commit", "omitted", "closed"}  # C17 + Salesforce's

OUTCOME = re.compile(r"\b(closed\s*)?(won|lost)\b")
SAL = re.compile(r"\bsal\b|sales\s*accepted(?!\s*opp)")
FUNNEL = re.compile(r"\b(mql|sql|sal|sao)\b|marketing\s*qualified|sales\s*qualified|sales\s*accepted")
FUNNEL_IN_STATUS = re.compile(
    r"\b(mql|sql|sal|sao|subscriber|opportunity|customer|evangelist)\b|marketing\s*qualified|sales\s*qualified"
    r"|sales\s*accepted"
)
STATUS_WORDS = re.compile(
    r"\b(new|working|engaged|nurtur\w*|attempted|contacted|in\s*progress|open|unqualified|bad\s*timing|connected)\b"
)
TIME_BASED = re.compile(r"\b(120|90|60|30)\s*-?\s*(days?|d)\b|\bdays?\s+(out|to\s+renewal)\b")
TASK_LEVEL = re.compile(r"\d{1,3}\s*%|\b\d{1,3}\s*percent\b|\b\d+\s*(of\s*\d+\s*)?(complete|done)\b")
SIGNAL_SEED = re.compile(r"\btrending\s*(up|down)\b")
SIGNAL_PROPOSED = re.compile(r"\bat\s*risk\b|\bupside\b|\bhealthy\b")
CS_WORDS = re.compile(r"onboarding|implementation|kick\s*-?\s*off|go\s*-?\s*live|\blive\b|adoption|\bhealth\b|churn")
ACTIVITY_WORDS = {"demo", "discovery", "call", "meeting", "send", "schedule", "present", "presentation", "pitch"}
COMPLETION_WORDS = {
    "completed",
    "complete",
    "signed",
    "sent",
    "held",
    "won",
    "lost",
    "accepted",
    "qualified",
    "achieved",
    "done",
    "booked",
    "delivered",
    "given",
}
# DOMAIN.md section 5 stage names: advisory rules never flag the seed's own vocabulary (Q4)
SEED_STAGE_NAMES = {
    "anonymous visitor",
    "known lead",
    "marketing engaged",
    "marketing engaged lead",
    "mql",
    "sal",
    "sql",
    "sao",
    "evaluation",
    "use case",
    "proposal",
    "negotiation",
    "proposal negotiation",
    "closed won",
    "closed lost",
    "pre onboarding",
    "onboarding",
    "implementation",
    "early adoption",
    "mature adoption",
    "poc entry",
    "value assessment",
    "open renewal",
    "review",
}
COMPANY_CLASSES = {
    "lifecycle": re.compile(
        r"\b(prospect|lead|opportunity|customer|subscriber|evangelist|mql|sql)\b|marketing\s*qualified|sales\s*qualified"
    ),
    "type": re.compile(r"\b(partner|reseller|vendor|competitor|investor|press|supplier|distributor|end\s*user)\b"),
    "status": re.compile(r"\b(active|inactive|churned|on\s*hold|dormant|suspended)\b"),
}
REASON_FIELD = re.compile(r"(loss|lost|drop\s*off|disqualif\w*)\s*reason|reason\s*(lost|for\s*loss)")
FORECAST_FIELD = re.compile(r"forecast\s*category")
FINITE_CONCEPTS = {
    "lead source": re.compile(r"\blead\s*source\b|\boriginal\s*source\b|^source$"),
    "industry": re.compile(r"\bindustry\b"),
    "deal type": re.compile(r"\b(deal|opportunity)\s*type\b"),
    "region": re.compile(r"\b(region|territory)\b"),
    "loss reason": REASON_FIELD,
}
DEFAULT_STAGES = {
    "salesforce": {
        "prospecting",
        "qualification",
        "needs analysis",
        "value proposition",
        "id. decision makers",
        "perception analysis",
        "proposal/price quote",
        "negotiation/review",
    },
    # HubSpot's default sales pipeline, by label: a relabelled default stage keeps its internal id
    # (appointmentscheduled…) but is the client's own stage, so ids are never judged
    "hubspot": {
        "appointment scheduled",
        "qualified to buy",
        "presentation scheduled",
        "decision maker bought in",
        "contract sent",
    },
}


def norm(text: Any) -> str:
    """Lower case, underscores and hyphens as spaces: 'FORMER_CUSTOMER' and 'Go-Live' read as words."""
    return re.sub(r"[_\-]+", " ", str(text or "")).lower().strip()


def squash(text: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "", str(text or "").lower())


def words(text: Any) -> list[str]:
    return re.findall(r"[a-z0-9]+", norm(text))


def texts(value: dict) -> tuple[str, str]:
    return norm(value.get("label")), norm(value.get("value", value.get("id")))


def matches(pattern: re.Pattern, value: dict) -> bool:
    return any(pattern.search(t) for t in texts(value) if t)


def shown(value: dict) -> str:
    return str(value.get("label") or value.get("value") or value.get("id"))


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def share_text(share: float) -> str:
    return f"{share * 100:.0f}%"


def listing(items: Iterable[str], limit: int = 6) -> str:
    items = list(items)
    shown_items = ", ".join(f"“{i}”" for i in items[:limit])
    return shown_items + (f" and {len(items) - limit} more" if len(items) > limit else "")


# ---------------------------------------------------------------- snapshot access


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


# ---------------------------------------------------------------- results


@dataclass
class Hit:
    rule_id: str
    severity: str
    domain: str
    object: str
    field: str
    message: str
    values: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    count: int = 0
    key: str = ""  # what makes this finding the same one in a later run (with rule, object and field)
    evidence: dict[str, Any] = field(default_factory=dict)
    recommendation: str = ""
    seed: str = ""

    @property
    def fingerprint(self) -> str:
        raw = "|".join([self.rule_id, self.object, self.field, self.key])
        return hashlib.sha256(raw.encode()).hexdigest()[:40]

    def as_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity,
            "domain": self.domain,
            "object": self.object,
            "field": self.field,
            "values": self.values,
            "counts": self.counts,
            "count": self.count,
            "message": self.message,
            "recommendation": self.recommendation,
            "fingerprint": self.fingerprint,
        }


class NotEvaluated(Exception):
    """Raised by a rule that cannot judge anything without a field it could not read."""


def unreadable_reason(rows: Iterable[dict]) -> str:
    """ "Leads.Phone is missing or not readable by this user", as the connector worded it, for each field."""
    return "; ".join(
        dict.fromkeys(
            row.get("reason") or f"{row['object']}.{row['field']} is missing or not readable by this user"
            for row in rows
        )
    )


def require(snap: Snapshot, rows: list[dict]) -> None:
    """Stop the rule as not evaluated when a field it needs could not be read."""
    if rows:
        snap.not_read(rows)
        raise NotEvaluated(f"not evaluated: {unreadable_reason(rows)}")


@dataclass
class Context:
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))
    signed: list[dict] | None = None  # the signed version's stages that name CRM values
    signed_version: int | None = None
    previous: Snapshot | None = None  # the client's previous audit (same platform)
    baseline: Snapshot | None = None  # the first audit after sign-off: labels as they were signed

    def threshold(self, name: str) -> float:
        return float(self.thresholds.get(name, THRESHOLDS[name]))


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    domain: str
    severity: str
    seed: str
    recommendation: str
    check: Callable[[Snapshot, Context], list[Hit]]
    needs: tuple[str, ...] = ("fields",)
    detects: str = ""

    @property
    def deep(self) -> bool:
        return "deep" in self.needs

    def hit(self, **kwargs: Any) -> Hit:
        kwargs.setdefault("severity", self.severity)
        kwargs.setdefault("domain", self.domain)
        kwargs.setdefault("recommendation", self.recommendation)
        kwargs.setdefault("seed", self.seed)
        # the finding row's columns (Finding.object 40, Finding.field 300): long lists stay whole in values/evidence
        kwargs["object"] = clip(kwargs.get("object", ""), 40)
        kwargs["field"] = clip(kwargs.get("field", ""), 300)
        return Hit(rule_id=self.id, **kwargs)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip(", ") + "…"


CATALOGUE: dict[str, Rule] = {}


def rule(
    rule_id: str,
    *,
    title: str,
    domain: str,
    severity: str,
    seed: str,
    recommendation: str,
    needs: tuple[str, ...] = ("fields",),
    detects: str = "",
) -> Callable[[Callable[[Rule, Snapshot, Context], list[Hit]]], Rule]:
    def register(fn: Callable[[Rule, Snapshot, Context], list[Hit]]) -> Rule:
        holder: dict[str, Rule] = {}

        def check(snap: Snapshot, ctx: Context) -> list[Hit]:
            return fn(holder["rule"], snap, ctx)

        made = Rule(rule_id, title, domain, severity, seed, recommendation, check, needs, detects or title)
        holder["rule"] = made
        CATALOGUE[rule_id] = made
        return made

    return register


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


# ---------------------------------------------------------------- 8.1 lead / contact lifecycle


@rule(
    "LC-DEAL-OUTCOME-IN-LIFECYCLE",
    title="Deal outcomes stored in lifecycle or status fields",
    domain=LEAD_LIFECYCLE,
    severity=HIGH,
    seed="S1 Current State Audit §1 “deal outcomes stored in lifecycle stages”; Common Gotchas",
    recommendation="Lifecycle tracks forward progression; deal outcomes go in the deal pipeline. Remove Won/Lost "
    "values from lifecycle and status fields and let the opportunity or deal carry the outcome.",
    detects="Won/Lost values in a lead/contact/company lifecycle or status picklist (not deal stages)",
)
def _deal_outcomes(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    snap.not_read(unread_people_fields(snap, ("lead", "contact", "company")))
    hits = []
    for kind, f in lifecycle_like(snap, ("lead", "contact", "company")):
        bad = [v for v in f["values"] if value_class(v) == vocabulary.OUTCOME]
        if bad:
            # 'Lost Interest' only looks like an outcome: advisory unless a value is a documented one (Closed Lost)
            sure = any(documented(v) for v in bad)
            hits.append(
                r.hit(
                    object=kind,
                    field=f["name"],
                    domain=COMPANY_LIFECYCLE if kind == "company" else r.domain,
                    severity=r.severity if sure else LOW,
                    values=[shown(v) for v in bad],
                    count=len(bad),
                    message=f"{snap.crm} {OBJECT_LABELS[kind]} field {field_label(f)} holds deal outcomes: "
                    f"{listing(shown(v) for v in bad)}."
                    + ("" if sure else " These names are not in the standard vocabulary: check what they mean."),
                )
            )
    return hits


@rule(
    "LC-NO-SAL",
    title="No SAL (Sales Accepted Lead) stage",
    domain=LEAD_LIFECYCLE,
    severity=HIGH,
    seed="S1 Current State Audit §1 “missing SAL stage”; Common Gotchas",
    recommendation="Add a Sales Accepted Lead stage between MQL and SQL: without SAL you cannot measure "
    "Marketing-to-Sales handoff speed or acceptance rate.",
    detects="no lead/contact lifecycle or status value matching SAL / Sales Accepted",
)
def _no_sal(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    fields = list(lifecycle_like(snap))
    if any(matches(SAL, v) for _, f in fields for v in f["values"]):
        return []
    require(snap, unread_people_fields(snap))  # the SAL stage may sit in the field this user cannot read
    if not fields:
        return []
    kinds = sorted({k for k, _ in fields}, key=PEOPLE.index)
    return [
        r.hit(
            object=kinds[0],
            field="",
            values=[f"{k}.{f['name']}" for k, f in fields],
            count=len(fields),
            message=f"None of the {plural(len(fields), 'lifecycle or status field')} on {snap.crm} "
            f"{' and '.join(OBJECT_LABELS[k] for k in kinds)} has a Sales Accepted Lead (SAL) stage.",
        )
    ]


@rule(
    "LC-OVERLAPPING-SYSTEMS",
    title="Several fields track the same funnel",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 Current State Audit §1 “Lead Pipeline + Contact Lifecycle + Lead Status all tracking similar concepts”",
    recommendation="Keep one lifecycle field for funnel position (MQL, SAL, SQL…) and one status field for the "
    "working state; retire the overlapping fields after mapping their values.",
    detects="two or more picklists on the same object carrying funnel stages (MQL, SAL, SQL…), or leads and contacts "
    "carrying them in different fields (Lead Status on leads, a lifecycle field on contacts)",
)
def _overlapping(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    snap.not_read(unread_people_fields(snap))
    hits = []
    carrying: dict[str, dict[str, list[str]]] = {}  # object -> field -> funnel stages it holds
    for kind in PEOPLE:
        fields = {
            f["name"]: [shown(v) for v in f["values"] if vocabulary.is_funnel_stage(v.get("label"), v.get("value"))]
            for f in snap.role_fields(kind, "lifecycle", "status")
        }
        carrying[kind] = {name: vals for name, vals in fields.items() if vals}
    for kind, fields in carrying.items():
        if len(fields) >= 2:
            hits.append(
                r.hit(
                    object=kind,
                    field=", ".join(fields),
                    values=sorted({v for vals in fields.values() for v in vals}),
                    counts={name: len(vals) for name, vals in fields.items()},
                    count=len(fields),
                    evidence={"fields": fields},
                    message=f"{len(fields)} fields on {snap.crm} {OBJECT_LABELS[kind]} carry funnel stages: "
                    + "; ".join(f"{name} ({', '.join(vals)})" for name, vals in fields.items())
                    + ".",
                )
            )
    # across objects: leads and contacts tracking the funnel in different fields (Lead Status on leads, a lifecycle
    # field on contacts) are two systems; the same field on both (mapped on conversion) is one
    leads, contacts = carrying.get("lead") or {}, carrying.get("contact") or {}
    lead_names, contact_names = {n.lower() for n in leads}, {n.lower() for n in contacts}
    if leads and contacts and lead_names != contact_names:
        only = {
            "lead": {n: v for n, v in leads.items() if n.lower() not in contact_names},
            "contact": {n: v for n, v in contacts.items() if n.lower() not in lead_names},
        }
        extra = [
            f"only {OBJECT_LABELS[k]} carry them in "
            + ", ".join(f"{field_label(snap.field(k, n) or {'name': n})} ({', '.join(v)})" for n, v in fields.items())
            for k, fields in only.items()
            if fields
        ]
        hits.append(
            r.hit(
                object="lead, contact",
                field=", ".join(sorted({n for fields in only.values() for n in fields})),
                key="across-objects",
                values=sorted({v for fields in only.values() for vals in fields.values() for v in vals}),
                counts={f"{k}.{n}": len(v) for k, fields in only.items() for n, v in fields.items()},
                count=sum(len(fields) for fields in only.values()),
                evidence={"lead": leads, "contact": contacts},
                message=f"{snap.crm} leads and contacts track the funnel in different fields: "
                + "; ".join(extra)
                + ". Reports that follow one field miss the records tracked in the other.",
            )
        )
    return hits


HUBSPOT_STAGE_DATE = re.compile(r"^hs_(?:v2_)?date_(?:entered|exited)_(.+)$|^hs_lifecyclestage_(.+)_date$")
ACRONYMS = {
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "sal": "salesacceptedlead",
    "sao": "salesacceptedopportunity",
    "pql": "productqualifiedlead",
}


def _stage_key(text: Any) -> str:
    """One spelling per stage: 'MQL', 'Marketing Qualified Lead' and 'marketingqualifiedlead' all read the same."""
    key = squash(text)
    return ACRONYMS.get(key, key)


def _current_stage_keys(snap: Snapshot, kind: str) -> set[str]:
    keys: set[str] = set()
    if kind in ("deal", "ticket"):
        for p in snap.pipelines(kind):
            keys |= {_stage_key(st["id"]) for st in p["stages"] if st.get("active", True) is not False}
        return keys
    for f in snap.role_fields(kind, "lifecycle", "status"):
        for v in f["values"]:
            if v.get("active", True) is not False:
                keys |= {_stage_key(v.get("value")), _stage_key(v.get("label"))}
    return keys


@rule(
    "LC-RETIRED-DATE-PROPERTIES",
    title="Stage date fields for stages that no longer exist",
    domain=LEAD_LIFECYCLE,
    severity=LOW,
    seed="S1 Current State Audit §1 “Lead Pipeline + Contact Lifecycle + Lead Status all tracking similar concepts”; "
    "§4a “records stuck in old stages”",
    recommendation="Retire the date fields of stages that no longer exist (hide or archive them, after copying what "
    "reports still need) so time-in-stage and conversion reports read only the current lifecycle.",
    needs=("fields", "pipelines"),
    detects="date fields that record entering a stage (HubSpot hs_date_entered_*, ‘MQL Date’) whose stage is not a "
    "current value of the object's lifecycle or status fields or pipelines",
)
def _retired_dates(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for kind in ("lead", "contact", "company", "deal"):
        if not snap.available(kind):
            continue
        current = _current_stage_keys(snap, kind)
        if not current:
            continue  # no stage field read: nothing to compare with
        retired: dict[str, str] = {}  # field name -> the stage it dates
        for f in snap.fields(kind):
            if f.get("type") not in ("date", "datetime"):
                continue
            m = HUBSPOT_STAGE_DATE.match(f["name"])
            if m:
                stage = m.group(1) or m.group(2)
            else:
                found = vocabulary.FUNNEL_PATTERN.search(norm(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", f["name"])))
                found = found or vocabulary.FUNNEL_PATTERN.search(norm(f.get("label")))
                if not found or kind in ("deal", "ticket"):
                    continue
                stage = found.group(0)
            if _stage_key(stage) not in current:
                retired[f["name"]] = stage
        if retired:
            hits.append(
                r.hit(
                    object=kind,
                    field=", ".join(retired),
                    domain=SALES_PIPELINES if kind == "deal" else COMPANY_LIFECYCLE if kind == "company" else r.domain,
                    values=sorted(set(retired.values())),
                    count=len(retired),
                    evidence={"fields": retired},
                    message=f"{plural(len(retired), 'date field')} on {snap.crm} {OBJECT_LABELS[kind]} "
                    f"{'records' if len(retired) == 1 else 'record'} entering stages that are no longer current "
                    f"values: {listing(f'{name} ({stage})' for name, stage in retired.items())}. They are left over "
                    "from an earlier lifecycle and mislead time-in-stage reports.",
                )
            )
    return hits


@rule(
    "LC-STATUS-MIX",
    title="Lifecycle and status concepts mixed in one field",
    domain=LEAD_LIFECYCLE,
    severity=HIGH,
    seed="S1 Common Gotchas “Keep lifecycle stages (funnel position) and contact statuses (working state) as "
    "separate fields”",
    recommendation="Keep lifecycle stages (funnel position) and contact statuses (working state: New, Working, "
    "Engaged, Nurture) as separate fields; move the working-state values out of the lifecycle field and the funnel "
    "stages out of the status field.",
    detects="working-state words (New, Working, Nurture…) in a lifecycle field, or funnel stages in a status field",
)
def _status_mix(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    snap.not_read(unread_people_fields(snap))
    hits = []
    for kind, f in lifecycle_like(snap):
        if f["role"] == "lifecycle":
            wrong, what = vocabulary.STATUS, "working-state (status) values"
        else:
            wrong, what = vocabulary.STAGE, "funnel stages"
        bad = [v for v in f["values"] if value_class(v) == wrong]
        if not bad:
            continue
        # a value only a word pattern recognised may be the client's own name for something else: advisory
        sure = [v for v in bad if documented(v)]
        hits.append(
            r.hit(
                object=kind,
                field=f["name"],
                severity=r.severity if sure else LOW,
                values=[shown(v) for v in bad],
                count=len(bad),
                evidence={"role": f["role"], "values": {shown(v): v.get("value") for v in bad}},
                message=f"The {f['role']} field {field_label(f)} on {snap.crm} {OBJECT_LABELS[kind]} holds "
                f"{what}: {listing(shown(v) for v in bad)}."
                + ("" if sure else " These names are not in the standard vocabulary: check what they mean."),
            )
        )
    return hits


@rule(
    "LC-NO-CONTACT-STATUS",
    title="No contact status separate from the lifecycle",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 §2c “Contact Status field configured (separate from Lifecycle Stage)”",
    recommendation="Configure a Contact Status field (New, Working, Engaged, Nurture) separate from Lifecycle Stage, "
    "and fill it in as reps work the contact.",
    needs=("fields", "counts"),
    detects="contacts have no status picklist, or it is empty on every contact",
)
def _no_contact_status(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    if not snap.available("contact"):
        return []
    statuses = snap.role_fields("contact", "status")
    if not statuses:
        require(snap, snap.unreadable("contact", roles=("status",)))
        return [
            r.hit(
                object="contact",
                field="",
                message=f"{snap.crm} contacts have no status field separate from the lifecycle stage.",
            )
        ]
    counted = [vc for f in statuses if (vc := snap.value_counts("contact", f["name"])) is not None]
    total = max((vc["total"] for vc in counted), default=0)
    empty = [f for f in statuses if (vc := snap.value_counts("contact", f["name"])) and total and vc["empty"] >= total]
    if total and len(empty) == len(statuses):
        return [
            r.hit(
                object="contact",
                field=", ".join(f["name"] for f in empty),
                count=total,
                message=f"The contact status field {', '.join(field_label(f) for f in empty)} exists but none of "
                f"the {total:,} {snap.crm} contacts has a value: the working state is not tracked.",
            )
        ]
    return []


@rule(
    "LC-STAGE-ACTIVITY-NAME",
    title="Stages named for activities, not milestones",
    domain=LEAD_LIFECYCLE,
    severity=LOW,
    seed="S1 Common Gotchas “Use past-tense: ‘Demo Completed’ not ‘Demo’” (advisory, DOMAIN.md Q4)",
    recommendation="Name stages as completed milestones (‘Demo Completed’, ‘Proposal Sent’), not activities "
    "(‘Demo’, ‘Send Proposal’), so a record's stage says what has happened.",
    needs=("fields", "pipelines"),
    detects="stage labels that are activities (Demo, Discovery Call, Send Proposal) without a completion word",
)
def _activity_names(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    def activity(label: str) -> bool:
        tokens = words(label)
        if " ".join(tokens) in SEED_STAGE_NAMES:
            return False
        if not ACTIVITY_WORDS & set(tokens):
            return False
        return not any(t in COMPLETION_WORDS or (t.endswith("ed") and len(t) > 4) for t in tokens)

    hits = []
    for kind, f in lifecycle_like(snap, ("lead", "contact", "company"), ("lifecycle",)):
        bad = [shown(v) for v in f["values"] if activity(shown(v))]
        if bad:
            hits.append(
                r.hit(
                    object=kind,
                    field=f["name"],
                    domain=COMPANY_LIFECYCLE if kind == "company" else r.domain,
                    values=bad,
                    count=len(bad),
                    message=f"{field_label(f)} has stages named for activities: {listing(bad)}.",
                )
            )
    for p in snap.active_pipelines("deal"):
        bad = [s["label"] for s in p["stages"] if not s.get("is_closed") and activity(s["label"])]
        if bad:
            hits.append(
                r.hit(
                    object="deal",
                    field=p["label"],
                    key=f"pipeline:{p['id']}",
                    values=bad,
                    count=len(bad),
                    message=f"Pipeline “{p['label']}” has stages named for activities: {listing(bad)}.",
                )
            )
    return hits


@rule(
    "LC-NO-DROP-OFF-REASON",
    title="No drop-off reason on lost deals",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 §2c/§2d “Drop-off reason fields … required when moving to disqualified/lost stages”",
    recommendation="Add a drop-off (loss) reason picklist on deals and make it required when a deal moves to "
    "Closed Lost (and on leads when they are disqualified).",
    needs=("fields", "pipelines", "counts"),
    detects="deals have no loss-reason field, or more than the threshold share of lost deals have none",
)
def _no_drop_off_reason(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    if not snap.available("deal"):
        return []
    reason = reason_field(snap)
    if reason is None:
        require(snap, snap.unreadable("deal", pattern=REASON_FIELD))
        return [
            r.hit(
                object="deal",
                field="",
                message=f"{snap.crm} deals have no drop-off (loss) reason field: nobody can say why deals are lost.",
            )
        ]
    counts, empty = snap.stage_counts("deal"), snap.empty_count("deal", reason["name"])
    if counts is None or empty is None:
        return []
    if not 0 <= empty <= counts["total"]:
        raise NotEvaluated(
            f"the CRM's counts for deal.{reason['name']} do not add up ({empty:,} of {counts['total']:,})"
        )
    closed = _closed_lookup(snap, "deal")
    lost = sum(s["count"] for s in counts["stages"] if closed.get((s.get("pipeline_id"), s["value"].lower())) == "lost")
    with_reason = max(0, counts["total"] - empty)
    without = max(0, lost - with_reason)
    share = without / lost if lost else 0.0
    if lost and share > ctx.threshold("lost_without_reason_share"):
        return [
            r.hit(
                object="deal",
                field=reason["name"],
                counts={"lost": lost, "lost_without_reason": without},
                count=without,
                evidence={"share": round(share, 4), "threshold": ctx.threshold("lost_without_reason_share")},
                message=f"{without:,} of {lost:,} lost deals ({share_text(share)}) have no {reason.get('label')}.",
            )
        ]
    return []


def _closed_lookup(snap: Snapshot, kind: str) -> dict[tuple[str | None, str], str]:
    """(pipeline id, stage value) -> 'won' / 'lost' / 'open', from the pipelines' stage flags."""
    out: dict[tuple[str | None, str], str] = {}
    for p in snap.pipelines(kind):
        for s in p["stages"]:
            state = ("won" if s.get("is_won") else "lost") if s.get("is_closed") else "open"
            out[(p["id"], s["id"].lower())] = state
            out.setdefault((None, s["id"].lower()), state)
    return out


@rule(
    "LC-DOMINANT-DROP-OFF-REASON",
    title="One loss reason dominates",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 §4a monthly Drop-off Reason Review “Same reason appearing >30% of the time” (DOMAIN.md T4)",
    recommendation="Review the dominant drop-off reason with the teams that record it: find out what lies behind "
    "it (a real pattern to act on, or a default reps pick) and split it into more precise reasons if it hides several.",
    needs=("fields", "counts"),
    detects="one value holds more than dominant_reason_share of the deals with a recorded loss reason (at least "
    "dominant_reason_min of them)",
)
def _dominant_reason(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    reason = reason_field(snap)
    if reason is None:
        return []
    vc = snap.value_counts("deal", reason["name"])
    if vc is None:
        return []
    counts: dict[str, int] = {}
    for v in vc["values"]:
        if v["count"] and norm(v.get("label") or v["value"]):
            name = v.get("label") or v["value"]
            counts[name] = counts.get(name, 0) + v["count"]
    recorded = sum(counts.values())
    if recorded < ctx.threshold("dominant_reason_min"):
        return []
    top, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    share = n / recorded
    if not 0 < share <= 1:
        raise NotEvaluated(f"the CRM's counts for deal.{reason['name']} do not add up")
    limit = ctx.threshold("dominant_reason_share")
    if share <= limit:
        return []
    free = " (free text, grouped by normalised wording)" if vc.get("free_text") else ""
    ranked = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    return [
        r.hit(
            object="deal",
            field=reason["name"],
            values=list(ranked),
            counts=ranked,
            count=n,
            evidence={"share": round(share, 4), "threshold": limit, "recorded": recorded, "free_text": bool(free)},
            message=f"“{top}” is the {reason.get('label') or reason['name']}{free} of {n:,} of the {recorded:,} "
            f"{snap.crm} deals with a recorded reason ({share_text(share)}; the review threshold is "
            f"{share_text(limit)}). Top reasons: " + ", ".join(f"{k} ({v:,})" for k, v in ranked.items()) + ".",
        )
    ]


@dataclass
class CountedField:
    """One field's record counts split by what the CRM says of each value: current, retired (an inactive picklist
    value, a hidden HubSpot option, an archived stage) or rogue (no option lists it). Judged per field: a value is
    current only among its own field's options."""

    kind: str
    name: str  # field API name
    label: str
    domain: str
    total: int  # records counted (with or without a value)
    retired: dict[str, int] = field(default_factory=dict)  # label -> records
    rogue: dict[str, int] = field(default_factory=dict)  # value as the records hold it -> records
    internal: dict[str, str] = field(default_factory=dict)  # label -> internal value, for the evidence
    unnamed: int = 0  # records in values the CRM did not name (HubSpot without deep)
    hidden_options: list[str] = field(default_factory=list)  # retired options, when the unnamed may be in them


def _options(f: dict | None) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for o in (f or {}).get("values") or []:
        found.setdefault(str(o["value"]).lower(), o)
    for o in (f or {}).get("values") or []:
        found.setdefault(str(o.get("label") or "").lower(), o)
    return found


def _place(
    counted: CountedField,
    options: dict[str, dict],
    value: str,
    label: str | None,
    n: int,
    known: bool,
    active: bool | None,
) -> None:
    option = options.get(value.lower())
    if known and active is False or (not known and option is not None and option.get("active") is False):
        name = label or (option or {}).get("label") or value
        counted.retired[name] = counted.retired.get(name, 0) + n
        counted.internal[name] = (option or {}).get("value") or value
    elif not known and option is None:
        counted.rogue[value] = counted.rogue.get(value, 0) + n


def counted_fields(snap: Snapshot) -> list[CountedField]:
    """Every counted lifecycle, status, type and stage field, with its retired and rogue values."""
    out = []
    domains = {"lead": LEAD_LIFECYCLE, "contact": LEAD_LIFECYCLE, "company": COMPANY_LIFECYCLE}
    for vc in (snap.data.get("value_counts") or {}).values():
        kind = vc["object"]
        f = snap.field(kind, vc["field"])
        if kind not in domains or f is None or not f.get("role"):
            continue
        counted = CountedField(kind, f["name"], f.get("label") or f["name"], domains[kind], vc.get("total") or 0)
        options = _options(f)
        for v in vc["values"]:
            if v["count"]:
                _place(counted, options, v["value"], v.get("label"), v["count"], v["known"], v.get("active"))
        named = sum(v["count"] for v in vc["values"] if not v["known"])
        counted.unnamed = max(0, (vc.get("unknown_total") or 0) - named)
        counted.hidden_options = [shown(o) for o in f.get("values") or [] if o.get("active") is False]
        out.append(counted)
    for kind in ("deal", "ticket"):
        sc = snap.stage_counts(kind)
        if not sc:
            continue
        name = snap.stage_field(kind) or "stage"
        f = snap.field(kind, name)
        counted = CountedField(
            kind,
            name,
            (f or {}).get("label") or name,
            SALES_PIPELINES if kind == "deal" else CUSTOMER_LIFECYCLE,
            sc.get("total") or 0,
        )
        # each pipeline is judged on its own stages: another pipeline's stage on a deal is no option of its pipeline
        field_options = _options(f)
        retired_only = {k: o for k, o in field_options.items() if o.get("active") is False}
        every = dict(field_options)
        per_pipeline: dict[str, dict[str, dict]] = {}
        for p in snap.pipelines(kind):
            stages = {
                st["id"].lower(): {"value": st["id"], "label": st["label"], "active": st.get("active")}
                for st in p["stages"]
            }
            stages.update({st["label"].lower(): v for st, v in zip(p["stages"], stages.values(), strict=True)})
            per_pipeline[p["id"]] = {**retired_only, **stages}
            for key, o in stages.items():
                every.setdefault(key, o)
        for st in sc["stages"]:
            if st["count"]:
                options = per_pipeline.get(st.get("pipeline_id") or "", every)
                _place(counted, options, st["value"], st.get("label"), st["count"], st["known"], st.get("active"))
        named = sum(st["count"] for st in sc["stages"] if not st["known"])
        counted.unnamed = max(0, (sc.get("unknown_total") or 0) - named)
        out.append(counted)
    return out


@rule(
    "LC-UNAPPROVED-VALUES",
    title="Records hold values the picklist does not allow (rogue values)",
    domain=LEAD_LIFECYCLE,
    severity=HIGH,
    seed="S1 §4a Rogue Stage Audit “Any new values found = governance issue”",
    recommendation="Map these records to approved values, then restrict the field to its defined values (picklist "
    "restriction / property options) so no new values appear.",
    needs=("fields", "counts"),
    detects="records whose lifecycle, status, type or stage value is none of its own field's options or pipeline "
    "stages (retired options are LC-DEPRECATED-STAGE-RECORDS)",
)
def _rogue_values(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for c in counted_fields(snap):
        total = sum(c.rogue.values()) + c.unnamed
        if not total:
            continue
        what = listing(c.rogue) if c.rogue else ""
        tail = ""
        if c.unnamed:
            tail = f" {snap.crm} does not name every such value without a deep audit"
            tail += (
                f" (some may sit in the field's hidden options: {listing(c.hidden_options, 4)})."
                if c.hidden_options
                else "."
            )
        records = c.kind if total == 1 else OBJECT_LABELS[c.kind]
        hits.append(
            r.hit(
                object=c.kind,
                field=c.name,
                domain=c.domain,
                values=list(c.rogue),
                counts=dict(c.rogue),
                count=total,
                evidence={"named": not c.unnamed, "field_label": c.label},
                message=f"{total:,} {records} {'holds' if total == 1 else 'hold'} {c.label} values that are not "
                "among the field's options" + (f": {what}." if what else ".") + tail,
            )
        )
    return hits


@rule(
    "LC-NULL-STAGE",
    title="Records with no stage or status",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 §4a first business cycle check “records with no stage assigned”",
    recommendation="Give every record a stage and a status: backfill the empty ones and set both on creation "
    "(automation or a required field) so none is created without them.",
    needs=("fields", "counts"),
    detects="leads/contacts with an empty lifecycle or status field; deals/tickets with no stage",
)
def _null_stage(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for kind in PEOPLE:
        snap.not_read(snap.unreadable(kind, roles=("lifecycle", "status")))
    for kind, f in lifecycle_like(snap, PEOPLE, ("lifecycle", "status")):
        vc = snap.value_counts(kind, f["name"])
        if not vc or not vc["empty"]:
            continue
        total = vc["total"] or 0
        if not 0 < vc["empty"] <= total:
            raise NotEvaluated(f"the CRM's counts for {kind}.{f['name']} do not add up ({vc['empty']:,} of {total:,})")
        if f["role"] == "status" and kind == "contact" and vc["empty"] == total:
            continue  # a contact status nobody fills in is LC-NO-CONTACT-STATUS
        hits.append(
            r.hit(
                object=kind,
                field=f["name"],
                counts={"empty": vc["empty"], "total": total},
                count=vc["empty"],
                evidence={"role": f["role"], "share": round(vc["empty"] / total, 4)},
                message=f"{vc['empty']:,} of {total:,} {snap.crm} {OBJECT_LABELS[kind]} "
                f"({share_text(vc['empty'] / total)}) have no {f.get('label') or f['name']}.",
            )
        )
    for kind in ("deal", "ticket"):
        sc = snap.stage_counts(kind)
        if sc and sc.get("without_stage"):
            hits.append(
                r.hit(
                    object=kind,
                    field=snap.stage_field(kind) or "stage",
                    domain=SALES_PIPELINES if kind == "deal" else CUSTOMER_LIFECYCLE,
                    counts={"empty": sc["without_stage"], "total": sc["total"]},
                    count=sc["without_stage"],
                    message=f"{sc['without_stage']:,} of {sc['total']:,} {OBJECT_LABELS[kind]} have no stage.",
                )
            )
    return hits


@rule(
    "LC-DEPRECATED-STAGE-RECORDS",
    title="Records stuck in retired values",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 §4a first business cycle check “records stuck in old stages”",
    recommendation="Move the records out of retired values into current stages; a retired value should hold no "
    "records.",
    needs=("fields", "counts"),
    detects="records in inactive picklist values (Salesforce), hidden options (HubSpot) or archived pipeline stages; "
    "low under retired_share_medium of the field's records, high from retired_share_high",
)
def _deprecated(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for c in counted_fields(snap):
        n = sum(c.retired.values())
        if not n:
            continue
        share = n / c.total if c.total else 0.0
        if not 0 <= share <= 1:
            raise NotEvaluated(f"the CRM's counts for {c.kind}.{c.name} do not add up ({n:,} retired of {c.total:,})")
        severity = (
            HIGH
            if share >= ctx.threshold("retired_share_high")
            else MEDIUM
            if share >= ctx.threshold("retired_share_medium")
            else LOW
        )
        hits.append(
            r.hit(
                object=c.kind,
                field=c.name,
                domain=c.domain,
                severity=severity,
                values=list(c.retired),
                counts=dict(c.retired),
                count=n,
                evidence={"share": round(share, 4), "total": c.total, "internal_values": dict(c.internal)},
                message=f"{n:,} of {c.total:,} {snap.crm} {OBJECT_LABELS[c.kind]} ({share_text(share)}) still hold "
                f"retired {c.label} values: " + ", ".join(f"“{k}” ({v:,})" for k, v in c.retired.items()) + ".",
            )
        )
    return hits


# ---- stage history (deep mode): skips and backward moves

OTHER = re.compile(r"^other$")  # HubSpot's catch-all lifecycle value: an exit, not a step of the funnel


@dataclass
class StageOrder:
    """An ordered stage sequence: the signed architecture's, a pipeline's or a picklist's.

    `ranks` holds the steps (value, lower case -> position; the values of one signed stage share a position);
    `exits` the closed and catch-all values, which a record may enter from any step (a deal is won or lost at
    any point) and which rank after every step (leaving one for a step is a move back)."""

    source: str  # in words: "the signed architecture (v3)", "pipeline “New Business”", "picklist order"
    ranks: dict[str, int]
    names: list[str]  # position -> stage name, for the skipped stages
    exits: set[str]
    labels: dict[str, str]  # value (lower) -> label
    active: list[bool] = field(default_factory=list)  # position -> still in use
    pipeline_id: str | None = None

    def rank(self, value: str) -> float | None:
        v = value.lower()
        if v in self.exits:
            return math.inf
        return self.ranks.get(v)

    def label(self, value: str) -> str:
        return self.labels.get(value.lower(), value)

    def moves(self, path: list[str]) -> tuple[list[tuple[str, str, list[str]]], list[tuple[str, str]]]:
        """(skips with the stages jumped over, backward moves) along one record's path. Values outside the
        sequence (rogue, unsigned) are not judged."""
        skips, backs = [], []
        for a, b in zip(path, path[1:], strict=False):
            ra, rb = self.rank(a), self.rank(b)
            if ra is None or rb is None or ra == rb:
                continue
            if rb < ra:
                backs.append((a, b))
            elif rb != math.inf and rb > ra + 1:
                between = [self.names[i] for i in range(int(ra) + 1, int(rb)) if self.active[i]]
                if between:
                    skips.append((a, b, between))
        return skips, backs


def _order_from_values(source: str, values: list[dict], closed: Callable[[dict], bool], pipeline_id=None):
    steps = [v for v in sorted(values, key=lambda v: v.get("order", 0)) if not closed(v)]
    return StageOrder(
        source,
        {str(v.get("value", v.get("id"))).lower(): i for i, v in enumerate(steps)},
        [shown(v) for v in steps],
        {str(v.get("value", v.get("id"))).lower() for v in values if closed(v)},
        {str(v.get("value", v.get("id"))).lower(): shown(v) for v in values},
        [v.get("active", True) is not False for v in steps],
        pipeline_id,
    )


def stage_orders(snap: Snapshot, ctx: Context, kind: str, field_name: str) -> list[StageOrder]:
    """The sequences a field's history is judged against: the signed architecture's when it maps stages to this
    field (or, for deals, to pipelines), else the CRM's own order (pipeline stage order for the deal stage,
    picklist order otherwise)."""
    signed = []
    for sequence in signed_architecture(snap, ctx).sequences():
        place = sequence[0].place
        if place.kind != kind or (place.pipeline_id is None and place.field.lower() != field_name.lower()):
            continue
        ranks, exits, labels, names = {}, set(), {}, []
        for placed in sequence:
            values = []
            for v in placed.stage.get("crm_values") or []:
                option = place.option(str(v))
                keys = list(dict.fromkeys([str(v).lower()] + ([option.value.lower()] if option else [])))
                for key in keys:
                    labels[key] = option.label if option else str(v)
                values += keys
            if OUTCOME.search(norm(placed.name)):
                exits.update(values)
                continue
            for key in values:
                ranks[key] = len(names)
            names.append(placed.name or values[0])
        signed.append(
            StageOrder(
                f"the signed architecture (v{ctx.signed_version})",
                ranks,
                names,
                exits,
                labels,
                [True] * len(names),
                place.pipeline_id,
            )
        )
    if signed:
        return signed
    stage_field = snap.stage_field(kind)
    if kind in ("deal", "ticket") and stage_field and stage_field.lower() == field_name.lower():
        return [
            _order_from_values(
                f"the stage order of pipeline “{p['label']}”",
                p["stages"],
                lambda s: bool(s.get("is_closed")),
                p["id"],
            )
            for p in snap.active_pipelines(kind)
        ]
    f = snap.field(kind, field_name)
    if f is None or not f.get("values"):
        return []
    # working-state values inside a lifecycle field (LC-STATUS-MIX) are no funnel step: neither skipped nor judged
    status = [v for v in f["values"] if f.get("role") == "lifecycle" and matches(STATUS_WORDS, v)]
    order = _order_from_values(
        f"the picklist order of {f['name']}",
        [v for v in f["values"] if v not in status],
        lambda v: matches(OUTCOME, v) or any(OTHER.search(t) for t in texts(v)),
    )
    order.labels.update({str(v["value"]).lower(): shown(v) for v in status})
    return [order]


def _order_for(orders: list[StageOrder], path: list[str], pipeline: str | None) -> StageOrder | None:
    """The sequence one record is judged against: its pipeline's when the CRM said which (HubSpot deals); else the
    one knowing most of its values, and of those the one its path fits best (Salesforce's history does not say
    which record type an opportunity had)."""
    if not orders:
        return None
    if pipeline is not None:
        mine = [o for o in orders if o.pipeline_id == pipeline]
        if mine:
            return mine[0]

    def fit(o: StageOrder) -> tuple[int, int]:
        known = sum(1 for v in path if o.rank(v) is not None)
        skips, backs = o.moves(path)
        return (-known, len(skips) + len(backs))

    return min(orders, key=fit)


@dataclass
class HistoryMoves:
    kind: str
    field: str
    entry: dict
    sources: set[str] = field(default_factory=set)
    records: int = 0  # records with at least one such move
    moves: int = 0
    transitions: dict[str, int] = field(default_factory=dict)  # "A → B" -> moves
    skipped: dict[str, int] = field(default_factory=dict)  # stage jumped over -> times


def history_moves(snap: Snapshot, ctx: Context, backward: bool) -> list[HistoryMoves]:
    out = []
    for entry in (snap.data.get("history") or {}).values():
        if not entry.get("available", True):
            continue
        kind, name = entry["object"], entry["field"]
        orders = stage_orders(snap, ctx, kind, name)
        found = HistoryMoves(kind, name, entry)
        for p in entry.get("paths") or []:
            order = _order_for(orders, p["values"], p.get("pipeline"))
            if order is None:
                continue
            skips, backs = order.moves(p["values"])
            moves = backs if backward else skips
            if not moves:
                continue
            n = p["records"]
            found.sources.add(order.source)
            found.records += n
            found.moves += n * len(moves)
            for move in moves:
                text = f"{order.label(move[0])} → {order.label(move[1])}"
                found.transitions[text] = found.transitions.get(text, 0) + n
                for stage in move[2] if len(move) > 2 else ():
                    found.skipped[stage] = found.skipped.get(stage, 0) + n
        if found.records:
            out.append(found)
    return out


def _history_hits(r: Rule, snap: Snapshot, ctx: Context, backward: bool) -> list[Hit]:
    hits = []
    for m in history_moves(snap, ctx, backward):
        e = m.entry
        ranked = dict(sorted(m.transitions.items(), key=lambda kv: (-kv[1], kv[0])))
        days = (datetime.fromisoformat(e["end"]) - datetime.fromisoformat(e["start"])).days
        read = f"{e['records_read']:,} {OBJECT_LABELS[m.kind]} read" + (
            f" (a sample: {e['note']})" if e.get("sampled") else ""
        )
        against = " and ".join(sorted(m.sources))
        if backward:
            what = (
                f"moved back to an earlier {m.field} stage ({plural(m.moves, 'backward move')}); the history does "
                "not show whether a stage reason was recorded"
            )
        else:
            what = f"jumped over at least one {m.field} stage ({plural(m.moves, 'skip')})"
            if m.skipped:
                top = sorted(m.skipped.items(), key=lambda kv: (-kv[1], kv[0]))
                what += "; most skipped: " + ", ".join(f"“{s}” ({n:,})" for s, n in top[:4])
        hits.append(
            r.hit(
                object=m.kind,
                field=m.field,
                domain=SALES_PIPELINES if m.kind == "deal" else r.domain,
                values=list(ranked)[:10],
                counts=ranked,
                count=m.records,
                evidence={
                    "records": m.records,
                    "moves": m.moves,
                    "skipped_stages": dict(sorted(m.skipped.items(), key=lambda kv: (-kv[1], kv[0]))),
                    "records_read": e["records_read"],
                    "sampled": bool(e.get("sampled")),
                    "order": sorted(m.sources),
                    "window_days": days,
                    "source": e.get("source", ""),
                },
                message=f"{m.records:,} of {read} {what}, in the last {days} days, judged against {against}: "
                + ", ".join(f"{t} ({n:,})" for t, n in list(ranked.items())[:6])
                + ".",
            )
        )
    return hits


@rule(
    "LC-STAGE-SKIPS",
    title="Stages being skipped",
    domain=LEAD_LIFECYCLE,
    severity=LOW,
    seed="S1 §4a first business cycle check “stages being skipped”; end-user guidance “don't skip stages”",
    recommendation="Don't skip stages: find out why records jump over these stages (missing automation, a stage "
    "nobody owns, reps updating late) and either enforce the entry criteria or take the stage out of the "
    "architecture.",
    needs=("deep", "history"),
    detects="(deep mode) records whose stage history jumps over one or more stages of the signed (else the "
    "pipeline's or picklist's) stage order; closing a deal from any stage is not a skip",
)
def _stage_skips(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _history_hits(r, snap, ctx, backward=False)


@rule(
    "LC-BACKWARD-MOVES",
    title="Backward stage moves",
    domain=LEAD_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 §2d “Lifecycle cannot move backward accidentally”; S3 12.1 “require a stage reason when moving backward”",
    recommendation="Lifecycle cannot move backward accidentally: make the stage fields forward-only, and require a "
    "stage reason when moving backward.",
    needs=("deep", "history"),
    detects="(deep mode) records whose stage history moves to an earlier stage of the signed (else the "
    "pipeline's or picklist's) stage order, or out of a closed stage",
)
def _backward_moves(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _history_hits(r, snap, ctx, backward=True)


# ---------------------------------------------------------------- 8.2 sales pipelines


def _stage_rule(r: Rule, snap: Snapshot, test: Callable[[dict], bool], what: str, open_only: bool = True) -> list[Hit]:
    hits = []
    for p in snap.active_pipelines("deal"):
        bad = [s for s in p["stages"] if (not open_only or not s.get("is_closed")) and test(s)]
        if bad:
            hits.append(
                r.hit(
                    object="deal",
                    field=p["label"],
                    key=f"pipeline:{p['id']}",
                    values=[s["label"] for s in bad],
                    count=len(bad),
                    evidence={"pipeline_id": p["id"]},
                    message=f"{snap.crm} pipeline “{p['label']}” has {what}: {listing(s['label'] for s in bad)}.",
                )
            )
    return hits


@rule(
    "PIPE-TOO-MANY",
    title="More than three deal pipelines",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 Current State Audit §2 / Track B “too many pipelines (consolidate to 3 max)”",
    recommendation="Consolidate to three pipelines at most: New Business, Renewal, Expansion.",
    needs=("pipelines",),
    detects="more than 3 active deal pipelines (HubSpot pipelines; Salesforce opportunity record types)",
)
def _too_many(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    active = snap.active_pipelines("deal")
    if len(active) <= MAX_PIPELINES:
        return []
    return [
        r.hit(
            object="deal",
            field="pipelines",
            values=[p["label"] for p in active],
            count=len(active),
            message=f"{snap.crm} has {len(active)} active deal pipelines ({listing(p['label'] for p in active)}); "
            f"the architecture allows {MAX_PIPELINES}.",
        )
    ]


@rule(
    "PIPE-TIME-BASED-STAGES",
    title="Time-based renewal stages",
    domain=SALES_PIPELINES,
    severity=HIGH,
    seed="S1 Current State Audit §2 and Common Gotchas (120/90/60/30-day stages)",
    recommendation="Replace with commercial progression stages reflecting customer intent: Open Renewal, Review, "
    "Proposal, Negotiation, Closed Won/Lost.",
    needs=("pipelines",),
    detects="stage labels such as ‘90 Days Out’ or ‘Renewal due in 120 days’",
)
def _time_based(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _stage_rule(r, snap, lambda s: matches(TIME_BASED, s), "countdown stages")


@rule(
    "PIPE-TASK-LEVEL-STAGES",
    title="Task-level stages (50% / 75% complete)",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 Current State Audit §2 “task-level stages (50%/75%/90% complete)”",
    recommendation="Stages mark buyer milestones, not task completion: move the checklist to tasks and keep one "
    "stage per milestone.",
    needs=("pipelines",),
    detects="a percentage or ‘N complete’ in a stage label (the probability attribute is not read)",
)
def _task_level(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _stage_rule(r, snap, lambda s: bool(TASK_LEVEL.search(norm(s["label"]))), "task-level stages")


@rule(
    "PIPE-INTERNAL-SIGNAL-STAGES",
    title="Internal signal stages (Trending Up / Down)",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S1 Current State Audit §2 “internal signal stages (Trending Up/Down)”; ‘at risk’, ‘upside’ proposed "
    "(DOMAIN.md 8.8)",
    recommendation="Track deal health in a separate field (forecast category, risk flag), not as a stage.",
    needs=("pipelines",),
    detects="stage labels Trending Up/Down (medium) or At Risk / Upside / Healthy (low)",
)
def _signals(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = _stage_rule(r, snap, lambda s: matches(SIGNAL_SEED, s), "internal signal stages")
    seen = {h.key for h in hits}
    for h in _stage_rule(r, snap, lambda s: matches(SIGNAL_PROPOSED, s), "stages that look like internal signals"):
        if h.key not in seen:
            h.severity = LOW
            hits.append(h)
    return hits


@rule(
    "PIPE-CS-STAGES-IN-SALES",
    title="Customer-success stages inside a sales pipeline",
    domain=SALES_PIPELINES,
    severity=HIGH,
    seed="S1 Current State Audit §3 and Common Gotchas",
    recommendation="Use a dedicated CS pipeline (Tickets in HubSpot, a custom object in Salesforce) to separate "
    "customer health from revenue forecasting.",
    needs=("pipelines",),
    detects="onboarding / implementation / go-live / adoption stages in a deal pipeline",
)
def _cs_in_sales(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    return _stage_rule(r, snap, lambda s: matches(CS_WORDS, s), "customer-success stages")


@rule(
    "PIPE-DEFAULT-STAGES",
    title="Platform default stages still in use",
    domain=SALES_PIPELINES,
    severity=LOW,
    seed="S1 Common Gotchas “Customize stages to reflect the company's real sales/CS motion”",
    recommendation="Customize the stages to the company's real sales motion, with entry and exit criteria for each.",
    needs=("pipelines",),
    detects="a pipeline whose open stage labels are mostly the platform's defaults (Prospecting…; Appointment "
    "Scheduled…); relabelled default stages are the client's own",
)
def _default_stages(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    defaults = DEFAULT_STAGES.get(snap.platform) or set().union(*DEFAULT_STAGES.values())
    needed = max(3, math.ceil(ctx.threshold("default_stage_share") * len(defaults)))
    plain = {squash(d) for d in defaults}
    hits = []
    for p in snap.active_pipelines("deal"):
        found = [s["label"] for s in p["stages"] if squash(s["label"]) in plain]
        if len(found) >= needed:
            hits.append(
                r.hit(
                    object="deal",
                    field=p["label"],
                    key=f"pipeline:{p['id']}",
                    values=found,
                    count=len(found),
                    message=f"Pipeline “{p['label']}” still uses {len(found)} of the {len(defaults)} {snap.crm} "
                    f"default stages ({listing(found)}).",
                )
            )
    return hits


@rule(
    "PIPE-PROBABILITY-SPEC",
    title="Stage probabilities missing or off the 25/50/75/90/100 spec",
    domain=SALES_PIPELINES,
    severity=LOW,
    seed="S1 §2a/§2d “correct probability weightings” (25/50/75/90/100%)",
    recommendation="Set open-stage probabilities to the architecture's weightings (25, 50, 75, 90; 100 for Closed "
    "Won), increasing along the pipeline.",
    needs=("pipelines",),
    detects="open stages with no probability or one outside 25/50/75/90/100; decreasing order (info)",
)
def _probabilities(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for p in snap.active_pipelines("deal"):
        opens = [s for s in p["stages"] if not s.get("is_closed")]
        off = {}
        for s in opens:
            prob = s.get("probability")
            if prob is None or not any(abs(prob - x) < 0.005 for x in SPEC_PROBABILITIES):
                off[s["label"]] = None if prob is None else round(prob * 100)
        probs = [s["probability"] for s in opens if s.get("probability") is not None]
        decreasing = any(b < a for a, b in zip(probs, probs[1:], strict=False))
        if not off and not decreasing:
            continue
        text = ", ".join(f"{k} {'none' if v is None else f'{v}%'}" for k, v in off.items())
        hits.append(
            r.hit(
                object="deal",
                field=p["label"],
                key=f"pipeline:{p['id']}",
                severity=LOW if off else INFO,
                values=list(off),
                counts={k: v for k, v in off.items() if v is not None},
                count=len(off),
                evidence={"decreasing": decreasing},
                message=(f"Pipeline “{p['label']}” has probabilities off the spec: {text}." if off else "")
                + (f" Probabilities in “{p['label']}” decrease along the pipeline." if decreasing else ""),
            )
        )
    for h in hits:
        h.message = h.message.strip()
    return hits


@rule(
    "PIPE-FORECAST-CATEGORY",
    title="Deals without a valid forecast category",
    domain=SALES_PIPELINES,
    severity=MEDIUM,
    seed="S2 term “Forecast Category” (Commit, Best Case, Pipeline, Omitted)",
    recommendation="Give every open deal a forecast category from the standard set: Commit, Best Case, Pipeline, "
    "Omitted.",
    needs=("fields", "counts"),
    detects="deals whose forecast category is empty or outside Commit/Best Case/Pipeline/Omitted (and Closed)",
)
def _forecast(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    f = forecast_field(snap)
    vc = snap.value_counts("deal", f["name"]) if f else None
    if not vc:
        return []
    bad = {
        v["label"] or v["value"]: v["count"]
        for v in vc["values"]
        if v["count"]
        and norm(v["label"] or v["value"]) not in FORECAST_CATEGORIES
        and norm(v["value"]) not in FORECAST_CATEGORIES
    }
    if vc["empty"]:
        bad["(empty)"] = vc["empty"]
    if not bad:
        return []
    return [
        r.hit(
            object="deal",
            field=f["name"],
            values=list(bad),
            counts=bad,
            count=sum(bad.values()),
            message=f"{sum(bad.values()):,} deals have no valid forecast category: {listing(bad)}.",
        )
    ]


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


# ---------------------------------------------------------------- 8.3 customer lifecycle


def _cs_places(snap: Snapshot) -> dict[str, list[str]]:
    """Where post-sale (customer-success) stages live: object -> the labels found."""
    found: dict[str, list[str]] = {}
    for kind in ("ticket", "deal"):
        for p in snap.active_pipelines(kind):
            labels = [s["label"] for s in p["stages"] if matches(CS_WORDS, s)]
            if labels:
                found.setdefault(kind, []).extend(f"{p['label']}: {x}" for x in labels)
    for kind in ("contact", "company", "lead"):
        for f in snap.role_fields(kind, "lifecycle", "status"):
            labels = [shown(v) for v in f["values"] if matches(CS_WORDS, v)]
            if labels:
                found.setdefault(kind, []).extend(f"{f['name']}: {x}" for x in labels)
    for obj in snap.data.get("custom_objects") or []:
        for f in obj.get("fields") or []:
            labels = [shown(v) for v in f.get("values") or [] if matches(CS_WORDS, v)]
            if labels:
                found.setdefault(obj["name"], []).extend(f"{f['name']}: {x}" for x in labels)
    return found


def place_label(place: str) -> str:
    """'ticket' -> 'tickets'; a custom object keeps its API name."""
    return OBJECT_LABELS.get(place, place)


def _other_stage_places(snap: Snapshot) -> list[str]:
    """Stage-like places that might track customers under names GTM Ops does not recognise: custom objects with
    stage picklists, and ticket pipelines beyond the support defaults (New, Waiting on contact…)."""
    places = []
    for obj in snap.data.get("custom_objects") or []:
        fields = [f for f in obj.get("fields") or [] if f.get("values")]
        if fields:
            places.append(f"{obj.get('label') or obj['name']} ({', '.join(f['name'] for f in fields)})")
    for p in snap.active_pipelines("ticket"):
        if any(vocabulary.words(st["label"]) not in vocabulary.TICKET_SUPPORT_STAGES for st in p["stages"]):
            places.append(f"ticket pipeline “{p['label']}”")
    return places


@rule(
    "CUST-NO-LIFECYCLE",
    title="No customer lifecycle after Closed Won",
    domain=CUSTOMER_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 Current State Audit §3 “no defined customer lifecycle stages at all”",
    recommendation="Define the customer lifecycle (Pre-Onboarding, Onboarding, Implementation, Early Adoption, "
    "Mature Adoption) in a dedicated CS pipeline: Tickets in HubSpot, a custom object in Salesforce.",
    needs=("fields", "pipelines"),
    detects="no post-sale stages in a ticket/CS pipeline, a lifecycle field or a custom object (CS stages inside deal "
    "pipelines do not count); low when a custom object or ticket pipeline has stages under other names",
)
def _no_customer_lifecycle(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    places = _cs_places(snap)
    if set(places) - {"deal"}:
        return []
    if any(e.get("step") == "custom objects" for e in snap.data.get("errors") or []):
        raise NotEvaluated(
            f"not evaluated: {snap.crm}'s custom objects could not be read, and a customer lifecycle may live there"
        )
    if (snap.data.get("objects") or {}).get("ticket", {}).get("readable") is False:
        # refused, not missing: the customer lifecycle may well be kept in a ticket pipeline
        raise NotEvaluated(f"not evaluated: {snap.crm}'s tickets are not readable by this user")
    in_deals = places.get("deal", [])
    others = _other_stage_places(snap)
    message = (
        f"{snap.crm} has no customer lifecycle: no pipeline, field or custom object tracks onboarding, "
        "implementation or adoption after Closed Won"
        + (f" (the only post-sale stages sit in deal pipelines: {listing(in_deals, 3)})." if in_deals else ".")
    )
    if others:
        # stages under names the vocabulary does not know: maybe the client's customer lifecycle, so advisory
        message += f" Check whether {listing(others, 3)} tracks it under other names."
    return [
        r.hit(
            object="ticket",
            field="",
            severity=LOW if others else r.severity,
            values=in_deals,
            count=len(in_deals),
            evidence={"other_stage_places": others},
            message=message,
        )
    ]


@rule(
    "CUST-FRAGMENTED",
    title="Post-sale tracking fragmented across objects",
    domain=CUSTOMER_LIFECYCLE,
    severity=LOW,
    seed="S1 Current State Audit §3 “fragmented tracking across multiple objects”",
    recommendation="Track the customer lifecycle in one place (a CS pipeline) and retire the other post-sale stages.",
    needs=("fields", "pipelines"),
    detects="post-sale stages on two or more objects (deals, tickets, contacts, companies)",
)
def _fragmented(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    places = _cs_places(snap)
    if len(places) < 2:
        return []
    return [
        r.hit(
            object=", ".join(sorted(places)),
            field="",
            values=[v for vals in places.values() for v in vals],
            counts={k: len(v) for k, v in places.items()},
            count=len(places),
            message=f"Post-sale stages live on {len(places)} objects: "
            + "; ".join(f"{place_label(k)} ({listing(v, 3)})" for k, v in sorted(places.items()))
            + ".",
        )
    ]


# ---------------------------------------------------------------- 8.4 company lifecycle


@rule(
    "COMP-FIELD-MIXED",
    title="Company field mixing lifecycle, type and status",
    domain=COMPANY_LIFECYCLE,
    severity=MEDIUM,
    seed="S1 Current State Audit §4 “company fields mixing lifecycle, type, and status concepts”",
    recommendation="Split the field: a company lifecycle (rolled up from contacts), a company type (customer, "
    "partner, reseller…) and a status (active, churned) as three fields.",
    detects="one company picklist whose values fall in two or more of lifecycle / type / status",
)
def _company_mixed(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for f in snap.role_fields("company"):
        classes: dict[str, list[str]] = {}
        for v in f["values"]:
            for name, pattern in COMPANY_CLASSES.items():
                if matches(pattern, v):
                    classes.setdefault(name, []).append(shown(v))
                    break
        if len(classes) >= 2:
            hits.append(
                r.hit(
                    object="company",
                    field=f["name"],
                    values=[v for vals in classes.values() for v in vals],
                    counts={k: len(v) for k, v in classes.items()},
                    count=len(classes),
                    evidence={"classes": classes},
                    message=f"{field_label(f)} on {snap.crm} companies mixes "
                    + "; ".join(f"{k} ({', '.join(v)})" for k, v in classes.items())
                    + ".",
                )
            )
    return hits


@rule(
    "COMP-NO-ROLLUP",
    title="No company-level lifecycle",
    domain=COMPANY_LIFECYCLE,
    severity=LOW,
    seed="S1 §2c “Add company-level lifecycle field that rolls up from Contact activity”",
    recommendation="Add a company-level lifecycle field that rolls up from the most advanced contact's lifecycle "
    "stage.",
    needs=("fields", "counts"),
    detects="companies have no lifecycle field, or it is empty on every company",
)
def _no_rollup(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    if not snap.available("company"):
        return []
    fields = snap.role_fields("company", "lifecycle")
    if not fields:
        require(snap, snap.unreadable("company", roles=("lifecycle",)))
        return [r.hit(object="company", field="", message=f"{snap.crm} companies have no lifecycle field.")]
    counted = [vc for f in fields if (vc := snap.value_counts("company", f["name"])) is not None]
    total = max((vc["total"] for vc in counted), default=0)
    empty = [f for f in fields if (vc := snap.value_counts("company", f["name"])) and total and vc["empty"] >= total]
    if total and len(empty) == len(fields):
        return [
            r.hit(
                object="company",
                field=", ".join(f["name"] for f in fields),
                count=total,
                message=f"The company lifecycle field exists but none of the {total:,} companies has a value: it "
                "does not roll up from contacts.",
            )
        ]
    return []


# ---------------------------------------------------------------- 8.5 data quality


@rule(
    "DQ-MISSING-FIELDS",
    title="Records missing minimum fields",
    domain=DATA_QUALITY,
    severity=MEDIUM,
    seed="S2 Track B “missing fields”; S3 12.1 minimum viable completeness (company, name, role, email or phone, "
    "source, stage)",
    recommendation="Backfill the minimum field set and require it at the step where it becomes known; check "
    "completeness monthly.",
    needs=("data_quality",),
    detects="a required field empty on more than the threshold share of an object's records",
)
def _missing(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    limit = ctx.threshold("missing_field_share")
    # the minimum fields the data-quality reading could not read are judged by nobody: say so, judge the rest
    snap.not_read(snap.quality.get("unreadable") or [])
    per_kind: dict[str, dict[str, float]] = {}
    for m in snap.quality.get("missing", []):
        if m["total"] and not 0 <= m["missing"] <= m["total"]:
            raise NotEvaluated(f"the CRM's counts for {m['object']}.{m['field']} do not add up")
        if m["total"] and m["missing"] / m["total"] > limit:
            per_kind.setdefault(m["object"], {})[m["field"]] = m["missing"] / m["total"]
    hits = []
    for kind, shares in per_kind.items():
        hits.append(
            r.hit(
                object=kind,
                field=", ".join(shares),
                values=list(shares),
                counts={k: round(v * 1000) / 10 for k, v in shares.items()},
                count=len(shares),
                evidence={"threshold": limit, "unit": "percent of records"},
                message=f"{snap.crm} {OBJECT_LABELS[kind]} miss "
                + ", ".join(f"{k} on {share_text(v)}" for k, v in shares.items())
                + f" of records (threshold {share_text(limit)}).",
            )
        )
    return hits


@rule(
    "DQ-NO-NEXT-STEP",
    title="Open deals without a next step",
    domain=DATA_QUALITY,
    severity=MEDIUM,
    seed="S3 1.5 / 12.1 / 12.2 “next step and next-step date on every open deal”",
    recommendation="Require a next step (and its date) on every open deal; review the ones without in the weekly "
    "pipeline meeting.",
    needs=("data_quality", "pipelines", "counts"),
    detects="more than the threshold share of open deals have no next step",
)
def _next_step(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    missing = snap.quality.get("open_deals_without_next_step")
    sc = snap.stage_counts("deal")
    if missing is None:
        require(snap, snap.unreadable("deal", pattern=re.compile(r"next\s*step")))
    if missing is None or sc is None:
        return []
    states = _closed_lookup(snap, "deal")
    open_deals = sum(
        s["count"] for s in sc["stages"] if states.get((s.get("pipeline_id"), s["value"].lower())) == "open"
    )
    if missing > open_deals:
        raise NotEvaluated(
            f"the CRM counts {missing:,} open deals without a next step but only {open_deals:,} open deals"
        )
    share = missing / open_deals if open_deals else 0.0
    limit = ctx.threshold("no_next_step_share")
    if not open_deals or share <= limit:
        return []
    return [
        r.hit(
            object="deal",
            field="next step",
            counts={"open": open_deals, "without_next_step": missing},
            count=missing,
            evidence={"share": round(share, 4), "threshold": limit},
            message=f"{missing:,} of {open_deals:,} open deals ({share_text(share)}) have no next step.",
        )
    ]


@rule(
    "DQ-STALE-RECORDS",
    title="Stale records",
    domain=DATA_QUALITY,
    severity=LOW,
    seed="S3 12.1 audit scoring “recency (days since last meaningful update)”",
    recommendation="Review stale records each quarter: update, archive or delete them; complete-but-stale is still "
    "a problem.",
    needs=("data_quality",),
    detects="more than the threshold share of an object's records untouched for more than stale_days",
)
def _stale(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    limit, days = ctx.threshold("stale_share"), snap.quality.get("stale_days") or ctx.threshold("stale_days")
    hits = []
    for s in snap.quality.get("stale", []):
        share = s["stale"] / s["total"] if s["total"] else 0.0
        if share > limit:
            hits.append(
                r.hit(
                    object=s["object"],
                    field="last modified",
                    counts={"stale": s["stale"], "total": s["total"]},
                    count=s["stale"],
                    evidence={"share": round(share, 4), "threshold": limit, "days": days},
                    message=f"{s['stale']:,} of {s['total']:,} {snap.crm} {OBJECT_LABELS[s['object']]} "
                    f"({share_text(share)}) were not updated in {days:g} days.",
                )
            )
    return hits


@rule(
    "DQ-DUPLICATE-ACCOUNTS",
    title="Duplicate accounts and contacts",
    domain=DATA_QUALITY,
    severity=HIGH,
    seed="S2 Track B “duplicate accounts”; S3 12.1 dedup keys (domain for accounts, email for contacts)",
    recommendation="Merge the duplicates (domain for companies, email for people) and turn on duplicate rules so "
    "new ones are caught on entry.",
    needs=("deep",),
    detects="(deep mode) people sharing an email, companies sharing a website domain",
)
def _duplicates(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for d in snap.quality.get("duplicates") or []:
        if d["groups"]:
            hits.append(
                r.hit(
                    object=d["object"],
                    field=d["key"],
                    counts={"groups": d["groups"], "records": d["records"], "scanned": d["scanned"]},
                    count=d["records"],
                    message=f"{d['records']:,} {OBJECT_LABELS[d['object']]} share their {d['key']} with another "
                    f"({d['groups']:,} groups among {d['scanned']:,} read).",
                )
            )
    return hits


@rule(
    "DQ-INCONSISTENT-STAGE-DEFS",
    title="Inconsistent stage definitions across pipelines",
    domain=DATA_QUALITY,
    severity=MEDIUM,
    seed="S2 Track B “inconsistent stage definitions”",
    recommendation="Give stages that share a name the same probability and closed/won flags, and one spelling.",
    needs=("pipelines",),
    detects="one stage name with different probability/closed flags in two pipelines, or near-duplicate names",
)
def _inconsistent(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    by_name: dict[str, list[tuple[dict, dict]]] = {}
    for p in snap.active_pipelines("deal"):
        for s in p["stages"]:
            by_name.setdefault(squash(s["label"]), []).append((p, s))
    hits = []
    for name, rows in sorted(by_name.items()):
        spellings = sorted({s["label"] for _, s in rows})
        shapes = {(s.get("probability"), bool(s.get("is_closed")), bool(s.get("is_won"))) for _, s in rows}
        if len(rows) < 2 or (len(shapes) == 1 and len(spellings) == 1):
            continue
        problems = []
        if len(shapes) > 1:
            problems.append("different probability or closed/won flags")
        if len(spellings) > 1:
            problems.append(f"different spellings ({', '.join(spellings)})")
        hits.append(
            r.hit(
                object="deal",
                field=spellings[0],
                key=f"stage:{name}",
                values=[f"{p['label']}: {s['label']}" for p, s in rows],
                counts={f"{p['label']}: {s['label']}": round((s.get("probability") or 0) * 100) for p, s in rows},
                count=len(rows),
                message=f"Stage “{spellings[0]}” is defined {len(rows)} ways across pipelines: "
                + " and ".join(problems)
                + ".",
            )
        )
    return hits


@rule(
    "DQ-FREE-TEXT-FINITE",
    title="Finite concepts stored as free text",
    domain=DATA_QUALITY,
    severity=LOW,
    seed="S3 12.1 “Use picklists for anything with a finite set” (lead source, industry, deal type, region)",
    recommendation="Turn these fields into picklists (dropdown properties) and map the existing text to the list.",
    detects="lead source, industry, deal type or region fields that are text, not picklists",
)
def _free_text(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for kind in ("lead", "contact", "company", "deal"):
        for f in snap.fields(kind):
            if f["type"] not in ("string", "text"):
                continue
            label = norm(f.get("label"))
            concept = next((c for c, pattern in FINITE_CONCEPTS.items() if pattern.search(label)), None)
            if concept:
                hits.append(
                    r.hit(
                        object=kind,
                        field=f["name"],
                        values=[concept],
                        count=1,
                        message=f"{field_label(f)} on {snap.crm} {OBJECT_LABELS[kind]} is free text; {concept} "
                        "is a finite set.",
                    )
                )
    return hits


# ---------------------------------------------------------------- drift from the signed architecture


def object_kind(text: str) -> str | None:
    """lead / contact / company / deal / ticket for an object as people name it (crm_connectors.mapping reads it)."""
    return mapping.object_kind(text)


def signed_architecture(snap: Snapshot, ctx: Context) -> mapping.Architecture:
    """The signed stages placed in this snapshot by the same placement the health checks use."""
    return mapping.Architecture.of(ctx.signed or [], mapping.SnapshotCatalog(snap.data))


@dataclass
class PlaceCounts:
    """Records per value of one signed place, as the audit counted them."""

    counts: dict[str, int]  # value (lower case) -> records
    spelled: dict[str, str]  # value (lower case) -> as the records hold it
    unnamed: int = 0  # records in values the CRM did not name (HubSpot without deep)


def place_counts(snap: Snapshot, place: mapping.Place) -> PlaceCounts:
    counts: dict[str, int] = {}
    spelled: dict[str, str] = {}

    def add(value: str, n: int) -> None:
        counts[value.lower()] = counts.get(value.lower(), 0) + n
        spelled.setdefault(value.lower(), value)

    if place.role == "stage":
        sc = snap.stage_counts(place.kind) or {"stages": []}
        for st in sc["stages"]:
            if place.holds(st["value"], st.get("pipeline_id")):
                add(st["value"], st["count"])
        if place.pipeline_id is not None:
            return PlaceCounts(counts, spelled)
        unnamed = (sc.get("unknown_total") or 0) - sum(st["count"] for st in sc["stages"] if not st["known"])
        return PlaceCounts(counts, spelled, max(0, unnamed))
    vc = snap.value_counts(place.kind, place.field) or {"values": []}
    for v in vc["values"]:
        add(v["value"], v["count"])
    unnamed = (vc.get("unknown_total") or 0) - sum(v["count"] for v in vc["values"] if not v["known"])
    return PlaceCounts(counts, spelled, max(0, unnamed))


def _signed_places(snap: Snapshot, ctx: Context) -> list[tuple[mapping.Place, list[mapping.Placed]]]:
    return list(signed_architecture(snap, ctx).places().values())


@rule(
    "DRIFT-UNAPPROVED-VALUES",
    title="Values in the CRM the signed architecture does not allow",
    domain=DRIFT,
    severity=HIGH,
    seed="S1 §4a Rogue Stage Audit “Any new values found = governance issue”; §2d “CRM configuration matches the "
    "approved lifecycle architecture” (catalogue LC-UNAPPROVED-VALUES, PIPE-CONFIG-DRIFT)",
    recommendation="Remove the extra values from the CRM (after moving their records to signed stages), or add them "
    "to the architecture and have it signed again.",
    needs=("fields", "pipelines", "counts", "signed"),
    detects="picklist options or values held by records, on a field the signed version maps, that it does not list",
)
def _drift_unapproved(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    for place, placed in _signed_places(snap, ctx):
        judged = mapping.Judged(place, frozenset(mapping.norm(v) for p in placed for v in p.values))
        counted = place_counts(snap, place)
        extra: dict[str, int] = {}
        for o in place.options:
            if o.active and not judged.allows(o.value):
                extra[o.label or o.value] = counted.counts.get(o.value.lower(), 0)
        for value, n in counted.counts.items():
            if n and place.option(value) is None and not judged.allows(value):
                name = counted.spelled.get(value, value)
                extra[name] = extra.get(name, 0) + n
        if counted.unnamed:
            extra["(values not named without a deep audit)"] = counted.unnamed
        if extra:
            records = sum(extra.values())
            name = place.name if place.pipeline_id else place.field
            hits.append(
                r.hit(
                    object=place.kind,
                    field=name,
                    key=_place_key(place),
                    values=list(extra),
                    counts=extra,
                    count=records,
                    evidence={"signed_version": ctx.signed_version, "allowed": sorted(judged.signed)},
                    message=f"{snap.crm} {OBJECT_LABELS[place.kind]} {name} has {plural(len(extra), 'value')} the "
                    f"signed architecture (v{ctx.signed_version}) does not allow: {listing(extra)}; {records:,} "
                    "records hold them.",
                )
            )
    return hits


def _place_key(place: mapping.Place) -> str:
    """The finding key of a place, as drift findings have always been keyed (a pipeline by id, a field by name)."""
    return f"pipeline:{place.pipeline_id}" if place.pipeline_id else f"field:{place.field.lower()}"


@rule(
    "DRIFT-MISSING-STAGES",
    title="Signed stages missing from the CRM",
    domain=DRIFT,
    severity=HIGH,
    seed="S1 §2d “CRM configuration matches the approved lifecycle architecture” (catalogue PIPE-CONFIG-DRIFT)",
    recommendation="Create the missing values in the CRM exactly as signed (or correct the stage's CRM mapping and "
    "have the architecture signed again).",
    needs=("fields", "pipelines", "signed"),
    detects="signed stages whose CRM value, field, pipeline or object does not exist",
)
def _drift_missing(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    hits = []
    arch = signed_architecture(snap, ctx)
    for place, placed in arch.places().values():
        missing = {}
        for p in placed:
            for v in p.stage.get("crm_values") or []:
                if place.option(str(v)) is None:
                    missing[str(v)] = p.name
        if missing:
            name = place.name if place.pipeline_id else place.field
            hits.append(
                r.hit(
                    object=place.kind,
                    field=name,
                    key=_place_key(place),
                    values=list(missing),
                    evidence={"stages": missing, "signed_version": ctx.signed_version},
                    count=len(missing),
                    message=f"{plural(len(missing), 'signed value')} of v{ctx.signed_version} "
                    f"{'is' if len(missing) == 1 else 'are'} missing from {snap.crm} {name}: "
                    + ", ".join(f"“{v}” ({stage})" for v, stage in missing.items())
                    + ".",
                )
            )
    broken: dict[tuple[str, str], list[mapping.Unplaced]] = {}
    for u in arch.unplaced:
        broken.setdefault((norm(u.stage.get("crm_object")), norm(u.stage.get("crm_field"))), []).append(u)
    for (crm_object, crm_field), unplaced in broken.items():
        first = unplaced[0].stage
        kind = object_kind(first.get("crm_object", ""))
        if kind and any(norm(row["field"]) == crm_field for row in snap.unreadable(kind)):
            # the field exists but this user cannot read it: the stages are not judged, never called missing
            snap.not_read(row for row in snap.unreadable(kind) if norm(row["field"]) == crm_field)
            continue
        reason = unplaced[0].reason
        if unplaced[0].missing_field and kind:
            reason = f"{snap.crm} {OBJECT_LABELS[kind]} have no field or pipeline “{first.get('crm_field')}”"
        hits.append(
            r.hit(
                object=kind or crm_object or "?",
                field=first.get("crm_field", ""),
                key=f"mapping:{crm_object}:{crm_field}",
                values=[u.name for u in unplaced],
                count=len(unplaced),
                evidence={"signed_version": ctx.signed_version},
                message=f"{reason}: the signed stages {listing(u.name for u in unplaced)} have nowhere to live.",
            )
        )
    return hits


@rule(
    "DRIFT-RENAMED-STAGES",
    title="Signed stages renamed in the CRM",
    domain=DRIFT,
    severity=MEDIUM,
    seed="S1 §2d “CRM configuration matches the approved lifecycle architecture” (catalogue PIPE-CONFIG-DRIFT: "
    "renamed stages)",
    recommendation="Restore the signed label in the CRM, or have the new name signed: reports and training use the "
    "signed names.",
    needs=("fields", "pipelines", "signed"),
    detects="a signed value whose CRM label changed since the first audit after sign-off (the signed mapping "
    "itself is never a rename)",
)
def _drift_renamed(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    if ctx.baseline is None:
        return []
    before = {place.key: place for place, _ in _signed_places(ctx.baseline, ctx)}
    hits = []
    for place, placed in _signed_places(snap, ctx):
        reference = {o.value.lower(): o.label for o in before[place.key].options} if place.key in before else {}
        renamed: dict[str, dict[str, str]] = {}
        for p in placed:
            for v in p.stage.get("crm_values") or []:
                option = next((o for o in place.options if o.value.lower() == str(v).lower()), None)
                if option is None:
                    continue  # missing, or signed by label: DRIFT-MISSING-STAGES tells
                # only a label that changed after sign-off is a rename: the signed mapping itself ("Early Adoption"
                # lives in the value labelled "Customer") is what the client approved, whatever the names
                was = reference.get(str(v).lower())
                if was is not None and was != option.label:
                    renamed[str(v)] = {"stage": p.name, "was": was, "now": option.label}
        if renamed:
            name = place.name if place.pipeline_id else place.field
            hits.append(
                r.hit(
                    object=place.kind,
                    field=name,
                    key=_place_key(place),
                    values=list(renamed),
                    evidence={"renamed": renamed, "signed_version": ctx.signed_version},
                    count=len(renamed),
                    message=f"{plural(len(renamed), 'signed stage')} renamed in {snap.crm} {name}: "
                    + ", ".join(f"“{x['was']}” is now “{x['now']}” ({v})" for v, x in renamed.items())
                    + ".",
                )
            )
    return hits


@rule(
    "DRIFT-NEW-SINCE-LAST-AUDIT",
    title="New pipelines, stages or values since the last audit",
    domain=DRIFT,
    severity=MEDIUM,
    seed="S1 §4a Rogue Stage Audit “any new pipeline/stage since last snapshot”",
    recommendation="Check each new value against the architecture: approve it (and record the decision) or remove it.",
    needs=("fields", "pipelines", "previous"),
    detects="picklist values, pipelines and pipeline stages that the previous audit's snapshot did not have",
)
def _new_since(r: Rule, snap: Snapshot, ctx: Context) -> list[Hit]:
    before = ctx.previous
    if before is None or before.platform != snap.platform or not before.has("fields"):
        return []
    hits = []
    for kind in ("lead", "contact", "company", "deal", "ticket"):
        for f in snap.role_fields(kind):
            old = before.field(kind, f["name"])
            if old is None:
                continue
            known = {v["value"].lower() for v in old.get("values", [])}
            new = [shown(v) for v in f["values"] if v["value"].lower() not in known]
            if new:
                hits.append(
                    r.hit(
                        object=kind,
                        field=f["name"],
                        values=new,
                        count=len(new),
                        message=f"{plural(len(new), 'new value')} in {field_label(f)} since the last audit: "
                        f"{listing(new)}.",
                    )
                )
    if before.has("pipelines"):
        for kind in ("deal", "ticket"):
            old = {p["id"]: p for p in before.pipelines(kind)}
            if not old:
                continue
            for p in snap.pipelines(kind):
                if p["id"] not in old:
                    hits.append(
                        r.hit(
                            object=kind,
                            field=p["label"],
                            key=f"pipeline:{p['id']}",
                            values=[p["label"]],
                            count=1,
                            message=f"New {kind} pipeline “{p['label']}” since the last audit.",
                        )
                    )
                    continue
                known = {s["id"].lower() for s in old[p["id"]]["stages"]}
                new = [s["label"] for s in p["stages"] if s["id"].lower() not in known]
                if new and p["id"] != "master":  # Salesforce without record types: the stage field covers it
                    hits.append(
                        r.hit(
                            object=kind,
                            field=p["label"],
                            key=f"pipeline:{p['id']}",
                            values=new,
                            count=len(new),
                            message=f"{plural(len(new), 'new stage')} in pipeline “{p['label']}” since the last "
                            f"audit: {listing(new)}.",
                        )
                    )
    return hits


# ---------------------------------------------------------------- running the catalogue


@dataclass
class Evaluation:
    hits: list[Hit]
    evaluated: list[str]
    not_evaluated: dict[str, str]  # rule id -> why (a section could not be read)
    not_run: dict[str, str]  # rule id -> why it does not apply (deep mode off, nothing signed, no previous audit)
    partial: dict[str, str] = field(default_factory=dict)  # rule id -> fields it judged without (it ran on the rest)


def evaluate(snapshot: dict, ctx: Context | None = None) -> Evaluation:
    snap = Snapshot(snapshot)
    ctx = ctx or Context()
    hits: list[Hit] = []
    evaluated, not_evaluated, not_run, partial = [], {}, {}, {}
    for r in CATALOGUE.values():
        if "deep" in r.needs and not snap.deep:
            not_run[r.id] = "deep mode only (reads records)"
            continue
        if "signed" in r.needs and not ctx.signed:
            not_run[r.id] = "no signed stage architecture with CRM values"
            continue
        if "previous" in r.needs and ctx.previous is None:
            not_run[r.id] = "no earlier audit to compare with"
            continue
        sections = [n for n in r.needs if n not in ("signed", "previous")]
        missing = [n for n in sections if not snap.has(n)]
        if missing:
            not_evaluated[r.id] = f"could not read {', '.join(missing).replace('_', ' ')} from {snap.crm}"
            continue
        snap.unread = {}
        try:
            found = r.check(snap, ctx)
        except NotEvaluated as exc:
            not_evaluated[r.id] = str(exc)
            continue
        evaluated.append(r.id)
        if snap.unread:
            partial[r.id] = "judged without " + "; ".join(snap.unread[k] for k in sorted(snap.unread))
            for h in found:
                h.evidence.setdefault("not_read", sorted(snap.unread))
                h.message += f" Not read: {', '.join(sorted(snap.unread))} (missing or not readable by this user)."
        hits.extend(found)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    hits.sort(key=lambda h: (DOMAINS.index(h.domain), order[h.severity], h.rule_id, h.object, h.field))
    return Evaluation(hits, evaluated, not_evaluated, not_run, partial)


def catalogue_rows() -> list[dict[str, str]]:
    """The catalogue as documentation rows (id, domain, severity, what it detects, seed)."""
    return [
        {
            "id": r.id,
            "title": r.title,
            "domain": r.domain,
            "severity": r.severity,
            "detects": r.detects,
            "seed": r.seed,
            "deep": "yes" if r.deep else "",
        }
        for r in CATALOGUE.values()
    ]
