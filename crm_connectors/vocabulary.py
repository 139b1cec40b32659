"""The words a CRM uses for funnel stages, working statuses and outcomes, and a classifier over them.

The audit judges picklist values by what they mean: a lifecycle field should hold funnel positions (stages), a
status field working states (statuses), a deal pipeline outcomes only in its closed stages. The classifier reads
a value's label (and its internal value, which HubSpot keeps apart: `marketingqualifiedlead`, `OPEN_DEAL`) and
answers one of STAGE, STATUS, OUTCOME or UNKNOWN.

It first looks the value up in the documented vocabularies below (exact words, each list citing its source), then
in word patterns (DOMAIN.md 8.8). What it does not recognise is UNKNOWN, and rules treat an unknown value
conservatively: at most an advisory (low or info) finding, never a high one. A client's own name for a stage is
not a defect.
"""

from __future__ import annotations

import re
from typing import Any

STAGE, STATUS, OUTCOME, UNKNOWN = "stage", "status", "outcome", "unknown"
CLASSES = (STAGE, STATUS, OUTCOME, UNKNOWN)


def words(text: Any) -> str:
    """Lower-case words separated by one space: 'MARKETING_QUALIFIED-Lead' -> 'marketing qualified lead'."""
    return " ".join(re.findall(r"[a-z0-9]+", str(text or "").lower()))


def squashed(text: Any) -> str:
    """Letters and digits only: HubSpot's internal ids ('marketingqualifiedlead') match labels this way."""
    return re.sub(r"[^a-z0-9]+", "", str(text or "").lower())


# ---------------------------------------------------------------- funnel (lifecycle) stages

# HubSpot's default contact/company lifecycle stages, internal value -> label (HubSpot Knowledge Base "Use
# lifecycle stages"; fixtures/crm/hubspot/properties_contacts_lifecycle_composed.json).
HUBSPOT_LIFECYCLE_STAGES = {
    "subscriber": "Subscriber",
    "lead": "Lead",
    "marketingqualifiedlead": "Marketing Qualified Lead",
    "salesqualifiedlead": "Sales Qualified Lead",
    "opportunity": "Opportunity",
    "customer": "Customer",
    "evangelist": "Evangelist",
    "other": "Other",
}

# The GTM Lifecycle method's stages (seed 001, DOMAIN.md section 5), with their common abbreviations.
METHOD_STAGES = (
    "anonymous visitor",
    "known lead",
    "marketing engaged",
    "marketing engaged lead",
    "mql",
    "marketing qualified lead",
    "sal",
    "sales accepted lead",
    "sql",
    "sales qualified lead",
    "sao",
    "sales accepted opportunity",
    "sales qualified opportunity",
    "evaluation",
    "use case",
    "proposal",
    "negotiation",
    "proposal negotiation",
    "pre onboarding",
    "onboarding",
    "implementation",
    "early adoption",
    "mature adoption",
    "poc entry",
    "value assessment",
    "open renewal",
    "review",
)

# Widely used lifecycle stages outside both lists (practitioner usage: the same funnel under other names).
COMMON_STAGES = (
    "prospect",
    "engaged",  # only as a lifecycle word when qualified: 'Marketing Engaged' above; bare 'Engaged' is a status
    "product qualified lead",
    "pql",
    "former customer",
    "churned customer",
    "advocate",
)

STAGES = frozenset({words(label) for label in HUBSPOT_LIFECYCLE_STAGES.values()} | set(METHOD_STAGES)) | (
    frozenset(COMMON_STAGES) - {"engaged"}
)
# HubSpot internal ids match squashed labels, so 'marketingqualifiedlead' is known as well as its label
STAGE_IDS = frozenset(squashed(s) for s in STAGES) | frozenset(HUBSPOT_LIFECYCLE_STAGES)

# ---------------------------------------------------------------- working statuses

# HubSpot's default hs_lead_status options, internal value -> label (HubSpot Knowledge Base "Lead status";
# fixtures/crm/hubspot/properties_contacts_lifecycle_composed.json).
HUBSPOT_LEAD_STATUSES = {
    "NEW": "New",
    "OPEN": "Open",
    "IN_PROGRESS": "In Progress",
    "OPEN_DEAL": "Open Deal",
    "UNQUALIFIED": "Unqualified",
    "ATTEMPTED_TO_CONTACT": "Attempted to Contact",
    "CONNECTED": "Connected",
    "BAD_TIMING": "Bad Timing",
}

