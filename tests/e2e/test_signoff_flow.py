"""Definition sign-off from end to end, both people in real headless Chromium against the live server.

The consultant signs in through the login form and publishes v1 of the definitions with Maya Patel as signer
(VP Marketing; the playbook's three other approver roles waived with reasons), confirming the signer and the
item count. Maya follows the sign-in link of the sign-off request email the loopback SMTP server caught (in a
second browser context) straight to the version, approves every item but one and contests the MQL term with a
comment. The consultant sees MQL contested (version page, email, decision card on the board), edits the term
and publishes v2; Maya approves every item of v2; the consultant sees v2 signed, the contest resolved by v2 and
the Strategy gate's "definitions signed" checkpoint checked on the Overview, renders the Definition Alignment
Document and downloads it; its text names the client, the v2 fingerprint and Maya. Maya downloads the same
file from her portal. Screenshots go to test-artifacts/e2e/flow-*.png.
"""

import hashlib
import re
import subprocess
from datetime import date

import pytest
from playwright.sync_api import expect

from deliverables.models import Artifact, ArtifactStatus
from engagements import progression
from engagements.models import DecisionLogEntry, DefinitionVersion, Engagement, Signature, TeamRole
from playbooks.models import Playbook
from tests.conftest import PASSWORD, body_text, ensure_library
from tests.e2e.conftest import ARTIFACTS

CONTESTED_KEY = "term:mql"
CONTESTED_COMMENT = "Add a 90-day recency window: old downloads must not make an MQL."
NEW_DEFINITION = (
    "The handoff point from Marketing to Sales: ICP fit plus at least one high-intent action in the last 90 days."
)
LINK = re.compile(r"https?://\S+")


def shot(page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"flow-{name}.png"), full_page=full_page)


def pdf_text(data: bytes) -> str:
    """The PDF's text in reading order, every run of whitespace (table cells wrap) made one space."""
    text = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()
    return " ".join(text.split())


def new_mail(smtp, seen: int, *, to: str, subject: str):
    """The first email after the `seen` first ones sent to `to` whose subject contains `subject` (waits for it)."""
    for count in range(seen + 1, seen + 10):
        try:
            smtp.wait_for(count)
        except AssertionError:
            break
        for message in smtp.messages[seen:count]:
            if to in message["X-Envelope-To"] and subject in message["Subject"]:
                return message
    raise AssertionError(f"no email to {to} about {subject!r}: {[m['Subject'] for m in smtp.messages[seen:]]}")


def links_in(message) -> list[str]:
    return [link.rstrip(".,)") for link in LINK.findall(body_text(message))]


@pytest.fixture
def engagement(transactional_db, live_server, cast, settings, smtp, tmp_path) -> Engagement:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url  # links in emails point at the live server
    ensure_library()
    return progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        team=[(cast.consultant, TeamRole.ARCHITECT)],
        stakeholders=[(cast.stakeholder, "Marketing approver")],
    )


@pytest.fixture
def contexts(browser):
    made = []

    def make():
        context = browser.new_context(
            viewport={"width": 1360, "height": 900}, timezone_id="Europe/Berlin", locale="en-GB", accept_downloads=True
        )
        context.set_default_timeout(20_000)  # generous: CI machines run other suites too
        made.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    try:
        yield make
    finally:
        for context in made:
            context.close()


def signoff_item(page, key: str):
    """The card of one term or stage on the portal's sign-off form, found by its item key."""
    return page.locator("fieldset.signoff-item", has=page.locator(f'input[name="{key}"]'))


def answer_everything(page, version, *, contest: str = "") -> int:
    """Yes to every item of the open sign-off form; No with a comment to the item whose key is `contest`."""
    items = page.locator("fieldset.signoff-item")
    total = len(version.items)  # every term and every stage of the version, one card each
    expect(items).to_have_count(total)
    for n in range(total):
        items.nth(n).locator("label.choice--yes").click()
    progress = page.locator("#signoff-progress")
    if contest:
        item = signoff_item(page, contest)
        item.locator("label.choice--no").click()
        comment = item.get_by_label("What should change")
        expect(comment).to_be_focused()
        comment.fill(CONTESTED_COMMENT)
        expect(progress.locator(".signoff-progress-no")).to_have_text("1 change requested")
    expect(progress.locator(".signoff-progress-count")).to_have_text(f"{total} of {total} answered")
    return total


WAIVED = {"VP RevOps": "Acme has no RevOps lead yet.", "VP Sales": "Sales signs at the build gate.",
          "VP CS": "CS joins at enablement."}


