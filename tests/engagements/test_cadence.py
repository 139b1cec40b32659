"""The weekly cadence, the refinement loop and enablement, through their services.

Publishing a weekly update emails stakeholders from a transaction.on_commit callback, so these tests
really commit (transactional database) and read the mail a real SMTP server on loopback received.
"""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.models import DomainError
from engagements import cadence, enablement, progression, refinement
from engagements.models import (
    AssumptionStatus,
    DecisionLogEntry,
    DecisionStatus,
    EngagementStakeholder,
    EngagementStatus,
    Release,
    ReleaseStatus,
    Risk,
    RiskStatus,
    UpdateStatus,
    WeeklyUpdate,
    WorkItem,
    WorkStatus,
)
from playbooks.models import Playbook
from tests.conftest import body_text, ensure_library, make_stakeholder

pytestmark = pytest.mark.django_db(transaction=True)


def start_engagement(cast, key="gtm-lifecycle", **kwargs):
    """A fresh engagement of the library playbook `key` for the cast's client, Maya as approver."""
    ensure_library()
    version = Playbook.objects.library().get(key=key).latest_version()
    kwargs.setdefault("stakeholders", [(cast.stakeholder, "Approver")])
    return progression.create_engagement(
        client=cast.client,
        playbook_version=version,
        name=f"{key} for Acme",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        **kwargs,
    )


def add(engagement, actor, model, **fields):
    item = model(engagement=engagement, organization=engagement.organization, **fields)
    return cadence.save_board_item(item=item, actor=actor)


def pass_gate(engagement, phase_key, option, actor):
    gate = engagement.phases.get(key=phase_key).gate
    for checkpoint in gate.checkpoints.all():
        progression.resolve_checkpoint(checkpoint=checkpoint, action="waive", actor=actor, reason="test")
    return progression.decide_gate(gate=gate, option_key=option, actor=actor)


def titles(rows) -> set[str]:
    return {r.title for r in rows}


# --------------------------------------------------------------------------------------------------
# The board


def test_lanes_come_from_statuses_and_cards_move_with_them(cast):
    e = start_engagement(cast)
    me = cast.consultant
    upcoming = add(e, me, WorkItem, title="Map lead sources")
    add(e, me, WorkItem, title="Configure lead status", status=WorkStatus.IN_PROGRESS)
    add(e, me, WorkItem, title="Kickoff deck", status=WorkStatus.DONE)
    add(e, me, DecisionLogEntry, title="Who owns SAL", category="ownership")
    add(e, me, DecisionLogEntry, title="MQL threshold", category="lifecycle_definitions",
        status=DecisionStatus.DECIDED, decision="60 points")
    risk = add(e, me, Risk, title="Data migration slips", client_visible=True)
    add(e, me, Risk, title="Tool sprawl", status=RiskStatus.MITIGATED)
    add(e, me, Release, title="Release 1", status=ReleaseStatus.RELEASED, client_visible=True)
    add(e, me, Release, title="Release 2")

    lanes = cadence.board_lanes(e)
    assert [key for key, _ in cadence.LANES] == list(lanes)
    assert titles(lanes["upcoming"]) == {"Map lead sources"}
    assert titles(lanes["in_progress"]) == {"Configure lead status"}
    assert titles(lanes["decisions"]) == {"Who owns SAL"}
    assert titles(lanes["risks"]) == {"Data migration slips"}
    assert titles(lanes["releases"]) == {"Release 1"}
    decided = DecisionLogEntry.objects.across_tenants("test").get(title="MQL threshold")
    assert decided.decided_on == timezone.localdate()

    upcoming.status = WorkStatus.IN_PROGRESS
    cadence.save_board_item(item=upcoming, actor=me)
    risk.status = RiskStatus.MITIGATED
    cadence.save_board_item(item=risk, actor=me)
    lanes = cadence.board_lanes(e)
    assert lanes["upcoming"] == [] and lanes["risks"] == []
    assert titles(lanes["in_progress"]) == {"Map lead sources", "Configure lead status"}

    client_lanes = cadence.board_lanes(e, client_view=True)
    assert titles(client_lanes["releases"]) == {"Release 1"}
    assert all(not client_lanes[k] for k in ("upcoming", "in_progress", "decisions", "risks"))


