"""A client stakeholder does her homework on a phone, in real headless Chromium against the live server.

Maya opens the portal through an emailed-style sign-in link, sees Acme's tasks with their due dates (one overdue),
marks the overdue one done; the consultant's engagement page then shows it done by her. Screenshots go to
test-artifacts/e2e/.
"""

from datetime import date, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from engagements import client_tasks, progression
from engagements.models import ChecklistItem
from engagements.portal_access import issue_portal_link, link_path
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS as SHOTS

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def homework(transactional_db, live_server, cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    load_library_playbooks()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Marketing approver")],
    )
    tasks = list(ChecklistItem.objects.filter(engagement=engagement).client_owned().order_by("order"))
    today = timezone.localdate()
    for task, days in zip(tasks, (-2, 5), strict=False):
        client_tasks.set_due_date(item=task, due_date=today + timedelta(days=days), actor=cast.consultant)
    return engagement, tasks


def test_a_stakeholder_marks_a_task_done_on_a_phone_and_the_consultant_sees_it(browser, live_server, cast, homework):
    engagement, tasks = homework
    overdue, upcoming, undated = tasks[:3]
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, timezone_id="UTC"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)

    link = issue_portal_link(stakeholder=cast.stakeholder)
    page.goto(live_server.url + link_path(link))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Welcome, Maya Patel")).to_be_visible()

    cards = page.locator("li.client-task")
    expect(cards).to_have_count(len(tasks))
    late = page.locator(f"#task-{overdue.uuid}")
    expect(late).to_have_class("client-task client-task--overdue")
    expect(late).to_contain_text("Overdue")
    expect(late).to_contain_text(f"Due {overdue.due_date.day} {overdue.due_date:%b %Y}")
    expect(late).to_contain_text("2 days overdue")
    expect(page.locator(f"#task-{upcoming.uuid}")).to_contain_text(
        f"Due {upcoming.due_date.day} {upcoming.due_date:%b %Y}"
    )
    expect(page.locator(f"#task-{undated.uuid}")).to_contain_text("No due date yet")
    expect(page.locator(".portal-standing")).to_contain_text(f"{len(tasks)} tasks")
    # Nothing wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "client-tasks-01-portal.png"), full_page=True)

    late.get_by_role("button", name="Mark done").click()
    late = page.locator(f"#task-{overdue.uuid}")
    expect(late).to_have_class("client-task client-task--done")
    expect(late).to_contain_text("Done by Maya Patel")
    expect(late.get_by_role("button", name="Mark done")).to_have_count(0)
    expect(page.locator(".portal-standing")).to_contain_text(f"{len(tasks) - 1} tasks")
    page.screenshot(path=str(SHOTS / "client-tasks-02-done.png"), full_page=True)
    context.close()

    consultant = browser.new_context(viewport={"width": 1366, "height": 900})
    page = consultant.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/?next=/o/{cast.org.slug}/engagements/{engagement.uuid}/")
    page.get_by_label("Email").fill(cast.consultant.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    item = page.locator(f"#item-{overdue.uuid}")
    expect(item).to_contain_text("Done by Maya Patel")
    expect(item.locator("input[type=checkbox]")).to_be_checked()
    page.screenshot(path=str(SHOTS / "client-tasks-03-consultant.png"), full_page=True)
    consultant.close()
