"""The client's tasks: customer-owned checklist items in the portal, the consultant's view of them, the API and the
daily digest of overdue ones (inline here; tests/test_task_digest_worker.py runs it on a real worker)."""

import re
import zoneinfo
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import activity_words
from accounts.models import ActivityEntry, DomainError
from engagements import client_tasks, progression
from engagements.models import ChecklistItem, EngagementStakeholder, Stakeholder, TaskDigest
from engagements.portal_access import SESSION_KEY
from tests.conftest import body_text

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks" / "library"
API = "/api/v1/o/alpha"


def yaml_client_items(playbook: str) -> list[str]:
    """The keys of the checklist items the playbook's YAML gives to the customer or the client, read from the file
    itself (not through the loader or the engagement)."""
    spec = yaml.safe_load((LIBRARY / f"{playbook}.yaml").read_text())
    keys = []

    def walk(node):
        if isinstance(node, dict):
            for name, value in node.items():
                if name in ("checklist", "activities", "client_involvement") and isinstance(value, list):
                    keys.extend(
                        i["key"]
                        for i in value
                        if isinstance(i, dict) and str(i.get("owner", "")).lower() in ("customer", "client")
                    )
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return keys


def portal_as(stakeholder, **headers) -> Client:
    client = Client(**headers)
    session = client.session
    session[SESSION_KEY] = str(stakeholder.uuid)
    session.save()
    return client


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def tasks_of(engagement):
    return ChecklistItem.objects.filter(engagement=engagement).client_owned().order_by("order")


# --------------------------------------------------------------------------------------------------
# Which items are the client's


def test_client_owned_items_are_the_ones_the_playbook_gives_the_customer(engagement):
    expected = yaml_client_items("gtm-lifecycle")
    assert expected, "the GTM Lifecycle playbook gives the customer its Track A homework"
    assert [t.key for t in tasks_of(engagement)] == expected
    assert all(t.is_client_task for t in tasks_of(engagement))
    architect_item = ChecklistItem.objects.filter(engagement=engagement, owner="architect").first()
    assert not architect_item.is_client_task


