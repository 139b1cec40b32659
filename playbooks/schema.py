"""Pydantic models describing one playbook file (``playbooks/library/<key>.yaml``).

A playbook is a consultancy's method document turned into data: phases, sub-phases, checklists,
decision gates, definitions to sign off, meetings, training, hypercare, handoff, maintenance,
retention. Prose is copied from the seed documents; everything the app *acts on* is structured:

* **Stable keys.** Every list item the app tracks (phase, sub-phase, checklist item, gate checkpoint,
  decision option, term, maintenance task, trigger, ...) has a ``key`` (lower-case slug). Keys are
  what engagement instances point at, so rewording a text never breaks an engagement.
  Phase and sub-phase keys share one namespace (gate targets may name either).
* **Decision options** (``DecisionOption.effect``) form a closed vocabulary:

  ``proceed``           advance to the next phase (or to ``target`` when given)
  ``loop_back``         return to ``target`` (a phase or sub-phase at or before the gate) and redo it
  ``extend``            stay in the current phase and keep working
  ``complete``          the engagement's deliverable is complete: mark ``skips`` as skipped; phases
                        that are neither skipped nor finished still run (e.g. GTM Handoff "always
                        applies"), then the engagement closes
  ``on_hold``           pause the engagement (a ``follow_up`` says what to do instead)
  ``repeat``            the gate repeats (delivery model: Build approves each release; Operate agrees
                        the next priorities every cycle)
  ``extend_hypercare``  keep the hypercare sub-phase open longer

  ``skips`` lists phase/sub-phase keys an option skips, with the reason recorded on the engagement.
  ``inferred: true`` marks options the seed does not state explicitly (so reviewers can tell).
* **Rules** (``Rule``) are machine-checkable thresholds for maintenance tasks, hypercare KPIs,
  refinement triggers and gate checkpoints (DOMAIN.md section 1.1). Either a metric comparison or an
  event::

      rule: {metric: stage_conversion_rate, per: transition, comparison: drop_pp, threshold: 5,
             unit: pp, data_source: crm}
      rule: {event: crm_migration, data_source: manual}

  Comparisons: ``below``/``above`` (value vs threshold); ``drop_pp`` (baseline - value > threshold,
  percentage points); ``drop_pct`` (relative drop from baseline, %); ``drop_from_peak`` (peak - value
  > threshold points); ``share_above`` (share of items matching, %); ``count_above`` (count >
  threshold); ``new_value_vs_signed`` (any value not in the signed-off registry); ``duration_above``
  (age of an open condition); ``no_increase`` (value not above baseline once ``evaluate_after`` has
  passed); ``target`` (red when ``target`` is not met); ``track`` (informational, no red flag).
  Modifiers: ``per`` (evaluate per stage/manager/...), ``period`` (aggregation window), ``sustained``
  (N consecutive periods), ``target`` (the green goal, distinct from the
  red-flag threshold), ``evaluate_after``, ``sample``, ``exempt_if``, ``ambiguity`` (the seed's
  unit or reference is unclear; the engagement may override).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

KEY_PATTERN = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
SEMVER_PATTERN = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")

Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
MetricKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class PlaybookIntegrityError(ValueError):
    """A cross-field problem (duplicate key, unknown reference) at ``loc`` relative to the playbook root.

    Raised inside the ``Playbook`` validator; the loader reads it back from the pydantic error context
    to report the exact dotted path.
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------------
# Small value types


class Range(Model):
    """An inclusive numeric range, e.g. durations in minutes or a window in days."""

    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"min": value, "max": value}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


def _parse_effort_share(value: Any) -> Any:
    """Accept "60-70%", "~15-20%", "15%", 15 or a mapping; return the mapping form."""
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        return value
    if isinstance(value, int | float):
        return {"text": f"{value:g}%", "min_pct": value, "max_pct": value}
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(~)?\s*(\d+(?:\.\d+)?)\s*%?\s*(?:-\s*(\d+(?:\.\d+)?)\s*%?)?\s*", value)
        if not match:
            raise ValueError(f"effort share {value!r} should look like '15%', '60-70%' or '~15-20%'")
        low = float(match.group(2))
        high = float(match.group(3)) if match.group(3) else low
        return {"text": value.strip(), "min_pct": low, "max_pct": high, "approx": bool(match.group(1))}
    return value


class EffortShare(Model):
    text: Text
    min_pct: float = Field(ge=0, le=100)
    max_pct: float = Field(ge=0, le=100)
    approx: bool = False
    alt_text: str | None = None  # a second figure the seed states elsewhere

    @model_validator(mode="after")
    def _ordered(self) -> EffortShare:
        if self.max_pct < self.min_pct:
            raise ValueError(f"max_pct ({self.max_pct:g}) is below min_pct ({self.min_pct:g})")
        return self


