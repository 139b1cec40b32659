"""A consultant runs an engagement in a real browser: headless Chromium against Django's live server.

Signs in through the login form, creates a GTM Lifecycle engagement through the form (its dependent
fields arrive by htmx), ticks checklist items inline and finds them still ticked after a reload, clears
the Strategic Sign-Off's checkpoints (waiving the signed-definitions one with a reason), decides
"Proceed to Engineering", sees Engineering become current, then adds a decision on the board.
Screenshots of each step land in test-artifacts/e2e/.
"""

import re

import pytest
import yaml
from playwright.sync_api import expect

from engagements.models import CheckpointStatus, DecisionLogEntry, Engagement, GateDecision
from tests.conftest import PASSWORD, ensure_library
from tests.e2e.conftest import ARTIFACTS


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id="Europe/Berlin", locale="en-GB")
    context.set_default_timeout(60_000)  # generous: filling the 40 kB playbook YAML took over 20 s under both shards
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm / hx-confirm prompts
    try:
        yield page
    finally:
        context.close()


def with_strategy_weight(text: str, weight: str) -> str:
    data = yaml.safe_load(text)
    data["phases"][0]["weight"] = weight
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def shot(page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def test_consultant_runs_an_engagement_through_its_first_gate(transactional_db, live_server, cast, page):
    ensure_library()
    base = live_server.url

    # Sign in through the login form.
    page.goto(f"{base}/accounts/login/?next=/o/{cast.org.slug}/engagements/")
    page.get_by_label("Email").fill(cast.consultant.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Engagements", level=1)).to_be_visible()
    expect(page.get_by_text("No engagements yet.")).to_be_visible()
    shot(page, "01-portfolio-empty")

    # Create the engagement; choosing the playbook and the client brings their dependent fields by htmx.
    page.get_by_role("link", name="New engagement").click()
    # The portfolio has a "Client" filter too: wait for the form page before touching its fields.
    expect(page.get_by_role("heading", name="New engagement", level=1)).to_be_visible()
    page.get_by_label("Client", exact=True).select_option(label="Acme Robotics")
    stakeholder = page.get_by_role("checkbox", name=re.compile("Maya Patel"))
    expect(stakeholder).to_be_visible()
    page.get_by_label("Playbook").select_option(label="GTM Lifecycle — Implementation (library, v1)")
    methodology = page.get_by_label("Methodology option")
    expect(methodology).to_be_visible()
    methodology.select_option(label="Foundation + All Depth")
    page.get_by_label("Engagement type").select_option(label="Dedicated (Multi-Project)")
    page.get_by_label("Engagement name").fill("Lifecycle stage rebuild")
    page.get_by_label("Target date").fill("2027-03-31")
    page.get_by_label("Architect").select_option(label="Carl (carl@alpha.example)")
    stakeholder.check()
    page.get_by_label("Role of Maya Patel").fill("Approver")
    shot(page, "02-new-engagement-form")
    page.get_by_role("button", name="Create engagement").click()

    expect(page.get_by_role("heading", name="Lifecycle stage rebuild", level=1)).to_be_visible()
    expect(page.locator("#current-h")).to_have_text("Strategy")
    engagement = Engagement.objects.across_tenants("test").get(name="Lifecycle stage rebuild")
    assert engagement.methodology_option == "foundation-all-depth"

    # Tick three checklist items inline; each toggle swaps only its own item.
    items = [
        "Watch GTM Lifecycle intro video",
        "Complete the Lifecycle Intake Form",
        "Pull current CRM lifecycle data",
    ]
    for text in items:
        box = page.get_by_role("checkbox", name=re.compile("^" + re.escape(text)))
        box.check()
        expect(page.locator("li.task", has=box)).to_contain_text("Done by Carl")
    expect(page.locator("#current-h")).to_have_text("Strategy")
    page.reload()
    for text in items:
        expect(page.get_by_role("checkbox", name=re.compile("^" + re.escape(text)))).to_be_checked()
    untouched = page.get_by_role("checkbox", name=re.compile("^Review the Definition Alignment Document"))
    expect(untouched).not_to_be_checked()
    shot(page, "03-checklist-ticked-after-reload")

    # Clear the gate: check the checkpoints one by one, waive the signed-definitions one with a reason.
    panel = page.locator("#gate-panel")
    check_buttons = panel.get_by_role("button", name=re.compile("^Check: "))
    remaining = check_buttons.count()
    assert remaining == 7
    while remaining:
        check_buttons.first.click()
        remaining -= 1
        expect(check_buttons).to_have_count(remaining)
    signed = panel.locator("li.checkpoint", has_text="Definition Alignment Document signed off")
    signed.get_by_text("Waive…").click()
    reason = "Signed on paper at the alignment workshop; portal sign-off follows."
    signed.get_by_label("Reason for the waiver").fill(reason)
    signed.get_by_role("button", name="Waive checkpoint").click()
    expect(panel.locator("li.checkpoint", has_text="Definition Alignment Document signed off")).to_contain_text(
        "Waived: Signed on paper at the alignment workshop"
    )
    expect(panel.get_by_text("Every checkpoint is resolved")).to_be_visible()
    shot(page, "04-gate-ready")
    assert not engagement.gates.get(key="strategic-sign-off").checkpoints.filter(status=CheckpointStatus.OPEN).exists()

    # Decide the gate in the dialog.
    panel.get_by_role("link", name="Decide gate").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Completes Strategy and starts Engineering.")
    dialog.get_by_role("radio", name=re.compile("^Proceed to Engineering")).check()
    dialog.get_by_label("Note").fill("All four VPs approved the stage architecture on the call.")
    shot(page, "05-decide-dialog", full_page=False)
    dialog.get_by_role("button", name="Record decision").click()

    expect(page.get_by_text("Strategic Sign-Off: “Proceed to Engineering” recorded.")).to_be_visible()
    expect(page.locator("#current-h")).to_have_text("Engineering")
    expect(page.locator(".phase-step.done")).to_contain_text("Strategy")
    expect(page.locator("#gate-h")).to_have_text("Engineering sign-off checkpoint")
    history = page.get_by_role("region", name="Decision history")
    expect(history).to_contain_text("Proceed to Engineering")
    shot(page, "06-engineering-current")
    decision = GateDecision.objects.across_tenants("test").get()
    assert decision.decided_by == cast.consultant and decision.option_key == "proceed-to-engineering"

    # The board: add a decision that needs making.
    page.get_by_role("navigation", name="Engagement sections").get_by_role("link", name="Board").click()
    expect(page.get_by_role("heading", name="Delivery board")).to_be_visible()
    lane = page.locator("section.lane--decisions")
    lane.get_by_text("Add a decision needed").click()
    lane.get_by_label("Decision needed").fill("Who owns the SAL stage?")
    lane.get_by_label("Category").select_option(label="Ownership")
    lane.get_by_label("Context").fill("Marketing and SDR leadership both claim the SAL handoff.")
    lane.get_by_role("button", name="Add").click()
    expect(lane.get_by_text("Who owns the SAL stage?")).to_be_visible()
    shot(page, "07-board-decision-added")
    entry = DecisionLogEntry.objects.across_tenants("test").get()
    assert (entry.engagement, entry.category, entry.status) == (engagement, "ownership", "needed")

    # The portfolio counts it as an open decision.
    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Engagements").click()
    row = page.get_by_role("row", name=re.compile("Lifecycle stage rebuild"))
    expect(row).to_contain_text("Engineering")
    expect(row).to_contain_text("1 decision needed")
    shot(page, "08-portfolio")


def test_consultant_clones_a_playbook_and_edits_its_yaml(transactional_db, live_server, cast, page):
    ensure_library()
    page.goto(f"{live_server.url}/accounts/login/?next=/o/{cast.org.slug}/playbooks/")
    page.get_by_label("Email").fill(cast.consultant.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("No copies yet.")).to_be_visible()
    shot(page, "09-playbook-list")

    card = page.get_by_role("article", name="GTM Lifecycle — Implementation")
    card.get_by_role("link", name="Read").click()
    expect(page.get_by_text("Gate: Strategic Sign-Off")).to_be_visible()
    page.get_by_text("Engineering", exact=True).first.click()  # open the second phase's details
    expect(page.get_by_text("Gate: Engineering sign-off checkpoint")).to_be_visible()
    shot(page, "10-playbook-detail")

    page.get_by_role("button", name="Clone to edit").click()
    expect(page.get_by_role("heading", name="GTM Lifecycle — Implementation (Alpha Advisory)")).to_be_visible()
    page.get_by_role("link", name="Edit YAML").click()
    expect(page.get_by_role("heading", name=re.compile("^Edit GTM Lifecycle"))).to_be_visible()
    yaml_box = page.get_by_label("Playbook YAML")
    text = yaml_box.input_value()
    yaml_box.fill(with_strategy_weight(text, "enormous"))
    page.get_by_role("button", name="Save as a new version").click()
    alert = page.locator("#file-error")
    expect(alert).to_contain_text("gtm-lifecycle-copy")
    expect(alert).to_contain_text("phases[0].weight")
    shot(page, "11-playbook-edit-error")
    page.get_by_label("Playbook YAML").fill(with_strategy_weight(text, "medium"))
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_text("Saved as version 2.")).to_be_visible()
    expect(page.get_by_role("link", name="Version 1")).to_be_visible()
