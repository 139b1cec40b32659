"""A client stakeholder fills the GTM intake form on a phone, in real headless Chromium against the live server.

Half the form, then away; back through a new sign-in link with every answer still there; a stage export uploaded;
submitted. The checklist item "Complete the Lifecycle Intake Form" has ticked itself and the consultant sees the
answers. Screenshots go to test-artifacts/e2e/.
"""

import hashlib
from datetime import date

import pytest
from playwright.sync_api import expect

from client_workspace.models import IntakeFile
from engagements import progression
from engagements.portal_access import issue_portal_link, link_path
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS as SHOTS

PHONE = {"width": 390, "height": 844}
STAGE_EXPORT = b"Stage,Definition\nMQL,Score above 60 or a demo request\nSAL,Accepted by an SDR within 48h\n"


@pytest.fixture
def engagement(transactional_db, live_server, cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    load_library_playbooks()
    return progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Marketing approver")],
    )


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"intake-{name}.png"), full_page=True)


def sign_in(browser, live_server, stakeholder):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(live_server.url + link_path(issue_portal_link(stakeholder=stakeholder)))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Welcome, {stakeholder.name}")).to_be_visible()
    return context, page


def saved(page, key: str) -> None:
    expect(page.locator(f"#status-{key}")).to_have_text("Saved")


def test_a_stakeholder_fills_the_intake_form_on_a_phone(browser, live_server, cast, engagement, tmp_path):
    form_url = f"{live_server.url}/portal/intake/{engagement.uuid}/"

    # First visit: half the form, each answer saved as the field is left.
    context, page = sign_in(browser, live_server, cast.stakeholder)
    page.goto(form_url)
    expect(page.get_by_role("heading", name="Lifecycle Intake Form")).to_be_visible()
    crm = page.locator("#field-crm_platform")
    crm.get_by_label("HubSpot", exact=True).tap()
    saved(page, "crm_platform")
    teams = page.locator("#field-gtm_teams")
    teams.get_by_label("Team, row 1").fill("Sales")
    teams.get_by_label("People, row 1").fill("14")
    teams.get_by_label("Team, row 2").fill("Customer Success")
    teams.get_by_label("People, row 2").fill("5")
    teams.get_by_label("People, row 2").blur()
    saved(page, "gtm_teams")
    page.locator("#in-pain_points").fill("MQLs are counted three different ways.")
    page.locator("#in-pain_points").blur()
    saved(page, "pain_points")
    shot(page, "01-half-filled")
    context.close()  # leaves

    # Back with a new link: every answer is still there.
    context, page = sign_in(browser, live_server, cast.stakeholder)
    page.goto(form_url)
    expect(page.locator("#field-crm_platform").get_by_label("HubSpot")).to_be_checked()
    expect(page.get_by_label("Team, row 2")).to_have_value("Customer Success")
    expect(page.get_by_label("People, row 1")).to_have_value("14")
    expect(page.locator("#in-pain_points")).to_have_value("MQLs are counted three different ways.")

    # Submitting now names what is missing and keeps the answers.
    page.get_by_role("button", name="Submit the form").tap()
    problems = page.locator(".intake-problems")
    required = [f for f in engagement.spec.intake.fields if f.required]
    expect(problems).to_contain_text(f"{len(required) - 3} required fields still empty")  # 3 answered above
    expect(problems.get_by_role("link", name="Lead scoring")).to_be_visible()
    expect(page.get_by_label("Team, row 1")).to_have_value("Sales")
    shot(page, "02-missing-named")

    # The rest, and the stage export.
    export = tmp_path / "lifecycle-stages.csv"
    export.write_bytes(STAGE_EXPORT)
    no_js_button = page.locator("#field-current_definitions [data-upload-button]")
    expect(no_js_button).to_be_hidden()  # htmx uploads on change
    page.locator("#in-current_definitions").set_input_files(str(export))
    expect(page.locator("#field-current_definitions")).to_contain_text("lifecycle-stages.csv")
    expect(page.locator("#status-current_definitions")).to_have_text("Uploaded")
    expect(no_js_button).to_be_hidden()
    pipelines = page.locator("#field-pipelines")
    pipelines.get_by_label("Pipeline, row 1").fill("New business")
    pipelines.get_by_label("Stages (in order), row 1").fill("Discovery, Demo, Proposal, Closed")
    pipelines.get_by_label("Stages (in order), row 1").blur()
    saved(page, "pipelines")
    page.locator("#field-poc_pov").get_by_label("No", exact=True).tap()
    saved(page, "poc_pov")
    page.locator("#field-renewal_process").get_by_label("Yes", exact=True).tap()
    saved(page, "renewal_process")
    page.locator("#field-lead_scoring").get_by_label("Matrix scoring", exact=True).tap()
    saved(page, "lead_scoring")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    page.get_by_role("button", name="Submit the form").tap()
    expect(page.get_by_text("the Lifecycle Intake Form is submitted")).to_be_visible()
    shot(page, "03-submitted")
    context.close()

    item = engagement.checklist.get(key="complete-intake-form")
    assert item.done, "the checklist item did not complete itself"
    stored = IntakeFile.objects.for_org(cast.org).get(engagement=engagement)
    assert stored.sha256 == hashlib.sha256(STAGE_EXPORT).hexdigest()

    # The consultant sees the answers, on a desktop.
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/?next=/o/{cast.org.slug}/engagements/{engagement.uuid}/")
    page.get_by_label("Email").fill(cast.consultant.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Client workspace").click()
    answers = page.locator(".intake-answers")
    expect(page.get_by_text("Submitted", exact=False).first).to_be_visible()
    expect(answers).to_contain_text("Customer Success")
    expect(answers).to_contain_text("MQLs are counted three different ways.")
    expect(answers).to_contain_text("Matrix scoring")
    expect(answers.get_by_role("link", name="lifecycle-stages.csv")).to_be_visible()
    shot(page, "04-consultant-sees-answers")
    context.close()
