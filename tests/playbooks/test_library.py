"""The playbook library: every file loads, encodes its seed, and bad files fail with a precise path.

Runs without Django or a database: ``pytest tests/playbooks -p no:django``.
"""

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from playbooks.loader import (
    LIBRARY_DIR,
    PlaybookFileError,
    content_hash,
    load_library,
    load_playbook_file,
)
from playbooks.schema import Playbook

FOUR_PHASE_SUB_PHASES = [f"{n}{letter}" for n in range(1, 5) for letter in "abcd"]


@pytest.fixture(scope="module")
def library() -> dict[str, Playbook]:
    return {pb.key: pb for pb in load_library()}


def all_items(sub_phase_or_phase) -> list:
    return list(sub_phase_or_phase.checklist)


def gate(pb: Playbook, phase_key: str):
    g = pb.phase(phase_key).decision_gate
    assert g is not None
    return g


def option(pb: Playbook, phase_key: str, option_key: str):
    return next(o for o in gate(pb, phase_key).options if o.key == option_key)


def task(pb: Playbook, key: str):
    assert pb.maintenance is not None
    return next(t for t in pb.maintenance.tasks if t.key == key)


def trigger(pb: Playbook, key: str):
    assert pb.maintenance is not None
    return next(t for t in pb.maintenance.refinement_triggers if t.key == key)


# --------------------------------------------------------------------------------------------------
# The library as a whole


def test_library_has_the_four_methods(library):
    assert sorted(library) == [
        "delivery-model",
        "gtm-lifecycle",
        "partnership-success",
        "revenue-intelligence",
    ]
    assert {pb.source for pb in library.values()} == {
        "000_9c270b14070a5d9a.txt",
        "001_1ff6a606cfd9aff3.txt",
        "002_bc4d25c36f5efd23.txt",
        "004_607a1f98ec9cd5e4.txt",
    }
    for file in LIBRARY_DIR.glob("*.yaml"):
        assert load_playbook_file(file).key == file.stem


def test_four_phase_playbooks_share_the_phase_and_sub_phase_skeleton(library):
    for key in ("gtm-lifecycle", "revenue-intelligence", "partnership-success"):
        pb = library[key]
        assert pb.framework == "four-phase"
        assert [p.key for p in pb.phases] == ["strategy", "engineering", "enablement", "handoff"]
        assert [s.key for s in pb.sub_phases] == FOUR_PHASE_SUB_PHASES
        # Gates sit at 1d, 2d, 3d; Handoff ends with 4d Project Close.
        assert [g.sub_phase for g in pb.gates] == ["1d", "2d", "3d"]
        assert (
            pb.hypercare is not None and pb.hypercare.sub_phase == "3c" and pb.hypercare.duration_days == 14
        )
        assert {t.key for t in pb.engagement_types} == {"single_project", "dedicated"}
        assert pb.definition_alignment is not None and pb.definition_alignment.blocks_phase == "engineering"
        first = gate(pb, "strategy").checkpoints[0]
        assert first.auto == "definitions_signed"


def test_every_gate_option_leads_somewhere_that_exists(library):
    for pb in library.values():
        keys = {p.key for p in pb.phases} | {s.key for s in pb.sub_phases}
        for g in pb.gates:
            assert g.options, f"{pb.key}:{g.key} has no options"
            for opt in g.options:
                if opt.effect == "loop_back":
                    assert opt.target in keys, f"{pb.key}:{g.key}:{opt.key}"
                if opt.target is not None:
                    assert opt.target in keys
                for skip in opt.skips:
                    assert set(skip.keys) <= keys


def test_every_red_flag_has_a_machine_readable_rule(library):
    for pb in library.values():
        if pb.maintenance is None:
            continue
        for t in pb.maintenance.tasks:
            if t.red_flag:
                assert t.rules, f"{pb.key}:{t.key} states a red flag but has no rule"
        for trig in pb.maintenance.refinement_triggers:
            assert trig.rule.metric or trig.rule.event


def test_checklist_and_checkpoint_keys_are_unique_where_it_matters(library):
    for pb in library.values():
        for sub in pb.sub_phases:
            keys = [item.key for item in sub.checklist]
            assert len(keys) == len(set(keys))
        for g in pb.gates:
            keys = [c.key for c in g.checkpoints]
            assert len(keys) == len(set(keys))


