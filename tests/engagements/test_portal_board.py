"""The client portal's home: client-visible board lanes and published weekly updates of the stakeholder's
own client, and nothing else."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from engagements import cadence, progression
from engagements.models import (
    DecisionLogEntry,
    EngagementStatus,
    FeedbackItem,
    Release,
    ReleaseStatus,
    Risk,
    WorkItem,
    WorkStatus,
)
from engagements.portal_access import SESSION_KEY
from playbooks.models import Playbook
from tests.conftest import ensure_library


@pytest.fixture
def version(db):
    ensure_library()
    return Playbook.objects.library().get(key="gtm-lifecycle").latest_version()


def engagement_for(client_account, version, actor, name):
    """An engagement that names every stakeholder of its client (the portal shows only those)."""
    return progression.create_engagement(
        client=client_account,
        playbook_version=version,
        name=name,
        start_date=date(2026, 11, 2),
        actor=actor,
        stakeholders=[(s, "Stakeholder") for s in client_account.stakeholders.all()],
    )


def add(e, model, **fields):
    return cadence.save_board_item(item=model(engagement=e, organization=e.organization, **fields), actor=None)


def as_stakeholder(client, stakeholder):
    session = client.session
    session[SESSION_KEY] = str(stakeholder.uuid)
    session.save()
    return client


def publish(e, actor, text, week):
    update = cadence.draft_weekly_update(engagement=e, actor=actor, week_start=week)
    # The draft lists internal rows too; the consultant rewrites it for the client before publishing.
    update.what_changed, update.what_was_tested, update.needs_decision, update.what_happens_next = text, "-", "-", "-"
    cadence.save_weekly_update(update=update, actor=actor)
    return cadence.publish_weekly_update(update=update, actor=actor)


@pytest.fixture
def boards(cast, version):
    """Acme's engagement with shared and internal items and updates; Initech's with its own shared item."""
    acme = engagement_for(cast.client, version, cast.consultant, "Lifecycle rebuild")
    add(
        acme,
        WorkItem,
        title="Shared: configure lead status",
        status=WorkStatus.IN_PROGRESS,
        client_visible=True,
        owner="Carl",
    )
    add(acme, WorkItem, title="Internal: fix the sandbox", status=WorkStatus.IN_PROGRESS)
    add(
        acme,
        DecisionLogEntry,
        title="Shared: who owns SAL",
        category="ownership",
        client_visible=True,
        context="Sales and marketing both claim it",
    )
    add(acme, DecisionLogEntry, title="Internal: pricing tier", category="approval_steps")
    add(acme, Risk, title="Shared: data migration slips", client_visible=True, impact="high")
    add(acme, Risk, title="Internal: consultant on leave")
    add(acme, Release, title="Shared: release 1", status=ReleaseStatus.RELEASED, client_visible=True)
    add(acme, WorkItem, title="Shared: attribution report", client_visible=True)
    add(acme, FeedbackItem, title="Internal feedback never shows", client_visible=True)
    publish(acme, cast.consultant, "- Published: lead routing live", date(2026, 11, 2))
    draft = cadence.draft_weekly_update(engagement=acme, actor=cast.consultant, week_start=date(2026, 11, 9))
    draft.what_changed = "- Draft: not for the client yet"
    cadence.save_weekly_update(update=draft, actor=cast.consultant)

    closed = engagement_for(cast.client, version, cast.consultant, "Old audit")
    add(closed, WorkItem, title="Shared: from a closed engagement", status=WorkStatus.IN_PROGRESS, client_visible=True)
    closed.status = EngagementStatus.CLOSED
    closed.save(update_fields=["status"])

    initech = engagement_for(cast.sibling_client, version, cast.consultant, "Initech pipeline")
    add(initech, WorkItem, title="Initech secret work", status=WorkStatus.IN_PROGRESS, client_visible=True)
    publish(initech, cast.consultant, "- Initech update text", date(2026, 11, 2))
    return {"acme": acme, "initech": initech}


def test_stakeholder_sees_client_visible_lanes_and_published_updates_only(cast, client, boards):
    body = as_stakeholder(client, cast.stakeholder).get(reverse("portal:home")).content.decode()
    assert body.index("Waiting for you") < body.index("Lifecycle rebuild"), "the sign-off section comes first"
    for shared in [
        "Shared: configure lead status",
        "Shared: who owns SAL",
        "Sales and marketing both claim it",
        "Shared: data migration slips",
        "Shared: release 1",
        "Shared: attribution report",
    ]:
        assert shared in body
    for lane in ["Work in progress", "Decisions needed", "Risks", "Completed releases", "Upcoming work"]:
        assert lane in body
    assert "Internal" not in body and "Internal feedback never shows" not in body
    assert "- Published: lead routing live" in body and "Week of 2 Nov 2026" in body
    assert "Draft: not for the client yet" not in body
    assert "Old audit" not in body and "from a closed engagement" not in body
    assert "Initech" not in body


def test_stakeholder_of_another_client_sees_none_of_it(cast, client, boards):
    body = as_stakeholder(client, cast.sibling_stakeholder).get(reverse("portal:home")).content.decode()
    assert "Initech pipeline" in body and "Initech secret work" in body and "- Initech update text" in body
    assert "Lifecycle rebuild" not in body and "Shared:" not in body and "lead routing live" not in body


def test_stakeholder_of_another_organization_sees_none_of_it(cast, client, boards):
    body = as_stakeholder(client, cast.other_stakeholder).get(reverse("portal:home")).content.decode()
    assert "Lifecycle rebuild" not in body and "Initech" not in body and "Shared:" not in body
    assert "No engagement is running" in body


def test_empty_states(cast, client, version):
    engagement_for(cast.client, version, cast.consultant, "Lifecycle rebuild")
    body = as_stakeholder(client, cast.stakeholder).get(reverse("portal:home")).content.decode()
    assert "has not shared board items yet" in body and "No weekly update published yet" in body


def test_portal_home_query_count_does_not_grow_with_the_board(cast, client, boards):
    acme = boards["acme"]
    as_stakeholder(client, cast.stakeholder)
    client.get(reverse("portal:home"))

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("portal:home")).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    for i in range(30):
        add(acme, WorkItem, title=f"Shared work {i}", status=WorkStatus.IN_PROGRESS, client_visible=True)
        add(acme, Risk, title=f"Shared risk {i}", client_visible=True)
    for week in range(3):
        publish(acme, cast.consultant, f"- Week {week}", date(2026, 11, 16 + 7 * week))
    assert count() == before


def test_the_portal_home_fits_a_phone(cast, client, boards):
    body = as_stakeholder(client, cast.stakeholder).get(reverse("portal:home")).content.decode()
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in body
    assert 'class="lanes lanes--portal"' in body
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text()
    assert "@media (max-width: 560px) { .lanes { grid-template-columns: 1fr; } }" in css


def test_a_stakeholder_not_on_the_engagement_sees_nothing_of_it(cast, client, boards):
    """Same client, but not one of this engagement's stakeholders: its board and updates stay out of sight."""
    from engagements.models import Stakeholder

    bystander = Stakeholder.objects.create(
        organization=cast.org, client=cast.client, name="Bea Bystander", email="bea@acme.example"
    )
    body = as_stakeholder(client, bystander).get(reverse("portal:home")).content.decode()
    assert "Lifecycle rebuild" not in body and "Shared: configure lead status" not in body
