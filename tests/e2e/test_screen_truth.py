"""What the screen says is true, in a real browser (headless Debian Chromium against Django's live server).

A failed htmx save says why, where the person acted, and the control goes back to what the server holds; long
unbroken names do not widen pages. Screenshots land in test-artifacts/e2e/.
"""

from datetime import date

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from crm_connectors.audit import services as audit_services
from crm_connectors.http import LocalStore
from crm_connectors.models import FindingState
from crm_sandbox import SalesforceSandbox
from crm_sandbox.connection import sandbox_connection
from engagements import progression
from engagements.models import ClientAccount
from playbooks.models import Playbook
from tests.conftest import PASSWORD, ensure_library
from tests.e2e.conftest import ARTIFACTS


def open_page(browser, width: int, height: int = 900):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB")
    context.set_default_timeout(20_000)
    return context, context.new_page()


def sign_in(page, live_server, user, next_path: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_refused_finding_update_says_why_and_puts_the_select_back(
    transactional_db, live_server, cast, browser, crm_sandbox_settings
):
    with SalesforceSandbox(profile="demo", seed=3, size=1_000) as sandbox:
        sandbox_connection(client=cast.client, sandbox=sandbox, actor=cast.owner)
        run, _ = audit_services.start_audit(client=cast.client, actor=cast.owner, queue=False)
        run = audit_services.execute_run(
            run.pk, connector_options={"sleep": lambda s: None, "store": LocalStore()}, heartbeat=False
        )
    finding = run.findings.order_by("pk").first()
    assert finding is not None and finding.state == FindingState.OPEN

    context, page = open_page(browser, 1366)
    try:
        url = reverse(
            "crm_connectors:audit-run",
            kwargs={"org_slug": cast.org.slug, "client_uuid": cast.client.uuid, "audit_run_uuid": run.uuid},
        )
        sign_in(page, live_server, cast.consultant, url)
        item = page.locator(f"#finding-{finding.uuid}")
        select = item.get_by_label("State")
        expect(select).to_have_value("open")
        # "Explained" needs a note: the server refuses with a 400 and its own words.
        select.select_option("explained")
        item.get_by_role("button", name="Save").click()
        alert = item.get_by_role("alert")
        expect(alert).to_be_visible()
        expect(alert).to_contain_text("note")
        expect(select).to_have_value("open")
        expect(item.locator(".badge", has_text="Open")).to_be_visible()
        shot(page, "finding-refused-1366")
        finding.refresh_from_db()
        assert finding.state == FindingState.OPEN

        # With a note it saves, and the message goes away.
        select.select_option("explained")
        item.get_by_label("Note").fill("SAL lives in Outreach")
        item.get_by_role("button", name="Save").click()
        expect(page.locator(f"#finding-{finding.uuid}").locator(".badge", has_text="Explained")).to_be_visible()
        expect(page.locator(f"#finding-{finding.uuid}").get_by_role("alert")).to_have_count(0)
        finding.refresh_from_db()
        assert finding.state == FindingState.EXPLAINED
    finally:
        context.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_long_unbroken_names_keep_pages_within_the_viewport(transactional_db, live_server, cast, browser, width):
    # As long as a name can be: the longest the name fields hold, with no space to break at.
    longest = ClientAccount._meta.get_field("name").max_length
    cast.client.name = "A" * longest
    cast.client.save(update_fields=["name"])
    ensure_library()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="E" * longest,
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    pages = {
        "engagements": reverse("engagements:portfolio", args=[cast.org.slug]),
        "engagement": reverse("engagements:engagement-detail", args=[cast.org.slug, engagement.uuid]),
        "client": reverse("engagements:client-detail", args=[cast.org.slug, cast.client.uuid]),
    }
    context, page = open_page(browser, width, 844 if width < 500 else 900)
    try:
        sign_in(page, live_server, cast.consultant, pages["engagements"])
        for name, path in pages.items():
            page.goto(f"{live_server.url}{path}")
            assert ("E" * longest if name != "client" else "A" * longest) in page.content()
            shot(page, f"long-name-{name}-{width}")
            scroll_width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert scroll_width <= viewport, f"{name} page is {scroll_width}px wide in a {viewport}px window"
    finally:
        context.close()


def test_ticks_move_the_sub_phase_counter_and_a_lost_connection_unticks_the_box(
    transactional_db, live_server, cast, browser
):
    ensure_library()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    items = list(engagement.checklist.filter(sub_phase__key="1a").order_by("order"))
    context, page = open_page(browser, 1366)
    try:
        sign_in(
            page,
            live_server,
            cast.consultant,
            reverse("engagements:engagement-detail", args=[cast.org.slug, engagement.uuid]),
        )
        section = page.locator(".checklist-section", has=page.locator(f"#item-{items[0].uuid}"))
        counter = section.locator("h3 .count")
        expect(counter).to_have_text(f"0/{len(items)}")
        for ticked, item in enumerate(items[:3], start=1):
            page.locator(f"#cb-{item.uuid}").check()
            expect(counter).to_have_text(f"{ticked}/{len(items)}")
        shot(page, "subphase-counter-1366")

        # The network drops: the tick does not stick, and the person is told where they clicked.
        page.route("**/items/*/toggle/", lambda route: route.abort())
        box = page.locator(f"#cb-{items[3].uuid}")
        # click(), not check(): the page unticks the box as soon as the request fails, which
        # can happen before check() verifies its own click and would make it raise.
        box.click()
        alert = page.locator(f"#item-{items[3].uuid}").get_by_role("alert")
        expect(alert).to_contain_text("Could not reach the server")
        expect(box).not_to_be_checked()
        expect(counter).to_have_text(f"3/{len(items)}")
        assert engagement.checklist.filter(sub_phase__key="1a", done=True).count() == 3
    finally:
        context.close()
