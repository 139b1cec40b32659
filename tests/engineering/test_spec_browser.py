"""An owner walks generate → read → plan in headless Chromium against the live server and a Salesforce sandbox."""

import pytest
from playwright.sync_api import expect

from crm_sandbox import SalesforceSandbox
from crm_sandbox.connection import sandbox_connection
from tests.conftest import PASSWORD
from tests.crm_connectors.test_audit import make_engagement
from tests.e2e.conftest import ARTIFACTS, browser  # noqa: F401 - the real Chromium fixture


@pytest.fixture
def page(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-GB")
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_owner_generates_reads_and_plans(transactional_db, live_server, cast, crm_sandbox_settings, page):
    engagement = make_engagement(cast)
    with SalesforceSandbox(profile="demo", seed=3, size=300) as sf:
        sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner)
        page.goto(f"{live_server.url}/accounts/login/?next=/o/{cast.org.slug}/engagements/{engagement.uuid}/")
        page.get_by_label("Email").fill(cast.owner.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        page.get_by_role("navigation", name="Engagement sections").get_by_role("link", name="Engineering").click()
        expect(page.get_by_text("No CRM Configuration Spec yet")).to_be_visible()
        page.get_by_role("button", name="Generate the CRM Configuration Spec").click()
        expect(page.get_by_role("heading", name="CRM Configuration Spec v1")).to_be_visible()
        stages = page.get_by_role("table", name="Opportunity · Stage")
        expect(stages.get_by_role("row", name="SAO").get_by_role("cell", name="50%")).to_be_visible()

        page.get_by_role("navigation", name="Engineering").get_by_role("link", name="Change plan").click()
        page.get_by_role("button", name="Compare CRM Configuration Spec v1 with the CRM now").click()
        operations = page.get_by_role("table", name="Operations")
        expect(operations.get_by_role("row", name="create_pipeline_stage").first).to_be_visible()
        expect(page.get_by_role("table", name="Held back")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "engineering-plan.png"), full_page=True)
