"""Picklists and pipelines of a synthetic org, built from a profile's gotchas.

One `Option` describes a value on both platforms: `label` is the Salesforce value (Salesforce picklist
values usually equal their labels) and `hs`/`hs_text` the HubSpot internal value and label. A value
with `listed=False` is a rogue value: records hold it but the picklist / property options do not. A
value with `active=False` is retired: still listed (Salesforce `active: false`, HubSpot `hidden: true`)
and still held by records.

The profile's `style` picks a vocabulary: "" (the sandbox's own) or "wellbuilt" (the platforms'
standard names: lifecycle Subscriber, Lead, Marketing Engaged, MQL, SAL, SQL...; Salesforce's default
Lead Status values; HubSpot custom lifecycle stages with numeric internal ids, as HubSpot makes them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .profiles import Profile


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass(frozen=True)
class Option:
    key: str
    label: str
    hs_value: str = ""
    hs_label: str = ""
    listed: bool = True
    probability: float | None = None  # 0..1
    hs_probability: float | None = None
    closed: bool = False
    won: bool = False
    sf_only: bool = False  # a Salesforce default stage that HubSpot's default pipeline lacks
    active: bool = True  # False: a retired value, listed as inactive / hidden but still on records

    @property
    def hs(self) -> str:
        return self.hs_value or slug(self.label)

    @property
    def hs_text(self) -> str:
        return self.hs_label or self.label

    @property
    def hs_prob(self) -> float | None:
        return self.probability if self.hs_probability is None else self.hs_probability

    @property
    def forecast(self) -> str:
        if self.won:
            return "Closed"
        if self.closed:
            return "Omitted"
        p = self.probability or 0.0
        return "Commit" if p >= 0.9 else "Best Case" if p >= 0.6 else "Pipeline"


@dataclass(frozen=True)
class Pipeline:
    key: str
    label: str
    hs_id: str
    stages: tuple[Option, ...]
    weight: float
    sf_record_type_id: str = ""
    sf_process_id: str = ""

    @property
    def open_stages(self) -> tuple[Option, ...]:
        return tuple(s for s in self.stages if not s.closed and s.listed)


@dataclass
class OrgSchema:
    profile: Profile
    lifecycle: tuple[Option, ...]
    # forward order used to build lifecycle histories
    progression: tuple[str, ...]
    lead_status: tuple[Option, ...]
    contact_status: tuple[Option, ...]
    lead_stage: tuple[Option, ...] | None
    lead_source: tuple[Option, ...]
    company_type: tuple[Option, ...]
    industry: tuple[Option, ...]
    deal_pipelines: tuple[Pipeline, ...]
    ticket_pipelines: tuple[Pipeline, ...]
    loss_reasons: tuple[Option, ...] | None
    has_contact_status: bool
    has_company_lifecycle: bool
    owners: tuple[tuple[str, str], ...] = field(default=())
    # customer stages on a custom object (Salesforce Customer_Health__c.Stage__c, HubSpot customer_health)
    customer_stages: tuple[Option, ...] | None = None
    loss_reason_text: bool = False  # the loss reason is a free-text field, its options are spellings seen
    loss_weights: tuple[float, ...] = ()  # how often each loss reason is recorded (uniform when empty)
    # Region on leads, contacts and deals, Segment on deals (absent with the no_segment_fields gotcha)
    regions: tuple[Option, ...] = ()
    segments: tuple[Option, ...] = ()

    def option(self, options: tuple[Option, ...], key: str) -> Option:
        for opt in options:
            if opt.key == key:
                return opt
        raise KeyError(key)

    def lifecycle_option(self, key: str) -> Option:
        return self.option(self.lifecycle, key)


def _lifecycle(p: Profile) -> tuple[tuple[Option, ...], tuple[str, ...]]:
    o = Option
    stages = [
        o("subscriber", "Subscriber", "subscriber", "Subscriber"),
        o("lead", "Known Lead", "lead", "Lead"),
        o("mql", "MQL", "marketingqualifiedlead", "Marketing Qualified Lead"),
        o("sal", "SAL", "salesacceptedlead", "Sales Accepted Lead"),
        o("sql", "SQL", "salesqualifiedlead", "Sales Qualified Lead"),
        o("opportunity", "Opportunity", "opportunity", "Opportunity"),
        o("customer", "Customer", "customer", "Customer"),
        o("evangelist", "Evangelist", "evangelist", "Evangelist"),
        o("other", "Other", "other", "Other"),
    ]
    progression = ["subscriber", "lead", "mql", "sal", "sql", "opportunity", "customer", "evangelist"]
    if p.style == "wellbuilt":
        stages[1] = o("lead", "Lead", "lead", "Lead")
        stages.insert(2, o("engaged", "Marketing Engaged", "1028937461", "Marketing Engaged"))
        stages[4] = o("sal", "SAL", "1028937462", "Sales Accepted Lead")
        progression.insert(2, "engaged")
    if p.has("no_sal_stage"):
        stages = [s for s in stages if s.key != "sal"]
        progression.remove("sal")
    if p.has("status_values_in_lifecycle"):
        at = [s.key for s in stages].index("sql")
        stages[at:at] = [
            o("working", "Working", "working", "Working"),
            o("nurture", "Nurture", "nurture", "Nurture"),
        ]
        progression.insert(progression.index("sql"), "working")
    if p.has("deal_outcomes_in_lifecycle"):
        stages.append(o("closed_lost", "Closed Lost", "closedlost", "Closed Lost"))
    if p.has("rogue_picklist_values"):
        stages += [
            o("rogue_recycled", "Recycled", "recycled", "Recycled", listed=False),
            o("rogue_mql_legacy", "MQL - Legacy", "mql_legacy", "MQL - Legacy", listed=False),
        ]
    return tuple(stages), tuple(progression)


def _lead_status(p: Profile) -> tuple[Option, ...]:
    o = Option
    values = [
        o("new", "New"),
        o("working", "Working"),
        o("nurturing", "Nurturing"),
        o("unqualified", "Unqualified"),
        o("converted", "Converted"),
    ]
    if p.style == "wellbuilt":  # Salesforce's default Lead Status values, plus a nurture state
        values = [
            o("new", "Open - Not Contacted"),
            o("working", "Working - Contacted"),
            o("nurturing", "Nurturing"),
            o("unqualified", "Closed - Not Converted"),
            o("converted", "Closed - Converted"),
        ]
    if p.has("overlapping_status_systems") or p.has("overlapping_lifecycle_across_objects"):
        values[2:2] = [o("mql", "MQL"), o("sql", "SQL")]
    if p.has("inactive_values_on_records"):
        values.append(o("contacted_retired", "Contacted", active=False))
    if p.has("deal_outcomes_in_lifecycle"):
        values += [o("closed_won", "Closed Won"), o("closed_lost", "Closed Lost")]
    if p.has("rogue_picklist_values"):
        values.append(o("rogue_contacted_old", "Contacted (old)", listed=False))
    return tuple(values)


def _contact_status(p: Profile) -> tuple[Option, ...]:
    o = Option
    values = [
        o("new", "New", "NEW"),
        o("open", "Open", "OPEN"),
        o("in_progress", "In Progress", "IN_PROGRESS"),
        o("open_deal", "Open Deal", "OPEN_DEAL"),
        o("unqualified", "Unqualified", "UNQUALIFIED"),
        o("attempted", "Attempted to Contact", "ATTEMPTED_TO_CONTACT"),
        o("connected", "Connected", "CONNECTED"),
        o("bad_timing", "Bad Timing", "BAD_TIMING"),
    ]
    if p.has("overlapping_status_systems") or p.has("overlapping_lifecycle_across_objects"):
        values += [o("mql", "MQL", "MQL"), o("sql", "SQL", "SQL")]
    if p.has("inactive_values_on_records"):
        values.append(o("contacted_retired", "Contacted", "CONTACTED", active=False))
    if p.has("deal_outcomes_in_lifecycle"):
        values += [
            o("closed_won", "Closed Won", "CLOSED_WON"),
            o("closed_lost", "Closed Lost", "CLOSED_LOST"),
        ]
    return tuple(values)


def _company_type(p: Profile) -> tuple[Option, ...]:
    o = Option
    values = [
        o("end_user", "End User", "END_USER"),
        o("partner", "Partner", "PARTNER"),
        o("reseller", "Reseller", "RESELLER"),
        o("vendor", "Vendor", "VENDOR"),
        o("other", "Other", "OTHER"),
    ]
    if p.has("company_field_mixing"):
        values = [
            o("prospect", "Prospect", "PROSPECT"),
            o("customer", "Customer", "CUSTOMER"),
            o("former_customer", "Former Customer", "FORMER_CUSTOMER"),
            *values,
            o("churned", "Churned", "CHURNED"),
            o("inactive", "Inactive", "INACTIVE"),
        ]
    if p.has("rogue_picklist_values"):
        values.append(o("rogue_hot", "Prospect - Hot", "PROSPECT_HOT", listed=False))
    return tuple(values)


def _stage(pipeline: str, n: int, label: str, prob: float, closed: bool = False, won: bool = False) -> Option:
    return Option(
        f"{pipeline}.{slug(label)}", label, f"{pipeline[:3]}{n:02d}", probability=prob, closed=closed, won=won
    )


def _closed(pipeline: str, hs_ids: tuple[str, str] | None = None) -> list[Option]:
    won_id, lost_id = hs_ids or (f"{pipeline[:3]}won", f"{pipeline[:3]}lost")
    return [
        Option(f"{pipeline}.closed_won", "Closed Won", won_id, probability=1.0, closed=True, won=True),
        Option(f"{pipeline}.closed_lost", "Closed Lost", lost_id, probability=0.0, closed=True),
    ]


def _open(pipeline: str, labels: list[str], probs: list[float]) -> list[Option]:
    return [
        _stage(pipeline, i, label, prob) for i, (label, prob) in enumerate(zip(labels, probs, strict=True))
    ]


def _deal_pipelines(p: Profile) -> tuple[Pipeline, ...]:
    spec = [0.25, 0.5, 0.75, 0.9]
    probs = [0.1, 0.3, 0.6, 0.8] if p.has("off_spec_probabilities") else spec
    if p.has("default_stages"):
        # The two platforms' defaults differ; Salesforce-only stages stay intermediate so the HubSpot
        # org (which lacks them) never shows a deal sitting in one.
        sf_default = [
            ("Prospecting", "appointmentscheduled", "Appointment Scheduled", 0.1, 0.2, False),
            ("Qualification", "qualifiedtobuy", "Qualified To Buy", 0.1, 0.4, False),
            ("Needs Analysis", "presentationscheduled", "Presentation Scheduled", 0.2, 0.6, False),
            ("Value Proposition", "", "", 0.5, None, True),
            ("Id. Decision Makers", "", "", 0.6, None, True),
            ("Perception Analysis", "decisionmakerboughtin", "Decision Maker Bought-In", 0.7, 0.8, False),
            ("Proposal/Price Quote", "", "", 0.75, None, True),
            ("Negotiation/Review", "contractsent", "Contract Sent", 0.9, 0.9, False),
        ]
        main_open = [
            Option(
                f"sales.{slug(lbl)}",
                lbl,
                hid or f"sales_{slug(lbl)}",
                hlbl,
                probability=sp,
                hs_probability=hp,
                sf_only=only,
            )
            for lbl, hid, hlbl, sp, hp, only in sf_default
        ]
        main_label = "Sales Pipeline"
    else:
        main_open = _open(
            "sales",
            ["Discovery Completed", "Solution Validated", "Proposal Sent", "Contract Negotiated"],
            probs,
        )
        main_label = "New Business"
        if p.has("relabelled_default_stages"):
            # HubSpot's default pipeline, its stages renamed to milestones: the internal ids stay the defaults
            ids = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin"]
            main_open = [replace(st, hs_value=i) for st, i in zip(main_open, ids, strict=True)]
            main_label = "Sales Pipeline"
    if p.has("cs_stages_in_sales_pipeline"):
        main_open += [
            _stage("sales", 20 + i, lbl, 0.95)
            for i, lbl in enumerate(["Onboarding", "Implementation", "Go-Live"])
        ]
    main = Pipeline(
        "sales", main_label, "default", tuple(main_open + _closed("sales", ("closedwon", "closedlost"))), 0.6
    )

    if p.has("time_based_renewal_stages"):
        renewal_open = _open(
            "renewal",
            ["Renewal due in 120 days", "90 Days Out", "60 Days Out", "30 Days Out"],
            [0.5, 0.6, 0.7, 0.8],
        )
    else:
        renewal_open = _open(
            "renewal", ["Open Renewal", "Renewal Review", "Renewal Proposal", "Renewal Negotiation"], probs
        )
    if p.has("task_level_stages"):
        renewal_open.insert(1, _stage("renewal", 10, "Onboarding 50% complete", 0.7))
        renewal_open.insert(2, _stage("renewal", 11, "Onboarding 75% complete", 0.75))
    renewal = Pipeline("renewal", "Renewals", "12345678", tuple(renewal_open + _closed("renewal")), 0.2)

    if p.has("activity_stage_names"):
        exp_labels = ["Discovery Call", "Demo", "Send Proposal", "Negotiation"]
    else:
        exp_labels = [
            "Expansion Identified",
            "Expansion Validated",
            "Expansion Proposal Sent",
            "Expansion Negotiated",
        ]
    expansion_open = _open("expansion", exp_labels, probs)
    if p.has("internal_signal_stages"):
        expansion_open += [
            _stage("expansion", 10, "Trending Up", 0.6),
            _stage("expansion", 11, "Trending Down", 0.3),
        ]
    expansion = Pipeline(
        "expansion", "Expansion", "12345690", tuple(expansion_open + _closed("expansion")), 0.2
    )

    pipelines = [main, renewal, expansion]
    if p.has("too_many_pipelines"):
        pipelines += [
            Pipeline(
                "partner",
                "Partner Deals",
                "12345700",
                tuple(
                    _open("partner", ["Registered", "Accepted", "Proposal Sent"], probs[:3])
                    + _closed("partner")
                ),
                0.1,
            ),
            Pipeline(
                "legacy",
                "Enterprise (2019)",
                "12345710",
                tuple(
                    _open("legacy", ["Qualify", "Develop", "Propose"], [0.2, 0.4, 0.7]) + _closed("legacy")
                ),
                0.05,
            ),
        ]
    if p.has("rogue_picklist_values"):
        rogue = Option(
            "sales.rogue_verbal_commit", "Verbal Commit", "9876543", listed=False, probability=0.95
        )
        main = replace(main, stages=main.stages + (rogue,))
        pipelines[0] = main
    return tuple(_with_ids(i, pl) for i, pl in enumerate(pipelines))


def _with_ids(i: int, pl: Pipeline) -> Pipeline:
    return replace(pl, sf_record_type_id=f"0125g{i:010d}AAA", sf_process_id=f"01J5g{i:010d}AAA")


def _ticket_pipelines(p: Profile, first: int) -> tuple[Pipeline, ...]:
    o = Option
    support = Pipeline(
        "support",
        "Support Pipeline",
        "0",
        (
            o("support.new", "New", "1", "New"),
            o("support.working", "Working", "2", "Waiting on contact"),
            o("support.escalated", "Escalated", "3", "Waiting on us"),
            o("support.closed", "Closed", "4", "Closed", closed=True),
        ),
        0.7,
    )
    pipelines = [support]
    if not p.has("no_customer_lifecycle") and not p.has("customer_stages_on_custom_object"):
        labels = ["Pre-Onboarding", "Onboarding", "Implementation", "Early Adoption", "Mature Adoption"]
        stages = tuple(
            o(f"cs.{slug(lbl)}", lbl, f"cs{i:02d}", closed=(i == 4)) for i, lbl in enumerate(labels)
        )
        pipelines.append(Pipeline("cs", "Customer Onboarding", "23456789", stages, 0.3))
    return tuple(_with_ids(first + i, pl) for i, pl in enumerate(pipelines))


def build_schema(p: Profile) -> OrgSchema:
    lifecycle, progression = _lifecycle(p)
    lead_stage = None
    if p.has("overlapping_status_systems"):
        lead_stage = tuple(
            Option(k, lbl)
            for k, lbl in [("raw", "Raw"), ("mql", "MQL"), ("sql", "SQL"), ("recycled", "Recycled")]
        )
    deal_pipelines = _deal_pipelines(p)
    sources = tuple(
        Option(k, lbl, hv, hl)
        for k, lbl, hv, hl in [
            ("web", "Web", "ORGANIC_SEARCH", "Organic Search"),
            ("phone", "Phone Inquiry", "OFFLINE", "Offline Sources"),
            ("partner", "Partner Referral", "REFERRALS", "Referrals"),
            ("list", "Purchased List", "OTHER_CAMPAIGNS", "Other Campaigns"),
            ("other", "Other", "DIRECT_TRAFFIC", "Direct Traffic"),
        ]
    )
    industries = tuple(
        Option(slug(x), x, slug(x).upper())
        for x in ["Technology", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Education"]
    )
    loss = None
    loss_weights: tuple[float, ...] = ()
    if p.has("free_text_loss_reasons"):
        # what people type into a text box: a few reasons, spelled many ways
        spellings = ["Price", " price", "PRICE", "Too expensive", "No budget", "no  budget ", "Competitor"]
        spellings += ["went with competitor", "Timing", "timing"]
        loss = tuple(Option(f"text{i}", x, x, listed=False) for i, x in enumerate(spellings))
        loss_weights = (1, 1, 1, 2, 2, 1, 2, 1, 2, 1)  # no reason above 3 of 14 (21%)
        if p.has("dominant_loss_reason"):  # "price" in its three spellings: 12 of 23 (52%)
            loss_weights = (6, 4, 2, 2, 2, 1, 2, 1, 2, 1)
    elif not p.has("no_drop_off_reason"):
        loss = tuple(
            Option(slug(x), x)
            for x in ["Price", "Lost to Competitor", "No Budget", "No Decision", "Timing", "Product Fit"]
        )
        if p.has("dominant_loss_reason"):  # Price: 5 of 10 (50%) of recorded reasons
            loss_weights = (5, 1, 1, 1, 1, 1)
    customer = None
    if p.has("customer_stages_on_custom_object"):
        labels = ["Onboarding", "Adopting", "Mature Adoption", "Renewal", "Churn Risk"]
        customer = tuple(Option(f"customer.{slug(x)}", x, slug(x), x) for x in labels)
    owners = tuple(
        (f"005{i:012d}AAA", name)
        for i, name in enumerate(
            ["Ava Patel", "Ben Okafor", "Chloe Martin", "Diego Alvarez", "Emma Schulz", "Farid Haddad"]
        )
    )
    return OrgSchema(
        profile=p,
        lifecycle=lifecycle,
        progression=progression,
        lead_status=_lead_status(p),
        contact_status=_contact_status(p),
        lead_stage=lead_stage,
        lead_source=sources,
        company_type=_company_type(p),
        industry=industries,
        deal_pipelines=deal_pipelines,
        ticket_pipelines=_ticket_pipelines(p, len(deal_pipelines)),
        loss_reasons=loss,
        has_contact_status=not p.has("no_contact_status"),
        has_company_lifecycle=not p.has("no_company_lifecycle"),
        owners=owners,
        customer_stages=customer,
        loss_reason_text=p.has("free_text_loss_reasons"),
        loss_weights=loss_weights,
        regions=() if p.has("no_segment_fields") else _options("North America", "EMEA", "APAC", "LATAM"),
        segments=() if p.has("no_segment_fields") else _options("SMB", "Mid-Market", "Enterprise"),
    )


def _options(*labels: str) -> tuple[Option, ...]:
    return tuple(Option(slug(x), x) for x in labels)
