"""A decision not to proceed, in a real browser: headless Chromium against Django's live server.

A consultant checks one Revenue Intelligence Strategic Sign-Off checkpoint and waives another, then records
"Project on hold" (seed 002 1d: CRM data too poor for deal scoring) with a reason and the unmet checkpoints it
is about, without waiving them. After resuming, the named checkpoints are still unmet, the earlier waiver is
gone (it was for proceeding, which did not happen), the checked one is still checked, and Proceed stays
refused. Screenshots land in test-artifacts/e2e/.
"""

import re
from datetime import date

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from engagements import progression
from engagements.models import CheckpointStatus, EngagementStatus, GateDecision
from playbooks.models import Playbook
from tests.conftest import PASSWORD, ensure_library
from tests.e2e.conftest import ARTIFACTS

MET = "Baseline metrics documented (forecast accuracy, win rates, deal velocity, slippage)"
WAIVED = "Platform selected and procurement initiated"
UNMET = ["No blockers for engineering", "Legal/compliance approval for call recording obtained"]
REASON = "CRM data quality is too poor for meaningful deal scoring; a CRM Data Hygiene project comes first."


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id="Europe/Berlin", locale="en-GB")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm / hx-confirm prompts
    try:
        yield page
    finally:
        context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def checkpoint_item(panel, text: str):
    return panel.locator("li.checkpoint", has_text=text)


def test_project_on_hold_leaves_the_unmet_checkpoints_unmet_through_resume(transactional_db, live_server, cast, page):
    ensure_library()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="revenue-intelligence").latest_version(),
        name="Deal intelligence rollout",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    gate = engagement.gates.get(key="strategic-sign-off")

    page.goto(f"{live_server.url}/accounts/login/?next=/o/{cast.org.slug}/engagements/{engagement.uuid}/")
    page.get_by_label("Email").fill(cast.consultant.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    panel = page.locator("#gate-panel")
    expect(panel.get_by_role("heading", name="Strategic Sign-Off")).to_be_visible()

    # One criterion is met, one is waived (as if the team meant to proceed without it).
    panel.get_by_role("button", name=re.compile("^Check: Baseline metrics documented")).click()
    expect(checkpoint_item(panel, MET)).to_contain_text("Checked")
    platform = checkpoint_item(panel, WAIVED)
    platform.get_by_text("Waive…").click()
    platform.get_by_label("Reason for the waiver").fill("Procurement is a formality; the platform is agreed.")
    platform.get_by_role("button", name="Waive checkpoint").click()
    expect(checkpoint_item(panel, WAIVED)).to_contain_text("Waived: Procurement is a formality")
    expect(panel.get_by_text("Not ready to proceed")).to_be_visible()

    # Record "Project on hold" with a reason and the unmet checkpoints it is about; nothing is waived for it.
    panel.get_by_role("link", name="Decide gate").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("A reason, and the unmet checkpoints it is about.")
    expect(dialog.get_by_role("button", name="Record decision")).to_be_enabled()
    dialog.get_by_role("radio", name=re.compile("^Project on hold")).check()
    for text in UNMET:
        dialog.get_by_role("checkbox", name=text).check()
    dialog.get_by_label("Note").fill(REASON)
    shot(page, "not-ready-01-project-on-hold-dialog")
    dialog.get_by_role("button", name="Record decision").click()

    expect(page.get_by_text("Strategic Sign-Off: “Project on hold” recorded.")).to_be_visible()
    expect(page.get_by_text("This engagement is on hold")).to_be_visible()
    shot(page, "not-ready-02-on-hold")
    decision = GateDecision.objects.get(gate=gate)
    assert decision.ready is False and decision.note == REASON
    assert [u["text"] for u in decision.unmet] == sorted(UNMET, key=lambda t: gate.checkpoints.get(text=t).order)
    assert not gate.checkpoints.filter(status=CheckpointStatus.WAIVED).exists()

    # Resume: the named checkpoints are still unmet, the waiver is gone, the met one stays met.
    page.get_by_role("button", name="Resume engagement").click()
    expect(page.get_by_text("Engagement resumed.")).to_be_visible()
    engagement.refresh_from_db()
    assert engagement.status == EngagementStatus.ACTIVE
    for text in [*UNMET, WAIVED]:
        item = checkpoint_item(panel, text)
        expect(item.locator(".badge")).to_have_text("Open")
        expect(item).not_to_contain_text("Waived")
    expect(checkpoint_item(panel, MET).locator(".badge")).to_have_text("Checked")
    expect(panel.get_by_text("Not ready to proceed")).to_be_visible()
    shot(page, "not-ready-03-resumed-checkpoints-still-unmet")
    statuses = dict(gate.checkpoints.values_list("text", "status"))
    assert all(statuses[text] == CheckpointStatus.OPEN for text in [*UNMET, WAIVED])
    assert statuses[MET] == CheckpointStatus.CHECKED

    # Proceeding is still refused: nothing was waived on the way.
    panel.get_by_role("link", name="Decide gate").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("radio", name=re.compile("^Proceed to Engineering")).check()
    dialog.get_by_role("button", name="Record decision").click()
    expect(page.get_by_text("validation checkpoint(s) are neither checked nor waived").first).to_be_visible()
    assert GateDecision.objects.filter(gate=gate).count() == 1

    # The decision history says what was not ready.
    detail = reverse(
        "engagements:gate-decision-detail",
        kwargs={"org_slug": cast.org.slug, "engagement_uuid": engagement.uuid, "gate_decision_uuid": decision.uuid},
    )
    page.goto(live_server.url + detail)
    expect(page.get_by_text("Not ready because")).to_be_visible()
    for text in UNMET:
        expect(page.locator("ul.unmet")).to_contain_text(text)