# --------------------------------------------------------------------------------------------------
# Seed 000: the five-phase delivery model


def test_delivery_model_phases_and_gates(library):
    pb = library["delivery-model"]
    assert pb.framework == "delivery-model"
    assert [p.name for p in pb.phases] == ["Discover", "Design", "Build", "Adopt", "Operate"]
    assert [len(p.questions_answered) for p in pb.phases] == [8, 8, 7, 6, 7]
    assert [len(p.activities) for p in pb.phases] == [8, 8, 10, 8, 9]
    assert [len(p.client_involvement) for p in pb.phases] == [6, 6, 6, 6, 5]
    deliverables = [[d.name for d in pb.documents if d.phase == p.key] for p in pb.phases]
    assert [len(d) for d in deliverables] == [5, 7, 7, 6, 6]
    assert "Release notes" in deliverables[2]
    assert gate(pb, "discover").statement == "Confirm what must be solved and what should remain unchanged."
    assert pb.phase("build").decision_gate.per_release is True
    assert {o.effect for o in gate(pb, "build").options} >= {"repeat", "proceed"}
    assert pb.phase("operate").continuous and gate(pb, "operate").recurring
    assert pb.phase("operate").definition_of_completion == (
        "Operate is continuous while embedded support remains active."
    )
    # The seed states no options; every option is flagged as inferred.
    assert all(o.inferred for g in pb.gates for o in g.options)
    audit = option(pb, "design", "audit-complete")
    assert audit.effect == "complete" and audit.skips[0].keys == ["build", "adopt", "operate"]


def test_delivery_model_fourteen_decision_categories(library):
    pb = library["delivery-model"]
    assert [c.name for c in pb.decision_model.categories] == [
        "Lifecycle definitions",
        "Pipeline stages",
        "Qualification rules",
        "Ownership",
        "Handoffs",
        "Required fields",
        "Data standards",
        "Permissions",
        "Workflow triggers",
        "Approval steps",
        "Integration ownership",
        "Error handling",
        "Reporting definitions",
        "Administrative procedures",
    ]
    assert pb.decision_model.decision_classes == ["Architecture", "Data", "Workflow", "Operating"]


def test_delivery_model_cadence_handover_shapes_principles(library):
    pb = library["delivery-model"]
    assert [e.name for e in pb.weekly_cadence.elements] == [
        "Working session",
        "Shared delivery board",
        "Production release",
        "Feedback loop",
        "Written update",
    ]
    assert pb.weekly_cadence.elements[1].items == [
        "Work in progress",
        "Decisions needed",
        "Risks",
        "Completed releases",
        "Upcoming work",
    ]
    assert len(pb.handover.components) == 12
    assert pb.handover.components[0].name == "Administrative access"
    assert pb.handover.components[-1].name == "Support options"
    assert [s.key for s in pb.engagement_shapes] == ["audit", "build", "embedded-operation"]
    assert pb.engagement_shapes[2].ongoing_support == "Continuous, scope adjusted over time."
    # "The system is live but lacks operating capacity": an embedded operation starts in Operate.
    assert [s.starts_at for s in pb.engagement_shapes] == [None, None, "operate"]
    assert len(pb.principles) == 6
    assert len(pb.responsibilities.consultant) == 10 and len(pb.responsibilities.client) == 10


# --------------------------------------------------------------------------------------------------
# Seed 001: GTM Lifecycle


def test_gtm_lifecycle_structure_counts(library):
    pb = library["gtm-lifecycle"]
    assert [p.weight for p in pb.phases] == ["heavy", "light", "light", "light"]
    assert pb.phase("strategy").effort_share.min_pct == 60 and pb.phase("strategy").effort_share.max_pct == 70
    checklist_counts = {s.key: len(s.checklist) for s in pb.sub_phases if s.checklist}
    assert checklist_counts == {
        "1a": 9,  # the seed's 8, and the CRM access its Track B presumes (the client grants it in the portal)
        "2a": 4,
        "2c": 8,
        "2d": 13,
        "3a": 5,
        "3b": 4,
        "3c": 4,
        "4d": 4,
    }
    assert [len(g.checkpoints) for g in pb.gates] == [8, 5, 8]
    tracks = [i.group for i in pb.sub_phase("1a").checklist]
    assert tracks.count("Track A: Customer Homework") == 4 and tracks.count("Track B: Architect Prep") == 5
    tech_tests = [i for i in pb.sub_phase("2d").checklist if i.group == "Technical testing"]
    assert len(tech_tests) == 9
    assert (
        pb.sub_phase("1b").meeting.duration_min.min == 60
        and pb.sub_phase("1b").meeting.duration_min.max == 75
    )
    final_meeting = pb.sub_phase("4c").meeting
    assert sum(a.minutes for a in final_meeting.agenda) == 50
    package = [i.text for i in pb.handoff.external.documentation_package]
    assert len(package) == 7 and package[1] == "Definition Alignment Document (final, signed-off version)"
    assert [m.key for m in pb.refinement_loop.meetings] == [
        "kickoff",
        "refinement-1",
        "refinement-2",
        "final-review",
    ]


