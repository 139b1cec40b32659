"""What the sign-off screens promise, in real headless Chromium against the live server.

- A stakeholder answers part of a version, reloads, signs out, comes back through a new sign-in link and finds
  every answer and "n of N answered"; screenshots of the portal at 1366 and 390 px wide.
- Four approver roles with one signed: the gate panel keeps the checkpoint open and names the missing three.
- "Publish and email" on a weekly update publishes the edit on screen, never saved before.
"""

import re
from datetime import date
from urllib.parse import unquote_plus

import pytest
from playwright.sync_api import expect

from engagements import cadence, definitions, progression
from engagements.models import (
    DefinitionTerm,
    SignoffAnswer,
    StageDefinition,
    Stakeholder,
    TeamRole,
    UpdateStatus,
    WeeklyUpdate,
)
from engagements.portal_access import issue_portal_link, link_path
from playbooks.models import Playbook
from tests.conftest import PASSWORD, ensure_library
from tests.e2e.conftest import ARTIFACTS

WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def shot(page, name: str, **kwargs) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"enforce-{name}.png"), **kwargs)


@pytest.fixture
def engagement(transactional_db, live_server, cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.SITE_URL = live_server.url
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ensure_library()
    people = {
        "VP RevOps": Stakeholder.objects.create(organization=cast.org, client=cast.client, name="Rita Ops",
                                                email="rita@acme.example", title="VP RevOps"),
        "VP Marketing": cast.stakeholder,
        "VP Sales": Stakeholder.objects.create(organization=cast.org, client=cast.client, name="Tom Becker",
                                               email="tom@acme.example", title="VP Sales"),
        "VP CS": Stakeholder.objects.create(organization=cast.org, client=cast.client, name="Cas Success",
                                            email="cas@acme.example", title="VP CS"),
    }
    e = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        team=[(cast.consultant, TeamRole.ARCHITECT)],
        stakeholders=[(s, role) for role, s in people.items()],
    )
    e.cast, e.people = cast, people
    e.version = definitions.publish(
        engagement=e, signers=list(people.values()), approvers=dict(people), actor=cast.consultant
    )
    return e


def signed_in_consultant(browser, live_server, cast):
    page = browser.new_context(viewport=WIDE).new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(cast.consultant.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Engagements")).to_be_visible()
    return page


def portal_sign_in(page, live_server, stakeholder) -> None:
    page.goto(live_server.url + link_path(issue_portal_link(stakeholder=stakeholder)))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Welcome, {stakeholder.name}")).to_be_visible()


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1366", "390"])
def test_partial_answers_survive_a_reload_and_a_new_sign_in_link(browser, live_server, engagement, viewport):
    maya, version = engagement.cast.stakeholder, engagement.version
    total = (DefinitionTerm.objects.filter(engagement=engagement).count()
             + StageDefinition.objects.filter(engagement=engagement).count())
    width = viewport["width"]
    context = browser.new_context(viewport=viewport, is_mobile=width < 500, has_touch=width < 500)
    page = context.new_page()
    page.set_default_timeout(15_000)
    portal_sign_in(page, live_server, maya)
    page.goto(f"{live_server.url}/portal/signoffs/{version.uuid}/")
    count = page.locator("#signoff-progress .signoff-progress-count")
    expect(count).to_have_text(f"0 of {total} answered")

    items = page.locator("fieldset.signoff-item")
    answered = 12
    for n in range(answered):
        items.nth(n).locator("label.choice--yes").click()
        expect(items.nth(n).locator(".signoff-saved")).to_have_text("Saved")  # the server has it
    no_item = items.nth(answered)
    no_item.locator("label.choice--no").click()

    def typed(response) -> bool:
        return "/answer/" in response.url and "Name the scoring" in unquote_plus(response.request.post_data or "")

    with page.expect_response(typed) as saved:  # typing is saved without leaving the box
        no_item.get_by_label("What should change").fill("Name the scoring model.")
    assert saved.value.ok
    expect(count).to_have_text(f"{answered + 1} of {total} answered")
    shot(page, f"{width}-01-partly-answered")

    page.reload()
    expect(count).to_have_text(f"{answered + 1} of {total} answered")
    expect(items.nth(0).locator("input[value=yes]")).to_be_checked()
    expect(no_item.locator("input[value=no]")).to_be_checked()
    expect(no_item.get_by_label("What should change")).to_have_value("Name the scoring model.")

    # Leave, and come back another day through a new link: nothing is lost, nothing was signed.
    page.get_by_role("button", name="Sign out").click()
    context.clear_cookies()
    portal_sign_in(page, live_server, maya)
    page.get_by_role("link", name="Review and sign").first.click()
    expect(count).to_have_text(f"{answered + 1} of {total} answered")
    shot(page, f"{width}-02-resumed-through-a-new-link")
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    for n in range(answered + 1, total):
        items.nth(n).locator("label.choice--yes").click()
    expect(count).to_have_text(f"{total} of {total} answered")
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name="Thank you: your answers are recorded")).to_be_visible()
    expect(page.locator(".signoff-done")).to_contain_text(f"you approved {total - 1} items and asked for a change on 1")
    shot(page, f"{width}-03-submitted")
    assert SignoffAnswer.objects.filter(version=version, stakeholder=maya).exclude(value="").count() >= total
    context.close()


def test_four_approver_roles_with_one_signed_keep_the_checkpoint_open_and_name_the_missing_three(
    browser, live_server, engagement
):
    cast, people, version = engagement.cast, engagement.people, engagement.version
    definitions.sign(version=version, stakeholder=people["VP Marketing"],
                     decisions={k: "yes" for k, _ in version.items}, comments={})
    page = signed_in_consultant(browser, live_server, cast)
    page.goto(f"{live_server.url}/o/{cast.org.slug}/engagements/{engagement.uuid}/")
    checkpoint = page.locator("#gate-panel li.checkpoint", has_text="Definition Alignment Document signed off")
    expect(checkpoint.locator(".badge").first).to_have_text("Open")
    expect(checkpoint).to_contain_text("1 of 4 approvers signed")
    expect(checkpoint).to_contain_text("Signed: VP Marketing (Maya Patel)")
    missing = checkpoint.locator(".signoff-missing")
    for role in ("VP RevOps", "VP Sales", "VP CS"):
        expect(missing).to_contain_text(f"{role} ({people[role].name}) — not answered")
    expect(missing).not_to_contain_text("VP Marketing")
    checkpoint.scroll_into_view_if_needed()
    shot(page, "1366-gate-missing-three", full_page=False)
    page.context.close()


def test_publish_and_email_publishes_the_unsaved_edit_on_screen(browser, live_server, engagement):
    cast = engagement.cast
    update = cadence.draft_weekly_update(engagement=engagement, actor=cast.consultant)
    page = signed_in_consultant(browser, live_server, cast)
    page.goto(f"{live_server.url}/o/{cast.org.slug}/engagements/{engagement.uuid}/updates/{update.uuid}/")
    field = page.get_by_label("What changed")
    field.fill("- Lead routing is live for EMEA (typed, never saved)")
    page.get_by_role("button", name=re.compile(r"^Publish and email")).click()  # the confirm dialog is accepted
    expect(page.get_by_text("Your edits were saved and published.")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Lead routing is live for EMEA (typed, never saved)")
    update.refresh_from_db()
    assert update.status == UpdateStatus.PUBLISHED
    assert update.what_changed == "- Lead routing is live for EMEA (typed, never saved)"
    assert WeeklyUpdate.objects.filter(engagement=engagement).count() == 1
    page.context.close()