def test_the_delivery_model_client_involvement_counts_as_client_work(cast, library):
    e = progression.create_engagement(
        client=cast.client,
        playbook_version=library["delivery-model"],
        name="Delivery",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    skipped = set(ChecklistItem.objects.filter(engagement=e, phase__status="skipped").values_list("key", flat=True))
    expected = [k for k in yaml_client_items("delivery-model") if k not in skipped]
    assert expected and [t.key for t in tasks_of(e)] == expected


# --------------------------------------------------------------------------------------------------
# Completing a task


def test_the_stakeholder_marks_a_task_done_in_the_portal_with_ip_and_user_agent(cast, engagement, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    task = tasks_of(engagement).first()
    portal = portal_as(
        cast.stakeholder,
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9",
        HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Mobile Safari",
    )
    response = portal.post(reverse("portal:task-done", args=[task.uuid]))
    assert response.status_code == 302 and response["Location"].endswith(f"#task-{task.uuid}")
    task.refresh_from_db()
    assert task.done and task.done_by_stakeholder == cast.stakeholder and task.done_by is None
    assert task.done_how == "Maya Patel"
    entry = ActivityEntry.objects.for_org(cast.org).get(verb="client_task.completed")
    assert entry.ip == "203.0.113.9"  # the address the one trusted proxy saw, not what the client wrote
    assert entry.data["user_agent"] == "Mozilla/5.0 (iPhone) Mobile Safari"
    assert entry.actor_label == "Maya Patel <maya@acme.example>"
    assert activity_words.sentence(entry) == (
        f"Maya Patel <maya@acme.example> marked the task “{task.text}” done on Lifecycle rebuild"
    )
    # A second click changes nothing and logs nothing.
    portal.post(reverse("portal:task-done", args=[task.uuid]))
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="client_task.completed").count() == 1


def test_a_consultant_ticks_on_the_clients_behalf_and_it_is_recorded_as_such(cast, engagement, client):
    task = tasks_of(engagement).first()
    client.force_login(cast.consultant)
    url = reverse("engagements:checklist-toggle", args=[cast.org.slug, engagement.uuid, task.uuid])
    response = client.post(url, {"done": "1"}, HTTP_HX_REQUEST="true")
    assert "Done by Carl on behalf of the client" in response.content.decode()
    entry = ActivityEntry.objects.for_org(cast.org).get(verb="client_task.ticked_on_behalf")
    assert activity_words.sentence(entry) == (
        f"carl@alpha.example ticked “{task.text}” on Lifecycle rebuild on behalf of the client"
    )
    # The stakeholder's later click keeps who did it.
    portal_as(cast.stakeholder).post(reverse("portal:task-done", args=[task.uuid]))
    task.refresh_from_db()
    assert task.done_by == cast.consultant and task.done_by_stakeholder is None


def test_a_task_completes_itself_with_its_reason(cast, engagement):
    task = tasks_of(engagement).get(key="complete-intake-form")
    client_tasks.complete_client_task(task, auto_reason="every required intake field filled")
    task.refresh_from_db()
    assert task.done and task.done_how == "itself (every required intake field filled)"
    entry = ActivityEntry.objects.for_org(cast.org).get(verb="client_task.auto_completed")
    assert "by itself: every required intake field filled" in activity_words.sentence(entry)


def test_completing_needs_exactly_one_doer_and_a_client_task(cast, engagement):
    task = tasks_of(engagement).first()
    with pytest.raises(ValueError, match="exactly one"):
        client_tasks.complete_client_task(task)
    with pytest.raises(ValueError, match="exactly one"):
        client_tasks.complete_client_task(task, by_stakeholder=cast.stakeholder, auto_reason="both")
    architect_item = ChecklistItem.objects.filter(engagement=engagement, owner="architect").first()
    with pytest.raises(DomainError, match="consultancy's work"):
        client_tasks.complete_client_task(architect_item, by_stakeholder=cast.stakeholder)
    with pytest.raises(DomainError, match="Peter Gibbons is not a stakeholder of Lifecycle rebuild"):
        client_tasks.complete_client_task(task, by_stakeholder=cast.sibling_stakeholder)


def test_unticking_clears_who_did_it(cast, engagement):
    task = tasks_of(engagement).first()
    client_tasks.complete_client_task(task, by_stakeholder=cast.stakeholder)
    progression.set_checklist_item(item=task, done=False, actor=cast.consultant)
    task.refresh_from_db()
    assert not task.done and task.done_by_stakeholder is None and task.done_how == ""


# --------------------------------------------------------------------------------------------------
# The portal


def test_portal_home_shows_tasks_with_due_dates_and_overdue_highlighted(cast, engagement):
    today = timezone.localdate()
    first, second, third = tasks_of(engagement)[:3]
    client_tasks.set_due_date(item=first, due_date=today - timedelta(days=3), actor=cast.consultant)
    client_tasks.set_due_date(item=second, due_date=today + timedelta(days=4), actor=cast.consultant)
    body = portal_as(cast.stakeholder).get(reverse("portal:home")).content.decode()
    assert "Your tasks" in body and f'id="task-{first.uuid}"' in body
    assert f'client-task client-task--overdue" id="task-{first.uuid}"' in body
    assert f'client-task" id="task-{second.uuid}"' in body
    assert "3\xa0days overdue" in body
    assert f'Due <time datetime="{second.due_date:%Y-%m-%d}">' in body
    assert "No due date yet" in body  # the third
    assert third.sub_phase.purpose in body  # why: the method's purpose text
    assert f"{tasks_of(engagement).count()} tasks" in body  # waiting on you
    assert "Phase</dt><dd>Strategy" in body and "Now: Pre-Kickoff. Strategy closes at Strategic Sign-Off." in body


def test_overdue_is_judged_on_the_stakeholders_calendar(cast, engagement):
    """A task due on today's UTC date: never overdue 11 hours behind UTC, overdue 14 hours ahead once the date there
    has moved on."""
    task = tasks_of(engagement).first()
    now = timezone.now()
    due = now.astimezone(timezone.get_fixed_timezone(0)).date()
    client_tasks.set_due_date(item=task, due_date=due, actor=cast.consultant)
    ahead = "Pacific/Kiritimati"  # UTC+14: its date is always at or past the UTC date
    behind = "Pacific/Pago_Pago"  # UTC-11: its date is always at or before the UTC date
    portal = portal_as(cast.stakeholder)
    portal.cookies["tz"] = behind
    assert "client-task--overdue" not in portal.get(reverse("portal:home")).content.decode()
    portal.cookies["tz"] = ahead
    kiritimati_date = timezone.localtime(now, timezone=zoneinfo.ZoneInfo(ahead)).date()
    overdue = "client-task--overdue" in portal.get(reverse("portal:home")).content.decode()
    assert overdue == (kiritimati_date > due)


def test_a_stakeholder_cannot_complete_another_engagements_task(cast, engagement, library):
    not_named = progression.create_engagement(
        client=cast.client,
        playbook_version=library["gtm-lifecycle"],
        name="Without Maya",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    task = tasks_of(not_named).first()
    portal = portal_as(cast.stakeholder)
    assert portal.post(reverse("portal:task-done", args=[task.uuid])).status_code == 404
    assert "Without Maya" not in portal.get(reverse("portal:home")).content.decode()
    assert not ChecklistItem.objects.for_org(cast.org).get(pk=task.pk).done


def test_a_task_in_a_closed_part_is_refused_with_a_message(cast, engagement):
    task = tasks_of(engagement).first()
    engagement.status = "on_hold"
    engagement.save(update_fields=["status"])
    portal = portal_as(cast.stakeholder)
    # An engagement on hold is still shown (it is open) and its tasks cannot change.
    response = portal.post(reverse("portal:task-done", args=[task.uuid]), follow=True)
    assert "on hold" in response.content.decode()
    assert not ChecklistItem.objects.for_org(cast.org).get(pk=task.pk).done


def test_portal_home_empty_states(cast):
    body = portal_as(cast.stakeholder).get(reverse("portal:home")).content.decode()
    assert "No engagement is running" in body


# --------------------------------------------------------------------------------------------------
# The consultant's side


def test_the_consultant_sets_a_due_date_inline(cast, engagement, client):
    task = tasks_of(engagement).first()
    client.force_login(cast.consultant)
    page = client.get(reverse("engagements:engagement-detail", args=[cast.org.slug, engagement.uuid])).content.decode()
    url = reverse("engagements:client-task-due", args=[cast.org.slug, engagement.uuid, task.uuid])
    assert f'hx-post="{url}"' in page
    yesterday = timezone.localdate() - timedelta(days=1)
    response = client.post(url, {"due_date": yesterday.isoformat()}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert f'value="{yesterday:%Y-%m-%d}"' in body and "Overdue" in body
    task.refresh_from_db()
    assert task.due_date == yesterday
    entry = ActivityEntry.objects.for_org(cast.org).get(verb="client_task.due_date_set")
    assert activity_words.sentence(entry).endswith(f"to {yesterday.isoformat()}")
    # Not a date: a message where the person acted, the picker keeps the saved date.
    body = client.post(url, {"due_date": "31/02/2027"}, HTTP_HX_REQUEST="true").content.decode()
    assert "is not a date" in body and f'value="{yesterday:%Y-%m-%d}"' in body
    # Cleared.
    client.post(url, {"due_date": ""}, HTTP_HX_REQUEST="true")
    task.refresh_from_db()
    assert task.due_date is None


def test_a_due_date_is_for_client_tasks_only(cast, engagement, client):
    item = ChecklistItem.objects.filter(engagement=engagement, owner="architect").first()
    client.force_login(cast.consultant)
    url = reverse("engagements:client-task-due", args=[cast.org.slug, engagement.uuid, item.uuid])
    assert client.post(url, {"due_date": "2027-01-05"}).status_code == 404


def test_the_home_page_lists_client_tasks_overdue(cast, engagement, client):
    today = timezone.localdate()
    late, later, done = tasks_of(engagement)[:3]
    client_tasks.set_due_date(item=late, due_date=today - timedelta(days=5), actor=cast.consultant)
    client_tasks.set_due_date(item=later, due_date=today, actor=cast.consultant)  # due today: not overdue yet
    client_tasks.set_due_date(item=done, due_date=today - timedelta(days=9), actor=cast.consultant)
    client_tasks.complete_client_task(done, by_stakeholder=cast.stakeholder)
    client.force_login(cast.owner)
    home = reverse("accounts:org-home", args=[cast.org.slug])
    assert [(t.key, t.days_overdue) for t in client.get(home).context["client_tasks_overdue"]] == [(late.key, 5)]
    client_tasks.set_due_date(item=later, due_date=today - timedelta(days=1), actor=cast.consultant)
    response = client.get(home)
    assert [(t.key, t.days_overdue) for t in response.context["client_tasks_overdue"]] == [
        (late.key, 5),
        (later.key, 1),
    ]
    body = response.content.decode()
    assert 'Client tasks overdue <span class="muted small">(2)' in body
    assert f"/engagements/{engagement.uuid}/#item-{late.uuid}" in body and "5 days overdue" in body


# --------------------------------------------------------------------------------------------------
# The API


def test_api_lists_reads_dates_and_completes_client_tasks(cast, engagement):
    api = api_as(cast.consultant)
    listed = api.get(f"{API}/client-tasks/", {"engagement": engagement.uuid}).json()
    assert [t["key"] for t in listed["results"]] == [t.key for t in tasks_of(engagement)]
    task = tasks_of(engagement).first()
    url = f"{API}/client-tasks/{task.uuid}/"
    response = api.patch(url, {"due_date": "2020-01-06"}, format="json")
    assert response.status_code == 200 and response.json()["due_date"] == "2020-01-06"
    assert response.json()["overdue"] is True
    assert api.patch(url, {"done": True}, format="json").status_code == 400  # completing has its own action
    response = api.post(f"{url}complete/")
    assert response.status_code == 200
    assert response.json()["done"] is True and response.json()["done_how"] == "Carl on behalf of the client"
    assert response.json()["overdue"] is False
    assert api.get(f"{API}/client-tasks/", {"done": "false"}).json()["count"] == tasks_of(engagement).count() - 1
    architect_item = ChecklistItem.objects.filter(engagement=engagement, owner="architect").first()
    assert api.get(f"{API}/client-tasks/{architect_item.uuid}/").status_code == 404
    assert api_as(cast.viewer).post(f"{url}complete/").status_code == 403
    assert api_as(cast.outsider).get(url).status_code in (403, 404)


def test_the_schema_documents_client_tasks(cast):
    schema = api_as(cast.consultant).get("/api/v1/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert "/api/v1/o/{org_slug}/client-tasks/" in paths
    assert "post" in paths["/api/v1/o/{org_slug}/client-tasks/{item_uuid}/complete/"]
    assert "patch" in paths["/api/v1/o/{org_slug}/client-tasks/{item_uuid}/"]
    assert "due_date" in schema["components"]["schemas"]["ClientTask"]["properties"]


# --------------------------------------------------------------------------------------------------
# The daily digest (inline)


def overdue_setup(cast, engagement):
    today = timezone.localdate()
    first, second = tasks_of(engagement)[:2]
    client_tasks.set_due_date(item=first, due_date=today - timedelta(days=2), actor=cast.consultant)
    client_tasks.set_due_date(item=second, due_date=today + timedelta(days=2), actor=cast.consultant)
    return first, today


def test_digest_lists_overdue_tasks_once_a_day(cast, engagement, smtp):
    first, today = overdue_setup(cast, engagement)
    assert client_tasks.digest_recipients(today) == [cast.stakeholder.pk]
    assert client_tasks.send_digest(cast.stakeholder.pk, today) is not None
    assert client_tasks.send_digest(cast.stakeholder.pk, today) is None  # the day is claimed
    [message] = smtp.wait_for(1)
    assert message["To"] == "maya@acme.example" and message["Subject"].startswith("1 overdue task for Acme")
    text = body_text(message)
    assert first.text in text and "2 days overdue" in text and "/portal/" in text and "/portal/unsubscribe/" in text
    digest = TaskDigest.objects.for_org(cast.org).get()
    assert digest.day == today and digest.tasks == 1 and digest.sent_at is not None

    # The email's link signs her in (no second email to ask for) and lands on her tasks; it works once.
    link = re.search(r"(/portal/auth/\S+)", text).group(1)
    assert "works once, for 7 days" in text
    browser = Client()
    signed_in = browser.post(link)
    assert signed_in.status_code == 302 and signed_in["Location"] == reverse("portal:home")
    assert first.text in browser.get(reverse("portal:home")).content.decode()
    assert b"already been used" in Client().post(link).content


def test_digest_honours_the_unsubscribe_and_the_engagements_emails(cast, engagement):
    _, today = overdue_setup(cast, engagement)
    Stakeholder.objects.for_org(cast.org).filter(pk=cast.stakeholder.pk).update(health_reports=False)
    assert client_tasks.digest_recipients(today) == []
    assert client_tasks.send_digest(cast.stakeholder.pk, today) is None
    Stakeholder.objects.for_org(cast.org).filter(pk=cast.stakeholder.pk).update(health_reports=True)
    EngagementStakeholder.objects.for_org(cast.org).update(receives_updates=False)
    assert client_tasks.digest_recipients(today) == []
    assert client_tasks.send_digest(cast.stakeholder.pk, today) is None
    assert not TaskDigest.objects.for_org(cast.org).exists()


def test_a_failed_send_gives_the_day_back(cast, engagement, smtp):
    _, today = overdue_setup(cast, engagement)
    smtp.stop()
    with pytest.raises(OSError):
        client_tasks.send_digest(cast.stakeholder.pk, today)
    assert not TaskDigest.objects.for_org(cast.org).exists()