def test_gtm_lifecycle_strategic_sign_off_can_complete_the_project(library):
    pb = library["gtm-lifecycle"]
    g = gate(pb, "strategy")
    assert g.checkpoints[0].text.startswith("Definition Alignment Document signed off by VP RevOps")
    assert [o.effect for o in g.options] == ["proceed", "complete"]
    done = option(pb, "strategy", "project-complete")
    assert done.label == "Project complete"
    assert done.skips[0].keys == ["engineering", "enablement"]
    assert not done.inferred
    # 2d/3d options are not in the seed and say so; hypercare may be skipped after a minimal build.
    assert all(o.inferred for o in gate(pb, "engineering").options + gate(pb, "enablement").options)
    assert option(pb, "engineering", "loop-back-to-build").target == "2c"
    assert option(pb, "engineering", "proceed-without-hypercare").skips[0].keys == ["3c"]
    assert option(pb, "enablement", "extend-hypercare").effect == "extend_hypercare"
    assert pb.hypercare.applies == "optional"


def test_gtm_lifecycle_definitions(library):
    terms = {t.key: t for t in library["gtm-lifecycle"].definition_alignment.terms}
    assert len(terms) == 20
    assert sum(1 for t in terms.values() if t.sign_off_definition) == 10
    assert {k for k, t in terms.items() if t.golden} == {"sql", "closed-won", "early-adoption"}
    assert terms["sal"].typical_definition.startswith("Sales has received the MQL and agreed to work it.")
    assert terms["lifecycle-vs-status"].sign_off_label == "Contact Status vs Stage"
    assert library["gtm-lifecycle"].definition_alignment.approvers == [
        "VP RevOps",
        "VP Marketing",
        "VP Sales",
        "VP CS",
    ]


def test_gtm_lifecycle_maintenance_thresholds(library):
    pb = library["gtm-lifecycle"]
    cadences = [t.cadence for t in pb.maintenance.tasks]
    assert cadences.count("monthly") == 4 and cadences.count("quarterly") == 5
    assert cadences.count("after_first_business_cycle") == 2 and cadences.count("every_6_12_months") == 3
    conversion = task(pb, "stage-conversion-rate-check").rules[0]
    assert (conversion.comparison, conversion.threshold, conversion.unit) == ("drop_pp", 5, "pp")
    assert conversion.scope == ["MQL→SAL", "SAL→SQL", "SQL→Opp", "Opp→CW"]
    volume = task(pb, "production-by-stage-volume").rules[0]
    assert (volume.comparison, volume.threshold, volume.exempt_if is not None) == ("drop_pct", 20, True)
    assert task(pb, "rogue-stage-audit").rules[0].comparison == "new_value_vs_signed"
    assert task(pb, "drop-off-reason-review").rules[0].threshold == 30
    decline = trigger(pb, "conversion-rate-decline").rule
    assert (decline.threshold, decline.sustained.n, decline.sustained.period) == (10, 2, "month")
    assert trigger(pb, "crm-migration").rule.event == "crm_migration"
    assert len(pb.maintenance.refinement_triggers) == 5
    window = pb.maintenance.first_business_cycle.window_days
    assert (window.min, window.max) == (30, 60)


