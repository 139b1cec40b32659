"""Each of the four methods driven from creation to close through the services.

Across this file every decision option of every gate of the library is taken at least once
(test_every_option_is_exercised checks that against the playbook files themselves).
"""

from datetime import date

import pytest

from accounts.models import ActivityEntry, DomainError
from engagements import progression
from engagements.models import (
    ArchitectureVersion,
    AssumptionItem,
    CheckpointStatus,
    EngagementStatus,
    GateDecision,
    Release,
)
from playbooks.loader import load_library

TAKEN: set[tuple[str, str, str]] = set()


def start(cast, library, key, **kwargs):
    return progression.create_engagement(
        client=cast.client,
        playbook_version=library[key],
        name=f"{key} for Acme",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        **kwargs,
    )


def state(engagement):
    engagement.refresh_from_db()
    return {p.key: p.status for p in engagement.phases.all()}


def clear_gate(engagement, phase_key):
    gate = engagement.phases.get(key=phase_key).gate
    for checkpoint in gate.checkpoints.all():
        if checkpoint.auto:
            progression.resolve_checkpoint(
                checkpoint=checkpoint,
                action="waive",
                actor=engagement.cast_actor,
                reason="Signed on paper at the workshop; portal sign-off follows.",
            )
        else:
            progression.resolve_checkpoint(checkpoint=checkpoint, action="check", actor=engagement.cast_actor)
    return gate


def decide(engagement, phase_key, option, **kwargs):
    gate = clear_gate(engagement, phase_key)
    decision = progression.decide_gate(gate=gate, option_key=option, actor=engagement.cast_actor, **kwargs)
    TAKEN.add((engagement.playbook_version.playbook.key, gate.key, option))
    return decision


def finish_phase(engagement, phase_key):
    phase = engagement.phases.get(key=phase_key)
    for item in phase.checklist.exclude(sub_phase__skipped=True):
        progression.set_checklist_item(item=item, done=True, actor=engagement.cast_actor)
    progression.complete_phase(phase=phase, actor=engagement.cast_actor)


@pytest.fixture
def begin(cast, library):
    def _begin(key, **kwargs):
        engagement = start(cast, library, key, **kwargs)
        engagement.cast_actor = cast.consultant
        return engagement

    return _begin


def test_gtm_lifecycle_full_route_with_loop_back_and_extended_hypercare(begin):
    e = begin("gtm-lifecycle", methodology_option="foundation-all-depth", engagement_type="dedicated")
    assert state(e) == {"strategy": "active", "engineering": "pending", "enablement": "pending", "handoff": "pending"}
    assert e.checklist.count() > 50 and e.gates.count() == 3

    decide(e, "strategy", "proceed-to-engineering")
    assert state(e)["strategy"] == "done" and e.current_phase.key == "engineering"

    build_items = e.sub_phases.get(key="2c").checklist
    for item in build_items.all():
        progression.set_checklist_item(item=item, done=True, actor=e.cast_actor)
    decide(e, "engineering", "loop-back-to-build")
    assert state(e)["engineering"] == "active"
    assert not build_items.filter(done=True).exists(), "looping back reopens the Build sub-phase's checklist"
    gate = e.phases.get(key="engineering").gate
    assert gate.round == 2 and not gate.checkpoints.exclude(status=CheckpointStatus.OPEN).exists()

    decide(e, "engineering", "proceed-to-enablement")
    decide(e, "enablement", "extend-hypercare")
    e.refresh_from_db()
    assert e.hypercare_end is not None and state(e)["enablement"] == "active"
    decide(e, "enablement", "proceed-to-handoff")
    finish_phase(e, "handoff")

    e.refresh_from_db()
    assert e.status == EngagementStatus.CLOSED and e.check_in_date is not None
    assert (e.check_in_date - e.handed_off_on).days == 90
    verbs = list(
        ActivityEntry.objects.for_org(e.organization)
        .filter(verb="gate.decided")
        .order_by("id")
        .values_list("data", flat=True)
    )
    assert [v["option"] for v in verbs] == [
        "proceed-to-engineering",
        "loop-back-to-build",
        "proceed-to-enablement",
        "extend-hypercare",
        "proceed-to-handoff",
    ]


def test_gtm_lifecycle_strategy_only_project_completes_at_1d(begin):
    e = begin("gtm-lifecycle")
    decide(e, "strategy", "project-complete", note="Client admin configures from the spec.")
    assert state(e) == {"strategy": "done", "engineering": "skipped", "enablement": "skipped", "handoff": "active"}
    assert "Strategy-only project" in e.phases.get(key="engineering").skip_reason
    finish_phase(e, "handoff")
    e.refresh_from_db()
    assert e.status == EngagementStatus.CLOSED