def test_closed_engagement_board_is_read_only(cast):
    e = start_engagement(cast)
    item = add(e, cast.consultant, WorkItem, title="Configure lead status")
    e.status = EngagementStatus.CLOSED
    e.save(update_fields=["status"])
    item.engagement = e
    item.title = "Changed"
    with pytest.raises(DomainError, match="closed; its board is read-only"):
        cadence.save_board_item(item=item, actor=cast.consultant)
    with pytest.raises(DomainError, match="read-only"):
        cadence.delete_board_item(item=item, actor=cast.consultant)
    with pytest.raises(DomainError, match="read-only"):
        add(e, cast.consultant, Risk, title="Late")
    assert WorkItem.objects.across_tenants("test").get(pk=item.pk).title == "Configure lead status"


# --------------------------------------------------------------------------------------------------
# Weekly updates


def test_weekly_draft_is_built_from_the_weeks_rows(cast):
    e = start_engagement(cast)
    me = cast.consultant
    shown = {"client_visible": True}
    add(e, me, WorkItem, title="Configure lead status", status=WorkStatus.DONE,
        tested="Round-robin assignment with 20 test leads", **shown)
    add(e, me, Release, title="Release 1", status=ReleaseStatus.RELEASED, **shown)
    add(e, me, DecisionLogEntry, title="Who owns SAL", category="ownership", status=DecisionStatus.DECIDED,
        decision="Sales development owns SAL", **shown)
    add(e, me, DecisionLogEntry, title="MQL threshold", category="lifecycle_definitions", owner="Maya Patel", **shown)
    add(e, me, WorkItem, title="Build lead scoring", status=WorkStatus.IN_PROGRESS, due_date=date(2026, 11, 20),
        **shown)
    add(e, me, WorkItem, title="Attribution report", due_date=date(2026, 12, 4), **shown)
    add(e, me, WorkItem, title="Internal: chase the invoice", status=WorkStatus.DONE)  # internal: not for the client
    old = add(e, me, WorkItem, title="Last week's cleanup", status=WorkStatus.DONE, tested="Dedupe run", **shown)
    WorkItem.objects.for_org(old.organization).filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=8))
    pass_gate(e, "strategy", "proceed-to-engineering", me)

    update = cadence.draft_weekly_update(engagement=e, actor=me)

    assert update.status == UpdateStatus.DRAFT and update.week_start == cadence.week_of(timezone.localdate())
    changed = update.what_changed.splitlines()
    assert "- Done: Configure lead status" in changed
    assert "- Released: Release 1" in changed
    assert "- Decided: Who owns SAL — Sales development owns SAL" in changed
    assert "- Strategic Sign-Off: Proceed to Engineering" in changed
    assert "Last week's cleanup" not in update.what_changed
    assert "invoice" not in update.what_changed  # the update is emailed to the client: internal items stay out
    assert update.what_was_tested.splitlines() == ["- Configure lead status: Round-robin assignment with 20 test leads"]
    assert update.needs_decision.splitlines() == ["- MQL threshold (Lifecycle definitions, owner Maya Patel)"]
    assert update.what_happens_next.splitlines() == [
        "- Build lead scoring (due 20 Nov)",
        "- Attribution report (due 04 Dec)",
    ]

    # Drafting again opens the same week's update instead of making a second one.
    assert cadence.draft_weekly_update(engagement=e, actor=me).pk == update.pk
    assert WeeklyUpdate.objects.filter(engagement=e).count() == 1


def test_a_quiet_week_drafts_placeholders(cast):
    e = start_engagement(cast)
    update = cadence.draft_weekly_update(engagement=e, actor=cast.consultant)
    assert update.what_changed == "- No changes recorded this week."
    assert update.what_was_tested == "- Nothing tested this week."
    assert update.needs_decision == "- No open decisions."
    assert update.what_happens_next == "- Nothing planned yet."


