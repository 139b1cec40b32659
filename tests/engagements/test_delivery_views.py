"""The delivery pages: portfolio, new engagement, overview, phases, checklist toggles, checkpoints, gate decisions.

Everything goes through the real views and the real state machine; htmx requests send `HX-Request: true`.
"""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from engagements import progression
from engagements.models import (
    ChecklistItem,
    CheckpointStatus,
    DecisionLogEntry,
    Engagement,
    EngagementMember,
    EngagementStakeholder,
    EngagementStatus,
    GateDecision,
    PhaseStatus,
    Release,
    Risk,
    Stakeholder,
)
from playbooks.models import Playbook
from tests.conftest import ensure_library

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def library(db) -> dict:
    ensure_library()
    return {p.key: p for p in Playbook.objects.library()}


def start(cast, library, key="gtm-lifecycle", *, client=None, name=None, **kwargs):
    return progression.create_engagement(
        client=client or cast.client,
        playbook_version=library[key].latest_version(),
        name=name or f"{key} for Acme",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        **kwargs,
    )


def url(name, cast, **kwargs):
    return reverse(f"engagements:{name}", kwargs={"org_slug": cast.org.slug, **kwargs})


def e_url(name, engagement, **kwargs):
    return reverse(
        f"engagements:{name}",
        kwargs={"org_slug": engagement.organization.slug, "engagement_uuid": engagement.uuid, **kwargs},
    )


def clear_gate(engagement, phase_key, actor):
    gate = engagement.phases.get(key=phase_key).gate
    for checkpoint in gate.checkpoints.all():
        action = "waive" if checkpoint.auto else "check"
        progression.resolve_checkpoint(checkpoint=checkpoint, action=action, actor=actor, reason="Signed on paper.")
    return gate


@pytest.fixture
def consultant(client, cast):
    client.force_login(cast.consultant)
    return client


@pytest.fixture
def lifecycle(cast, library):
    return start(
        cast,
        library,
        methodology_option="foundation-all-depth",
        team=[(cast.consultant, "architect"), (cast.owner, "engineer")],
        stakeholders=[(cast.stakeholder, "Approver")],
    )


def count_queries(client, path) -> int:
    client.get(path)  # the first visit also writes the session (current organization); measure a steady visit
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


# --------------------------------------------------------------------------------------------------
# Portfolio


def test_portfolio_shows_phase_sub_phase_gate_decisions_risks_and_last_update(consultant, cast, lifecycle):
    org = cast.org
    DecisionLogEntry.objects.create(organization=org, engagement=lifecycle, title="Who owns SAL", category="ownership")
    DecisionLogEntry.objects.create(
        organization=org, engagement=lifecycle, title="Stage names", category="pipeline_stages", status="decided"
    )
    for title in ("Data migration slips", "Admin leaves"):
        Risk.objects.create(organization=org, engagement=lifecycle, title=title)
    Risk.objects.create(organization=org, engagement=lifecycle, title="Old", status="closed")
    Engagement.objects.across_tenants("test").filter(pk=lifecycle.pk).update(
        last_update_published_at=timezone.now() - timedelta(days=9)
    )

    response = consultant.get(url("portfolio", cast))
    body = response.content.decode()
    assert response.status_code == 200
    assert "gtm-lifecycle for Acme" in body and "Acme Robotics" in body
    assert "GTM Lifecycle — Implementation" in body
    assert "Strategy" in body and "1a Pre-Kickoff" in body, "current phase and its first open sub-phase"
    assert "Strategic Sign-Off" in body and "awaiting decision" in body
    row = response.context["page"].object_list[0]
    assert (row.open_decisions, row.open_risks, row.days_since_update) == (1, 2, 9)
    assert "9 days ago" in body


def test_portfolio_current_sub_phase_moves_past_finished_sub_phases(consultant, cast, lifecycle):
    for item in lifecycle.sub_phases.get(key="1a").checklist.all():
        progression.set_checklist_item(item=item, done=True, actor=cast.consultant)
    row = consultant.get(url("portfolio", cast)).context["page"].object_list[0]
    # 1b-1d have no checklist: nothing is open in Strategy's sub-phases any more.
    assert row.current_sub_key is None


def test_portfolio_filters_by_status_and_client(consultant, cast, library):
    acme = start(cast, library, name="Acme lifecycle")
    initech = start(cast, library, "revenue-intelligence", client=cast.sibling_client, name="Initech RI")
    Engagement.objects.across_tenants("test").filter(pk=initech.pk).update(status=EngagementStatus.ON_HOLD)

    def names(**params):
        response = consultant.get(url("portfolio", cast), params)
        return {e.name for e in response.context["page"].object_list}

    assert names() == {"Acme lifecycle", "Initech RI"}
    assert names(status="on_hold") == {"Initech RI"}
    assert names(client=str(cast.client.uuid)) == {"Acme lifecycle"}
    assert names(status="active", client=str(cast.sibling_client.uuid)) == set()
    closed = consultant.get(url("portfolio", cast), {"status": "closed"}).content.decode()
    assert "No engagements match these filters" in closed
    assert acme.name in consultant.get(url("portfolio", cast), {"client": "not-a-uuid"}).content.decode()