def test_gtm_lifecycle_enablement_handoff_retention(library):
    pb = library["gtm-lifecycle"]
    assert [(t.name, t.duration_min.min) for t in pb.enablement.training_types] == [
        ("Leadership", 30),
        ("Technical", 45),
        ("End User", 30),
    ]
    handlers = [g.handler for g in pb.handoff.internal.escalation_guidelines]
    assert handlers == ["architect", "architect", "specialist", "specialist", "specialist", "specialist"]
    owners = {t.key: (t.maintenance_owner, t.handed_off_at) for t in pb.engagement_types}
    assert owners == {"single_project": ("customer", "4c"), "dedicated": ("architect", "4b")}
    assert [s.action for s in pb.retention.single_project.steps] == ["upsell", "downsell", "retry_retainer"]
    assert pb.retention.dedicated.prep_days_before == 14
    assert len(pb.common_gotchas) == 9
    assert [m.option for m in pb.methodology_options] == [
        "Foundation Only",
        "Foundation + Single Depth",
        "Foundation + All Depth",
        "Reunification",
    ]


# --------------------------------------------------------------------------------------------------
# Seed 002: Revenue Intelligence


def test_revenue_intelligence_structure_counts(library):
    pb = library["revenue-intelligence"]
    assert [p.weight for p in pb.phases] == ["medium", "heavy", "medium", "medium"]
    build = pb.sub_phase("2c").checklist
    assert len(build) == 44
    assert len({i.group for i in build}) == 8  # Components 1-8
    assert len([i for i in pb.sub_phase("2d").checklist if i.group == "Technical testing"]) == 10
    assert [len(g.checkpoints) for g in pb.gates] == [10, 4, 10]
    homework = pb.sub_phase("1a").checklist
    assert {i.key for i in homework if i.critical} == {
        "provide-crm-admin-access",
        "confirm-recording-approval",
    }
    assert [a.topic for a in pb.sub_phase("1b").meeting.agenda][4] == "Success criteria"
    assert len(pb.definition_alignment.terms) == 7
    assert len(pb.handoff.external.documentation_package) == 8
    assert sum(1 for t in pb.definition_alignment.terms if t.sign_off_definition) == 6


def test_revenue_intelligence_gate_options(library):
    pb = library["revenue-intelligence"]
    hold = option(pb, "strategy", "project-on-hold")
    assert hold.effect == "on_hold" and "CRM Data Hygiene" in hold.follow_up
    assert option(pb, "engineering", "loop-back-to-build").target == "2c"
    extend = option(pb, "enablement", "extend-hypercare")
    assert extend.effect == "extend_hypercare" and extend.target == "3c"
    assert not any(o.inferred for g in pb.gates for o in g.options)
    coverage = next(c for c in gate(pb, "enablement").checkpoints if c.key == "recording-coverage")
    assert coverage.rule.target.value == 95


def test_every_decision_option_states_its_precondition(library):
    """Ready options need checkpoints; not-ready ones (hold, extend, loop back, continue) name the ones they
    are usually about, all of them checkpoints of their own gate."""
    for pb in library.values():
        for g in pb.gates:
            keys = {c.key for c in g.checkpoints}
            for o in g.options:
                where = f"{pb.key} {g.key} {o.key}"
                if o.effect in ("on_hold", "extend", "loop_back", "extend_hypercare"):
                    assert not o.is_ready and o.about and set(o.about) <= keys, where
                else:
                    assert o.is_ready and not o.about, where
                    assert o.requires is None or set(o.requires) <= keys, where


def test_a_release_round_needs_only_the_release_checkpoints(library):
    build = gate(library["delivery-model"], "build")
    assert option(library["delivery-model"], "build", "release-approved").requires == [
        "test-release-reviewed",
        "real-workflows-tested",
    ]
    assert "priority-workflows-operate" in {c.key for c in build.checkpoints}
    assert option(library["delivery-model"], "build", "proceed").requires is None


def test_hypercare_kpis_as_the_seeds_table_them(library):
    ri = library["revenue-intelligence"]
    # Seed 002 3c: "Adoption KPIs to monitor during hypercare", target by end of week 2 and red flag.
    table = {
        k.key: (k.rule.target.op, k.rule.target.value, k.rule.target.within.n, k.rule.target.within.period,
                k.rule.comparison, k.rule.threshold)
        for k in ri.hypercare.kpis
    }
    assert table == {
        "call-recording-coverage": ("gte", 95, 2, "week", "below", 80),
        "manager-dashboard-access": ("gte", 3, 2, "week", "below", 1),
        "forecast-submission-compliance": ("gte", 90, 2, "week", "below", 70),
        "rep-self-review": ("gte", 1, 2, "week", "below", 1),
    }
    coverage = next(c for c in gate(ri, "enablement").checkpoints if c.key == "recording-coverage")
    assert (coverage.auto, coverage.kpi) == ("hypercare_kpi", "call-recording-coverage")
    # Seed 004 3c: "extend if partner adoption rate is below 50% after 2 weeks".
    adoption = next(k for k in library["partnership-success"].hypercare.kpis if k.key == "partner-adoption")
    assert (adoption.rule.comparison, adoption.rule.threshold) == ("below", 50)
    assert (adoption.rule.evaluate_after.n, adoption.rule.evaluate_after.period) == (2, "week")
    assert not library["gtm-lifecycle"].hypercare.kpis, "GTM 3c names no measurable KPI"