def _parse_version(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("version must be a positive integer or a semver string like '1.2.0'")
    if isinstance(value, int):
        if value < 1:
            raise ValueError("version must be a positive integer or a semver string like '1.2.0'")
        return value
    if isinstance(value, str) and SEMVER_PATTERN.match(value):
        return value
    raise ValueError("version must be a positive integer or a semver string like '1.2.0'")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Version = Annotated[int | str, BeforeValidator(_parse_version)]


class Section(Model):
    """Seed content kept for reading and rendering: a list, a short text and/or a table."""

    key: Key
    title: Text
    text: str | None = None
    items: list[Text] = []
    columns: list[Text] = []
    rows: list[dict[str, str]] = []

    @model_validator(mode="after")
    def _rows_match_columns(self) -> Section:
        if self.rows and not self.columns:
            raise ValueError("a section with rows needs columns")
        for index, row in enumerate(self.rows):
            unknown = sorted(set(row) - set(self.columns))
            if unknown:
                raise ValueError(f"rows[{index}] has columns not declared in 'columns': {unknown}")
        return self


# --------------------------------------------------------------------------------------------------
# Rules (DOMAIN.md 1.1)

Comparison = Literal[
    "below",
    "above",
    "drop_pp",
    "drop_pct",
    "drop_from_peak",
    "share_above",
    "count_above",
    "new_value_vs_signed",
    "duration_above",
    "no_increase",
    "target",
    "track",
]
DataSource = Literal["crm", "crm_metadata", "ri_platform", "prm_platform", "manual", "app"]
Unit = Literal["pct", "pp", "points", "count", "hours", "days", "per_week", "ratio", "multiple"]
Period = Literal["day", "week", "month", "quarter", "year"]

NEEDS_THRESHOLD = {
    "below",
    "above",
    "drop_pp",
    "drop_pct",
    "drop_from_peak",
    "share_above",
    "count_above",
    "duration_above",
}


class Window(Model):
    """N periods, e.g. ``{n: 2, period: month}``."""

    n: int = Field(ge=1)
    period: Period


class Target(Model):
    """A green goal. ``of`` says what is compared: the value itself or its change from baseline."""

    op: Literal["gt", "gte", "lt", "lte"]
    value: float
    unit: Unit
    of: Literal["value", "increase_from_baseline", "reduction_from_baseline", "multiple_of_baseline"] = (
        "value"
    )
    within: Window | None = None


class Rule(Model):
    metric: MetricKey | None = None
    event: MetricKey | None = None
    comparison: Comparison | None = None
    threshold: float | None = None
    unit: Unit | None = None
    per: MetricKey | None = None  # evaluated separately per stage / transition / manager / ...
    # The window a figure covers when it is not the month: "week" reads weekly figures (and `sustained` in weeks
    # counts consecutive weeks), "quarter" reads the quarter's figure at its end, made of its months by `aggregate`.
    period: Period | None = None
    aggregate: Literal["sum", "mean"] | None = None  # how the months make a quarter: churn adds up, a rate averages
    min_count: int | None = Field(default=None, ge=1)  # records needed behind a figure before it is judged
    scope: list[Text] = []  # e.g. the transitions to check
    sustained: Window | None = None
    target: Target | None = None
    evaluate_after: Window | None = None
    sample: Range | None = None  # spot-check size
    exempt_if: str | None = None
    data_source: Annotated[list[DataSource], BeforeValidator(_as_list)] = Field(min_length=1)
    ambiguity: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if (self.metric is None) == (self.event is None):
            raise ValueError("a rule needs exactly one of 'metric' or 'event'")
        if self.event is not None:
            if self.comparison is not None or self.threshold is not None:
                raise ValueError("an event rule takes no 'comparison' or 'threshold'")
            return self
        if self.comparison is None:
            raise ValueError("a metric rule needs a 'comparison'")
        if self.comparison in NEEDS_THRESHOLD and (self.threshold is None or self.unit is None):
            raise ValueError(f"comparison '{self.comparison}' needs 'threshold' and 'unit'")
        if self.comparison == "target" and self.target is None:
            raise ValueError("comparison 'target' needs a 'target'")
        if self.comparison == "no_increase" and self.evaluate_after is None:
            raise ValueError("comparison 'no_increase' needs 'evaluate_after'")
        if self.period in ("quarter", "year") and self.aggregate is None:
            raise ValueError(f"a rule read per {self.period} needs 'aggregate' (sum or mean of its months)")
        if self.period is not None and self.sustained is not None and self.sustained.period != self.period:
            raise ValueError("'sustained' counts windows of the rule's own 'period'")
        return self

    @property
    def window(self) -> Period:
        """The period one figure of this rule covers: its `period`, else its sustained window's, else the month."""
        return self.period or (self.sustained.period if self.sustained else "month")


# --------------------------------------------------------------------------------------------------
# Phases, sub-phases, checklists, gates


class ChecklistItem(Model):
    key: Key
    text: Text
    group: str | None = None  # e.g. "Track A: Customer Homework", "Technical testing"
    owner: str | None = None  # who does it (customer, architect, engineer, ...)
    output: str | None = None
    critical: bool = False  # the seed calls it a hard blocker / critical
    note: str | None = None


class AgendaItem(Model):
    start_min: int | None = Field(default=None, ge=0)
    end_min: int | None = Field(default=None, ge=0)
    minutes: int | None = Field(default=None, ge=0)
    topic: Text
    what_happens: str | None = None


class MeetingTemplate(Model):
    """The meeting a sub-phase revolves around (kickoff, engineering handoff, final meeting)."""

    name: Text
    attendees: list[Text] = []
    duration_min: Range | None = None
    agenda: list[AgendaItem] = []
    bring_by: str | None = None
    bring: list[Text] = []
    leave_with_by: str | None = None
    leave_with: list[Text] = []


class GateCheckpoint(Model):
    key: Key
    text: Text
    # Checks itself from app state: the signed Definition Alignment Doc, or a recorded hypercare KPI
    # (``kpi``, a key of ``hypercare.kpis``) at its target.
    auto: Literal["definitions_signed", "hypercare_kpi"] | None = None
    kpi: Key | None = None
    rule: Rule | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _kpi_named(self) -> GateCheckpoint:
        if (self.auto == "hypercare_kpi") != (self.kpi is not None):
            raise ValueError("'auto: hypercare_kpi' and 'kpi' (the hypercare KPI it reads) go together")
        return self


class Skip(Model):
    keys: list[Key] = Field(min_length=1)
    reason: Text


Effect = Literal["proceed", "loop_back", "extend", "complete", "on_hold", "repeat", "extend_hypercare"]
# Outcomes that say "not ready yet": they need a reason and name the unmet checkpoints, never a waiver.
NOT_READY_EFFECTS = frozenset({"loop_back", "extend", "extend_hypercare", "on_hold"})


class DecisionOption(Model):
    key: Key
    label: Text
    effect: Effect
    target: Key | None = None
    when: Text
    follow_up: str | None = None
    skips: list[Skip] = []
    inferred: bool = False  # not stated by the seed; added so the gate can be decided in the app
    note: str | None = None
    # The option's precondition. A ready option (proceed, complete, approve a round) needs its checkpoints
    # checked or waived: ``requires`` names them (None: every checkpoint of the gate). A not-ready option
    # (hold, extend, loop back, continue) needs a reason and names the unmet checkpoints it is about
    # (``about`` lists the usual ones); it waives nothing. ``ready`` defaults from the effect.
    ready: bool | None = None
    requires: list[Key] | None = None
    about: list[Key] = []

    @property
    def is_ready(self) -> bool:
        return self.effect not in NOT_READY_EFFECTS if self.ready is None else self.ready

    @model_validator(mode="after")
    def _target_rules(self) -> DecisionOption:
        if self.effect == "loop_back" and self.target is None:
            raise ValueError("a 'loop_back' option needs a 'target' (the phase or sub-phase to return to)")
        if self.is_ready and self.about:
            raise ValueError("'about' is for a not-ready option; a ready option lists what it 'requires'")
        if not self.is_ready and self.requires is not None:
            raise ValueError("a not-ready option requires no checkpoints; list the ones it is 'about'")
        return self


class DecisionGate(Model):
    key: Key
    name: Text
    sub_phase: Key | None = None  # where the gate sits (1d/2d/3d); None = at the end of the phase
    statement: str | None = None  # one-line gate (delivery model)
    per_release: bool = False
    recurring: bool = False
    checkpoints: list[GateCheckpoint] = []
    options: list[DecisionOption] = Field(min_length=1)

    @model_validator(mode="after")
    def _options_name_checkpoints(self) -> DecisionGate:
        known = {c.key for c in self.checkpoints}
        for option in self.options:
            unknown = [k for k in [*(option.requires or []), *option.about] if k not in known]
            if unknown:
                raise ValueError(
                    f"option '{option.key}' names checkpoints this gate does not have: {', '.join(unknown)}"
                )
        return self


class PhaseProduces(Model):
    output: Text
    gate_criteria: Text


class SubPhase(Model):
    key: Key
    name: Text
    purpose: str | None = None
    input: str | None = None
    output: str | None = None
    completion: str | None = None  # the "Phase Checklists" line for this sub-phase
    checklist: list[ChecklistItem] = []
    meeting: MeetingTemplate | None = None
    sections: list[Section] = []
    notes: list[Text] = []


class Phase(Model):
    key: Key
    order: int = Field(ge=1)
    name: Text
    applies: bool = True
    weight: Literal["light", "medium", "heavy"] | None = None
    effort_share: Annotated[EffortShare | None, BeforeValidator(_parse_effort_share)] = None
    relevance_note: str | None = None
    overview_caption: str | None = None
    goal: str | None = None
    output: str | None = None
    produces: PhaseProduces | None = None
    questions_answered: list[Text] = []
    activities: list[ChecklistItem] = []
    client_involvement: list[ChecklistItem] = []
    definition_of_completion: str | None = None
    continuous: bool = False
    structure: str | None = None  # e.g. "4a Maintenance Schedule --> 4b Internal Handoff --> ..."
    sub_phases: list[SubPhase] = []
    decision_gate: DecisionGate | None = None
    sections: list[Section] = []


# --------------------------------------------------------------------------------------------------
# Strategy loop, documents, definitions


class OnePagerView(Model):
    """How the seed's one-page summary words the same meeting/training when it differs."""

    name: str | None = None
    focus: str | None = None
    audience: list[Text] = []
    stakeholders: list[Text] = []
    output: str | None = None
    duration_min: Range | None = None


class Meeting(Model):
    key: Key
    type: Literal["kickoff", "refinement", "alignment", "sign_off"]
    sequence: int | None = Field(default=None, ge=1)
    name: Text
    sub_phase: Key
    focus: Text
    stakeholders: list[Text] = Field(min_length=1)
    output: str | None = None
    version_in: str | None = None
    version_out: str | None = None
    one_pager: OnePagerView | None = None


class TimelineItem(Model):
    milestone: Text
    timing: Text


class RefinementLoop(Model):
    purpose: str | None = None
    loops_expected: str | None = None
    pattern: list[Text] = []
    before_each_meeting: list[Text] = []
    during_each_meeting: list[Text] = []
    after_each_meeting: list[Text] = []
    meetings: list[Meeting] = Field(min_length=1)
    scheduling_note: str | None = None
    timeline: list[TimelineItem] = []


class Document(Model):
    key: Key
    name: Text
    kind: Literal["working", "deliverable"]
    phase: Key | None = None
    purpose: str | None = None
    when_complete: str | None = None
    created_from: str | None = None
    customer_uses_for: str | None = None


class NamedItem(Model):
    name: Text
    description: str | None = None


class DeliverablesSummary(Model):
    strategic: list[NamedItem] = []
    technical: list[NamedItem] = []
    technical_condition: str | None = None
    documentation_package: list[Text] = []


class KeyAsset(Model):
    key: Key
    name: Text
    when_used: Text


class StageGroup(Model):
    domain: Text
    stages: list[Text] = Field(min_length=1)
    condition: str | None = None


class Term(Model):
    key: Key
    term: Text
    typical_definition: str | None = None  # "Definition Alignment Terms" table
    sign_off_definition: str | None = None  # "Stakeholder Alignment Document" (signed per term)
    sign_off_label: str | None = None  # when the sign-off table names the term differently
    domain: Key | None = None
    golden: bool = False
    notes: str | None = None

    @model_validator(mode="after")
    def _has_definition(self) -> Term:
        if not self.typical_definition and not self.sign_off_definition:
            raise ValueError("a term needs a 'typical_definition' or a 'sign_off_definition'")
        return self


class DefinitionAlignment(Model):
    purpose: str | None = None
    instructions: str | None = None
    blocks_phase: Key | None = None  # this phase may not start until every sign-off term is approved
    approvers: list[Text] = []
    prefilled_stage_groups: list[StageGroup] = []
    terms: list[Term] = Field(min_length=1)


# --------------------------------------------------------------------------------------------------
# Enablement and hypercare


class TrainingType(Model):
    key: Key
    name: Text
    audience: list[Text] = Field(min_length=1)
    focus: Text
    duration_min: Range
    covers: list[Text] = []
    one_pager: OnePagerView | None = None


class TrainingAsset(Model):
    key: Key
    kind: Literal["video", "doc"]
    title: Text
    description: str | None = None


class PartnerLaunch(Model):
    pilot: Text
    full_launch: Text
    rationale: Text


class Enablement(Model):
    training_types: list[TrainingType] = []
    training_assets: list[TrainingAsset] = []
    partner_launch: PartnerLaunch | None = None


class Kpi(Model):
    key: Key
    metric: Text
    target: str | None = None  # None when the seed states only the red flag
    red_flag: Text
    rule: Rule


class Hypercare(Model):
    sub_phase: Key
    applies: Literal["yes", "optional", "no"]
    applies_when: str | None = None
    duration_days: int = Field(ge=1)
    duration_text: Text
    starts: str | None = None
    office_hours: str | None = None
    monitoring: str | None = None
    kpis: list[Kpi] = []
    extend_when: str | None = None
    skip_when: str | None = None
    output: str | None = None
    notes: list[Text] = []


# --------------------------------------------------------------------------------------------------
# Handoff, maintenance, retention


class EscalationGuideline(Model):
    key: Key
    issue_type: Text
    handler: Literal["architect", "specialist", "sme", "ongoing_team"]
    note: str | None = None
    example: str | None = None


class InternalHandoff(Model):
    from_role: Text
    to_role: Text
    purpose: str | None = None
    key_context: list[Text] = []
    escalation_triggers: list[Text] = []
    needs_to_know: list[Text] = []
    escalation_guidelines: list[EscalationGuideline] = []
    dedicated_note: str | None = None


class ExternalHandoff(Model):
    from_party: Text
    to_party: Text
    purpose: str | None = None
    one_pager_agenda: str | None = None
    documentation_package: list[ChecklistItem] = []  # handed over at External Handoff; tracked per item
    one_pager_documentation_package: str | None = None
    single_project_note: str | None = None
    output: str | None = None


class ProjectClose(Model):
    purpose: str | None = None
    debrief_optional_but_recommended: bool = False
    debrief_questions: list[Text] = []
    note: str | None = None


class Handoff(Model):
    internal: InternalHandoff
    external: ExternalHandoff
    project_close: ProjectClose | None = None


class MaintenanceTask(Model):
    key: Key
    cadence: Literal["weekly", "monthly", "quarterly", "after_first_business_cycle", "every_6_12_months"]
    name: Text
    what_to_check: str | None = None
    red_flag: str | None = None
    action_if_off_track: str | None = None
    rules: list[Rule] = []


class RefinementTrigger(Model):
    key: Key
    trigger: Text
    threshold: Text
    response: Text
    rule: Rule


class FirstBusinessCycle(Model):
    window_days: Range
    relative_to: Text
    key_question: str | None = None


class Maintenance(Model):
    purpose: str | None = None
    owner: Literal["customer", "consultancy"] | None = None  # who runs it when the playbook has no engagement types
    summary: list[Text] = []  # the one-pager's monthly/quarterly lines
    first_business_cycle: FirstBusinessCycle | None = None
    tasks: list[MaintenanceTask] = Field(min_length=1)
    refinement_triggers: list[RefinementTrigger] = []
    rationale: list[Text] = []


class EngagementType(Model):
    key: Literal["single_project", "dedicated"]
    name: Text
    maintenance_owner: Literal["customer", "architect", "ongoing_team"]
    handed_off_at: Key | None = None
    handed_off_note: str | None = None
    retention_path: Text


class RetentionStep(Model):
    order: int = Field(ge=1)
    action: Literal["upsell", "downsell", "retry_retainer"]
    offer: Text
    condition: str | None = None  # "if no" / "if yes" relative to the previous step
    options: list[Text] = []


class SingleProjectPath(Model):
    summary: str | None = None
    steps: list[RetentionStep] = Field(min_length=1)
    script: str | None = None


class PrepStep(Model):
    order: int = Field(ge=1)
    step: Text
    what_happens: Text


class DedicatedPath(Model):
    summary: list[Text] = []
    check_in_offset: Text
    check_in_days: int | None = Field(default=None, ge=1)
    prep_days_before: int = Field(ge=1)
    check_in_script: str | None = None
    prep_steps: list[PrepStep] = []
    ownership_decision: str | None = None
    at_check_in: list[Text] = []


class Retention(Model):
    single_project: SingleProjectPath
    dedicated: DedicatedPath
    output: str | None = None


# --------------------------------------------------------------------------------------------------
# Method-level reference content


class Principle(Model):
    key: Key
    title: Text
    text: Text
    applies_to: Key | None = None  # phase or sub-phase key


class Role(Model):
    key: Key
    name: Text
    does: Text


class Responsibilities(Model):
    consultant: list[Text] = Field(min_length=1)
    client: list[Text] = Field(min_length=1)
    note: str | None = None


class EngagementShape(Model):
    key: Key
    name: Text
    primary_purpose: Text
    typical_starting_point: Text
    main_activities: Text
    client_involvement: Text
    deliverables: Text
    end_state: Text
    ongoing_support: Text
    # The phase an engagement of this shape starts in; the phases before it are not part of it (an Embedded
    # operation takes over a live system, so it starts in Operate). None: the first phase.
    starts_at: Key | None = None


class ProjectProfile(Model):
    profile: Text
    strategy_pct: Range
    engineering_pct: Range
    enablement_pct: Range
    this_project: bool = False


class EngineeringWeight(Model):
    project_type: Text
    weight: Literal["light", "medium", "heavy"]
    engineering_pct: Range
    this_project: str | None = None


class SkipRule(Model):
    """A phase or sub-phase the seed says may be skipped, and when."""

    keys: list[Key] = Field(min_length=1)
    when: Text
    decided_at: Key | None = None


class Gotcha(Model):
    key: Key
    problem: Text
    fix: Text
    evidence: str | None = None


class MethodologyConditions(Model):
    revenue_usd_min: int | None = None
    revenue_usd_max: int | None = None
    gtm_team_size_max: int | None = None
    partner_count_min: int | None = None
    partner_count_max: int | None = None
    notes: str | None = None


class MethodologyOption(Model):
    key: Key
    option: Text
    when_to_use: Text
    complexity: Literal["low", "low_medium", "medium", "high"]
    conditions: MethodologyConditions | None = None


class KeyedName(Model):
    key: Key
    name: Text


class CadenceElement(Model):
    key: Key
    order: int = Field(ge=1)
    name: Text
    items: list[Text] = Field(min_length=1)


class WeeklyCadence(Model):
    summary: Text
    elements: list[CadenceElement] = Field(min_length=1)
    notes: list[Text] = []


class DecisionModel(Model):
    statement: Text
    summary: Text
    decision_classes: list[Text] = []
    categories: list[KeyedName] = Field(min_length=1)


class Handover(Model):
    statement: Text
    principle: Text
    components: list[KeyedName] = Field(min_length=1)


# --------------------------------------------------------------------------------------------------
# The client's intake form (Pre-Kickoff Track A): filled in the portal, answers feed the work that follows

IntakeFieldType = Literal["text", "number", "choice", "multi_choice", "yes_no", "table", "file"]
# What an answer prefills elsewhere in the app: the suggested CRM connector, the pipelines and the current stage
# definitions shown beside the draft definitions.
IntakeFeed = Literal["crm_platform", "pipelines", "current_definitions"]


class IntakeColumn(Model):
    """One typed column of a table field (a team and its size, a quarter with forecast and actual)."""

    key: Key
    label: Text
    type: Literal["text", "number", "choice"] = "text"
    choices: list[Text] = []

    @model_validator(mode="after")
    def _choices_match_type(self) -> IntakeColumn:
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("a 'choice' column needs 'choices', and only a 'choice' column takes them")
        return self


class IntakeField(Model):
    key: Key
    label: Text
    type: IntakeFieldType
    required: bool = False
    help: str | None = None  # the seed's words for what is asked
    choices: list[Text] = []
    columns: list[IntakeColumn] = []
    feeds: IntakeFeed | None = None

    @model_validator(mode="after")
    def _shape_matches_type(self) -> IntakeField:
        chooses = self.type in ("choice", "multi_choice")
        if chooses != bool(self.choices):
            raise ValueError(f"a '{self.type}' field " + ("needs 'choices'" if chooses else "takes no 'choices'"))
        if (self.type == "table") != bool(self.columns):
            raise ValueError(
                f"a '{self.type}' field " + ("needs 'columns'" if self.type == "table" else "takes no 'columns'")
            )
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("'choices' lists the same choice twice")
        return self


class IntakeForm(Model):
    name: Text
    completes: Key  # the customer checklist item ("Complete the ... Intake Form") a submitted, complete form ticks
    intro: str | None = None
    fields: list[IntakeField] = Field(min_length=1)


# --------------------------------------------------------------------------------------------------
# The file


class Playbook(Model):
    schema_version: Literal[1] = 1
    key: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
    name: Text
    version: Version
    framework: Literal["delivery-model", "four-phase"]
    summary: Text
    source: Text
    consultancy_label: str | None = None
    category: str | None = None
    primary_deliverable: str | None = None
    project_profile: (
        Literal["strategic_heavy", "engineering_heavy", "enablement_heavy", "balanced"] | None
    ) = None
    intro: list[Text] = []
    flow_notes: list[Text] = []
    skippable: list[SkipRule] = []
    principles: list[Principle] = []
    roles: list[Role] = []
    responsibilities: Responsibilities | None = None
    engagement_shapes: list[EngagementShape] = []
    engagement_types: list[EngagementType] = []
    project_profiles: list[ProjectProfile] = []
    engineering_weight_by_project_type: list[EngineeringWeight] = []
    adaptation_rules: list[Text] = []
    phases: list[Phase] = Field(min_length=1)
    refinement_loop: RefinementLoop | None = None
    documents: list[Document] = []
    deliverables_summary: DeliverablesSummary | None = None
    key_assets: list[KeyAsset] = []
    definition_alignment: DefinitionAlignment | None = None
    enablement: Enablement | None = None
    hypercare: Hypercare | None = None
    handoff: Handoff | None = None
    maintenance: Maintenance | None = None
    retention: Retention | None = None
    common_gotchas: list[Gotcha] = []
    methodology_options: list[MethodologyOption] = []
    weekly_cadence: WeeklyCadence | None = None
    decision_model: DecisionModel | None = None
    handover: Handover | None = None
    intake: IntakeForm | None = None
    sections: list[Section] = []
    references: list[Text] = []

    @model_validator(mode="after")
    def _integrity(self) -> Playbook:
        problems = integrity_problems(self)
        if problems:
            loc, message = problems[0]
            raise PlaybookIntegrityError(loc, message)
        return self

    # Convenience lookups for callers (the DB loader, the engagement instantiation).
    def phase(self, key: str) -> Phase:
        for phase in self.phases:
            if phase.key == key:
                return phase
        raise KeyError(f"playbook '{self.key}' has no phase '{key}'")

    def sub_phase(self, key: str) -> SubPhase:
        for sub in self.sub_phases:
            if sub.key == key:
                return sub
        raise KeyError(f"playbook '{self.key}' has no sub-phase '{key}'")

    @property
    def sub_phases(self) -> list[SubPhase]:
        return [s for p in self.phases for s in p.sub_phases]

    @property
    def gates(self) -> list[DecisionGate]:
        return [p.decision_gate for p in self.phases if p.decision_gate is not None]


Loc = tuple[str | int, ...]


def _duplicates(items: list[Any], loc: Loc, attr: str = "key") -> list[tuple[Loc, str]]:
    seen: dict[Any, int] = {}
    problems = []
    for index, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            problems.append(
                (
                    (*loc, index, attr),
                    f"duplicate {attr} '{value}' (first used at {_fmt((*loc, seen[value]))})",
                )
            )
        else:
            seen[value] = index
    return problems


def _fmt(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def integrity_problems(pb: Playbook) -> list[tuple[Loc, str]]:
    """Cross-field checks pydantic cannot express per field; ordered as they appear in the file."""
    problems: list[tuple[Loc, str]] = []
    problems += _duplicates(pb.principles, ("principles",))
    problems += _duplicates(pb.roles, ("roles",))
    problems += _duplicates(pb.engagement_shapes, ("engagement_shapes",))
    problems += _duplicates(pb.engagement_types, ("engagement_types",))

    # Positions of phases and sub-phases, for reference checks and loop-back direction.
    position: dict[str, tuple[int, int]] = {}
    problems += _duplicates(pb.phases, ("phases",))
    for p_index, phase in enumerate(pb.phases):
        ploc: Loc = ("phases", p_index)
        if phase.order != p_index + 1:
            problems.append(
                ((*ploc, "order"), f"phase order should be {p_index + 1} (phases are listed in order)")
            )
        position.setdefault(phase.key, (phase.order, 0))
        if pb.framework == "four-phase" and not phase.sub_phases:
            problems.append(((*ploc, "sub_phases"), "a four-phase playbook needs sub-phases in every phase"))
        for s_index, sub in enumerate(phase.sub_phases):
            sloc: Loc = (*ploc, "sub_phases", s_index)
            if sub.key in position:
                problems.append(((*sloc, "key"), f"duplicate phase/sub-phase key '{sub.key}'"))
            else:
                position[sub.key] = (phase.order, s_index + 1)
            if pb.framework == "four-phase" and not re.fullmatch(rf"{phase.order}[a-z]", sub.key):
                problems.append(
                    ((*sloc, "key"), f"sub-phase key '{sub.key}' should be '{phase.order}' plus a letter")
                )
            problems += _duplicates(sub.checklist, (*sloc, "checklist"))
            problems += _duplicates(sub.sections, (*sloc, "sections"))
        items = phase.activities + phase.client_involvement
        for dup_loc, msg in _duplicates(items, (*ploc, "activities")):
            index = dup_loc[-2]
            assert isinstance(index, int)
            if index >= len(phase.activities):
                dup_loc = (*ploc, "client_involvement", index - len(phase.activities), "key")
            problems.append((dup_loc, msg))
        problems += _duplicates(phase.sections, (*ploc, "sections"))
    # A sub-phase key may not shadow a phase key (they share the target namespace).
    phase_keys = {p.key for p in pb.phases}
    for p_index, phase in enumerate(pb.phases):
        for s_index, sub in enumerate(phase.sub_phases):
            if sub.key in phase_keys:
                problems.append(
                    (("phases", p_index, "sub_phases", s_index, "key"), f"'{sub.key}' is already a phase key")
                )

    def check_ref(key: str | None, loc: Loc, what: str = "phase or sub-phase") -> None:
        if key is not None and key not in position:
            known = ", ".join(position)
            problems.append((loc, f"unknown {what} key '{key}' (known: {known})"))

    gate_keys: dict[str, Loc] = {}
    for p_index, phase in enumerate(pb.phases):
        gate = phase.decision_gate
        if gate is None:
            continue
        gloc: Loc = ("phases", p_index, "decision_gate")
        if gate.key in gate_keys:
            problems.append(((*gloc, "key"), f"duplicate gate key '{gate.key}'"))
        gate_keys.setdefault(gate.key, gloc)
        sub_keys = [s.key for s in phase.sub_phases]
        if gate.sub_phase is not None and gate.sub_phase not in sub_keys:
            problems.append(
                (
                    (*gloc, "sub_phase"),
                    f"gate sub_phase '{gate.sub_phase}' is not a sub-phase of '{phase.key}'",
                )
            )
        gate_pos = position.get(gate.sub_phase or "", (phase.order, 99))
        problems += _duplicates(gate.checkpoints, (*gloc, "checkpoints"))
        problems += _duplicates(gate.options, (*gloc, "options"))
        for o_index, option in enumerate(gate.options):
            oloc: Loc = (*gloc, "options", o_index)
            check_ref(option.target, (*oloc, "target"))
            if (
                option.effect == "loop_back"
                and option.target in position
                and position[option.target] > gate_pos
            ):
                problems.append(
                    ((*oloc, "target"), f"loop_back target '{option.target}' comes after the gate")
                )
            if (
                option.effect == "proceed"
                and option.target in position
                and position[option.target] <= gate_pos
            ):
                problems.append(
                    ((*oloc, "target"), f"proceed target '{option.target}' is not after the gate")
                )
            for k_index, skip in enumerate(option.skips):
                for key_index, key in enumerate(skip.keys):
                    check_ref(key, (*oloc, "skips", k_index, "keys", key_index))

    for index, rule in enumerate(pb.skippable):
        for key_index, key in enumerate(rule.keys):
            check_ref(key, ("skippable", index, "keys", key_index))
        check_ref(rule.decided_at, ("skippable", index, "decided_at"))
    for index, principle in enumerate(pb.principles):
        check_ref(principle.applies_to, ("principles", index, "applies_to"))
    for index, shape in enumerate(pb.engagement_shapes):
        if shape.starts_at is not None and shape.starts_at not in phase_keys:
            problems.append(
                (
                    ("engagement_shapes", index, "starts_at"),
                    f"unknown phase key '{shape.starts_at}' (a shape starts at a phase; "
                    f"known: {', '.join(p.key for p in pb.phases)})",
                )
            )
    for index, etype in enumerate(pb.engagement_types):
        check_ref(etype.handed_off_at, ("engagement_types", index, "handed_off_at"), "sub-phase")

    if pb.refinement_loop is not None:
        problems += _duplicates(pb.refinement_loop.meetings, ("refinement_loop", "meetings"))
        for index, meeting in enumerate(pb.refinement_loop.meetings):
            check_ref(meeting.sub_phase, ("refinement_loop", "meetings", index, "sub_phase"), "sub-phase")
    problems += _duplicates(pb.documents, ("documents",))
    for index, document in enumerate(pb.documents):
        check_ref(document.phase, ("documents", index, "phase"))
    problems += _duplicates(pb.key_assets, ("key_assets",))
    if pb.definition_alignment is not None:
        problems += _duplicates(pb.definition_alignment.terms, ("definition_alignment", "terms"))
        problems += _duplicates(pb.definition_alignment.terms, ("definition_alignment", "terms"), "term")
        check_ref(pb.definition_alignment.blocks_phase, ("definition_alignment", "blocks_phase"))
    if pb.enablement is not None:
        problems += _duplicates(pb.enablement.training_types, ("enablement", "training_types"))
        problems += _duplicates(pb.enablement.training_assets, ("enablement", "training_assets"))
    if pb.hypercare is not None:
        check_ref(pb.hypercare.sub_phase, ("hypercare", "sub_phase"), "sub-phase")
        problems += _duplicates(pb.hypercare.kpis, ("hypercare", "kpis"))
    kpi_keys = {k.key for k in pb.hypercare.kpis} if pb.hypercare is not None else set()
    for p_index, phase in enumerate(pb.phases):
        for c_index, checkpoint in enumerate(phase.decision_gate.checkpoints if phase.decision_gate else []):
            if checkpoint.kpi is not None and checkpoint.kpi not in kpi_keys:
                problems.append(
                    (
                        ("phases", p_index, "decision_gate", "checkpoints", c_index, "kpi"),
                        f"unknown hypercare KPI '{checkpoint.kpi}' (known: {', '.join(sorted(kpi_keys)) or 'none'})",
                    )
                )
    if pb.handoff is not None:
        problems += _duplicates(
            pb.handoff.internal.escalation_guidelines, ("handoff", "internal", "escalation_guidelines")
        )
        problems += _duplicates(
            pb.handoff.external.documentation_package, ("handoff", "external", "documentation_package")
        )
    if pb.maintenance is not None:
        problems += _duplicates(pb.maintenance.tasks, ("maintenance", "tasks"))
        problems += _duplicates(pb.maintenance.refinement_triggers, ("maintenance", "refinement_triggers"))
    problems += _duplicates(pb.common_gotchas, ("common_gotchas",))
    problems += _duplicates(pb.methodology_options, ("methodology_options",))
    if pb.weekly_cadence is not None:
        problems += _duplicates(pb.weekly_cadence.elements, ("weekly_cadence", "elements"))
    if pb.decision_model is not None:
        problems += _duplicates(pb.decision_model.categories, ("decision_model", "categories"))
    if pb.handover is not None:
        problems += _duplicates(pb.handover.components, ("handover", "components"))
    if pb.intake is not None:
        problems += _intake_problems(pb.intake, {i.key for s in pb.sub_phases for i in s.checklist})
    problems += _duplicates(pb.sections, ("sections",))
    return problems


def _intake_problems(intake: IntakeForm, checklist_keys: set[str]) -> list[tuple[Loc, str]]:
    problems = _duplicates(intake.fields, ("intake", "fields"))
    if intake.completes not in checklist_keys:
        message = f"unknown checklist item key '{intake.completes}' (the sub-phase checklist item it completes)"
        problems.append((("intake", "completes"), message))
    fed: dict[str, int] = {}
    for index, field in enumerate(intake.fields):
        problems += _duplicates(field.columns, ("intake", "fields", index, "columns"))
        if field.feeds is not None:
            if field.feeds in fed:
                message = f"'{field.feeds}' is already fed by intake.fields[{fed[field.feeds]}]"
                problems.append((("intake", "fields", index, "feeds"), message))
            fed.setdefault(field.feeds, index)
    if "crm_platform" in fed and intake.fields[fed["crm_platform"]].type != "choice":
        message = "the field feeding 'crm_platform' must be a 'choice'"
        problems.append((("intake", "fields", fed["crm_platform"], "type"), message))
    return problems
