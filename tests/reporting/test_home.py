"""The organization's home (the consultant's day): what it counts, read back against rows made here."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import activity
from engagements import definitions, progression
from engagements.models import ChecklistItem, Engagement, Gate, GateStatus, SignoffRequest
from playbooks.models import Playbook
from reporting import periods
from reporting.models import HealthCheckRun, HealthResult
from tests.conftest import ensure_library, make_stakeholder

pytestmark = pytest.mark.django_db


def start(cast, name, team, **kwargs):
    ensure_library()
    return progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name=name,
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        team=team,
        **kwargs,
    )


def flag(cast, run, status, task):
    return HealthResult.objects.create(
        organization=cast.org, run=run, task_key=task, task_name=task, kind="task", metric="m", status=status,
        message=f"{task} is off",
    )  # fmt: skip


def home(client, cast):
    return client.get(reverse("accounts:org-home", kwargs={"org_slug": cast.org.slug}))


@pytest.fixture
def day(cast):
    """Carl architects two engagements, Alice one; Carl's first waits on one of two signers, and has red flags."""
    mine = start(cast, "Carl's lifecycle", [(cast.consultant, "architect")])
    other_mine = start(cast, "Carl's second", [(cast.consultant, "engineer")])
    alices = start(cast, "Alice's", [(cast.owner, "architect")])
    second = make_stakeholder(cast.client, "Raj Iyer", "raj@acme.example", title="VP Sales")
    version = definitions.publish(engagement=mine, signers=[cast.stakeholder, second], actor=cast.consultant)
    definitions.sign(
        version=version, stakeholder=cast.stakeholder, decisions={k: "yes" for k, _ in version.items}, comments={}
    )
    SignoffRequest.objects.filter(version=version, stakeholder=second).update(
        created_at=timezone.now() - timedelta(days=4, hours=1)
    )
    items = list(ChecklistItem.objects.filter(engagement=mine))
    for item in items[:5]:
        progression.set_checklist_item(item=item, done=True, actor=cast.consultant)
    period = periods.due_period(timezone.localdate())
    run = HealthCheckRun.objects.create(organization=cast.org, engagement=mine, period=period, status="succeeded")
    earlier = HealthCheckRun.objects.create(
        organization=cast.org, engagement=mine, period=periods.add_months(period, -1), status="succeeded"
    )
    for status, task in (("red", "MQL volume"), ("red", "SAL conversion"), ("explained", "Win rate"), ("ok", "X")):
        flag(cast, run, status, task)
    flag(cast, earlier, "red", "Last month's flag")
    alices_run = HealthCheckRun.objects.create(organization=cast.org, engagement=alices, period=period)
    flag(cast, alices_run, "red", "Alice's flag")
    return {"mine": mine, "other_mine": other_mine, "alices": alices, "items": items, "raj": second}


def test_the_home_shows_my_engagements_gates_signoffs_flags_and_activity_in_words(client, cast, day):
    client.force_login(cast.consultant)
    response = home(client, cast)
    assert response.status_code == 200
    context, body = response.context, response.content.decode()
    assert context["mine"] is True
    assert [e.name for e in context["engagements"]] == ["Carl's lifecycle", "Carl's second"]
    lifecycle = context["engagements"][0]
    assert lifecycle.progress == 5 * 100 // len(day["items"]) and lifecycle.phase_name == "Strategy"
    # the open gates of my engagements, counted from the gates themselves
    open_gates = Gate.objects.for_org(cast.org).filter(
        engagement__in=[day["mine"], day["other_mine"]], status=GateStatus.OPEN
    )
    assert sorted(g.pk for g in context["gates"]) == sorted(g.pk for g in open_gates) and open_gates.exists()
    # Raj was asked four days ago and has not signed; Maya signed
    assert [(r.stakeholder.name, r.days_waiting) for r in context["signoffs"]] == [("Raj Iyer", 4)]
    assert "Raj Iyer</strong> has not answered" in body and "waiting 4 days" in body
    # this month's unexplained red flags of my engagements: not last month's, not explained ones, not Alice's
    assert sorted(f.task_name for f in context["flags"]) == ["MQL volume", "SAL conversion"]
    assert 'Red flags this month <span class="muted small">(2)' in body
    # activity in plain words, never a raw code
    assert "carl@alpha.example ticked" in body and "started the engagement Carl&#x27;s lifecycle" in body
    assert "checklist.checked" not in body and "engagement.created" not in body


def test_a_signed_version_owes_no_signature(client, cast, day):
    version = day["mine"].definition_versions.get()
    definitions.sign(
        version=version, stakeholder=day["raj"], decisions={k: "yes" for k, _ in version.items}, comments={}
    )
    client.force_login(cast.consultant)
    assert home(client, cast).context["signoffs"] == []


def test_someone_on_no_team_sees_every_open_engagement(client, cast, day):
    Engagement.objects.for_org(cast.org).filter(pk=day["alices"].pk).update(status="closed")
    client.force_login(cast.viewer)
    context = home(client, cast).context
    assert context["mine"] is False
    assert {e.name for e in context["engagements"]} == {"Carl's lifecycle", "Carl's second"}
    assert len(context["flags"]) == 2  # Alice's engagement is closed: its flag is out of view


def test_home_queries_do_not_grow_with_engagements(client, cast, day):
    client.force_login(cast.consultant)
    home(client, cast)

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert home(client, cast).status_code == 200
        return len(queries)

    few = count()
    for n in range(6):
        e = start(cast, f"More {n}", [(cast.consultant, "architect")])
        activity.record(organization=cast.org, verb="client.updated", actor=cast.owner, target=cast.client)
        definitions.publish(engagement=e, signers=[cast.stakeholder], actor=cast.consultant)
    assert count() == few