def test_revenue_intelligence_thresholds(library):
    pb = library["revenue-intelligence"]
    kpis = {k.key: k.rule for k in pb.hypercare.kpis}
    assert (kpis["call-recording-coverage"].threshold, kpis["call-recording-coverage"].target.value) == (
        80,
        95,
    )
    assert kpis["forecast-submission-compliance"].threshold == 70
    assert kpis["manager-dashboard-access"].target.value == 3
    compliance = task(pb, "forecast-submission-compliance").rules[0]
    assert (compliance.comparison, compliance.threshold, compliance.unit) == ("below", 85, "pct")
    assert task(pb, "recording-coverage-audit").rules[0].threshold == 90
    scoring = task(pb, "deal-scoring-accuracy-check").rules[0]
    assert (scoring.threshold, scoring.sample.min, scoring.sample.max) == (30, 5, 10)
    assert task(pb, "dashboard-usage-audit").rules[0].threshold == 2
    accuracy = task(pb, "forecast-accuracy-vs-baseline").rules[0].target
    assert (accuracy.value, accuracy.unit, accuracy.of, accuracy.within.n) == (
        15,
        "pp",
        "increase_from_baseline",
        2,
    )
    peak = trigger(pb, "forecast-accuracy-declining").rule
    assert (peak.comparison, peak.threshold) == ("drop_from_peak", 10)
    coverage = trigger(pb, "recording-coverage-dropping").rule
    assert (coverage.threshold, coverage.sustained.n, coverage.sustained.period) == (85, 2, "week")
    assert pb.maintenance.first_business_cycle.window_days.max == 90
    assert [t.duration_min.max for t in pb.enablement.training_types] == [60, 30, 90]


# --------------------------------------------------------------------------------------------------
# Seed 004: Partnership Success Platform


def test_partnership_success_structure_counts(library):
    pb = library["partnership-success"]
    build = pb.sub_phase("2c").checklist
    assert len(build) == 47
    assert [sum(1 for i in build if i.group.startswith(f"Block {n}:")) for n in range(1, 6)] == [
        4,
        10,
        9,
        12,
        12,
    ]
    assert len([i for i in pb.sub_phase("2d").checklist if i.group == "Technical testing"]) == 13
    assert [len(g.checkpoints) for g in pb.gates] == [10, 5, 9]
    assert len(pb.sub_phase("4d").checklist) == 5
    assert len(pb.handoff.external.documentation_package) == 10
    assert [t.name for t in pb.enablement.training_types] == [
        "Partnership Admin",
        "Sales Visibility",
        "RevOps Operations",
        "Partner",
        "Executive Dashboard",
    ]
    assert [m.key for m in pb.refinement_loop.meetings] == [
        "kickoff",
        "requirements",
        "platform-selection",
        "executive-alignment",
        "final-review",
    ]
    assert len(pb.definition_alignment.terms) == 10
    assert sum(1 for t in pb.definition_alignment.terms if t.sign_off_definition) == 6
    assert len(pb.handoff.internal.escalation_guidelines) == 7
    dedicated = next(t for t in pb.engagement_types if t.key == "dedicated")
    assert dedicated.maintenance_owner == "ongoing_team"


