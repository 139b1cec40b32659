"""A client stakeholder signs the definitions on a phone, in real headless Chromium against the live server.

Signs in through a magic link, opens the pending sign-off, answers every term and stage (one No with a
comment), submits and sees the confirmation with the version's fingerprint. Screenshots go to
test-artifacts/e2e/ for a human to look at.
"""

from datetime import date

import pytest
from playwright.sync_api import expect

from engagements import definitions, progression
from engagements.models import DecisionLogEntry, Signature
from engagements.portal_access import issue_portal_link, link_path
from playbooks.models import Playbook
from tests.conftest import ensure_library
from tests.e2e.conftest import ARTIFACTS as SHOTS

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def pending(transactional_db, live_server, cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ensure_library()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Marketing approver")],
    )
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    return version


def shot(page, name: str, **kwargs) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"signoff-{name}.png"), **kwargs)


def test_a_stakeholder_signs_the_definitions_on_a_phone(browser, live_server, cast, pending):

    version = pending
    total = len(version.items)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)

    # The magic link: opening it shows a button (mail scanners must not use it up); the button signs in.
    link = issue_portal_link(stakeholder=cast.stakeholder)
    page.goto(live_server.url + link_path(link))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Welcome, Maya Patel")).to_be_visible()

    page.goto(live_server.url + "/portal/signoffs/")
    pending_card = page.locator(".pending-card").first
    expect(pending_card).to_contain_text("Lifecycle rebuild")
    expect(pending_card).to_contain_text(f"{total} items to answer")
    shot(page, "01-signoffs-pending")

    pending_card.get_by_role("link", name="Review and sign").click()
    expect(page.get_by_role("heading", name="Lifecycle rebuild")).to_be_visible()
    progress = page.locator("#signoff-progress")
    expect(progress.locator(".signoff-progress-count")).to_have_text(f"0 of {total} answered")
    submit = page.get_by_role("button", name="Submit answers")
    expect(submit).to_be_in_viewport()  # the summary bar sticks to the bottom of the screen
    shot(page, "02-form-top")

    items = page.locator("fieldset.signoff-item")
    expect(items).to_have_count(total)
    # Large touch targets: each answer is at least 48 px tall and half the card wide.
    yes_box = items.first.locator("label.choice--yes").bounding_box()
    assert yes_box["height"] >= 48 and yes_box["width"] >= 140, yes_box

    contested = 2  # the third item (a term) gets a No
    for n in range(total):
        item = items.nth(n)
        if n == contested:
            item.locator("label.choice--no").tap()
            comment = item.get_by_label("What should change")
            expect(comment).to_be_visible()
            expect(comment).to_be_focused()
            comment.fill("Add a 90-day recency window to the score.")
            item.scroll_into_view_if_needed()
            shot(page, "03-no-reveals-a-comment")
        else:
            item.locator("label.choice--yes").tap()
            expect(item.get_by_label("What should change")).to_be_hidden()
    expect(progress.locator(".signoff-progress-count")).to_have_text(f"{total} of {total} answered")
    expect(progress.locator(".signoff-progress-no")).to_have_text("1 change requested")
    expect(submit).to_be_in_viewport()
    shot(page, "04-all-answered")

    submit.tap()
    done = page.get_by_role("heading", name="Thank you: your answers are recorded")
    expect(done).to_be_visible()
    expect(page.locator(".signoff-done .hash-full")).to_have_text(version.content_hash)
    expect(page.locator(".signoff-done")).to_contain_text("asked for a change on 1")
    shot(page, "05-confirmation")
    shot(page, "06-confirmation-full", full_page=True)

    # No horizontal scrolling on a phone, on any of these pages.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()

    signature = Signature.objects.get(version=version, stakeholder=cast.stakeholder)
    label = dict(version.items)[version.items[contested][0]]
    assert signature.decisions[version.items[contested][0]] == "no"
    assert signature.comments == {version.items[contested][0]: "Add a 90-day recency window to the score."}
    assert "Chrome" in signature.user_agent and signature.ip == "127.0.0.1"
    assert DecisionLogEntry.objects.for_org(cast.org).filter(title__contains=label).exists()