def test_publishing_emails_each_receiving_stakeholder_once_and_twice_is_refused(cast, smtp):
    raj = make_stakeholder(cast.client, "Raj Iyer", "raj@acme.example")
    lee = make_stakeholder(cast.client, "Lee Chen", "lee@acme.example")
    off = make_stakeholder(cast.client, "Ola Berg", "ola@acme.example", portal_enabled=False)
    e = start_engagement(cast, stakeholders=[(cast.stakeholder, "Approver"), (raj, "Champion"), (lee, "Ops"),
                                             (off, "Finance")])
    EngagementStakeholder.objects.filter(engagement=e, stakeholder=lee).update(receives_updates=False)
    update = cadence.draft_weekly_update(engagement=e, actor=cast.consultant)
    update.what_changed = "- Lead status configured"
    update.what_was_tested = "- Round-robin assignment"
    update.needs_decision = "- MQL threshold"
    update.what_happens_next = "- Lead scoring"
    cadence.save_weekly_update(update=update, actor=cast.consultant)

    cadence.publish_weekly_update(update=update, actor=cast.consultant)

    smtp.wait_for(2)
    assert sorted(m["X-Envelope-To"] for m in smtp.messages) == ["maya@acme.example", "raj@acme.example"]
    body = body_text(smtp.to("maya@acme.example")[0])
    for heading, line in [
        ("WHAT CHANGED", "- Lead status configured"),
        ("WHAT WAS TESTED", "- Round-robin assignment"),
        ("WHAT NEEDS A DECISION", "- MQL threshold"),
        ("WHAT HAPPENS NEXT", "- Lead scoring"),
    ]:
        assert heading in body and line in body.split(heading, 1)[1]
    update.refresh_from_db()
    assert update.status == UpdateStatus.PUBLISHED and update.published_by == cast.consultant
    e.refresh_from_db()
    assert e.last_update_published_at == update.published_at

    with pytest.raises(DomainError, match="already published"):
        cadence.publish_weekly_update(update=update, actor=cast.consultant)
    update.what_changed = "- Rewritten history"
    with pytest.raises(DomainError, match="published"):
        cadence.save_weekly_update(update=update, actor=cast.consultant)
    assert len(smtp.messages) == 2, "a refused second publish sends nothing"
    stored = WeeklyUpdate.objects.for_org(update.organization).get(pk=update.pk)
    assert stored.what_changed == "- Lead status configured"


# --------------------------------------------------------------------------------------------------
# Refinement loop


def test_versions_copy_items_only_the_latest_changes_and_diff_reports_changes(cast):
    e = start_engagement(cast)
    me = cast.consultant
    kickoff = refinement.record_meeting(
        engagement=e, type="kickoff", held_on=date(2026, 11, 3), actor=me, attendees=[cast.stakeholder]
    )
    v0 = refinement.start_version(engagement=e, actor=me)
    assert v0.number == 0
    refinement.add_item(version=v0, key="sal", text="SAL accepted within 48h", critical=True, actor=me)
    refinement.add_item(version=v0, key="mql", text="MQL at 60 points", actor=me)
    refinement.add_item(version=v0, key="owner", text="RevOps owns routing", actor=me)
    with pytest.raises(DomainError, match="already has an item"):
        refinement.add_item(version=v0, key="sal", text="again", actor=me)

    v1 = refinement.start_version(engagement=e, actor=me, meeting=kickoff)
    assert v1.number == 1 and refinement.latest_version(e) == v1
    assert sorted(v1.items.values_list("key", "status")) == [
        ("mql", "assumed"), ("owner", "assumed"), ("sal", "assumed")
    ]
    with pytest.raises(DomainError, match="v0 is not the latest"):
        refinement.add_item(version=v0, key="late", text="too late", actor=me)
    with pytest.raises(DomainError, match="v0 is not the latest"):
        refinement.set_item_status(item=v0.items.get(key="sal"), status="confirmed", actor=me)

    with pytest.raises(DomainError, match="Say what the correction is"):
        refinement.set_item_status(item=v1.items.get(key="mql"), status="corrected", actor=me)
    refinement.set_item_status(item=v1.items.get(key="sal"), status="confirmed", actor=me)
    refinement.set_item_status(item=v1.items.get(key="mql"), status="corrected", correction="MQL at 75", actor=me)
    refinement.add_item(version=v1, key="sla", text="SLA of 4 hours", actor=me)
    v1.items.filter(key="owner").delete()

    changes = {c.key: c for c in refinement.diff(v0, v1)}
    assert {k: c.kind for k, c in changes.items()} == {
        "sal": "changed", "mql": "changed", "sla": "added", "owner": "removed"
    }
    assert changes["mql"].before.status == AssumptionStatus.ASSUMED
    assert changes["mql"].after.correction == "MQL at 75"
    # The earlier version did not move.
    assert set(v0.items.values_list("status", flat=True)) == {"assumed"}


def test_meetings_are_numbered_per_type_and_attendees_belong_to_the_client(cast):
    e = start_engagement(cast)
    me = cast.consultant
    first = refinement.record_meeting(engagement=e, type="refinement", held_on=date(2026, 11, 10), actor=me)
    second = refinement.record_meeting(engagement=e, type="refinement", held_on=date(2026, 11, 17), actor=me)
    assert (first.sequence, second.sequence) == (1, 2) and str(second) == "Refinement 2 (17 Nov 2026)"
    with pytest.raises(DomainError, match="Peter Gibbons is not a stakeholder of Acme Robotics"):
        refinement.record_meeting(
            engagement=e, type="alignment", held_on=date(2026, 11, 20), actor=me, attendees=[cast.sibling_stakeholder]
        )


