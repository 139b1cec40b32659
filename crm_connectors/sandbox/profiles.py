"""Profiles: which audit gotchas (DOMAIN.md section 8) a synthetic org contains.

A profile is only a name, a set of gotcha names and a default size; `orgschema` and `orgmodel` read
the gotcha set to decide what the picklists, pipelines and records look like. Both the
Salesforce-shaped and the HubSpot-shaped org are built from the same profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
}


@dataclass(frozen=True)
class Profile:
    name: str
    gotchas: frozenset[str] = field(default_factory=frozenset)
    description: str = ""
    default_size: int = 10_000

    def __post_init__(self) -> None:
        unknown = set(self.gotchas) - set(GOTCHAS)
        if unknown:
            raise ValueError(f"unknown gotchas: {sorted(unknown)}")

    def has(self, gotcha: str) -> bool:
        return gotcha in self.gotchas


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
        frozenset(GOTCHAS),
        "Every gotcha at once: the worst org an audit should survive.",
        10_000,
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


def custom_profile(name: str, gotchas: set[str] | frozenset[str], default_size: int = 10_000) -> Profile:
    return Profile(name, frozenset(gotchas), "custom profile", default_size)