def test_portfolio_shows_owner_dates_progress_and_health(consultant, cast, library, lifecycle):
    items = list(ChecklistItem.objects.filter(engagement=lifecycle).select_related("phase", "sub_phase"))
    for item in items[:7]:
        progression.set_checklist_item(item=item, done=True, actor=cast.consultant)
    overdue = timezone.localdate() - timedelta(days=3)
    Engagement.objects.for_org(cast.org).filter(pk=lifecycle.pk).update(target_date=overdue)
    later = start(cast, library, name="Second", team=[(cast.owner, "engineer")])
    Risk.objects.create(organization=cast.org, engagement=later, title="Admin leaves")

    rows = {e.name: e for e in consultant.get(url("portfolio", cast)).context["page"].object_list}
    now = rows[lifecycle.name]
    # progress: the share of the checklist ticked, counted here from the rows (no phase is skipped yet)
    assert now.progress == 7 * 100 // len(items) and 0 < now.progress < 100
    assert now.owner == "Carl" and rows["Second"].owner == "Alice"  # the architect, else the first team member
    assert (now.health.label, now.health.reasons) == ("Off track", ("target date passed 3 days ago",))
    assert (rows["Second"].health.label, rows["Second"].health.reasons) == ("At risk", ("1 open risk",))
    body = consultant.get(url("portfolio", cast)).content.decode()
    assert f"{now.progress}%" in body and "2 Nov 2026" in body and "Off track" in body and "At risk" in body


def test_portfolio_sorts_by_column_keeping_filters(consultant, cast, library):
    for name, days in (("Bravo", 5), ("Alpha", 1), ("Charlie", 9)):
        e = start(cast, library, name=name)
        Engagement.objects.for_org(cast.org).filter(pk=e.pk).update(start_date=date(2026, 1, days))
    other = start(cast, library, client=cast.sibling_client, name="Delta")

    def names(**params):
        response = consultant.get(url("portfolio", cast), params)
        return [e.name for e in response.context["page"].object_list], response

    assert names()[0] == ["Delta", "Charlie", "Alpha", "Bravo"]  # newest first
    assert names(sort="name")[0] == ["Alpha", "Bravo", "Charlie", "Delta"]
    assert names(sort="-name")[0] == ["Delta", "Charlie", "Bravo", "Alpha"]
    ordered, response = names(sort="start", client=str(cast.client.uuid))
    assert ordered == ["Alpha", "Bravo", "Charlie"] and other.name not in ordered
    links = response.context["sort_links"]
    assert links["start"] == {"query": f"client={cast.client.uuid}&sort=-start", "state": "ascending"}
    assert links["name"]["query"] == f"client={cast.client.uuid}&sort=name"
    assert names(sort="nonsense")[0] == ["Delta", "Charlie", "Alpha", "Bravo"]  # unknown: the default order


def test_portfolio_filters_by_team_member_and_answers_htmx_with_the_content(consultant, cast, library):
    start(cast, library, name="Carl's", team=[(cast.consultant, "architect"), (cast.consultant, "engineer")])
    start(cast, library, name="Alice's", team=[(cast.owner, "architect")])
    carl = Membership.objects.get(organization=cast.org, user=cast.consultant)
    response = consultant.get(url("portfolio", cast), {"member": str(carl.uuid)}, **HTMX)
    assert [e.name for e in response.context["page"].object_list] == ["Carl's"]
    body = response.content.decode()
    assert 'id="portfolio-results"' in body and "<html" not in body and "Alice&#x27;s" not in body


def test_portfolio_empty_state_invites_the_first_engagement(consultant, cast):
    body = consultant.get(url("portfolio", cast)).content.decode()
    assert "No engagements yet" in body and url("engagement-create", cast) in body


def test_portfolio_query_count_does_not_grow_with_engagements(consultant, cast, library):
    for n in range(2):
        start(cast, library, name=f"E{n}")
    few = count_queries(consultant, url("portfolio", cast))
    for n in range(2, 30):
        start(cast, library, "delivery-model" if n % 2 else "gtm-lifecycle", name=f"E{n}")
    many = count_queries(consultant, url("portfolio", cast))
    assert Engagement.objects.across_tenants("test").count() == 30
    assert many == few, f"portfolio ran {few} queries for 2 engagements and {many} for 30"


# --------------------------------------------------------------------------------------------------
# New engagement


def test_create_form_offers_this_orgs_clients_and_usable_playbooks(consultant, cast, library):
    from playbooks.services import clone_playbook

    clone_playbook(source=library["gtm-lifecycle"], organization=cast.org, actor=cast.owner)
    theirs = clone_playbook(source=library["delivery-model"], organization=cast.other_org, actor=cast.outsider)
    response = consultant.get(url("engagement-create", cast))
    form = response.context["form"]
    assert set(form.fields["client"].queryset) == {cast.client, cast.sibling_client}
    playbooks = set(form.fields["playbook"].queryset)
    assert len(playbooks) == 5 and theirs not in playbooks
    body = response.content.decode()
    assert 'hx-get="' + url("engagement-create", cast) + '"' in body
    assert "Choose a playbook to see its shapes" in body