def publish_from_dialog(page, number: int, *, items: int) -> None:
    """Publish the next version from the draft page's dialog: Maya signs, the other approver roles are waived,
    and the confirmation names her and the item count before anything is published."""
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=f"Publish v{number} for sign-off")).to_be_visible()
    signer = dialog.get_by_role("checkbox", name=re.compile("Maya Patel"))
    signer.check()
    expect(signer).to_be_checked()
    # Maya holds VP Marketing by her title.
    expect(dialog.get_by_label("VP Marketing", exact=True)).to_have_value(re.compile("^[0-9a-f-]{36}$"))
    for role, reason in WAIVED.items():
        dialog.get_by_label(role, exact=True).select_option("waive")
        dialog.get_by_label(f"Reason for waiving {role}").fill(reason)
    if number == 1:
        shot(page, "02-publish-v1-dialog", full_page=False)
    dialog.get_by_role("button", name="Review and publish…").click()
    confirm = page.get_by_role("alertdialog")
    expect(confirm.get_by_role("heading", name=f"Publish v{number}? This cannot be undone.")).to_be_visible()
    expect(confirm).to_contain_text(f"{items} items will be sealed and sent to 1 signer")
    expect(confirm).to_contain_text("Maya Patel VP Marketing")
    for role, reason in WAIVED.items():
        expect(confirm).to_contain_text(f"{role}: {reason}")
    if number == 1:
        shot(page, "02b-publish-v1-confirm", full_page=False)
    confirm.get_by_role("button", name=f"Publish v{number} and email 1 signer").click()