def test_gtm_lifecycle_minimal_build_skips_hypercare(begin):
    e = begin("gtm-lifecycle")
    decide(e, "strategy", "proceed-to-engineering")
    decide(e, "engineering", "proceed-without-hypercare")
    hypercare = e.sub_phases.get(key="3c")
    assert hypercare.skipped and hypercare.skip_reason
    with pytest.raises(DomainError, match="skipped"):
        progression.set_checklist_item(item=hypercare.checklist.first(), done=True, actor=e.cast_actor)
    with pytest.raises(DomainError, match="Hypercare was skipped"):
        decide(e, "enablement", "extend-hypercare")


def test_revenue_intelligence_on_hold_then_resumed_to_close(begin):
    e = begin("revenue-intelligence", methodology_option="single-platform")
    decide(e, "strategy", "project-on-hold", note="Client budget freeze until Q1.")
    e.refresh_from_db()
    assert e.status == EngagementStatus.ON_HOLD
    with pytest.raises(DomainError, match="on hold"):
        progression.set_checklist_item(item=e.checklist.first(), done=True, actor=e.cast_actor)
    progression.resume_engagement(engagement=e, actor=e.cast_actor)
    decide(e, "strategy", "proceed-to-engineering")
    decide(e, "engineering", "loop-back-to-build")
    decide(e, "engineering", "proceed-to-enablement")
    decide(e, "enablement", "extend-hypercare")
    decide(e, "enablement", "proceed-to-handoff")
    finish_phase(e, "handoff")
    e.refresh_from_db()
    assert e.status == EngagementStatus.CLOSED


def test_partnership_success_extends_strategy_then_runs_to_close(begin):
    e = begin("partnership-success", methodology_option="crm-native")
    decide(e, "strategy", "extend-strategy")
    assert state(e)["strategy"] == "active"
    decide(e, "strategy", "proceed-to-engineering")
    decide(e, "engineering", "loop-back-to-build")
    decide(e, "engineering", "proceed-to-enablement")
    decide(e, "enablement", "extend-hypercare")
    decide(e, "enablement", "proceed-to-handoff")
    finish_phase(e, "handoff")
    e.refresh_from_db()
    assert e.status == EngagementStatus.CLOSED


def test_delivery_model_build_gate_repeats_per_release_then_operate_ends(cast, begin):
    e = begin("delivery-model", shape="embedded-operation")
    decide(e, "discover", "extend")
    decide(e, "discover", "proceed")
    decide(e, "design", "extend")
    decide(e, "design", "proceed")
    first = Release.objects.create(organization=e.organization, engagement=e, title="Release 1: lead routing")
    decision = decide(e, "build", "release-approved", release=first)
    first.refresh_from_db()
    assert first.status == "released" and first.gate_decision == decision
    decide(e, "build", "release-approved")
    assert e.phases.get(key="build").gate.round == 3
    decide(e, "build", "extend")
    decide(e, "build", "proceed")
    decide(e, "adopt", "extend")
    decide(e, "adopt", "proceed")
    decide(e, "operate", "next-cycle")
    assert state(e)["operate"] == "active"
    # Handover components are tracked item by item in Operate.
    assert e.checklist.filter(kind="handover").count() == len(load_library()[0].handover.components)
    decide(e, "operate", "embedded-support-ends")
    e.refresh_from_db()
    assert e.status == EngagementStatus.CLOSED


def test_delivery_model_audit_completes_at_design(begin):
    e = begin("delivery-model", shape="audit")
    decide(e, "discover", "proceed")
    decide(e, "design", "audit-complete")
    e.refresh_from_db()
    assert state(e) == {
        "discover": "done",
        "design": "done",
        "build": "skipped",
        "adopt": "skipped",
        "operate": "skipped",
    }
    assert e.status == EngagementStatus.CLOSED


def test_delivery_model_build_engagement_completes_at_adopt(begin):
    e = begin("delivery-model", shape="build")
    for phase in ("discover", "design", "build"):
        decide(e, phase, "proceed")
    decide(e, "adopt", "build-complete")
    e.refresh_from_db()
    assert state(e)["operate"] == "skipped" and e.status == EngagementStatus.CLOSED


def test_gate_cannot_be_decided_with_open_checkpoints(begin):
    e = begin("gtm-lifecycle")
    gate = e.phases.get(key="strategy").gate
    with pytest.raises(DomainError, match="neither checked nor waived"):
        progression.decide_gate(gate=gate, option_key="proceed-to-engineering", actor=e.cast_actor)
    assert not GateDecision.objects.exists()