def test_changing_the_playbook_rerenders_its_shapes_and_methodology_options(consultant, cast, library):
    response = consultant.get(
        url("engagement-create", cast),
        {"playbook": str(library["delivery-model"].uuid), "name": "x"},
        HTTP_HX_TRIGGER_NAME="playbook",
        **HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'id="playbook-fields"' in body and "Embedded operation" in body
    assert "Methodology option" not in body, "the delivery model offers no methodology options"

    body = consultant.get(
        url("engagement-create", cast),
        {"playbook": str(library["gtm-lifecycle"].uuid)},
        HTTP_HX_TRIGGER_NAME="playbook",
        **HTMX,
    ).content.decode()
    assert "Foundation + All Depth" in body and "Dedicated (Multi-Project)" in body and "Embedded operation" not in body


def test_changing_the_client_rerenders_its_stakeholders(consultant, cast, library):
    body = consultant.get(
        url("engagement-create", cast), {"client": str(cast.client.uuid)}, HTTP_HX_TRIGGER_NAME="client", **HTMX
    ).content.decode()
    assert 'id="stakeholder-fields"' in body and "Maya Patel" in body and "Peter Gibbons" not in body
    assert f'name="sh_{cast.stakeholder.uuid.hex}_role"' in body


def test_creating_an_engagement_instantiates_the_playbook_with_team_and_stakeholders(consultant, cast, library):
    architect = Membership.objects.get(organization=cast.org, user=cast.consultant)
    engineer = Membership.objects.get(organization=cast.org, user=cast.owner)
    response = consultant.post(
        url("engagement-create", cast),
        {
            "client": str(cast.client.uuid),
            "playbook": str(library["gtm-lifecycle"].uuid),
            "name": "Lifecycle rebuild",
            "engagement_type": "dedicated",
            "methodology_option": "reunification",
            "start_date": "2026-11-02",
            "target_date": "2027-02-26",
            "architect": str(architect.uuid),
            "engineer": str(engineer.uuid),
            f"sh_{cast.stakeholder.uuid.hex}": "on",
            f"sh_{cast.stakeholder.uuid.hex}_role": "Approver",
        },
    )
    engagement = Engagement.objects.across_tenants("test").get(name="Lifecycle rebuild")
    assert response.status_code == 302 and response["Location"] == e_url("engagement-detail", engagement)
    assert engagement.methodology_option == "reunification" and engagement.engagement_type == "dedicated"
    assert engagement.current_phase.key == "strategy" and engagement.target_date == date(2027, 2, 26)
    assert set(EngagementMember.objects.filter(engagement=engagement).values_list("user__email", "role")) == {
        ("carl@alpha.example", "architect"),
        ("alice@alpha.example", "engineer"),
    }
    assert list(EngagementStakeholder.objects.filter(engagement=engagement).values_list("stakeholder", "role")) == [
        (cast.stakeholder.pk, "Approver")
    ]


def test_invalid_engagement_shows_errors_next_to_their_fields(consultant, cast, library):
    response = consultant.post(
        url("engagement-create", cast),
        {
            "client": str(cast.client.uuid),
            "playbook": str(library["delivery-model"].uuid),
            "name": "",
            "engagement_type": "single_project",
            "start_date": "2026-11-02",
            "target_date": "2026-10-01",
        },
    )
    body = response.content.decode()
    assert response.status_code == 400 and not Engagement.objects.across_tenants("test").exists()
    assert 'id="id_name_errors"' in body and 'aria-describedby="id_name_errors"' in body
    assert "The target date is before the start date." in body
    assert 'id="id_shape_errors"' in body, "the delivery model needs a shape"


def test_create_without_clients_points_to_the_client_page(client, cast, library):
    from tests.conftest import make_org, make_user

    org = make_org("Gamma", "gamma")
    user = make_user(Engagement._meta.apps.get_model("auth", "User"), "gus@gamma.example")
    Membership.objects.create(organization=org, user=user, role="owner")
    client.force_login(user)
    body = client.get(reverse("engagements:engagement-create", kwargs={"org_slug": "gamma"})).content.decode()
    assert "Add a client first" in body


# --------------------------------------------------------------------------------------------------
# Overview and phases


def test_overview_shows_timeline_checklist_gate_team_and_navigation(consultant, lifecycle):
    response = consultant.get(e_url("engagement-detail", lifecycle))
    body = response.content.decode()
    assert response.status_code == 200
    for phase in ("Strategy", "Engineering", "Enablement", "Handoff"):
        assert phase in body
    assert "Heavy" in body and "1a Pre-Kickoff" in body
    package = lifecycle.checklist.filter(kind="doc_package").count()
    assert package and body.count('type="checkbox"') == 9 + package, "1a's nine items and the handoff package"
    assert "Strategic Sign-Off" in body and "Definition Alignment Document signed off" in body
    assert "Not ready to proceed" in body and "8 validation checkpoint(s)" in body
    assert "Carl" in body and "Maya Patel" in body and "Approver" in body
    assert "Foundation + All Depth" in body
    assert "Documentation package" in body, "the handoff package is tracked from the start"
    for tab in ("board", "decision-log", "update-list", "refinement", "enablement"):
        assert e_url(tab, lifecycle) in body
    assert "No gate has been decided yet." in body


def test_overview_shows_skipped_phases_with_their_reason_and_loop_back_iterations(consultant, cast, library):
    engagement = start(cast, library)
    clear_gate(engagement, "strategy", cast.consultant)
    progression.decide_gate(
        gate=engagement.phases.get(key="strategy").gate, option_key="project-complete", actor=cast.consultant
    )
    body = consultant.get(e_url("engagement-detail", engagement)).content.decode()
    assert "Strategy-only project" in body and body.count("Skipped") >= 2
    assert "No decision gate" in body and "Complete Handoff" in body


def test_overview_query_count_does_not_grow_with_decisions_people_and_done_items(consultant, cast, library):
    small = start(cast, library, "partnership-success", name="Small")
    few = count_queries(consultant, e_url("engagement-detail", small))

    big = start(
        cast,
        library,
        "partnership-success",
        name="Big",
        team=[(u, r) for u in (cast.owner, cast.consultant, cast.viewer) for r in ("architect", "engineer", "sme")],
        stakeholders=[
            (Stakeholder.objects.create(organization=cast.org, client=cast.client, name=f"S{n}", email=f"{n}@x"), "")
            for n in range(8)
        ],
    )
    for item in big.phases.get(key="strategy").checklist.all():
        progression.set_checklist_item(item=item, done=True, actor=cast.consultant)
    gate = big.phases.get(key="strategy").gate
    for _ in range(6):
        progression.decide_gate(gate=gate, option_key="extend-strategy", actor=cast.consultant, note="More loops.")
    clear_gate(big, "strategy", cast.consultant)
    assert GateDecision.objects.filter(gate=gate).count() == 6
    many = count_queries(consultant, e_url("engagement-detail", big))
    assert many == few, f"overview ran {few} queries for a fresh engagement and {many} for a busy one"


def test_phase_detail_is_read_only_for_a_done_phase(consultant, cast, lifecycle):
    clear_gate(lifecycle, "strategy", cast.consultant)
    progression.decide_gate(
        gate=lifecycle.phases.get(key="strategy").gate, option_key="proceed-to-engineering", actor=cast.consultant
    )
    strategy = lifecycle.phases.get(key="strategy")
    body = consultant.get(e_url("phase-detail", lifecycle, phase_uuid=strategy.uuid)).content.decode()
    assert "Completed" in body and 'type="checkbox"' not in body
    assert "Proceed to Engineering" in body, "the decisions taken at this phase's gate"
    engineering = lifecycle.phases.get(key="engineering")
    body = consultant.get(e_url("phase-detail", lifecycle, phase_uuid=engineering.uuid)).content.decode()
    assert body.count('type="checkbox"') == 4 + 8 + 13, "2a, 2c and 2d checklists are editable"


def test_a_pending_phase_page_shows_its_gate_as_not_reached(consultant, lifecycle):
    enablement = lifecycle.phases.get(key="enablement")
    body = consultant.get(e_url("phase-detail", lifecycle, phase_uuid=enablement.uuid)).content.decode()
    assert "Not started yet" in body and "Opens when Enablement starts." in body


def test_phase_of_another_engagement_is_404(consultant, cast, library, lifecycle):
    other = start(cast, library, name="Other")
    phase = other.phases.first()
    assert consultant.get(e_url("phase-detail", lifecycle, phase_uuid=phase.uuid)).status_code == 404


# --------------------------------------------------------------------------------------------------
# Checklist toggles


def test_toggling_an_item_with_htmx_returns_only_the_item(consultant, cast, lifecycle):
    item = lifecycle.sub_phases.get(key="1a").checklist.first()
    response = consultant.post(e_url("checklist-toggle", lifecycle, item_uuid=item.uuid), {"done": ["0", "1"]}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert body.strip().startswith(f'<li class="task done" id="item-{item.uuid}"') and "checked" in body
    assert "Done by Carl" in body
    item.refresh_from_db()
    assert item.done and item.done_by == cast.consultant

    body = consultant.post(
        e_url("checklist-toggle", lifecycle, item_uuid=item.uuid), {"done": "0"}, **HTMX
    ).content.decode()
    item.refresh_from_db()
    assert not item.done and "checked" not in body


def test_toggling_without_htmx_flips_the_item_and_returns_to_the_page(consultant, cast, lifecycle):
    item = lifecycle.sub_phases.get(key="1a").checklist.first()
    phase_page = e_url("phase-detail", lifecycle, phase_uuid=item.phase.uuid)
    response = consultant.post(e_url("checklist-toggle", lifecycle, item_uuid=item.uuid), {"next": phase_page})
    assert response.status_code == 302 and response["Location"] == phase_page
    item.refresh_from_db()
    assert item.done
    response = consultant.post(
        e_url("checklist-toggle", lifecycle, item_uuid=item.uuid), {"next": "https://evil.example/"}
    )
    assert response["Location"] == e_url("engagement-detail", lifecycle)
    item.refresh_from_db()
    assert not item.done


def test_the_now_in_badge_follows_the_ticks(consultant, cast, lifecycle):
    page = consultant.get(e_url("engagement-detail", lifecycle)).content.decode()
    assert "Now in 1a Pre-Kickoff" in page
    items = list(lifecycle.sub_phases.get(key="1a").checklist.order_by("order"))
    for item in items:
        body = consultant.post(e_url("checklist-toggle", lifecycle, item_uuid=item.uuid), {"done": "1"}, **HTMX)
        body = body.content.decode()
        badge = body[body.index('<span id="current-sub" hx-swap-oob="true">') :]
        # open items left in 1a keep the badge there; the last tick leaves no sub-phase of Strategy with open items
        assert ("Now in 1a Pre-Kickoff" in badge) == (item != items[-1])
    assert "Now in" not in consultant.get(e_url("engagement-detail", lifecycle)).content.decode()


def test_gate_decisions_appear_in_the_decision_log(consultant, cast, lifecycle):
    gate = clear_gate(lifecycle, "strategy", cast.consultant)
    progression.decide_gate(gate=gate, option_key="proceed-to-engineering", actor=cast.consultant, note="Go build.")
    body = consultant.get(url("decision-log", cast, engagement_uuid=lifecycle.uuid)).content.decode()
    log = body[body.index('id="gate-decisions-h"') :]
    decision = GateDecision.objects.get(gate=gate)
    assert "Decided at gates <span class=\"muted small\">(1)" in log and "Go build." in log
    assert "Strategic Sign-Off" in log and decision.label in log
    assert e_url("gate-decision-detail", lifecycle, gate_decision_uuid=decision.uuid) in log


def test_a_refused_toggle_shows_the_reason_inline_or_as_a_message(consultant, cast, library):
    engagement = start(cast, library)
    clear_gate(engagement, "strategy", cast.consultant)
    progression.decide_gate(
        gate=engagement.phases.get(key="strategy").gate, option_key="proceed-to-engineering", actor=cast.consultant
    )
    done_item = engagement.sub_phases.get(key="1a").checklist.first()
    body = consultant.post(e_url("checklist-toggle", engagement, item_uuid=done_item.uuid), **HTMX).content.decode()
    assert "Strategy is complete; loop back to it before changing its checklist." in body and 'role="alert"' in body
    done_item.refresh_from_db()
    assert not done_item.done

    response = consultant.post(e_url("checklist-toggle", engagement, item_uuid=done_item.uuid), follow=True)
    assert "Strategy is complete" in response.content.decode()


def test_toggling_an_item_of_another_engagement_is_404(consultant, cast, library, lifecycle):
    other = start(cast, library, name="Other")
    item = other.checklist.first()
    assert consultant.post(e_url("checklist-toggle", lifecycle, item_uuid=item.uuid), **HTMX).status_code == 404


# --------------------------------------------------------------------------------------------------
# Checkpoints and gate decisions


def test_checkpoints_are_checked_waived_and_reopened_in_the_gate_panel(consultant, cast, lifecycle):
    gate = lifecycle.phases.get(key="strategy").gate
    manual = gate.checkpoints.get(key="stages-named-with-criteria")
    signed = gate.checkpoints.get(key="definitions-signed-off")

    def resolve(checkpoint, **data):
        path = e_url("checkpoint-resolve", lifecycle, gate_uuid=gate.uuid, checkpoint_uuid=checkpoint.uuid)
        return consultant.post(path, data, **HTMX)

    response = resolve(manual, action="check")
    body = response.content.decode()
    assert response.status_code == 200 and body.strip().startswith('<section class="card gate-panel" id="gate-panel"')
    assert "7 validation checkpoint(s)" in body
    manual.refresh_from_db()
    assert manual.status == CheckpointStatus.CHECKED and manual.resolved_by == cast.consultant

    body = resolve(signed, action="check").content.decode()
    assert "checks itself when the client signs the Definition Alignment Document" in body
    body = resolve(signed, action="waive", reason="  ").content.decode()
    assert "A waiver needs a written reason." in body
    signed.refresh_from_db()
    assert signed.status == CheckpointStatus.OPEN

    body = resolve(signed, action="waive", reason="Signed on paper at the workshop.").content.decode()
    assert "Waived:</strong> Signed on paper at the workshop." in body
    body = resolve(signed, action="reopen").content.decode()
    signed.refresh_from_db()
    assert signed.status == CheckpointStatus.OPEN and signed.waiver_reason == ""
    assert resolve(signed, action="bogus").status_code == 200


def test_checkpoint_without_htmx_redirects_with_a_message(consultant, cast, lifecycle):
    gate = lifecycle.phases.get(key="strategy").gate
    signed = gate.checkpoints.get(key="definitions-signed-off")
    path = e_url("checkpoint-resolve", lifecycle, gate_uuid=gate.uuid, checkpoint_uuid=signed.uuid)
    response = consultant.post(path, {"action": "waive"}, follow=True)
    assert response.redirect_chain[-1][0] == e_url("engagement-detail", lifecycle)
    assert "A waiver needs a written reason." in response.content.decode()


def test_decide_dialog_lists_options_with_when_and_effect(consultant, lifecycle):
    gate = lifecycle.phases.get(key="strategy").gate
    response = consultant.get(e_url("gate-decide", lifecycle, gate_uuid=gate.uuid), **HTMX)
    body = response.content.decode()
    assert body.strip().startswith("<dialog") and "<html" not in body
    assert "Proceed to Engineering" in body and "Customer wants lifecycle stages configured in CRM" in body
    assert "Completes Strategy and starts Engineering." in body
    assert "Skips Engineering, Enablement." in body
    assert "Not ready to proceed" in body and "Every checkpoint checked, or waived with a reason." in body
    assert "disabled" not in body, "a decision not to proceed can be recorded while checkpoints are open"
    assert 'name="unmet"' not in body, "this gate offers no decision not to proceed"
    assert 'name="release"' not in body, "the strategic sign-off is not a per-release gate"
    full = consultant.get(e_url("gate-decide", lifecycle, gate_uuid=gate.uuid)).content.decode()
    assert "<html" in full and "Record decision" in full


def test_deciding_a_gate_with_open_checkpoints_is_refused_with_the_blockers(consultant, cast, lifecycle):
    gate = lifecycle.phases.get(key="strategy").gate
    response = consultant.post(
        e_url("gate-decide", lifecycle, gate_uuid=gate.uuid), {"option": "proceed-to-engineering"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "8 validation checkpoint(s) are neither checked nor waived" in body
    assert not GateDecision.objects.across_tenants("test").exists()
    response = consultant.post(e_url("gate-decide", lifecycle, gate_uuid=gate.uuid), {"option": "nonsense"})
    assert response.status_code == 400 and 'id="id_option_errors"' in response.content.decode()


def test_project_on_hold_is_recorded_with_a_reason_and_the_unmet_checkpoints_and_waives_nothing(
    consultant, cast, library
):
    engagement = start(cast, library, "revenue-intelligence")
    gate = engagement.phases.get(key="strategy").gate
    decide = e_url("gate-decide", engagement, gate_uuid=gate.uuid)
    body = consultant.get(decide, **HTMX).content.decode()
    assert "Project on hold" in body and "A reason, and the unmet checkpoints it is about." in body
    assert body.count('name="unmet"') == gate.checkpoints.count()

    response = consultant.post(decide, {"option": "project-on-hold", "unmet": ["no-blockers"]})
    assert response.status_code == 400 and "needs a reason" in response.content.decode()
    response = consultant.post(
        decide,
        {
            "option": "project-on-hold",
            "note": "CRM data is too poor to score deals; a CRM hygiene project comes first.",
            "unmet": ["no-blockers", "baselines-documented"],
        },
    )
    assert response.status_code == 302
    engagement.refresh_from_db()
    assert engagement.status == EngagementStatus.ON_HOLD
    assert not gate.checkpoints.exclude(status=CheckpointStatus.OPEN).exists(), "nothing was checked or waived"
    decision = GateDecision.objects.across_tenants("test").get()
    assert [u["key"] for u in decision.unmet] == ["baselines-documented", "no-blockers"]
    body = consultant.get(e_url("gate-decision-detail", engagement, gate_decision_uuid=decision.uuid)).content.decode()
    assert "Not ready because" in body and "No blockers for engineering" in body
    assert "These checkpoints were left unmet; nothing was waived." in body


def test_closing_with_handover_components_undone_warns_and_names_them(consultant, cast, library):
    engagement = start(cast, library, "delivery-model")
    for key in ("discover", "design", "build", "adopt"):
        gate = clear_gate(engagement, key, cast.consultant)
        progression.decide_gate(gate=gate, option_key="proceed", actor=cast.consultant)
    components = list(engagement.checklist.filter(kind="handover").order_by("order"))
    for item in components[:6]:
        progression.set_checklist_item(item=item, done=True, actor=cast.consultant)
    gate = clear_gate(engagement, "operate", cast.consultant)
    body = consultant.get(e_url("gate-decide", engagement, gate_uuid=gate.uuid)).content.decode()
    assert "Closing leaves handover undone" in body and "6 handover component(s) not done" in body
    assert all(c.text in body for c in components[6:])
    response = consultant.post(
        e_url("gate-decide", engagement, gate_uuid=gate.uuid), {"option": "embedded-support-ends"}, follow=True
    )
    body = response.content.decode()
    assert "The engagement closed with 6 handover component(s) not done" in body
    assert components[6].text in body and components[0].text not in body.split("not done:")[1].split(".")[0]


def test_deciding_a_gate_moves_the_engagement_and_records_who_when_and_why(consultant, cast, lifecycle):
    gate = clear_gate(lifecycle, "strategy", cast.consultant)
    response = consultant.post(
        e_url("gate-decide", lifecycle, gate_uuid=gate.uuid),
        {"option": "proceed-to-engineering", "note": "All four VPs agreed on the call."},
    )
    assert response.status_code == 302 and response["Location"] == e_url("engagement-detail", lifecycle)
    lifecycle.refresh_from_db()
    assert lifecycle.current_phase.key == "engineering"
    decision = GateDecision.objects.across_tenants("test").get()
    assert decision.decided_by == cast.consultant

    body = consultant.get(e_url("engagement-detail", lifecycle)).content.decode()
    assert "Proceed to Engineering" in body and "Engineering sign-off checkpoint" in body
    assert e_url("gate-decision-detail", lifecycle, gate_decision_uuid=decision.uuid) in body

    body = consultant.get(e_url("gate-decision-detail", lifecycle, gate_decision_uuid=decision.uuid)).content.decode()
    assert "Proceed to Engineering" in body and "carl@alpha.example" in body
    assert "All four VPs agreed on the call." in body and "Completes Strategy and starts Engineering." in body
    assert "Customer wants lifecycle stages configured in CRM" in body


def test_a_per_release_gate_offers_the_planned_releases(consultant, cast, library):
    engagement = start(cast, library, "delivery-model", shape="build")
    for key in ("discover", "design"):
        gate = clear_gate(engagement, key, cast.consultant)
        progression.decide_gate(gate=gate, option_key="proceed", actor=cast.consultant)
    release = Release.objects.create(organization=cast.org, engagement=engagement, title="Release 1: lead routing")
    Release.objects.create(organization=cast.org, engagement=engagement, title="Old", status="released")
    gate = clear_gate(engagement, "build", cast.consultant)
    body = consultant.get(e_url("gate-decide", engagement, gate_uuid=gate.uuid), **HTMX).content.decode()
    assert "Release 1: lead routing" in body and "Old" not in body
    assert "Approves this round" in body
    response = consultant.post(
        e_url("gate-decide", engagement, gate_uuid=gate.uuid),
        {"option": "release-approved", "release": str(release.uuid)},
    )
    assert response.status_code == 302
    release.refresh_from_db()
    assert release.status == "released" and release.gate_decision is not None


def test_completing_a_gateless_phase_and_refusing_while_items_are_open(consultant, cast, library):
    engagement = start(cast, library)
    gate = clear_gate(engagement, "strategy", cast.consultant)
    progression.decide_gate(gate=gate, option_key="project-complete", actor=cast.consultant)
    handoff = engagement.phases.get(key="handoff")
    path = e_url("phase-complete", engagement, phase_uuid=handoff.uuid)
    response = consultant.post(path, follow=True)
    assert "checklist item(s) in Handoff are still open" in response.content.decode()
    for item in handoff.checklist.all():
        progression.set_checklist_item(item=item, done=True, actor=cast.consultant)
    response = consultant.post(path, follow=True)
    engagement.refresh_from_db()
    assert engagement.status == EngagementStatus.CLOSED
    body = response.content.decode()
    assert "Handoff complete. The engagement is closed." in body and "This engagement is closed" in body
    assert consultant.get(path).status_code == 405


def test_on_hold_engagement_shows_a_banner_and_resumes(consultant, cast, library):
    engagement = start(cast, library, "revenue-intelligence")
    gate = engagement.phases.get(key="strategy").gate
    progression.decide_gate(gate=gate, option_key="project-on-hold", actor=cast.consultant, note="Budget freeze.")
    body = consultant.get(e_url("engagement-detail", engagement)).content.decode()
    assert "This engagement is on hold" in body and "Resume engagement" in body
    assert "resume it to work on this gate" in body and "Decide gate" not in body
    assert 'type="checkbox"' not in body, "nothing can be ticked while on hold"
    response = consultant.post(e_url("engagement-resume", engagement), follow=True)
    engagement.refresh_from_db()
    assert engagement.status == EngagementStatus.ACTIVE and "Engagement resumed." in response.content.decode()
    response = consultant.post(e_url("engagement-resume", engagement), follow=True)
    assert "Only an engagement on hold can be resumed." in response.content.decode()


# --------------------------------------------------------------------------------------------------
# Who may do what


def test_a_viewer_reads_everything_but_changes_nothing(client, cast, lifecycle):
    client.force_login(cast.viewer)
    body = client.get(e_url("engagement-detail", lifecycle)).content.decode()
    assert 'type="checkbox"' not in body and "Decide gate" not in body and "Waive" not in body
    gate = lifecycle.phases.get(key="strategy").gate
    checkpoint = gate.checkpoints.first()
    item = lifecycle.checklist.first()
    writes = [
        e_url("checklist-toggle", lifecycle, item_uuid=item.uuid),
        e_url("checkpoint-resolve", lifecycle, gate_uuid=gate.uuid, checkpoint_uuid=checkpoint.uuid),
        e_url("gate-decide", lifecycle, gate_uuid=gate.uuid),
        e_url("phase-complete", lifecycle, phase_uuid=lifecycle.current_phase.uuid),
        e_url("engagement-resume", lifecycle),
        url("engagement-create", cast),
    ]
    for path in writes:
        assert client.post(path, {"action": "check", "option": "proceed-to-engineering"}, **HTMX).status_code == 403
    assert not ChecklistItem.objects.across_tenants("test").filter(done=True).exists()
    assert lifecycle.phases.get(key="strategy").status == PhaseStatus.ACTIVE
    assert "New engagement" not in client.get(url("portfolio", cast)).content.decode()


def test_another_organization_sees_none_of_it(client, cast, lifecycle):
    client.force_login(cast.outsider)
    assert client.get(e_url("engagement-detail", lifecycle)).status_code == 404
    assert client.get(url("portfolio", cast)).status_code == 404


def test_dates_are_rendered_for_the_browsers_date_picker(consultant, cast):
    body = consultant.get(url("engagement-create", cast)).content.decode()
    assert f'type="date" name="start_date" value="{timezone.localdate():%Y-%m-%d}"' in body


def test_seed_demo_starts_one_running_acme_engagement_once(client, db):
    from io import StringIO

    from django.core.management import call_command

    for _ in range(2):
        out = StringIO()
        call_command("seed_demo", stdout=out)
    assert (
        Engagement.objects.across_tenants("test").count() == 2
    )  # Acme's rebuild, and Globex's governance for the health checks
    engagement = Engagement.objects.across_tenants("test").get(client__name="Acme Robotics")
    assert engagement.status == EngagementStatus.ACTIVE
    assert engagement.playbook_version.playbook.key == "gtm-lifecycle" and engagement.current_phase.key == "strategy"
    assert engagement.checklist.filter(done=True).count() == 3 and engagement.team.count() == 2
    assert f"/engagements/{engagement.uuid}/" in out.getvalue()
    governance = Engagement.objects.across_tenants("test").get(client__name="Globex Software")
    assert governance.definition_versions.get().signed_at is not None  # measured against a signed architecture
    assert f"/engagements/{governance.uuid}/health/" in out.getvalue()
    client.login(username="owner@northwind.example", password="gtm-demo-2026")
    assert "Lifecycle stage rebuild" in client.get("/o/northwind/engagements/").content.decode()
    assert client.get(f"/o/northwind/engagements/{engagement.uuid}/").status_code == 200


# --------------------------------------------------------------------------------------------------
# Hypercare KPIs on the enablement page


def test_hypercare_kpis_are_recorded_on_the_enablement_page_and_the_3d_checkpoint_follows(consultant, cast, library):
    from engagements import enablement

    engagement = start(cast, library, "revenue-intelligence")
    for key in ("strategy", "engineering"):
        gate = clear_gate(engagement, key, cast.consultant)
        option = next(o for o in progression.gate_options(gate) if o.effect == "proceed")
        progression.decide_gate(gate=gate, option_key=option.key, actor=cast.consultant)
    start_on = timezone.localdate() - timedelta(days=20)
    enablement.set_hypercare(engagement=engagement, start=start_on, actor=cast.consultant)
    page = e_url("enablement", engagement)
    body = consultant.get(page).content.decode()
    for metric in ("Call recording coverage", "Manager dashboard access", "Forecast submission compliance"):
        assert metric in body
    assert "Rep self-review of calls" in body and body.count("Not recorded") >= 4

    response = consultant.post(page, {"kpi": "call-recording-coverage", "measured_on": "", "value": "120"})
    assert response.status_code == 400
    response = consultant.post(
        page, {"kpi": "call-recording-coverage", "measured_on": start_on + timedelta(days=14), "value": "120"}
    )
    assert response.status_code == 400 and "more than 100%" in response.content.decode()
    checkpoint = engagement.phases.get(key="enablement").gate.checkpoints.get(key="recording-coverage")

    figure = {"kpi": "call-recording-coverage", "measured_on": start_on + timedelta(days=14), "value": "91"}
    response = consultant.post(page, figure, follow=True)
    body = response.content.decode()
    assert "Below target" in body and "91" in body
    checkpoint.refresh_from_db()
    assert checkpoint.status == CheckpointStatus.OPEN
    overview = consultant.get(e_url("engagement-detail", engagement)).content.decode()
    assert "Checks itself when the hypercare KPI it names is recorded at its target" in overview
    assert "Call recording coverage: 91 on" in overview and "Below target at the end of its window" in overview

    figure = {"kpi": "call-recording-coverage", "measured_on": start_on + timedelta(days=15), "value": "95"}
    response = consultant.post(page, figure, follow=True)
    assert "At target" in response.content.decode()
    dialog = consultant.get(e_url("gate-decide", engagement, gate_uuid=checkpoint.gate.uuid), **HTMX).content.decode()
    assert "Hypercare KPIs" in dialog and "Forecast submission compliance</strong>: No figure recorded yet." in dialog
    checkpoint.refresh_from_db()
    assert checkpoint.status == CheckpointStatus.CHECKED and checkpoint.resolved_by == cast.consultant


def test_the_api_records_a_decision_not_to_proceed_with_its_unmet_checkpoints(cast, library):
    """The gate decide endpoint takes the same reason and unmet checkpoints as the page."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    engagement = start(cast, library, "partnership-success")
    gate = engagement.phases.get(key="strategy").gate
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=cast.consultant).key}")
    decide = f"/api/v1/o/{cast.org.slug}/gates/{gate.uuid}/decide/"
    options = {o["key"]: o for o in api.get(f"/api/v1/o/{cast.org.slug}/gates/{gate.uuid}/").json()["options"]}
    assert options["extend-strategy"]["ready"] is False and "platform-selected" in options["extend-strategy"]["about"]
    assert options["proceed-to-engineering"]["ready"] is True

    response = api.post(decide, {"option": "extend-strategy"}, format="json")
    assert response.status_code == 400 and "needs a reason" in str(response.json())
    response = api.post(
        decide,
        {"option": "extend-strategy", "note": "Commission structures undefined.", "unmet": ["programs-documented"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["ready"] is False and [u["key"] for u in body["unmet"]] == ["programs-documented"]
    assert not gate.checkpoints.exclude(status=CheckpointStatus.OPEN).exists()
    response = api.post(decide, {"option": "proceed-to-engineering"}, format="json")
    assert response.status_code == 400 and "neither checked nor waived" in str(response.json())