# --------------------------------------------------------------------------------------------------
# Enablement and handoff


def test_retention_path_follows_the_seed(cast):
    """Upsell; if no, downsell; if the downsell is taken, retry the retainer at the end of that project."""
    e = start_engagement(cast)
    me = cast.consultant
    with pytest.raises(DomainError, match="next retention step is upsell, not downsell"):
        enablement.record_retention_step(engagement=e, action="downsell", outcome="declined", actor=me)
    enablement.record_retention_step(engagement=e, action="upsell", outcome="declined", actor=me,
                                     offer="Managed Services")
    with pytest.raises(DomainError, match="next retention step is downsell, not retry retainer"):
        enablement.record_retention_step(engagement=e, action="retry_retainer", outcome="accepted", actor=me)
    enablement.record_retention_step(engagement=e, action="downsell", outcome="accepted", actor=me)
    enablement.record_retention_step(engagement=e, action="retry_retainer", outcome="accepted", actor=me)
    with pytest.raises(DomainError, match="finished"):
        enablement.record_retention_step(engagement=e, action="upsell", outcome="accepted", actor=me)
    assert list(e.retention.values_list("action", flat=True)) == ["upsell", "downsell", "retry_retainer"]

    declined_twice = start_engagement(cast)
    enablement.record_retention_step(engagement=declined_twice, action="upsell", outcome="declined", actor=me)
    enablement.record_retention_step(engagement=declined_twice, action="downsell", outcome="declined", actor=me)
    assert enablement.next_retention_step(declined_twice) is None
    accepted_at_once = start_engagement(cast)
    enablement.record_retention_step(engagement=accepted_at_once, action="upsell", outcome="accepted", actor=me)
    assert enablement.next_retention_step(accepted_at_once) is None
    with pytest.raises(DomainError, match="Unknown retention step"):
        enablement.record_retention_step(engagement=e, action="bribe", outcome="accepted", actor=me)


def test_an_accepted_upsell_finishes_the_path(cast):
    e = start_engagement(cast)
    enablement.record_retention_step(engagement=e, action="upsell", outcome="accepted", actor=cast.consultant)
    with pytest.raises(DomainError, match="retention path is finished"):
        enablement.record_retention_step(engagement=e, action="downsell", outcome="declined", actor=cast.consultant)


def test_hypercare_window_and_refusal_when_skipped(cast):
    me = cast.consultant
    e = start_engagement(cast)
    enablement.set_hypercare(engagement=e, start=date(2027, 1, 4), actor=me)
    e.refresh_from_db()
    assert (e.hypercare_start, e.hypercare_end) == (date(2027, 1, 4), date(2027, 1, 18))  # the playbook's 14 days
    with pytest.raises(DomainError, match="must end after it starts"):
        enablement.set_hypercare(engagement=e, start=date(2027, 1, 4), end=date(2027, 1, 4), actor=me)

    skipped = start_engagement(cast)
    pass_gate(skipped, "strategy", "proceed-to-engineering", me)
    pass_gate(skipped, "engineering", "proceed-without-hypercare", me)
    with pytest.raises(DomainError, match="Hypercare was skipped"):
        enablement.set_hypercare(engagement=skipped, start=date(2027, 1, 4), actor=me)
    skipped.refresh_from_db()
    assert skipped.hypercare_start is None

    with pytest.raises(DomainError, match="no hypercare period"):
        enablement.set_hypercare(engagement=start_engagement(cast, "delivery-model"), start=date(2027, 1, 4), actor=me)


def test_training_types_come_from_the_playbook(cast):
    e = start_engagement(cast)
    session = enablement.record_training(
        engagement=e, training_type="leadership", held_on=date(2026, 12, 1), recorded=True, actor=cast.consultant
    )
    leadership = next(t for t in e.spec.enablement.training_types if t.key == "leadership")
    assert session.audience == ", ".join(leadership.audience) and session.recorded
    with pytest.raises(DomainError, match="no training type 'yoga'"):
        enablement.record_training(engagement=e, training_type="yoga", held_on=date(2026, 12, 1), actor=cast.consultant)