def test_partnership_success_gate_options_and_thresholds(library):
    pb = library["partnership-success"]
    assert option(pb, "strategy", "extend-strategy").effect == "extend"
    assert option(pb, "engineering", "loop-back-to-build").target == "2c"
    assert option(pb, "enablement", "extend-hypercare").effect == "extend_hypercare"
    adoption = next(k for k in pb.hypercare.kpis if k.key == "partner-adoption").rule
    assert (adoption.threshold, adoption.evaluate_after.n, adoption.evaluate_after.period) == (50, 2, "week")
    sync = task(pb, "crm-sync-health-check").rules[0]
    assert (sync.comparison, sync.threshold, sync.unit) == ("duration_above", 48, "hours")
    approval = task(pb, "deal-registration-throughput").rules[0]
    assert (approval.comparison, approval.threshold, approval.unit) == ("above", 48, "hours")
    assert task(pb, "new-partner-onboarding-review").rules[0].threshold == 80
    assert task(pb, "partner-activity-audit").rules[0].threshold == 50
    flat = trigger(pb, "deal-registration-flat").rule
    assert (flat.comparison, flat.evaluate_after.n, flat.evaluate_after.period) == ("no_increase", 60, "day")
    assert trigger(pb, "attribution-degrading").rule.period == "quarter"
    assert trigger(pb, "partner-churn-increasing").rule.threshold == 10
    volume = task(pb, "deal-registration-volume").rules[0].target
    assert (volume.value, volume.of) == (2, "multiple_of_baseline")
    assert [
        m.conditions.partner_count_min or m.conditions.partner_count_max for m in pb.methodology_options
    ] == [
        20,
        19,
        9,
    ]


# --------------------------------------------------------------------------------------------------
# Malformed files fail with the file and the dotted path of the first error

MINIMAL: dict = {
    "key": "mini",
    "name": "Mini",
    "version": 1,
    "framework": "four-phase",
    "summary": "A minimal playbook.",
    "source": "none.txt",
    "phases": [
        {
            "key": "strategy",
            "order": 1,
            "name": "Strategy",
            "sub_phases": [
                {
                    "key": "1a",
                    "name": "Pre-Kickoff",
                    "checklist": [{"key": "watch", "text": "Watch the video"}],
                },
                {"key": "1d", "name": "Sign-Off"},
            ],
            "decision_gate": {
                "key": "sign-off",
                "name": "Sign-Off",
                "sub_phase": "1d",
                "checkpoints": [{"key": "signed", "text": "Signed", "auto": "definitions_signed"}],
                "options": [
                    {"key": "go", "label": "Proceed", "effect": "proceed", "when": "Ready"},
                    {
                        "key": "back",
                        "label": "Loop back",
                        "effect": "loop_back",
                        "target": "1a",
                        "when": "Not ready",
                    },
                ],
            },
        },
        {
            "key": "engineering",
            "order": 2,
            "name": "Engineering",
            "sub_phases": [{"key": "2a", "name": "Spec"}],
        },
    ],
    "definition_alignment": {"terms": [{"key": "mql", "term": "MQL", "typical_definition": "Handoff point"}]},
    "maintenance": {
        "tasks": [
            {
                "key": "conversion",
                "cadence": "monthly",
                "name": "Conversion check",
                "rules": [
                    {
                        "metric": "stage_conversion_rate",
                        "comparison": "drop_pp",
                        "threshold": 5,
                        "unit": "pp",
                        "data_source": "crm",
                    }
                ],
            }
        ]
    },
}


def write(tmp_path: Path, data, name: str = "mini.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8"
    )
    return path


def load_error(path: Path) -> PlaybookFileError:
    with pytest.raises(PlaybookFileError) as info:
        load_playbook_file(path)
    return info.value


def test_minimal_fixture_is_valid(tmp_path):
    pb = load_playbook_file(write(tmp_path, MINIMAL))
    assert pb.key == "mini"


