"""The audit's words: severities, domains, thresholds, and the lexicons of DOMAIN.md 8.8 that recognise
stages, statuses and outcomes by their labels, with the text helpers the rules word findings with."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

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
    "segment_fill_min": 0.5,  # DATA-NO-SEGMENT-FIELDS: below this share filled, a field cannot segment a metric
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
# DATA-NO-SEGMENT-FIELDS (DOMAIN.md 8.5 and T6: every metric "grouped by segment, region, rep/owner"): the fields a
# metric can be broken down by, recognised by label or API name (split at capitals: NumberOfEmployees)
SEGMENT_CONCEPTS = {
    "segment": re.compile(r"\b(segment|industry|vertical|employees|company size|headcount)\b"),
    "region": re.compile(r"\b(region|territory|country|geo|geography)\b"),
    "owner": re.compile(r"\bowner\b"),
}
SEGMENT_FIELDS_READ = 2  # fields whose fill is read per concept and object (HubSpot charges a search per field)
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
