"""Board, decision log, weekly updates, refinement loop and enablement pages, driven through HTTP."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from engagements import cadence, progression, refinement
from engagements.models import (
    ArchitectureVersion,
    AssumptionItem,
    ChecklistKind,
    DecisionLogEntry,
    DecisionStatus,
    EngagementStatus,
    FeedbackItem,
    Meeting,
    Release,
    ReleaseStatus,
    RetentionStep,
    Risk,
    RiskStatus,
    TrainingSession,
    UpdateStatus,
    WeeklyUpdate,
    WorkItem,
    WorkStatus,
)

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def consultant(client, cast):
    client.force_login(cast.consultant)
    return client


def url(name, e, *args):
    return reverse(f"engagements:{name}", args=[e.organization.slug, e.uuid, *args])


def add(e, model, **fields):
    item = model(engagement=e, organization=e.organization, **fields)
    return cadence.save_board_item(item=item, actor=None)


def text(response) -> str:
    return response.content.decode()


def pass_gate(e, phase_key, option, actor):
    gate = e.phases.get(key=phase_key).gate
    for checkpoint in gate.checkpoints.all():
        progression.resolve_checkpoint(checkpoint=checkpoint, action="waive", actor=actor, reason="test")
    progression.decide_gate(gate=gate, option_key=option, actor=actor)


# --------------------------------------------------------------------------------------------------
# The board


def test_board_shows_the_five_lanes_with_cards(engagement, consultant):
    add(engagement, WorkItem, title="Configure lead status", status=WorkStatus.IN_PROGRESS, owner="Carl")
    add(engagement, DecisionLogEntry, title="Who owns SAL", category="ownership", client_visible=True)
    add(engagement, Risk, title="Data migration slips", impact="high")
    add(engagement, Release, title="Release 1", status=ReleaseStatus.RELEASED)
    add(engagement, WorkItem, title="Attribution report")
    add(engagement, FeedbackItem, title="Stage names confusing", source="Maya")
    body = text(consultant.get(url("board", engagement)))
    for label in ["Work in progress", "Decisions needed", "Risks", "Completed releases", "Upcoming work"]:
        assert f">{label}</h2>" in body
    for title in ["Configure lead status", "Who owns SAL", "Data migration slips", "Release 1", "Attribution report",
                  "Stage names confusing"]:
        assert title in body
    assert "Owner: Carl" in body and "Impact high" in body and "From Maya" in body
    assert body.count(">Client-visible</span>") >= 1 and ">Internal</span>" in body
    assert "Add work in progress" in body and "Add a decision needed" in body


def test_empty_board_says_so(engagement, consultant):
    body = text(consultant.get(url("board", engagement)))
    assert "Nothing in progress." in body and "No decisions waiting." in body and "No open feedback" in body


def test_inline_add_with_htmx_returns_the_board_fragment(engagement, consultant):
    response = consultant.post(
        url("work-add", engagement),
        {"form_prefix": "wip", "wip-title": "Configure lead status", "wip-owner": "Carl", "wip-status": "in_progress"},
        **HTMX,
    )
    body = text(response)
    assert response.status_code == 200 and "<html" not in body and 'id="board"' in body
    assert "Added “Configure lead status”." in body
    item = WorkItem.objects.get(engagement=engagement)
    assert item.status == WorkStatus.IN_PROGRESS and item.owner == "Carl" and not item.client_visible

    response = consultant.post(
        url("work-add", engagement), {"form_prefix": "upcoming", "upcoming-title": "Attribution report",
                                      "upcoming-status": "upcoming", "upcoming-client_visible": "on"},
    )
    assert response.status_code == 302 and response["Location"] == url("board", engagement)
    assert WorkItem.objects.across_tenants("test").get(title="Attribution report").client_visible


def test_add_form_errors_come_back_next_to_the_field(engagement, consultant):
    response = consultant.post(
        url("decision-add", engagement), {"form_prefix": "decision", "decision-title": "", "decision-category": "x"},
        **HTMX,
    )
    body = text(response)
    assert response.status_code == 200 and 'id="board"' in body
    assert "This field is required" in body and "Select a valid choice" in body
    assert '<details class="board-add" open>' in body
    assert not DecisionLogEntry.objects.across_tenants("test").exists()
    response = consultant.post(url("risk-add", engagement), {"form_prefix": "risk", "risk-title": ""})
    assert response.status_code == 400 and "This field is required" in text(response)


def test_status_quick_actions_move_cards_between_lanes(engagement, consultant):
    work = add(engagement, WorkItem, title="Configure lead status")
    decision = add(engagement, DecisionLogEntry, title="Who owns SAL", category="ownership")
    risk = add(engagement, Risk, title="Data migration slips")

    body = text(consultant.post(url("work-status", engagement, work.uuid), {"status": "in_progress"}, **HTMX))
    assert "“Configure lead status” is now in progress." in body
    assert [w.title for w in cadence.board_lanes(engagement)["in_progress"]] == ["Configure lead status"]
    consultant.post(url("work-status", engagement, work.uuid), {"status": "done"}, **HTMX)
    work.refresh_from_db()
    assert work.status == WorkStatus.DONE and not cadence.board_lanes(engagement)["in_progress"]

    body = text(consultant.post(url("decision-status", engagement, decision.uuid), {"status": "decided"}, **HTMX))
    assert "Write down what was decided" in body
    decision.refresh_from_db()
    assert decision.status == DecisionStatus.NEEDED
    consultant.post(url("decision-status", engagement, decision.uuid),
                    {"status": "decided", "decision": "Sales development owns SAL"}, **HTMX)
    decision.refresh_from_db()
    assert decision.status == DecisionStatus.DECIDED and decision.decision == "Sales development owns SAL"
    assert decision.decided_on is not None

    response = consultant.post(url("risk-status", engagement, risk.uuid), {"status": "mitigated"})
    assert response.status_code == 302
    risk.refresh_from_db()
    assert risk.status == RiskStatus.MITIGATED and not cadence.board_lanes(engagement)["risks"]

    body = text(consultant.post(url("risk-status", engagement, risk.uuid), {"status": "exploded"}, **HTMX))
    assert "is not a status of a risk" in body


def test_toggle_client_visible(engagement, consultant):
    risk = add(engagement, Risk, title="Data migration slips")
    body = text(consultant.post(url("risk-visibility", engagement, risk.uuid), {"client_visible": "1"}, **HTMX))
    risk.refresh_from_db()
    assert risk.client_visible and "is visible to the client" in body
    consultant.post(url("risk-visibility", engagement, risk.uuid), {"client_visible": "0"})
    risk.refresh_from_db()
    assert not risk.client_visible


@pytest.mark.parametrize(
    "kind,model,fields,change",
    [
        ("work", WorkItem, {}, {"status": "in_progress", "owner": "Carl", "tested": "Assignment rules"}),
        ("decision", DecisionLogEntry, {"category": "ownership"},
         {"category": "handoffs", "status": "decided", "decision": "CS takes over at close"}),
        ("risk", Risk, {}, {"status": "open", "likelihood": "high", "impact": "low", "mitigation": "Freeze"}),
        ("release", Release, {}, {"status": "released", "description": "Lead routing"}),
        ("feedback", FeedbackItem, {}, {"source": "Maya", "resolved": "on"}),
    ],
)
def test_edit_and_delete_each_kind(engagement, consultant, kind, model, fields, change):
    item = add(engagement, model, title="Original", **fields)
    edit = url(f"{kind}-edit", engagement, item.uuid)
    page = text(consultant.get(edit))
    assert 'value="Original"' in page and "Delete…" in page
    response = consultant.post(edit, {"title": "Renamed", "client_visible": "on", **change})
    assert response.status_code == 302, text(response)
    item.refresh_from_db()
    assert item.title == "Renamed" and item.client_visible

    delete = url(f"{kind}-delete", engagement, item.uuid)
    page = text(consultant.get(delete))
    rows = model.objects.for_org(item.organization)
    assert "Delete this" in page and "data-confirm" in page and rows.filter(pk=item.pk).exists()
    assert consultant.post(delete).status_code == 302
    assert not rows.filter(pk=item.pk).exists()


def test_deciding_without_the_decision_is_refused_on_the_edit_page(engagement, consultant):
    decision = add(engagement, DecisionLogEntry, title="Who owns SAL", category="ownership")
    response = consultant.post(
        url("decision-edit", engagement, decision.uuid),
        {"title": "Who owns SAL", "category": "ownership", "status": "decided", "decision": ""},
    )
    assert response.status_code == 400 and "Write down what was decided" in text(response)


def test_edit_returns_to_next_within_the_organization_only(engagement, consultant):
    risk = add(engagement, Risk, title="Data migration slips")
    edit = url("risk-edit", engagement, risk.uuid)
    data = {"title": "Slips", "status": "open", "likelihood": "low", "impact": "low"}
    back = url("risk-list", engagement)
    assert consultant.post(edit, {**data, "next": back})["Location"] == back
    assert consultant.post(edit, {**data, "next": "https://evil.example/"})["Location"] == url("board", engagement)


def test_closed_engagement_board_is_read_only(engagement, consultant):
    risk = add(engagement, Risk, title="Data migration slips")
    engagement.status = EngagementStatus.CLOSED
    engagement.save(update_fields=["status"])
    body = text(consultant.get(url("board", engagement)))
    assert "This engagement is closed; its board is read-only." in body
    assert "Add work in progress" not in body and "Show to client" not in body
    response = consultant.post(url("work-add", engagement), {"form_prefix": "wip", "wip-title": "Late",
                                                              "wip-status": "in_progress"}, **HTMX)
    assert "This engagement is closed; its board is read-only." in text(response)
    assert not WorkItem.objects.across_tenants("test").exists()
    body = text(consultant.post(url("risk-status", engagement, risk.uuid), {"status": "closed"}, **HTMX))
    assert "read-only" in body
    risk.refresh_from_db()
    assert risk.status == RiskStatus.OPEN
    assert "disabled" in text(consultant.get(url("risk-edit", engagement, risk.uuid)))


def test_viewer_reads_but_cannot_write(engagement, cast, client):
    risk = add(engagement, Risk, title="Data migration slips")
    client.force_login(cast.viewer)
    body = text(client.get(url("board", engagement)))
    assert "Data migration slips" in body and "Add a risk" not in body and "view access" in body
    for name, args, data in [
        ("work-add", [], {"form_prefix": "wip", "wip-title": "x", "wip-status": "upcoming"}),
        ("risk-status", [risk.uuid], {"status": "closed"}),
        ("risk-visibility", [risk.uuid], {"client_visible": "1"}),
        ("risk-edit", [risk.uuid], {"title": "x"}),
        ("risk-delete", [risk.uuid], {}),
        ("decision-log", [], {"decision-title": "x"}),
        ("update-draft", [], {}),
        ("meeting-add", [], {}),
        ("version-start", [], {}),
        ("training-add", [], {}),
        ("hypercare-set", [], {}),
        ("retention-add", [], {}),
    ]:
        assert client.post(url(name, engagement, *args), data, **HTMX).status_code == 403, name
    risk.refresh_from_db()
    assert risk.title == "Data migration slips" and not risk.client_visible


def test_item_lists_filter_by_status(engagement, consultant):
    add(engagement, Risk, title="Open risk")
    add(engagement, Risk, title="Mitigated risk", status=RiskStatus.MITIGATED)
    add(engagement, Release, title="Planned release")
    add(engagement, FeedbackItem, title="Fixed feedback", resolved=True)
    body = text(consultant.get(url("risk-list", engagement)))
    assert "Open risk" in body and "Mitigated risk" in body
    body = text(consultant.get(url("risk-list", engagement) + "?status=mitigated"))
    assert "Open risk" not in body and "Mitigated risk" in body
    assert "Planned release" in text(consultant.get(url("release-list", engagement) + "?status=planned"))
    assert "Fixed feedback" in text(consultant.get(url("feedback-list", engagement) + "?status=resolved"))
    assert "Nothing with this status" in text(consultant.get(url("feedback-list", engagement) + "?status=open"))
    assert "No work items yet" in text(consultant.get(url("work-list", engagement)))


def _queries(client, path) -> int:
    client.get(path)  # the first visit also stores the current organization in the session
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def _fill_board(e, n):
    for i in range(n):
        add(e, WorkItem, title=f"Work {i}", status=WorkStatus.IN_PROGRESS if i % 2 else WorkStatus.UPCOMING)
        add(e, DecisionLogEntry, title=f"Decision {i}", category="ownership", status="needed" if i % 2 else "decided",
            decision="Yes")
        add(e, Risk, title=f"Risk {i}")
        add(e, Release, title=f"Release {i}", status=ReleaseStatus.RELEASED)
        add(e, FeedbackItem, title=f"Feedback {i}")


def test_board_query_count_does_not_grow_with_the_board(engagement, consultant):
    _fill_board(engagement, 2)
    small = _queries(consultant, url("board", engagement))
    _fill_board(engagement, 38)
    assert _queries(consultant, url("board", engagement)) == small


def test_decision_log_query_count_does_not_grow(engagement, consultant, cast):
    gate = engagement.gates.first()
    for i in range(2):
        add(engagement, DecisionLogEntry, title=f"Decision {i}", category="ownership", gate=gate)
    small = _queries(consultant, url("decision-log", engagement))
    for i in range(38):
        add(engagement, DecisionLogEntry, title=f"More {i}", category="handoffs", gate=gate if i % 2 else None)
    assert _queries(consultant, url("decision-log", engagement)) == small


# --------------------------------------------------------------------------------------------------
# The decision log


def test_decision_log_lists_filters_and_pages(engagement, consultant):
    gate = engagement.gates.get(phase__key="strategy")
    add(engagement, DecisionLogEntry, title="Who owns SAL", category="ownership", context="Two teams claim it",
        owner="Maya", status=DecisionStatus.DECIDED, decision="Sales development", gate=gate)
    add(engagement, DecisionLogEntry, title="MQL threshold", category="lifecycle_definitions")
    body = text(consultant.get(url("decision-log", engagement)))
    for fragment in ["Who owns SAL", "Two teams claim it", "Sales development", "Maya", "Ownership",
                     "Decided", gate.name, "MQL threshold", "Decision needed"]:
        assert fragment in body
    body = text(consultant.get(url("decision-log", engagement) + "?category=ownership"))
    assert "Who owns SAL" in body and "MQL threshold" not in body
    response = consultant.get(url("decision-log", engagement) + "?status=needed", **HTMX)
    body = text(response)
    assert "<html" not in body and 'id="decision-log"' in body
    assert "MQL threshold" in body and "Who owns SAL" not in body
    superseded = consultant.get(url("decision-log", engagement) + "?status=superseded")
    assert "No decisions match this filter" in text(superseded)

    for i in range(30):
        add(engagement, DecisionLogEntry, title=f"Decision number {i:02d}", category="permissions")
    page1 = text(consultant.get(url("decision-log", engagement)))
    page2 = text(consultant.get(url("decision-log", engagement) + "?page=2"))
    assert "Page 1 of 2" in page1 and "Decision number 29" in page1 and "Decision number 00" not in page1
    assert "Decision number 00" in page2


def test_decision_log_adds_a_decision(engagement, consultant):
    response = consultant.post(
        url("decision-log", engagement),
        {"decision-title": "Who approves discounts", "decision-category": "approval_steps", "decision-owner": "Raj"},
    )
    assert response.status_code == 302
    entry = DecisionLogEntry.objects.get(engagement=engagement)
    assert entry.category == "approval_steps" and entry.status == DecisionStatus.NEEDED
    response = consultant.post(url("decision-log", engagement), {"decision-title": "No category"})
    assert response.status_code == 400 and "This field is required" in text(response)


# --------------------------------------------------------------------------------------------------
# Weekly updates


def test_draft_edit_and_publish_a_weekly_update(engagement, consultant, django_capture_on_commit_callbacks):
    add(engagement, WorkItem, title="Configure lead status", status=WorkStatus.DONE, client_visible=True)
    assert "No weekly updates yet" in text(consultant.get(url("update-list", engagement)))
    response = consultant.post(url("update-draft", engagement))
    update = WeeklyUpdate.objects.get(engagement=engagement)
    assert response["Location"] == url("update-edit", engagement, update.uuid)
    page = text(consultant.get(response["Location"]))
    assert "- Done: Configure lead status" in page
    assert "This emails 1 stakeholder" in page and "Maya Patel" in page

    sections = {"what_changed": "- Lead status live", "what_was_tested": "- Routing", "needs_decision": "- MQL",
                "what_happens_next": "- Scoring"}
    assert consultant.post(url("update-edit", engagement, update.uuid), sections).status_code == 302
    update.refresh_from_db()
    assert update.what_changed == "- Lead status live"
    listing = text(consultant.get(url("update-list", engagement)))
    assert "Draft" in listing and "Open this week's update" in listing

    with django_capture_on_commit_callbacks() as callbacks:
        response = consultant.post(url("update-publish", engagement, update.uuid), follow=True)
    assert "Published. 1 stakeholder will receive it by email." in text(response)
    assert len(callbacks) == 1
    update.refresh_from_db()
    assert update.status == UpdateStatus.PUBLISHED

    page = text(consultant.get(url("update-edit", engagement, update.uuid)))
    assert "no longer changes" in page and "<textarea" not in page and "- Lead status live" in page
    response = consultant.post(url("update-edit", engagement, update.uuid), {**sections, "what_changed": "- New"})
    assert response.status_code == 400 and "can no longer change" in text(response)
    update.refresh_from_db()
    assert update.what_changed == "- Lead status live"
    response = consultant.post(url("update-publish", engagement, update.uuid), follow=True)
    assert "already published" in text(response)
    assert consultant.get(url("update-publish", engagement, update.uuid)).status_code == 405


def test_publish_and_email_publishes_the_edit_on_screen_not_the_saved_text(engagement, consultant):
    consultant.post(url("update-draft", engagement))
    update = WeeklyUpdate.objects.get(engagement=engagement)
    saved = {"what_changed": "- Saved text", "what_was_tested": "- Routing", "needs_decision": "- MQL",
             "what_happens_next": "- Scoring"}
    assert consultant.post(url("update-edit", engagement, update.uuid), saved).status_code == 302

    # The edit page's publish button submits the edit form itself (form="update-form") to the publish URL.
    page = consultant.get(url("update-edit", engagement, update.uuid)).content.decode()
    publish_url = url("update-publish", engagement, update.uuid)
    assert 'id="update-form"' in page and f'form="update-form" formaction="{publish_url}"' in page

    on_screen = {**saved, "what_changed": "- Edited on screen, never saved"}
    response = consultant.post(publish_url, on_screen, follow=True)
    assert "Your edits were saved and published. 1 stakeholder will receive it by email." in text(response)
    update.refresh_from_db()
    assert update.status == UpdateStatus.PUBLISHED and update.what_changed == "- Edited on screen, never saved"


# --------------------------------------------------------------------------------------------------
# Refinement loop


def test_record_a_meeting_with_client_attendees(engagement, consultant, cast):
    response = consultant.post(
        url("meeting-add", engagement),
        {"type": "kickoff", "held_on": "2026-11-03", "attendees": [cast.stakeholder.pk], "notes": "Scope agreed"},
    )
    assert response.status_code == 302
    meeting = Meeting.objects.get(engagement=engagement)
    assert list(meeting.attendees.all()) == [cast.stakeholder]
    page = text(consultant.get(url("refinement", engagement)))
    assert "Kickoff" in page and "1 client attendee" in page
    detail = text(consultant.get(url("meeting-detail", engagement, meeting.uuid)))
    assert "Scope agreed" in detail and "Maya Patel" in detail

    response = consultant.post(
        url("meeting-add", engagement),
        {"type": "refinement", "held_on": "2026-11-10", "attendees": [cast.sibling_stakeholder.pk]},
    )
    assert response.status_code == 400 and "Select a valid choice" in text(response)
    response = consultant.post(url("meeting-add", engagement), {"type": "refinement"})
    assert response.status_code == 400 and "This field is required" in text(response)


def test_versions_items_and_status_with_htmx(engagement, consultant):
    assert "No architecture version yet" in text(consultant.get(url("refinement", engagement)))
    response = consultant.post(url("version-start", engagement), {"notes": "Team assumptions"})
    v0 = ArchitectureVersion.objects.get(engagement=engagement)
    assert response["Location"] == url("version-detail", engagement, v0.uuid)
    assert "first version: nothing to compare" in text(consultant.get(response["Location"]))

    add_url = url("assumption-add", engagement, v0.uuid)
    consultant.post(add_url, {"key": "sal", "text": "SAL accepted within 48h", "critical": "on"})
    consultant.post(add_url, {"key": "mql", "text": "MQL at 60 points"})
    response = consultant.post(add_url, {"key": "sal", "text": "duplicate"})
    assert response.status_code == 400 and "already has an item" in text(response)
    assert "These block the strategy sign-off gate" in text(consultant.get(url("refinement", engagement)))
    assert "These block the strategy sign-off gate" in text(consultant.get(url("version-detail", engagement, v0.uuid)))

    sal = AssumptionItem.objects.get(version=v0, key="sal")
    body = text(consultant.post(url("assumption-status", engagement, sal.uuid), {"status": "confirmed"}, **HTMX))
    assert "<html" not in body and 'id="assumptions"' in body and "block the strategy sign-off gate" not in body
    sal.refresh_from_db()
    assert sal.status == "confirmed"

    mql = AssumptionItem.objects.get(version=v0, key="mql")
    body = text(consultant.post(url("assumption-status", engagement, mql.uuid), {"status": "corrected"}, **HTMX))
    assert "Say what the correction is" in body
    mql.refresh_from_db()
    assert mql.status == "assumed"

    consultant.post(url("version-start", engagement), {})
    v1 = ArchitectureVersion.objects.get(engagement=engagement, number=1)
    mql1 = v1.items.get(key="mql")
    consultant.post(url("assumption-status", engagement, mql1.uuid), {"status": "corrected", "correction": "75"})
    page = text(consultant.get(url("version-detail", engagement, v1.uuid)))
    assert "What changed since v0" in page and "Assumed → <strong>Corrected</strong>" in page
    assert "correction: 75" in page

    # v0 is history now: no forms, and a status change is refused with the reason.
    page = text(consultant.get(url("version-detail", engagement, v0.uuid)))
    assert "Earlier version: read-only" in page and "Set status" not in page
    response = consultant.post(url("assumption-status", engagement, mql.uuid), {"status": "confirmed"}, follow=True)
    assert "v0 is not the latest version" in text(response)


# --------------------------------------------------------------------------------------------------
# Enablement and handoff


def test_enablement_page_training_and_hypercare(engagement, consultant):
    page = text(consultant.get(url("enablement", engagement)))
    assert "No training sessions yet" in page and "Leadership" in page and "Not scheduled yet" in page
    response = consultant.post(
        url("training-add", engagement), {"training_type": "leadership", "held_on": "2026-12-01", "recorded": "on"}
    )
    assert response.status_code == 302
    training = TrainingSession.objects.get(engagement=engagement)
    assert training.recorded
    detail = text(consultant.get(url("training-detail", engagement, training.uuid)))
    assert "What this training covers" in detail and "Recorded" in detail
    response = consultant.post(url("training-add", engagement), {"training_type": "yoga", "held_on": "2026-12-01"})
    assert response.status_code == 400 and "Select a valid choice" in text(response)

    assert consultant.post(url("hypercare-set", engagement), {"start": "2027-01-04"}).status_code == 302
    engagement.refresh_from_db()
    assert engagement.hypercare_end == date(2027, 1, 18)
    response = consultant.post(url("hypercare-set", engagement), {"start": "2027-01-04", "end": "2027-01-01"})
    assert response.status_code == 400 and "must end after it starts" in text(response)


def test_skipped_hypercare_is_shown_and_refused(engagement, consultant, cast):
    pass_gate(engagement, "strategy", "proceed-to-engineering", cast.consultant)
    pass_gate(engagement, "engineering", "proceed-without-hypercare", cast.consultant)
    page = text(consultant.get(url("enablement", engagement)))
    assert ">Skipped</span>" in page and "Schedule hypercare" not in page
    response = consultant.post(url("hypercare-set", engagement), {"start": "2027-01-04"})
    assert response.status_code == 400 and "Hypercare was skipped" in text(response)


def test_handoff_items_toggle_with_htmx(engagement, consultant):
    item = engagement.checklist.filter(kind=ChecklistKind.DOC_PACKAGE).first()
    page = text(consultant.get(url("enablement", engagement)))
    assert "Documentation package" in page and item.text in page
    body = text(consultant.post(url("handoff-item-toggle", engagement, item.uuid), {"done": "1"}, **HTMX))
    assert "<html" not in body and 'id="handoff"' in body and "1 of" in body
    item.refresh_from_db()
    assert item.done
    consultant.post(url("handoff-item-toggle", engagement, item.uuid), {"done": "0"})
    item.refresh_from_db()
    assert not item.done
    task = engagement.checklist.filter(kind=ChecklistKind.TASK).first()
    assert consultant.post(url("handoff-item-toggle", engagement, task.uuid), {"done": "1"}).status_code == 404

    engagement.status = EngagementStatus.CLOSED
    engagement.save(update_fields=["status"])
    body = text(consultant.post(url("handoff-item-toggle", engagement, item.uuid), {"done": "1"}, **HTMX))
    assert "closed; nothing can change any more" in body


def test_retention_path_and_check_in(engagement, consultant):
    page = text(consultant.get(url("enablement", engagement)))
    assert "Managed Services (lifecycle governance retainer)" in page and "Record: Upsell" in page
    assert "Lead Scoring" in page  # the downsell options of the seed
    assert "A single-project engagement has no refinement check-in" in page
    response = consultant.post(url("retention-add", engagement),
                               {"action": "downsell", "outcome": "declined", "offer": "Depth project"})
    assert response.status_code == 400 and "next retention step is upsell" in text(response)
    response = consultant.post(url("retention-add", engagement),
                               {"action": "upsell", "outcome": "declined", "offer": "Managed Services"})
    assert response.status_code == 302
    page = text(consultant.get(url("enablement", engagement)))
    assert "Record: Downsell" in page and "Declined" in page
    consultant.post(url("retention-add", engagement), {"action": "downsell", "outcome": "accepted", "offer": "Depth"})
    assert "Record: Retry the retainer" in text(consultant.get(url("enablement", engagement)))
    retry = {"action": "retry_retainer", "outcome": "declined", "offer": "Retainer"}
    consultant.post(url("retention-add", engagement), retry)
    assert "The retention path is finished" in text(consultant.get(url("enablement", engagement)))
    assert RetentionStep.objects.filter(engagement=engagement).count() == 3

    engagement.check_in_date, engagement.handed_off_on = date(2027, 4, 1), date(2027, 1, 1)
    engagement.save(update_fields=["check_in_date", "handed_off_on"])
    page = text(consultant.get(url("enablement", engagement)))
    assert "Thursday 1 Apr 2027" in page and "18 Mar 2027" in page


def test_enablement_of_a_playbook_without_training_or_hypercare(cast, library, consultant):
    e = progression.create_engagement(
        client=cast.client, playbook_version=library["delivery-model"], name="Embedded ops",
        start_date=date(2026, 11, 2), actor=cast.consultant, engagement_type="dedicated",
    )
    page = text(consultant.get(url("enablement", e)))
    assert "defines no training types" in page and "no hypercare period" in page
    assert "Handover components" in page and "Retention path" not in page


def test_every_cadence_page_renders(engagement, consultant, cast):
    work = add(engagement, WorkItem, title="W")
    meeting = refinement.record_meeting(engagement=engagement, type="kickoff", held_on=date(2026, 11, 3),
                                        actor=cast.consultant)
    version = refinement.start_version(engagement=engagement, actor=cast.consultant, meeting=meeting)
    update = cadence.draft_weekly_update(engagement=engagement, actor=cast.consultant)
    for path in [
        url("board", engagement), url("decision-log", engagement), url("update-list", engagement),
        url("refinement", engagement), url("enablement", engagement), url("work-list", engagement),
        url("work-edit", engagement, work.uuid), url("work-delete", engagement, work.uuid),
        url("meeting-detail", engagement, meeting.uuid), url("version-detail", engagement, version.uuid),
        url("update-edit", engagement, update.uuid),
    ]:
        response = consultant.get(path)
        assert response.status_code == 200, path
        assert "Lifecycle rebuild" in text(response) and "Acme Robotics" in text(response)