def mutated(change) -> dict:
    data = copy.deepcopy(MINIMAL)
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        pytest.param(
            lambda d: d["phases"][0]["sub_phases"][0]["checklist"][0].update(txet="typo"),
            "phases[0].sub_phases[0].checklist[0].txet",
            "unknown key 'txet'",
            id="unknown-key",
        ),
        pytest.param(
            lambda d: d.update(colour="blue"), "colour", "unknown key 'colour'", id="unknown-top-level-key"
        ),
        pytest.param(
            lambda d: d["phases"][1].update(order="two"),
            "phases[1].order",
            "valid integer",
            id="wrong-type",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["options"][0].update(effect="advance"),
            "phases[0].decision_gate.options[0].effect",
            "'advance'",
            id="effect-not-in-vocabulary",
        ),
        pytest.param(
            lambda d: d.pop("summary"), "summary", "required key 'summary' is missing", id="missing-key"
        ),
        pytest.param(lambda d: d.update(version="v2"), "version", "semver", id="bad-version"),
        pytest.param(
            lambda d: d["phases"][0]["sub_phases"][0]["checklist"].append({"key": "watch", "text": "Again"}),
            "phases[0].sub_phases[0].checklist[1].key",
            "duplicate key 'watch'",
            id="duplicate-checklist-key",
        ),
        pytest.param(
            lambda d: d["phases"][1]["sub_phases"].append({"key": "1a", "name": "Shadow"}),
            "phases[1].sub_phases[1].key",
            "duplicate phase/sub-phase key '1a'",
            id="duplicate-sub-phase-key",
        ),
        pytest.param(
            lambda d: d["phases"][1].update(key="strategy"),
            "phases[1].key",
            "duplicate key 'strategy'",
            id="duplicate-phase-key",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["checkpoints"].append(
                {"key": "signed", "text": "Again"}
            ),
            "phases[0].decision_gate.checkpoints[1].key",
            "duplicate key 'signed'",
            id="duplicate-checkpoint-key",
        ),
        pytest.param(
            lambda d: d["definition_alignment"]["terms"].append(
                {"key": "mql", "term": "MQL 2", "notes": "x", "typical_definition": "y"}
            ),
            "definition_alignment.terms[1].key",
            "duplicate key 'mql'",
            id="duplicate-term-key",
        ),
        pytest.param(
            lambda d: d["maintenance"]["tasks"].append(
                {"key": "conversion", "cadence": "quarterly", "name": "Again"}
            ),
            "maintenance.tasks[1].key",
            "duplicate key 'conversion'",
            id="duplicate-task-key",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["options"][1].update(target="9z"),
            "phases[0].decision_gate.options[1].target",
            "unknown phase or sub-phase key '9z'",
            id="loop-back-to-unknown-key",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["options"][1].update(target="2a"),
            "phases[0].decision_gate.options[1].target",
            "comes after the gate",
            id="loop-back-forwards",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["options"][1].pop("target"),
            "phases[0].decision_gate.options[1]",
            "needs a 'target'",
            id="loop-back-without-target",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["options"][0].update(
                effect="complete", skips=[{"keys": ["engineering", "3z"], "reason": "strategy only"}]
            ),
            "phases[0].decision_gate.options[0].skips[0].keys[1]",
            "unknown phase or sub-phase key '3z'",
            id="skip-unknown-key",
        ),
        pytest.param(
            lambda d: d["maintenance"]["tasks"][0]["rules"][0].pop("comparison"),
            "maintenance.tasks[0].rules[0]",
            "needs a 'comparison'",
            id="rule-without-comparison",
        ),
        pytest.param(
            lambda d: d["maintenance"]["tasks"][0]["rules"][0].update(data_source="salesforce"),
            "maintenance.tasks[0].rules[0].data_source[0]",
            "'salesforce'",
            id="rule-unknown-data-source",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["options"][1].update(about=["nope"]),
            "phases[0].decision_gate",
            "option 'back' names checkpoints this gate does not have: nope",
            id="not-ready-option-about-unknown-checkpoint",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["options"][0].update(about=["signed"]),
            "phases[0].decision_gate.options[0]",
            "'about' is for a not-ready option",
            id="ready-option-with-about",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["options"][1].update(requires=["signed"]),
            "phases[0].decision_gate.options[1]",
            "a not-ready option requires no checkpoints",
            id="not-ready-option-with-requires",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["checkpoints"][0].update(auto="hypercare_kpi"),
            "phases[0].decision_gate.checkpoints[0]",
            "'auto: hypercare_kpi' and 'kpi'",
            id="kpi-checkpoint-without-kpi",
        ),
        pytest.param(
            lambda d: d["phases"][0]["decision_gate"]["checkpoints"][0].update(auto="hypercare_kpi", kpi="adoption"),
            "phases[0].decision_gate.checkpoints[0].kpi",
            "unknown hypercare KPI 'adoption'",
            id="kpi-checkpoint-unknown-kpi",
        ),
        pytest.param(
            lambda d: d["phases"][0]["sub_phases"][1].update(key="1-d"),
            "phases[0].sub_phases[1].key",
            "should be '1' plus a letter",
            id="sub-phase-key-shape",
        ),
    ],
)
def test_malformed_file_reports_file_and_path(tmp_path, change, path, message):
    file = write(tmp_path, mutated(change))
    error = load_error(file)
    assert error.file == str(file)
    assert error.path == path
    assert message in error.message
    assert str(error) == f"{file}: {path}: {error.message}"


