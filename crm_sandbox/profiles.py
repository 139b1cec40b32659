"""Profiles: which audit gotchas (DOMAIN.md section 8) a synthetic org contains, and its shape knobs.

A profile is a name, a set of gotcha names, a default size and a few knobs; `orgschema` and `orgmodel`
read them to decide what the picklists, pipelines and records look like. Both the Salesforce-shaped and
the HubSpot-shaped org are built from the same profile, so they hold the same records.

Knobs (all default to "nothing changes"):
- `hidden_fields`: "<kind>.<api name>" as field-level security hides a field, e.g. "lead.Phone",
  "contact.hs_analytics_source", "deal.NextStep". Kinds: lead, contact, company, deal, ticket, or any
  Salesforce sObject / HubSpot object type name ("OpportunityStage.IsActive", "contacts.phone"); matched
  without regard to case. Salesforce leaves the field out of describe and answers a SOQL naming it with
  400 INVALID_FIELD; HubSpot leaves it out of properties and answers a search or read naming it (filter,
  property, sort, history) with 400 VALIDATION_ERROR.
- `refused_objects`: Salesforce sObjects ("CaseStatus", "LeadHistory") whose describe answers 403
  INSUFFICIENT_ACCESS_OR_READONLY and whose queries answer 400 INVALID_TYPE; HubSpot object types or
  endpoints ("tickets", "pipelines/tickets", "properties/deals", "schemas") answered 403 MISSING_SCOPES.
- `trend`: a `Trend` from a month on: lifecycle conversion (MQL->SQL, SQL->Opportunity) of leads and
  contacts drops by `conversion_drop_pp` points (records that would have entered SQL / Opportunity from
  then on stop one stage short; earlier months are untouched), and new records of every kind arrive
  `volume_drop_pct`% less often (see `orgmodel.RecordSet` for how). Salesforce and HubSpot hold the same
  records, so both answer the same monthly series; `truth.conversion_series` gives it.
- `style`: "" or "wellbuilt", the vocabulary of the org's picklists (see `orgschema`).
- `withheld_permissions`: Salesforce user permissions the integration user lacks, as UserPermissionAccess names
  them, e.g. {"PermissionsCustomizeApplication"}: UserPermissionAccess answers false for them, and without Customize
  Application Tooling API writes answer 400 INSUFFICIENT_ACCESS (see salesforce_tooling).
- `read_only`: the integration's token has read scopes only: HubSpot's token introspection lists no write scope
  and every configuration write answers 403 MISSING_SCOPES (see `hubspot_writes`).

`variant(profile, name, **knobs)` derives a profile with other knobs, e.g.
`variant("healthy", "no-phone", hidden_fields={"lead.Phone"})`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

# name -> (audit rule ids it should trigger, what the org contains)
GOTCHAS: dict[str, tuple[str, str]] = {
    "overlapping_status_systems": (
        "LC-OVERLAPPING-SYSTEMS",
        "Lead Status, a Lead Stage field and the lifecycle field all carry funnel stages (MQL, SQL)",
    ),
    "status_values_in_lifecycle": (
        "LC-STATUS-MIX",
        "the lifecycle field holds working-state values (Working, Nurture)",
    ),
    "no_sal_stage": ("LC-NO-SAL", "no Sales Accepted Lead stage anywhere in the lifecycle"),
    "deal_outcomes_in_lifecycle": (
        "LC-DEAL-OUTCOME-IN-LIFECYCLE",
        "Closed Won / Closed Lost values in Lead Status and in the contact lifecycle",
    ),
    "no_contact_status": (
        "LC-NO-CONTACT-STATUS",
        "no contact status field separate from lifecycle (Salesforce: no Contact_Status__c;"
        " HubSpot: hs_lead_status is never filled in)",
    ),
    "activity_stage_names": (
        "LC-STAGE-ACTIVITY-NAME",
        "stages named for activities (Demo, Send Proposal) instead of completed milestones",
    ),
    "no_drop_off_reason": (
        "LC-NO-DROP-OFF-REASON",
        "no loss-reason field on deals, so lost deals carry no reason",
    ),
    "rogue_picklist_values": (
        "LC-UNAPPROVED-VALUES",
        "records hold values that are not in the field's picklist / property options",
    ),
    "records_without_stage": ("LC-NULL-STAGE", "a share of leads and contacts have no lifecycle stage"),
    "stage_skips_and_backward_moves": (
        "LC-STAGE-SKIPS LC-BACKWARD-MOVES",
        "lifecycle histories that jump over stages or move backwards",
    ),
    "too_many_pipelines": ("PIPE-TOO-MANY", "five deal pipelines"),
    "time_based_renewal_stages": (
        "PIPE-TIME-BASED-STAGES",
        "a renewal pipeline with 120/90/60/30-days-out stages",
    ),
    "task_level_stages": ("PIPE-TASK-LEVEL-STAGES", "stages such as 'Onboarding 50% complete'"),
    "internal_signal_stages": ("PIPE-INTERNAL-SIGNAL-STAGES", "Trending Up / Trending Down stages"),
    "cs_stages_in_sales_pipeline": (
        "PIPE-CS-STAGES-IN-SALES",
        "Onboarding / Implementation / Go-Live stages inside the sales pipeline",
    ),
    "default_stages": (
        "PIPE-DEFAULT-STAGES",
        "the main sales pipeline still uses the platform's default stages",
    ),
    "off_spec_probabilities": (
        "PIPE-PROBABILITY-SPEC",
        "stage probabilities that are not 25/50/75/90/100",
    ),
    "no_customer_lifecycle": (
        "CUST-NO-LIFECYCLE",
        "no customer-success pipeline: the lifecycle ends at Closed Won",
    ),
    "company_field_mixing": (
        "COMP-FIELD-MIXED",
        "the company Type field mixes lifecycle (Prospect, Customer), type (Partner) and status"
        " (Churned, Inactive)",
    ),
    "no_company_lifecycle": ("COMP-NO-ROLLUP", "no company-level lifecycle field"),
    "duplicate_records": (
        "DQ-DUPLICATE-ACCOUNTS",
        "contacts sharing an email and companies sharing a domain",
    ),
    "missing_required_fields": (
        "DQ-MISSING-FIELDS",
        "many records without email, phone, company or lead source",
    ),
    "no_next_step": ("DQ-NO-NEXT-STEP", "most open deals have no next step"),
    "stale_records": ("DQ-STALE-RECORDS", "a large share of records untouched for more than 180 days"),
    # Shapes real orgs have. An empty rule list means the audit must NOT report what the description names.
    "customer_stages_on_custom_object": (
        "",
        "customer stages live on a custom object (Salesforce Customer_Health__c.Stage__c, HubSpot custom object"
        " customer_health with a stage property) instead of a ticket pipeline: not CUST-NO-LIFECYCLE",
    ),
    "relabelled_default_stages": (
        "",
        "HubSpot's default deal pipeline keeps its internal stage ids (appointmentscheduled, qualifiedtobuy...)"
        " but its stages are renamed to milestones: not PIPE-DEFAULT-STAGES",
    ),
    "inactive_values_on_records": (
        "LC-DEPRECATED-STAGE-RECORDS",
        "a retired status value 'Contacted' (Salesforce active: false, HubSpot hidden: true) still held by"
        " 5% of leads and contacts",
    ),
    "same_timestamp_history": (
        "",
        "a workflow sets two lifecycle stages at the same instant on 10% of records: their history rows share"
        " a timestamp and are stored later-stage first: not LC-BACKWARD-MOVES",
    ),
    "free_text_loss_reasons": (
        "DQ-FREE-TEXT-FINITE",
        "the loss reason is free text (HubSpot closed_lost_reason, Salesforce a text Loss_Reason__c) spelled"
        " many ways: 'Price', ' price', 'PRICE', 'Too expensive', 'No budget'...",
    ),
    "dominant_loss_reason": (
        "LC-DOMINANT-DROP-OFF-REASON",
        "one loss reason (Price) is about half of the recorded reasons, above the seed's 30% review threshold",
    ),
    "blank_lead_status": ("LC-NULL-STAGE", "about 8% of leads and contacts have no Lead Status / hs_lead_status"),
    "retired_date_properties": (
        "LC-RETIRED-DATE-PROPERTIES",
        "date fields of a stage that no longer exists, left empty: Salesforce Lead.SAO_Date__c ('SAO Date'),"
        " HubSpot contacts hs_date_entered_1000431 / hs_date_exited_1000431 (a deleted 'Recycled Lead' stage)",
    ),
    "overlapping_lifecycle_across_objects": (
        "LC-OVERLAPPING-SYSTEMS",
        "Lead Status on leads (and hs_lead_status on contacts) carries MQL and SQL, as the contact lifecycle does",
    ),
    "no_segment_fields": (
        "DATA-NO-SEGMENT-FIELDS",
        "leads (HubSpot contacts) and deals have no Region or Segment field, and Industry is blank on about 70% of"
        " leads (HubSpot contacts): metrics cannot be broken down by segment and region",
    ),
}
# The gotchas "messy" was built with; later gotchas (some contradict these) are in "tangled".
MESSY_GOTCHAS = frozenset(list(GOTCHAS)[: list(GOTCHAS).index("customer_stages_on_custom_object")])
NEW_GOTCHAS = frozenset(GOTCHAS) - MESSY_GOTCHAS


@dataclass(frozen=True)
class Trend:
    """From `start` (the first day of a month) on, leads and contacts convert less and records arrive less.

    `conversion_drop_pp`: of the records that would enter SQL from `start` on, enough stop one stage short
    to lower MQL->SQL by this many percentage points; likewise Opportunity for SQL->Opportunity.
    `volume_drop_pct`: records of every object are created this much less often from `start` on (the
    months before keep the untouched org's pace; the org starts a little earlier to keep its size).
    """

    start: date
    conversion_drop_pp: float = 0.0
    volume_drop_pct: float = 0.0

    def __post_init__(self) -> None:
        if self.start.day != 1:
            raise ValueError("a trend starts on the first day of a month")
        if not 0 <= self.conversion_drop_pp < 100 or not 0 <= self.volume_drop_pct < 100:
            raise ValueError("conversion_drop_pp and volume_drop_pct are in [0, 100)")


@dataclass(frozen=True)
class Profile:
    name: str
    gotchas: frozenset[str] = field(default_factory=frozenset)
    description: str = ""
    default_size: int = 10_000
    hidden_fields: frozenset[str] = field(default_factory=frozenset)
    refused_objects: frozenset[str] = field(default_factory=frozenset)
    trend: Trend | None = None
    style: str = ""  # "" or "wellbuilt": which vocabulary the org uses (see orgschema)
    # ---- configuration writes
    withheld_permissions: frozenset[str] = frozenset()
    read_only: bool = False  # the token may read but not change configuration

    def __post_init__(self) -> None:
        for name in ("gotchas", "hidden_fields", "refused_objects", "withheld_permissions"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        unknown = set(self.gotchas) - set(GOTCHAS)
        if unknown:
            raise ValueError(f"unknown gotchas: {sorted(unknown)}")
        bad = [h for h in self.hidden_fields if "." not in h]
        if bad:
            raise ValueError(f"hidden fields are '<kind>.<api name>': {sorted(bad)}")
        if self.style not in ("", "wellbuilt"):
            raise ValueError(f"unknown style {self.style!r}; choose '' or 'wellbuilt'")

    def has(self, gotcha: str) -> bool:
        return gotcha in self.gotchas

    def hides(self, kinds: tuple[str, ...] | list[str] | set[str], api_name: str) -> bool:
        """Field-level security hides `api_name` on an object known by any of `kinds` (case ignored)."""
        hidden = {h.lower() for h in self.hidden_fields}
        return any(f"{k.lower()}.{api_name.lower()}" in hidden for k in kinds)

    def refuses(self, *names: str) -> bool:
        """The integration user may not read any of `names` (an sObject, a HubSpot type or endpoint)."""
        refused = {r.lower() for r in self.refused_objects}
        return any(n.lower() in refused for n in names)


DEMO_GOTCHAS = frozenset(
    {
        "no_sal_stage",
        "deal_outcomes_in_lifecycle",
        "rogue_picklist_values",
        "records_without_stage",
        "time_based_renewal_stages",
        "cs_stages_in_sales_pipeline",
        "company_field_mixing",
        "duplicate_records",
        "stale_records",
    }
)

PROFILES: dict[str, Profile] = {
    "healthy": Profile(
        "healthy",
        frozenset(),
        "A clean org: separate lifecycle and status fields with a SAL stage, three deal pipelines"
        " with 25/50/75/90/100 probabilities, a customer-success pipeline, little bad data.",
        10_000,
    ),
    "messy": Profile(
        "messy",
        MESSY_GOTCHAS,
        "Every classic gotcha at once: the worst org an audit should survive.",
        10_000,
    ),
    "tangled": Profile(
        "tangled",
        NEW_GOTCHAS | {"records_without_stage", "rogue_picklist_values", "no_sal_stage"},
        "An org shaped unlike the demo: customer stages on a custom object, relabelled default stages,"
        " retired values still on records, same-instant history, free-text loss reasons with one dominating,"
        " blank lead statuses and MQL/SQL in Lead Status as well as in the lifecycle.",
        10_000,
    ),
    "wellbuilt": Profile(
        "wellbuilt",
        frozenset({"customer_stages_on_custom_object"}),
        "A well-built org shaped unlike 'healthy': the platforms' standard lifecycle names (incl. Marketing"
        " Engaged and SAL) on a custom field of Lead and Contact, Salesforce's default Lead Status values,"
        " HubSpot's default lead statuses, three milestone pipelines at 25/50/75/90/100, customer stages on"
        " a custom object, loss reasons picked from a list. An audit should find nothing high or medium.",
        10_000,
        style="wellbuilt",
    ),
    "wellbuilt-relabelled": Profile(
        "wellbuilt-relabelled",
        frozenset({"relabelled_default_stages"}),
        "The well-built org as HubSpot portals often are: the default sales pipeline renamed to milestones"
        " (default internal ids), customer stages in a ticket pipeline.",
        10_000,
        style="wellbuilt",
    ),
    "demo": Profile(
        "demo",
        DEMO_GOTCHAS,
        "A believable client org for the demo: one or two findings in each audit domain.",
        5_000,
    ),
}


def get_profile(profile: str | Profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}") from None


def custom_profile(
    name: str, gotchas: set[str] | frozenset[str], default_size: int = 10_000, **knobs: Any
) -> Profile:
    """A profile with exactly these gotchas; `knobs` are hidden_fields, refused_objects, trend."""
    return Profile(name, frozenset(gotchas), "custom profile", default_size, **knobs)


def variant(profile: str | Profile, name: str | None = None, **changes: Any) -> Profile:
    """`profile` with some fields changed (gotchas, hidden_fields, refused_objects, trend...)."""
    base = get_profile(profile)
    return replace(base, name=name or f"{base.name}-variant", **changes)
