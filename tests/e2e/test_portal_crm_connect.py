"""A client stakeholder connects Salesforce from the portal in real headless Chromium: her CRM access task, the
sandbox's consent page (its OAuth authorise endpoint, PKCE), back to the portal with the task done.

The browser is the point: it enforces the page's Content-Security-Policy on the Connect form's redirect to another
origin (`form-action`), which no test client does.
"""

from datetime import date

import pytest
from playwright.sync_api import expect

from crm_connectors.base import AuthMethod
from crm_connectors.models import CrmConnection
from crm_sandbox.connection import sandbox_oauth_app
from crm_sandbox.salesforce import SalesforceSandbox
from engagements import progression
from engagements.models import ChecklistItem
from engagements.portal_access import issue_portal_link, link_path
from tests.e2e.conftest import ARTIFACTS as SHOTS


@pytest.fixture
def salesforce():
    with SalesforceSandbox(profile="demo", seed=4, size=200) as sandbox:
        yield sandbox


@pytest.fixture
def engagement(transactional_db, live_server, cast, library, crm_sandbox_settings, salesforce):
    sandbox_oauth_app(organization=cast.org, sandbox_url=salesforce.base_url)  # as `make run` does
    return progression.create_engagement(
        client=cast.client,
        playbook_version=library["gtm-lifecycle"],
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Marketing approver")],
    )


def test_a_stakeholder_connects_salesforce_from_her_task(browser, live_server, cast, engagement):
    page = browser.new_page()
    page.set_default_timeout(20_000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(live_server.url + link_path(issue_portal_link(stakeholder=cast.stakeholder)))
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("link", name="Connect your CRM").first.click()
    page.get_by_role("button", name="Connect Salesforce").click()
    expect(page.get_by_text("Allow access to your sandbox salesforce account?")).to_be_visible()
    page.locator("#approve").click()

    expect(page.get_by_text("Salesforce is connected and GTM Ops could read it")).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "portal-crm-connected.png"), full_page=True)
    assert violations == []
    connection = CrmConnection.objects.for_org(cast.org).get(client=cast.client)
    assert connection.auth_method == AuthMethod.SF_OAUTH and connection.last_test_ok
    task = ChecklistItem.objects.for_org(cast.org).get(engagement=engagement, key="provide-crm-admin-access")
    assert task.done and "connected Salesforce through OAuth" in task.done_how
