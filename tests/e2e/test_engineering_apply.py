"""An owner walks generate → approve → plan → dry run → apply → verify in headless Chromium against the live server
and a HubSpot sandbox; the CRM reads and writes run on the CRM queue (inline here) and the page shows their end."""

import pytest
from playwright.sync_api import expect

from crm_sandbox import HubSpotSandbox
from crm_sandbox.connection import sandbox_connection
from engineering import services
from tests.conftest import PASSWORD
from tests.crm_connectors.test_audit import make_engagement
from tests.e2e.conftest import ARTIFACTS, browser  # noqa: F401 - the real Chromium fixture
from tests.engineering.test_spec import globex_stages


@pytest.fixture
def page(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-GB")
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def give_every_retired_value_a_target(engagement, actor) -> None:
    """Arranged through the service (annotating in the browser is the spec page's own test): nothing is held back,
    so the build can match the spec."""
    spec = services.latest(engagement)
    for f in spec.document["fields"]:
        kept = [v["value"] for v in f["values"] if v["action"] != "retire" and not (v["closed"] and not v["won"])]
        for v in f["values"]:
            if v["action"] == "retire" and not v["maps_to"]:
                services.annotate(spec=spec, item=v["id"], attribute="maps_to", value=kept[0], actor=actor)


def test_owner_applies_the_plan_and_verifies(transactional_db, live_server, cast, crm_sandbox_settings, page):
    engagement = make_engagement(cast, globex_stages())
    with HubSpotSandbox(profile="demo", seed=3, size=300) as hs:
        sandbox_connection(client=cast.client, sandbox=hs, actor=cast.owner)
        page.goto(f"{live_server.url}/accounts/login/?next=/o/{cast.org.slug}/engagements/{engagement.uuid}/")
        page.get_by_label("Email").fill(cast.owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        page.get_by_role("navigation", name="Engagement sections").get_by_role("link", name="Engineering").click()
        page.get_by_role("button", name="Generate the CRM Configuration Spec").click()
        expect(page.get_by_role("heading", name="CRM Configuration Spec v1")).to_be_visible()
        give_every_retired_value_a_target(engagement, cast.consultant)
        page.get_by_role("button", name="Approve CRM Configuration Spec v1").click()

        page.get_by_role("navigation", name="Engineering").get_by_role("link", name="Change plan").click()
        page.get_by_role("button", name="Compare CRM Configuration Spec v1 with the CRM now").click()
        expect(
            page.get_by_role("table", name="Operations").get_by_role("row", name="set_probability").first
        ).to_be_visible()

        page.get_by_role("button", name="Dry run", exact=True).click()
        expect(page.get_by_text("No write was sent.")).to_be_visible()
        steps = page.get_by_role("table", name="Steps")
        expect(steps.get_by_role("row", name="Would change").first).to_be_visible()

        page.get_by_label("Type “Lifecycle rebuild” to confirm", exact=True).fill("Lifecycle rebuild")
        page.get_by_role("button", name="Apply to the CRM").click()
        expect(page.get_by_text("Applied:", exact=False).first).to_be_visible()
        expect(steps.get_by_role("row", name="Would change")).to_have_count(0)
        expect(steps.get_by_role("row", name="Applied").first).to_be_visible()

        page.get_by_role("button", name="Read the CRM and verify").click()
        expect(page.get_by_text("0 differences from CRM Configuration Spec v1")).to_be_visible()
        expect(page.locator("ul.checks").get_by_text("Differs")).to_have_count(0)
        expect(page.get_by_role("button", name="Undo")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "engineering-apply.png"), full_page=True)
