"""The pages a consultancy lives in, in a real browser (headless Debian Chromium against Django's live server): the
home page tells a consultant what needs them, the engagement list sorts and filters in place, and a 300-character
unbroken name keeps every page within the window at 1366 and 390 px. Screenshots land in test-artifacts/e2e/."""

from datetime import date, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Membership, Role
from engagements import definitions, progression
from engagements.models import ClientAccount, Engagement, Stakeholder
from engagements.portal_access import issue_portal_link, link_path
from playbooks.models import Playbook
from reporting import periods
from reporting.models import HealthCheckRun, HealthResult
from tests.conftest import ensure_library, make_org, make_stakeholder
from tests.e2e.test_screen_truth import open_page, shot, sign_in

LONG = 300  # a name as long as a person might paste, with nothing to break at


def start(cast, name, *, client=None, team=(), **kwargs):
    ensure_library()
    return progression.create_engagement(
        client=client or cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name=name,
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        team=list(team),
        **kwargs,
    )


def home_url(cast) -> str:
    return reverse("accounts:org-home", args=[cast.org.slug])


# The elements that reach furthest past the window's right edge and are not inside a box that scrolls or clips them
# (a table scrolling in its own box is fine), to name in a failure.
OVERFLOWING = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .filter(e => {
        for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
            if (getComputedStyle(p).overflowX !== 'visible') return false;
        }
        return true;
    })
    .sort((a, b) => b.getBoundingClientRect().right - a.getBoundingClientRect().right)
    .slice(0, 6)
    .map(e => `${e.tagName.toLowerCase()}.${e.className} (${Math.round(e.getBoundingClientRect().right)}px)`)"""


def within_viewport(page, name: str) -> None:
    scroll_width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if scroll_width > viewport:
        page.evaluate("window.scrollTo(0, 0)")
        wide = page.evaluate(OVERFLOWING)
        raise AssertionError(f"{name} is {scroll_width}px wide in a {viewport}px window; too wide: {wide}")


def test_the_home_page_says_what_needs_the_consultant_today(transactional_db, live_server, cast, browser):
    mine = start(cast, "Lifecycle rebuild", team=[(cast.consultant, "architect")])
    start(cast, "Someone else's", team=[(cast.owner, "architect")])
    raj = make_stakeholder(cast.client, "Raj Iyer", "raj@acme.example", title="VP Sales")
    version = definitions.publish(engagement=mine, signers=[cast.stakeholder, raj], actor=cast.consultant)
    definitions.sign(
        version=version, stakeholder=cast.stakeholder, decisions={k: "yes" for k, _ in version.items}, comments={}
    )
    version.requests.filter(stakeholder=raj).update(created_at=timezone.now() - timedelta(days=6))
    run = HealthCheckRun.objects.create(
        organization=cast.org, engagement=mine, period=periods.due_period(timezone.localdate())
    )
    HealthResult.objects.create(
        organization=cast.org, run=run, task_key="mql", task_name="MQL volume", kind="task", metric="m",
        status="red", message="MQL volume fell 31% against the baseline",
    )  # fmt: skip

    for width in (1366, 390):
        context, page = open_page(browser, width, 844 if width < 500 else 900)
        try:
            sign_in(page, live_server, cast.consultant, home_url(cast))
            mine_card = page.locator("section", has=page.get_by_role("heading", name="My engagements"))
            expect(mine_card).to_contain_text("Lifecycle rebuild")
            expect(mine_card).to_contain_text("Strategy")
            expect(mine_card).not_to_contain_text("Someone else's")
            gates = page.locator("section", has=page.get_by_role("heading", name="Gates awaiting a decision"))
            expect(gates).to_contain_text("Strategic Sign-Off")
            signoffs = page.locator("section", has=page.get_by_role("heading", name="Sign-offs outstanding"))
            expect(signoffs).to_contain_text("Raj Iyer has not answered Lifecycle rebuild definitions v1")
            expect(signoffs).to_contain_text("waiting 6 days")
            expect(signoffs).not_to_contain_text("Maya Patel")
            flags = page.locator("section", has=page.get_by_role("heading", name="Red flags this month"))
            expect(flags).to_contain_text("MQL volume fell 31% against the baseline")
            activity = page.locator("section", has=page.get_by_role("heading", name="Recent activity"))
            expect(activity).to_contain_text("published the definitions of Lifecycle rebuild for sign-off")
            expect(activity).not_to_contain_text("definitions.published")
            within_viewport(page, f"home at {width}")
            shot(page, f"home-{width}")
        finally:
            context.close()


def test_the_engagement_list_sorts_and_filters_in_place(transactional_db, live_server, cast, browser):
    for name, client in (("Bravo", cast.client), ("Alpha", cast.sibling_client), ("Charlie", cast.client)):
        start(cast, name, client=client)
    Engagement.objects.for_org(cast.org).filter(name="Charlie").update(status="on_hold")
    context, page = open_page(browser, 1366)
    try:
        sign_in(page, live_server, cast.consultant, reverse("engagements:portfolio", args=[cast.org.slug]))
        names = page.locator("table.portfolio tbody tr td:first-child strong")
        expect(names).to_have_text(["Charlie", "Alpha", "Bravo"])  # newest first

        page.get_by_role("link", name="Engagement", exact=True).click()
        expect(names).to_have_text(["Alpha", "Bravo", "Charlie"])
        assert parse_qs(urlparse(page.url).query) == {"sort": ["name"]}
        page.get_by_role("link", name="Engagement", exact=True).click()  # again: the other way
        expect(names).to_have_text(["Charlie", "Bravo", "Alpha"])

        # No Filter button: choosing a client applies it, keeps the sort, and the address says so.
        expect(page.get_by_role("button", name="Filter")).to_have_count(0)
        page.get_by_label("Client").select_option(label=cast.client.name)
        expect(names).to_have_text(["Charlie", "Bravo"])
        assert parse_qs(urlparse(page.url).query) == {"client": [str(cast.client.uuid)], "sort": ["-name"]}
        page.get_by_label("Status").select_option("active")
        expect(names).to_have_text(["Bravo"])
        shot(page, "engagement-list-filtered-1366")
        page.reload()  # the address holds the filters: a reload (or a shared link) shows the same list
        expect(names).to_have_text(["Bravo"])
        expect(page.get_by_label("Status")).to_have_value("active")
    finally:
        context.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_a_300_character_name_keeps_every_page_within_the_window(
    transactional_db, live_server, cast, browser, settings, tmp_path, width
):
    settings.MEDIA_ROOT = tmp_path
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Names as long as their fields hold (200) everywhere a name shows, and 300 characters where text may be longer:
    # a checklist item, ticked, so that the home page's activity names it too.
    cast.org.name = "O" * 200
    cast.org.save(update_fields=["name"])
    ClientAccount.objects.for_org(cast.org).filter(pk=cast.client.pk).update(name="C" * 200)
    Stakeholder.objects.for_org(cast.org).filter(pk=cast.stakeholder.pk).update(name="S" * 200)
    # a second organization: the top bar then holds the organization switcher too
    Membership.objects.create(organization=make_org("Second Partners", "second"), user=cast.consultant, role=Role.OWNER)
    engagement = start(
        cast, "E" * 200, team=[(cast.consultant, "architect")], stakeholders=[(cast.stakeholder, "Approver")]
    )
    engagement.target_date = date(2027, 3, 31)
    engagement.save(update_fields=["target_date"])
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    item = engagement.checklist.order_by("order").first()
    item.text = "T" * LONG
    item.save(update_fields=["text"])
    progression.set_checklist_item(item=item, done=True, actor=cast.consultant)
    pages = {
        "home": home_url(cast),
        "engagement-list": reverse("engagements:portfolio", args=[cast.org.slug]),
        "engagement": reverse("engagements:engagement-detail", args=[cast.org.slug, engagement.uuid]),
        "client": reverse("engagements:client-detail", args=[cast.org.slug, cast.client.uuid]),
    }
    context, page = open_page(browser, width, 844 if width < 500 else 900)
    try:
        sign_in(page, live_server, cast.consultant, pages["home"])
        for name, path in pages.items():
            page.goto(f"{live_server.url}{path}")
            assert "E" * 200 in page.content()
            assert "T" * LONG in page.content() or name in ("engagement-list", "client")
            within_viewport(page, f"the {name} page")
            if width == 1366:
                # the top navigation stays one row: every link's top edge at the same height
                tops = page.locator(".topbar nav a").evaluate_all(
                    "links => links.map(a => a.getBoundingClientRect().top)"
                )
                assert len(set(tops)) == 1, f"the {name} page's top navigation wraps: link tops at {sorted(set(tops))}"
            if name in ("home", "engagement-list"):
                shot(page, f"{name}-long-name-{width}")
    finally:
        context.close()

    portal, page = open_page(browser, width, 844 if width < 500 else 900)
    try:
        page.goto(live_server.url + link_path(issue_portal_link(stakeholder=cast.stakeholder)))
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name=f"Welcome, {'S' * 200}")).to_be_visible()
        within_viewport(page, "the portal home")
        shot(page, f"portal-long-name-{width}")
        page.goto(live_server.url + "/portal/signoffs/")
        expect(page.locator(".pending-card").first).to_contain_text("E" * 200)
        within_viewport(page, "the portal's sign-offs")
    finally:
        portal.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_every_stage_row_shows_its_edit_and_delete_without_scrolling(
    transactional_db, live_server, cast, browser, width
):
    engagement = start(cast, "Lifecycle rebuild")
    assert engagement.stages.filter(domain="sales").exists()
    context, page = open_page(browser, width, 844 if width < 500 else 900)
    try:
        sign_in(
            page,
            live_server,
            cast.consultant,
            reverse("engagements:definitions", args=[cast.org.slug, engagement.uuid]),
        )
        rows = page.locator("table.defs-table tbody tr[id^=stage-]")
        expect(rows.first).to_be_visible()
        for action in ("Edit", "Delete"):
            # each link's centre is inside its table's visible box and is the link itself, nothing drawn over it
            hidden = page.evaluate(
                """(action) => [...document.querySelectorAll('tr[id^=stage-] td.row-actions a')]
                    .filter(a => a.textContent.trim().startsWith(action))
                    .filter(a => {
                        const r = a.getBoundingClientRect(), box = a.closest('.table-wrap').getBoundingClientRect();
                        const x = r.left + r.width / 2, y = r.top + r.height / 2;
                        a.scrollIntoView({block: 'center', inline: 'nearest'});
                        const s = a.getBoundingClientRect(), sx = s.left + s.width / 2, sy = s.top + s.height / 2;
                        return x < box.left || x > box.right || !a.contains(document.elementFromPoint(sx, sy));
                    }).map(a => a.closest('tr').querySelector('th').textContent.trim())""",
                action,
            )
            assert hidden == [], f"{action} is cut off or covered on the rows of {hidden}"
        within_viewport(page, f"the definitions page at {width}")
        shot(page, f"definitions-stages-{width}")
    finally:
        context.close()