def test_yaml_syntax_error_reports_line_and_column(tmp_path):
    file = write(tmp_path, "key: mini\nname: [unclosed\nversion: 1\n")
    error = load_error(file)
    assert error.path.startswith("line ")
    assert "column" in error.path
    assert "YAML syntax error" in error.message
    assert str(error).startswith(f"{file}: line ")


def test_duplicate_yaml_mapping_key_is_an_error(tmp_path):
    text = yaml.safe_dump(MINIMAL, sort_keys=False) + "name: Again\n"
    error = load_error(write(tmp_path, text))
    assert error.path.startswith("line ")
    assert "duplicate key 'name'" in error.message


def test_empty_file_is_an_error(tmp_path):
    error = load_error(write(tmp_path, ""))
    assert "mapping at the top level" in error.message


def test_error_in_a_real_library_file_points_at_the_option(tmp_path):
    source = (LIBRARY_DIR / "revenue-intelligence.yaml").read_text(encoding="utf-8")
    broken = source.replace("          target: 2c\n", "          target: 2x\n", 1)
    assert broken != source
    error = load_error(write(tmp_path, broken, "revenue-intelligence.yaml"))
    assert error.path == "phases[1].decision_gate.options[1].target"
    assert "'2x'" in error.message


def test_a_shape_starting_at_an_unknown_phase_names_the_file_and_the_shape(tmp_path):
    source = (LIBRARY_DIR / "delivery-model.yaml").read_text(encoding="utf-8")
    broken = source.replace("    starts_at: operate\n", "    starts_at: 4c\n", 1)
    assert broken != source
    error = load_error(write(tmp_path, broken, "delivery-model.yaml"))
    assert error.file.endswith("delivery-model.yaml")
    assert error.path == "engagement_shapes[2].starts_at"
    assert error.message == (
        "unknown phase key '4c' (a shape starts at a phase; known: discover, design, build, adopt, operate)"
    )


def test_load_library_requires_key_to_match_file_name(tmp_path):
    write(tmp_path, MINIMAL, "other-name.yaml")
    with pytest.raises(PlaybookFileError) as info:
        load_library(tmp_path)
    assert info.value.path == "key"


# --------------------------------------------------------------------------------------------------
# content_hash


def test_content_hash_is_stable_across_loads():
    for file in LIBRARY_DIR.glob("*.yaml"):
        first = content_hash(load_playbook_file(file))
        second = content_hash(load_playbook_file(file))
        assert first == second
        assert len(first) == 64


def test_content_hash_ignores_layout_and_explicit_defaults(tmp_path):
    original = load_playbook_file(write(tmp_path, MINIMAL, "a.yaml"))
    reordered = dict(reversed(list(copy.deepcopy(MINIMAL).items())))
    reordered["phases"][0]["sub_phases"][0]["checklist"][0]["critical"] = False
    relaid = load_playbook_file(write(tmp_path, yaml.safe_dump(reordered, default_flow_style=True), "b.yaml"))
    assert content_hash(relaid) == content_hash(original)


def test_content_hash_changes_when_content_changes(tmp_path):
    base = content_hash(load_playbook_file(write(tmp_path, MINIMAL, "a.yaml")))
    threshold = mutated(lambda d: d["maintenance"]["tasks"][0]["rules"][0].update(threshold=6))
    wording = mutated(lambda d: d["phases"][0]["sub_phases"][0]["checklist"][0].update(text="Watch it"))
    files = [write(tmp_path, d, f"{i}.yaml") for i, d in enumerate([threshold, wording])]
    hashes = {content_hash(load_playbook_file(f)) for f in files}
    assert base not in hashes and len(hashes) == 2


def test_content_hash_of_library_file_changes_with_an_edit(tmp_path):
    target = tmp_path / "gtm-lifecycle.yaml"
    shutil.copy(LIBRARY_DIR / "gtm-lifecycle.yaml", target)
    before = content_hash(load_playbook_file(target))
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace("threshold: 30\n", "threshold: 35\n", 1), encoding="utf-8")
    assert content_hash(load_playbook_file(target)) != before