# Salesforce's default Lead Status picklist (LeadStatus in a new org; Salesforce Help "Lead Status Picklist").
# 'Closed - Converted' is the status lead conversion sets: a working state, not a deal outcome.
SALESFORCE_LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)

# The method's Contact Status (seed 001 Common Gotchas: "New, Working, Engaged, Nurture") and the proposed
# status words of DOMAIN.md 8.8.
METHOD_STATUSES = (
    "new",
    "working",
    "engaged",
    "nurture",
    "nurturing",
    "attempted",
    "attempted to contact",
    "contacted",
    "in progress",
    "open",
    "unqualified",
    "disqualified",
    "bad timing",
    "connected",
    "converted",
)  # "Recycled" is left out on purpose: orgs use it as a status and as a lifecycle stage

STATUSES = frozenset(
    {words(label) for label in HUBSPOT_LEAD_STATUSES.values()}
    | {words(label) for label in SALESFORCE_LEAD_STATUSES}
    | set(METHOD_STATUSES)
)
STATUS_IDS = frozenset(squashed(s) for s in STATUSES)

# ---------------------------------------------------------------- outcomes

# Deal outcomes (DOMAIN.md 8.8 outcome words; Salesforce's and HubSpot's default closed stages).
OUTCOMES = frozenset({"won", "lost", "closed won", "closed lost", "closedwon", "closedlost"})
OUTCOME_WORDS = re.compile(r"\b(closed\s*)?(won|lost)\b")

# ---------------------------------------------------------------- ticket pipelines

# HubSpot's default support pipeline (ids 1-4) and Salesforce's default Case Status values: support states, not a
# customer lifecycle (HubSpot Knowledge Base "Set up and customize ticket pipelines"; Salesforce CaseStatus).
TICKET_SUPPORT_STAGES = frozenset(
    {"new", "waiting on contact", "waiting on us", "closed", "working", "escalated", "on hold"}
)

# ---------------------------------------------------------------- word patterns (when no list knows the value)

FUNNEL_PATTERN = re.compile(
    r"\b(mql|sql|sal|sao|pql)\b|marketing\s*qualified|sales\s*qualified|sales\s*accepted|product\s*qualified"
)
STATUS_PATTERN = re.compile(
    r"\b(new|working|nurtur\w*|attempted|contacted|in\s*progress|unqualified|disqualified|bad\s*timing|connected)\b"
)


def lookup(label: Any, value: Any = None) -> str | None:
    """The class the documented vocabularies give a value (label first, then internal value), or None."""
    for text in (label, value):
        w = words(text)
        if w in OUTCOMES:
            return OUTCOME
        if w in STATUSES:
            return STATUS
        if w in STAGES:
            return STAGE
    for text in (value, label):
        s = squashed(text)
        if s in OUTCOMES:
            return OUTCOME
        if s in STATUS_IDS:
            return STATUS
        if s in STAGE_IDS:
            return STAGE
    return None


def classify(label: Any, value: Any = None) -> str:
    """STAGE, STATUS, OUTCOME or UNKNOWN for one picklist value: the documented vocabularies, then word patterns."""
    found = lookup(label, value)
    if found is not None:
        return found
    text = words(label) or words(value)
    if OUTCOME_WORDS.search(text):
        return OUTCOME
    if FUNNEL_PATTERN.search(text):
        return STAGE
    if STATUS_PATTERN.search(text):
        return STATUS
    return UNKNOWN


def documented(label: Any, value: Any = None) -> bool:
    """The value is in a documented vocabulary (not only guessed from a word in it): a rule may call it high."""
    return lookup(label, value) is not None


def is_funnel_stage(label: Any, value: Any = None) -> bool:
    """A pre-sale funnel position a status field must not carry (MQL, SAL, SQL and their long names)."""
    return bool(FUNNEL_PATTERN.search(words(label))) or squashed(value) in {
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "salesacceptedlead",
    }