def test_definitions_signed_in_two_versions_and_the_document_downloads(
    live_server, cast, smtp, engagement, contexts, tmp_path
):
    base = live_server.url
    org = cast.org.slug
    stakeholder = cast.stakeholder

    # ---- The consultant signs in and publishes v1 with Maya as signer.
    consultant = contexts()
    consultant.goto(f"{base}/accounts/login/?next=/o/{org}/engagements/{engagement.uuid}/")
    consultant.get_by_label("Email").fill(cast.consultant.email)
    consultant.get_by_label("Password").fill(PASSWORD)
    consultant.get_by_role("button", name="Sign in").click()
    expect(consultant.get_by_role("heading", name="Lifecycle rebuild", level=1)).to_be_visible()
    tabs = consultant.get_by_role("navigation", name="Engagement sections")
    tabs.get_by_role("link", name="Definitions").click()
    expect(consultant.locator("#draft-status")).to_contain_text("Not published yet.")
    expect(consultant.locator("#terms")).to_contain_text("MQL")
    shot(consultant, "01-definitions-draft", full_page=False)

    seen = len(smtp.messages)
    consultant.get_by_role("link", name="Publish v1…").click()
    draft_items = engagement.terms.count() + engagement.stages.count()
    publish_from_dialog(consultant, 1, items=draft_items)
    expect(consultant.get_by_text("Published v1. 1 sign-off request emailed")).to_be_visible()
    expect(consultant.get_by_role("heading", name=re.compile(r"^Definitions v1"))).to_contain_text(
        "Awaiting signatures"
    )
    v1 = DefinitionVersion.objects.get(engagement=engagement, number=1)
    expect(consultant.locator("code.hash-full")).to_have_text(v1.content_hash)

    # ---- Maya: the sign-off request email carries its own sign-in link, straight to the version.
    request_mail = new_mail(smtp, seen, to=stakeholder.email, subject="Please review and sign")
    assert "(v1)" in request_mail["Subject"] and v1.content_hash in body_text(request_mail)
    sign_in_url = next(link for link in links_in(request_mail) if "/portal/" in link)
    assert sign_in_url.startswith(f"{base}/portal/auth/") and sign_in_url.endswith(f"?next=/portal/signoffs/{v1.uuid}/")

    maya = contexts()
    maya.goto(sign_in_url)  # the link page only shows a button: mail scanners must not use the link up
    expect(maya.get_by_role("heading", name="Continue to your portal")).to_be_visible()
    maya.get_by_role("button", name="Sign in").click()
    expect(maya.get_by_role("heading", name="Lifecycle rebuild")).to_contain_text("Definitions v1")
    maya.goto(f"{base}/portal/")
    pending = maya.locator(".pending-card")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("Lifecycle rebuild · definitions v1")
    shot(maya, "03-portal-home-pending")

    # ---- Maya approves every item of v1 but contests the MQL term.
    pending.get_by_role("link", name="Review and sign").click()
    expect(maya.get_by_role("heading", name="Lifecycle rebuild")).to_contain_text("Definitions v1")
    total_v1 = answer_everything(maya, v1, contest=CONTESTED_KEY)
    signoff_item(maya, CONTESTED_KEY).scroll_into_view_if_needed()
    shot(maya, "04-v1-answered-mql-contested", full_page=False)
    seen = len(smtp.messages)
    maya.get_by_role("button", name="Submit answers").click()
    done = maya.locator("#signoff-done")
    expect(done.get_by_role("heading", name="Thank you: your answers are recorded")).to_be_visible()
    expect(done).to_contain_text(f"you approved {total_v1 - 1} items and asked for a change on 1")
    expect(done).to_contain_text("Changes were requested")
    expect(done.locator(".hash-full")).to_have_text(v1.content_hash)
    shot(maya, "05-v1-answers-recorded", full_page=False)
    signature = Signature.objects.get(version=v1, stakeholder=stakeholder)
    assert [k for k, v in signature.decisions.items() if v == "no"] == [CONTESTED_KEY]
    assert signature.comments == {CONTESTED_KEY: CONTESTED_COMMENT}

    contested_mail = new_mail(smtp, seen, to=cast.consultant.email, subject="Maya Patel asked for changes")
    assert f"MQL: {CONTESTED_COMMENT}" in body_text(contested_mail)

    # ---- The consultant sees MQL contested: on the version page and as a decision card on the board.
    consultant.reload()
    expect(consultant.get_by_role("heading", name=re.compile(r"^Definitions v1"))).to_contain_text("Contested")
    contested = consultant.get_by_role("region", name=re.compile("^Contested items"))
    expect(contested).to_contain_text("MQL")
    expect(contested).to_contain_text(f"Maya Patel: “{CONTESTED_COMMENT}”")
    expect(consultant.get_by_role("row", name=re.compile("^Maya Patel"))).to_contain_text("Asked for 1 change")
    shot(consultant, "06-v1-contested")

    tabs.get_by_role("link", name="Board").click()
    lane = consultant.locator("section.lane--decisions")
    card = lane.locator(".board-card", has_text="Contested in v1: MQL")
    expect(card).to_be_visible()
    expect(card).to_contain_text("Owner: Maya Patel")
    shot(consultant, "07-board-decision-card")
    assert DecisionLogEntry.objects.filter(engagement=engagement, title="Contested in v1: MQL").count() == 1

    # ---- The consultant changes the MQL definition and publishes v2.
    tabs.get_by_role("link", name="Definitions").click()
    expect(consultant.locator("#versions")).to_contain_text("Contested")
    consultant.locator("#terms").get_by_role("link", name="Edit MQL", exact=True).click()
    form = consultant.get_by_role("form", name="Edit term MQL")
    form.get_by_label("Our definition").fill(NEW_DEFINITION)
    form.get_by_role("button", name="Save term").click()
    expect(consultant.get_by_text("Saved “MQL”.")).to_be_visible()
    status = consultant.locator("#draft-status")
    expect(status).to_contain_text("Unpublished changes since v1.")
    expect(consultant.locator("#terms")).to_contain_text("at least one high-intent action in the last 90 days")
    shot(consultant, "08-mql-edited", full_page=False)

    seen = len(smtp.messages)
    status.get_by_role("link", name="Publish v2…").click()
    expect(consultant.get_by_role("dialog")).to_contain_text("1 change since v1")
    publish_from_dialog(consultant, 2, items=draft_items)
    expect(consultant.get_by_text("Published v2. 1 sign-off request emailed")).to_be_visible()
    expect(consultant.get_by_role("heading", name=re.compile(r"^Definitions v2"))).to_contain_text(
        "Awaiting signatures"
    )
    v2 = DefinitionVersion.objects.get(engagement=engagement, number=2)
    assert v2.content_hash != v1.content_hash
    request_mail = new_mail(smtp, seen, to=stakeholder.email, subject="Please review and sign")
    assert "(v2)" in request_mail["Subject"] and v2.content_hash in body_text(request_mail)

    # ---- Maya (still signed in) approves every item of v2.
    maya.goto(f"{base}/portal/")
    pending = maya.locator(".pending-card")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("Lifecycle rebuild · definitions v2")
    pending.get_by_role("link", name="Review and sign").click()
    expect(maya.get_by_role("heading", name="Lifecycle rebuild")).to_contain_text("Definitions v2")
    expect(signoff_item(maya, CONTESTED_KEY)).to_contain_text("at least one high-intent action in the last 90 days")
    total_v2 = answer_everything(maya, v2)
    seen = len(smtp.messages)
    maya.get_by_role("button", name="Submit answers").click()
    done = maya.locator("#signoff-done")
    expect(done.get_by_role("heading", name="Thank you: your answers are recorded")).to_be_visible()
    expect(done).to_contain_text(f"you approved all {total_v2} items")
    expect(done).to_contain_text("Everyone has signed.")
    expect(done.locator(".hash-full")).to_have_text(v2.content_hash)
    shot(maya, "09-v2-signed", full_page=False)
    signed_mail = new_mail(smtp, seen, to=cast.consultant.email, subject="Acme Robotics signed the definitions (v2)")
    assert v2.content_hash in body_text(signed_mail)

    # ---- The consultant sees v2 signed and the Strategy gate's checkpoint checked by itself.
    consultant.reload()
    expect(consultant.get_by_role("heading", name=re.compile(r"^Definitions v2"))).to_contain_text("Signed")
    expect(consultant.get_by_role("row", name=re.compile("^Maya Patel"))).to_contain_text("Approved every item")
    shot(consultant, "10-v2-signed", full_page=False)
    tabs.get_by_role("link", name="Overview").click()
    checkpoint = consultant.locator("#gate-panel li.checkpoint", has_text="Definition Alignment Document signed off")
    expect(checkpoint.locator(".badge")).to_have_text("Checked")
    expect(checkpoint).to_contain_text("v2: signed by every approver.")
    expect(checkpoint).to_contain_text("Signed: VP Marketing (Maya Patel)")
    # The contest of v1 is resolved by v2, with a link to it.
    expect(checkpoint).to_contain_text("Contested in v1: MQL (Maya Patel) — resolved by v2")
    expect(checkpoint.get_by_role("link", name="v2")).to_have_attribute(
        "href", f"/o/{org}/engagements/{engagement.uuid}/definitions/versions/{v2.uuid}/"
    )
    checkpoint.scroll_into_view_if_needed()
    shot(consultant, "11-overview-checkpoint-checked", full_page=False)

    # ---- The consultant renders the Definition Alignment Document from v2 and downloads it.
    tabs.get_by_role("link", name="Definitions").click()
    deliverables = consultant.locator("#deliverables")
    deliverables.get_by_label("From version").select_option(label="v2 (signed)")
    deliverables.get_by_role("button", name="Render the Definition Alignment Document").click()
    expect(deliverables.get_by_text("Definition Alignment Document #1 requested from v2.")).to_be_visible()
    download_link = deliverables.get_by_role("link", name="Download PDF Definition Alignment Document #1")
    expect(download_link).to_be_visible()  # the page polls artifact-status until the render is done
    deliverables.scroll_into_view_if_needed()
    shot(consultant, "12-deliverable-ready", full_page=False)
    with consultant.expect_download() as info:
        download_link.click()
    download = info.value
    assert download.suggested_filename == "Acme-Robotics-definition-alignment-1.pdf"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    artifact = Artifact.objects.get(engagement=engagement)
    assert artifact.status == ArtifactStatus.DONE and artifact.source_version == v2
    assert hashlib.sha256(data).hexdigest() == artifact.sha256

    text = pdf_text(data)
    assert "Definition Alignment Document Acme Robotics · Lifecycle rebuild" in text
    assert "v2 — signed" in text and NEW_DEFINITION in text
    # The fingerprint on the cover, in the certificate and as the one Maya's signature quotes (wrapped in its cell).
    assert text.replace(" ", "").count(v2.content_hash) == 3
    assert "Maya Patel VP Marketing" in text and "approved all" in text
    assert CONTESTED_COMMENT not in text  # v1's objection stays with v1

    # ---- Maya finds the same document in her portal.
    maya.goto(f"{base}/portal/signoffs/")
    docs = maya.get_by_role("region", name="Documents")
    expect(docs).to_contain_text("definitions v2")
    signed = maya.get_by_role("region", name="Signed definitions")
    expect(signed).to_contain_text("Lifecycle rebuild · v2")
    shot(maya, "13-portal-documents")
    with maya.expect_download() as info:
        docs.get_by_role("link", name=re.compile("^Definition Alignment Document")).click()
    portal_copy = tmp_path / "portal-copy.pdf"
    info.value.save_as(portal_copy)
    assert hashlib.sha256(portal_copy.read_bytes()).hexdigest() == artifact.sha256