def test_waiver_needs_a_reason_and_signed_checkpoint_cannot_be_ticked(begin):
    e = begin("gtm-lifecycle")
    gate = e.phases.get(key="strategy").gate
    signed = gate.checkpoints.get(auto="definitions_signed")
    with pytest.raises(DomainError, match="cannot be ticked by hand"):
        progression.resolve_checkpoint(checkpoint=signed, action="check", actor=e.cast_actor)
    with pytest.raises(DomainError, match="written reason"):
        progression.resolve_checkpoint(checkpoint=signed, action="waive", actor=e.cast_actor, reason="   ")
    signed.refresh_from_db()
    assert signed.status == CheckpointStatus.OPEN


def test_illegal_moves_are_refused(begin):
    e = begin("gtm-lifecycle")
    later_gate = e.phases.get(key="engineering").gate
    with pytest.raises(DomainError, match="not open"):
        progression.decide_gate(gate=later_gate, option_key="proceed-to-enablement", actor=e.cast_actor)
    gate = clear_gate(e, "strategy")
    with pytest.raises(DomainError, match="no option"):
        progression.decide_gate(gate=gate, option_key="loop-back-to-build", actor=e.cast_actor)
    with pytest.raises(DomainError, match="ends at its decision gate"):
        progression.complete_phase(phase=e.phases.get(key="strategy"), actor=e.cast_actor)
    with pytest.raises(DomainError, match="not the phase in progress"):
        progression.complete_phase(phase=e.phases.get(key="handoff"), actor=e.cast_actor)
    with pytest.raises(DomainError, match="Only an engagement on hold"):
        progression.resume_engagement(engagement=e, actor=e.cast_actor)


def test_handoff_cannot_complete_with_open_items(begin):
    e = begin("gtm-lifecycle")
    decide(e, "strategy", "project-complete")
    with pytest.raises(DomainError, match="still open"):
        progression.complete_phase(phase=e.phases.get(key="handoff"), actor=e.cast_actor)


def test_closed_engagement_refuses_changes(begin):
    e = begin("delivery-model")
    decide(e, "discover", "proceed")
    decide(e, "design", "audit-complete")
    with pytest.raises(DomainError, match="closed"):
        progression.set_checklist_item(item=e.checklist.first(), done=True, actor=e.cast_actor)


def test_critical_assumed_items_block_the_strategy_sign_off(begin):
    e = begin("gtm-lifecycle")
    v0 = ArchitectureVersion.objects.create(organization=e.organization, engagement=e, number=0)
    item = AssumptionItem.objects.create(
        organization=e.organization,
        version=v0,
        key="sal-stage",
        text="Sales accepts leads within 48 hours",
        critical=True,
    )
    gate = clear_gate(e, "strategy")
    with pytest.raises(DomainError, match="still assumed"):
        progression.decide_gate(gate=gate, option_key="proceed-to-engineering", actor=e.cast_actor)
    item.status = "confirmed"
    item.save()
    progression.decide_gate(gate=gate, option_key="proceed-to-engineering", actor=e.cast_actor)


def test_playbook_edit_does_not_change_a_running_engagement(cast, begin, library):
    from playbooks.services import as_yaml, clone_playbook, save_edited_playbook

    copy = clone_playbook(source=library["gtm-lifecycle"].playbook, organization=cast.org, actor=cast.owner)
    e = progression.create_engagement(
        client=cast.client,
        playbook_version=copy.latest_version(),
        name="Copy run",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    e.cast_actor = cast.consultant
    before = list(e.checklist.values_list("text", flat=True))
    text = as_yaml(copy.latest_version()).replace(
        "Watch GTM Lifecycle intro video", "Watch the GTM Lifecycle intro video"
    )
    version, created = save_edited_playbook(playbook=copy, text=text, actor=cast.owner)
    assert created and version.number == 2
    assert list(e.checklist.values_list("text", flat=True)) == before
    e.refresh_from_db()
    assert e.playbook_version.number == 1
    decide(e, "strategy", "proceed-to-engineering")


def test_every_option_is_exercised():
    """Runs last in this module: the routes above took every option of every library gate."""
    every = {
        (pb.key, p.decision_gate.key, o.key)
        for pb in load_library()
        for p in pb.phases
        if p.decision_gate
        for o in p.decision_gate.options
    }
    assert every - TAKEN == set(), f"options no test takes: {sorted(every - TAKEN)}"
