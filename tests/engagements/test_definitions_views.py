"""The consultant's definition alignment pages: the draft edited inline, publishing for sign-off, versions with
their signatures, diffs, and deliverables rendered to PDF and downloaded.

Everything goes through the real views, the real services, a real SMTP server and real WeasyPrint PDFs read
back with pdftotext; htmx requests send `HX-Request: true`.
"""

import re
import subprocess
from datetime import date

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import ActivityEntry
from deliverables.models import Artifact, ArtifactStatus
from engagements import definitions, progression
from engagements.models import (
    DefinitionTerm,
    DefinitionVersion,
    EngagementStatus,
    StageDefinition,
    Stakeholder,
)
from tests.conftest import body_text

# Publishing emails signers and rendering a PDF happen in transaction.on_commit callbacks: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def engagement(approvers_engagement):
    return approvers_engagement


@pytest.fixture
def consultant(client, cast):
    client.force_login(cast.consultant)
    return client


def e_url(name, engagement, **kwargs):
    return reverse(
        f"engagements:{name}",
        kwargs={"org_slug": engagement.organization.slug, "engagement_uuid": engagement.uuid, **kwargs},
    )


def answers(version, value="yes", **overrides):
    return {key: overrides.get(key, value) for key, _ in version.items}


def mql(engagement) -> DefinitionTerm:
    return DefinitionTerm.objects.get(engagement=engagement, key="mql")


def term_data(item, **changes) -> dict:
    data = {
        "term": item.term,
        "key": item.key,
        "definition": item.definition,
        "notes": item.notes,
        "order": item.order,
        "stage_keys": item.stage_keys,
    }
    return {**data, **changes}


def pdf_text(data: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


# --------------------------------------------------------------------------------------------------
# The draft


def test_the_draft_page_shows_terms_stages_by_domain_and_that_nothing_is_published(consultant, engagement):
    response = consultant.get(e_url("definitions", engagement))
    body = response.content.decode()
    assert response.status_code == 200
    assert "MQL" in body and "The handoff point from Marketing to Sales" in body
    assert "Lead domain" in body and "Sales domain" in body and "Customer domain" in body
    assert "Not published yet." in body
    assert e_url("definitions-publish", engagement) in body
    assert "No version published yet" in body
    assert "Publish a version first" in body  # deliverables need a version


def test_editing_a_term_inline_swaps_a_row_then_the_draft(consultant, engagement):
    term = mql(engagement)
    edit = e_url("term-edit", engagement, term_uuid=term.uuid)

    form = consultant.get(edit, **HTMX)
    assert form.status_code == 200 and "<html" not in form.content.decode()
    assert f'id="term-{term.uuid}"' in form.content.decode() and "Save term" in form.content.decode()

    response = consultant.post(
        edit, term_data(term, definition="ICP fit A/B and a score of 60 or more within 90 days."), **HTMX
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'id="draft"' in body and "score of 60 or more" in body and "Saved “MQL”." in body
    assert '<div id="draft-status" class="banner defs-banner warn" hx-swap-oob="true">' in body
    assert "Not published yet." in body
    term.refresh_from_db()
    assert term.definition == "ICP fit A/B and a score of 60 or more within 90 days."
    entry = ActivityEntry.objects.across_tenants("test").filter(verb="definitions.term_changed").get()
    assert entry.actor == engagement.cast.consultant and entry.data["key"] == "mql"

    cancel = consultant.get(edit + "?row=1", **HTMX).content.decode()
    assert cancel.strip().startswith("<tr") and "score of 60 or more" in cancel and "Save term" not in cancel


def test_editing_after_a_publication_shows_unpublished_changes_since_the_version(consultant, engagement):
    cast = engagement.cast
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    page = consultant.get(e_url("definitions", engagement)).content.decode()
    assert "The draft matches" in page and "Unpublished changes" not in page
    term = mql(engagement)
    body = consultant.post(
        e_url("term-edit", engagement, term_uuid=term.uuid), term_data(term, notes="Reviewed quarterly."), **HTMX
    ).content.decode()
    assert "Unpublished changes since v1." in body and "?from=1&amp;to=draft" in body


def test_a_term_with_errors_comes_back_in_place_with_linked_errors(consultant, engagement):
    term = mql(engagement)
    response = consultant.post(
        e_url("term-edit", engagement, term_uuid=term.uuid), term_data(term, term="", key="sal"), **HTMX
    )
    body = response.content.decode()
    assert response.status_code == 200  # htmx swaps only 2xx
    assert response["HX-Retarget"] == f"#term-{term.uuid}" and response["HX-Reswap"] == "outerHTML"
    assert "This field is required." in body and "Another term already uses the key “sal”." in body
    short = term.uuid.hex[:8]
    assert f'id="term-{short}-term_error"' in body and f'aria-describedby="term-{short}-term_error"' in body
    assert 'aria-invalid="true"' in body
    assert mql(engagement).term == "MQL"


def test_editing_a_stage_inline_keeps_crm_values_as_a_list(consultant, engagement):
    stage = StageDefinition.objects.get(engagement=engagement, key="lead-stages-sal")
    response = consultant.post(
        e_url("stage-edit", engagement, stage_uuid=stage.uuid),
        {
            "name": "SAL",
            "key": stage.key,
            "domain": "lead",
            "order": stage.order,
            "golden": "on",
            "entry_criteria": "Sales accepted the MQL within 48 hours.",
            "exit_criteria": "Discovery call booked.",
            "transition_owner": "SDR manager",
            "crm_object": "Lead",
            "crm_field": "Status",
            "crm_values": "Accepted\nWorking, Accepted",
            "term_keys": ["sal", "mql"],
        },
        **HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 200 and "Sales accepted the MQL within 48 hours." in body and "Golden" in body
    stage.refresh_from_db()
    assert stage.crm_values == ["Accepted", "Working"] and stage.golden and stage.term_keys == ["sal", "mql"]
    assert "<code>Lead.Status</code>" in body


def test_renaming_a_key_follows_the_references_and_deleting_unlinks(consultant, engagement):
    stage = StageDefinition.objects.get(engagement=engagement, key="lead-stages-mql")
    stage.term_keys = ["mql"]
    stage.save()
    term = mql(engagement)
    consultant.post(e_url("term-edit", engagement, term_uuid=term.uuid), term_data(term, key="mql-2027"))
    stage.refresh_from_db()
    assert stage.term_keys == ["mql-2027"]

    delete = e_url("term-delete", engagement, term_uuid=term.uuid)
    confirm = consultant.get(delete).content.decode()
    assert "Delete this term?" in confirm and "data-confirm=" in confirm and "1 stage refers to it" in confirm
    response = consultant.post(delete)
    assert response.status_code == 302 and response["Location"].endswith("#terms")
    assert not DefinitionTerm.objects.across_tenants("test").filter(pk=term.pk).exists()
    stage.refresh_from_db()
    assert stage.term_keys == []
    assert ActivityEntry.objects.across_tenants("test").filter(verb="definitions.term_removed").exists()


def test_adding_terms_and_stages_with_and_without_htmx(consultant, engagement):
    add_term = e_url("term-add", engagement)
    page = consultant.get(add_term)
    assert page.status_code == 200 and "Add a term" in page.content.decode()
    response = consultant.post(add_term, {"term": "Churned Customer", "definition": "Cancelled or did not renew."})
    assert response.status_code == 302
    added = DefinitionTerm.objects.get(engagement=engagement, key="churned-customer")
    assert added.order == DefinitionTerm.objects.filter(engagement=engagement).count()

    body = consultant.post(
        e_url("stage-add", engagement), {"name": "Churned", "domain": "customer", "crm_values": "Churned"}, **HTMX
    ).content.decode()
    assert "Added “Churned”." in body and 'id="draft"' in body
    assert StageDefinition.objects.get(engagement=engagement, key="churned").crm_values == ["Churned"]

    invalid = consultant.post(e_url("stage-add", engagement), {"name": "", "domain": "customer"}, **HTMX)
    assert invalid["HX-Retarget"] == "#stage-add" and "This field is required." in invalid.content.decode()


def test_a_closed_engagement_is_read_only(consultant, engagement):
    engagement.status = EngagementStatus.CLOSED
    engagement.save(update_fields=["status"])
    term = mql(engagement)
    page = consultant.get(e_url("definitions", engagement)).content.decode()
    assert "This engagement is closed" in page and e_url("term-edit", engagement, term_uuid=term.uuid) not in page
    response = consultant.post(e_url("term-edit", engagement, term_uuid=term.uuid), term_data(term, notes="x"))
    assert response.status_code == 400 and "closed" in response.content.decode()
    assert mql(engagement).notes == term.notes


# --------------------------------------------------------------------------------------------------
# Publishing, versions, diffs


def test_publishing_asks_the_chosen_stakeholders_to_sign_and_emails_them(consultant, engagement, smtp):
    cast = engagement.cast
    outsider = Stakeholder.objects.create(
        organization=cast.org, client=cast.client, name="Ann Other", email="ann@acme.example"
    )
    dialog = consultant.get(e_url("definitions-publish", engagement), **HTMX)
    body = dialog.content.decode()
    assert dialog.status_code == 200 and body.strip().startswith("<dialog")
    # The engagement's stakeholders come first, checked; every stakeholder of the client can be chosen.
    assert body.index("Maya Patel") < body.index("Tom Becker") < body.index("Ann Other")
    assert f'value="{cast.stakeholder.uuid}" id="signer-{cast.stakeholder.uuid}" aria-describedby' in body
    assert body.count(" checked") == 2 and "Marketing approver" in body and "Not on this engagement" in body
    assert str(cast.sibling_stakeholder.uuid) not in body

    # A stakeholder of another client is not a valid choice.
    refused = consultant.post(
        e_url("definitions-publish", engagement), {"signers": [str(cast.sibling_stakeholder.uuid)]}
    )
    assert refused.status_code == 400 and not DefinitionVersion.objects.across_tenants("test").exists()

    # Approver roles without a holder are waived with a reason; a confirmation step comes before publishing.
    chosen = {
        "signers": [str(cast.stakeholder.uuid), str(outsider.uuid)],
        "approver-1": "waive", "waiver-1": "No RevOps lead yet.",
        "approver-2": str(cast.stakeholder.uuid), "approver-3": str(engagement.tom.uuid),
        "approver-4": "waive", "waiver-4": "CS joins later.",
    }
    confirm = consultant.post(e_url("definitions-publish", engagement), chosen).content.decode()
    token = re.search(r'name="confirm" value="(\w+)"', confirm).group(1)
    response = consultant.post(e_url("definitions-publish", engagement), {**chosen, "confirm": token})
    version = DefinitionVersion.objects.get(engagement=engagement)
    assert response.status_code == 302
    assert response["Location"] == e_url("definition-version", engagement, definition_version_uuid=version.uuid)
    assert {r.stakeholder for r in version.requests.all()} == {cast.stakeholder, outsider, engagement.tom}
    mails = smtp.wait_for(3)
    assert {m["To"] for m in mails} == {"maya@acme.example", "ann@acme.example", "tom@acme.example"}
    assert version.content_hash in body_text(mails[0])

    again = consultant.post(e_url("definitions-publish", engagement), {**chosen, "confirm": token})
    assert again.status_code == 400 and "Nothing changed since v1" in again.content.decode()
    empty = consultant.post(e_url("definitions-publish", engagement), {})
    assert "Choose at least one stakeholder who must sign this version." in empty.content.decode()


def test_the_versions_list_shows_status_signer_progress_and_hash(consultant, engagement):
    cast = engagement.cast
    v1 = definitions.publish(engagement=engagement, signers=[cast.stakeholder, engagement.tom], actor=cast.consultant)
    definitions.sign(version=v1, stakeholder=cast.stakeholder, decisions=answers(v1), comments={})
    body = consultant.get(e_url("definitions", engagement)).content.decode()
    assert "1 of 2 answered" in body and "Awaiting signatures" in body
    assert f'<code class="hash" title="{v1.content_hash}">{v1.content_hash[:12]}</code>' in body

    definitions.sign(version=v1, stakeholder=engagement.tom, decisions=answers(v1), comments={})
    term = mql(engagement)
    term.notes = "Changed after signing."
    term.save()
    v2 = definitions.publish(engagement=engagement, signers=[engagement.tom], actor=cast.consultant)
    body = consultant.get(e_url("definitions", engagement)).content.decode()
    assert body.index("<strong>v2</strong>") < body.index("<strong>v1</strong>")
    assert "2 of 2 answered" in body and "Signed" in body and "0 of 1 answered" in body
    assert f"{v2.content_hash[:12]}</code>" in body


def test_a_version_shows_each_answer_with_time_ip_user_agent_and_comments(consultant, engagement):
    cast = engagement.cast
    v1 = definitions.publish(engagement=engagement, signers=[cast.stakeholder, engagement.tom], actor=cast.consultant)
    request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Safari")
    definitions.sign(
        version=v1,
        stakeholder=cast.stakeholder,
        decisions=answers(v1, **{"term:mql": "no"}),
        comments={"term:mql": "Add a 90-day recency window."},
        request=request,
    )
    body = consultant.get(e_url("definition-version", engagement, definition_version_uuid=v1.uuid)).content.decode()
    assert "Contested" in body and v1.content_hash in body
    assert "203.0.113.7" in body and "Mozilla/5.0 (iPhone) Safari" in body
    assert "Asked for 1 change" in body and "Pending" in body  # Tom has not answered
    assert "Add a 90-day recency window." in body and "Contested items" in body
    assert "Approved by</span> Maya Patel" in body  # the other items

    term = mql(engagement)
    term.definition += " Recency: 90 days."
    term.save()
    v2 = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    body = consultant.get(e_url("definition-version", engagement, definition_version_uuid=v1.uuid)).content.decode()
    assert "replaced this one" in body and f"{e_url('definition-diff', engagement)}?from=1&amp;to=2" in body
    body = consultant.get(e_url("definition-version", engagement, definition_version_uuid=v2.uuid)).content.decode()
    assert "?from=1&amp;to=2" in body and "?from=2&amp;to=draft" in body


def test_the_diff_page_shows_a_changed_definition_field_by_field(consultant, engagement):
    cast = engagement.cast
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    term = mql(engagement)
    term.definition = "ICP fit and a score of 60 within 90 days."
    term.save()
    DefinitionTerm.objects.create(
        organization=cast.org, engagement=engagement, key="pql", term="PQL", definition="Product qualified.", order=99
    )
    StageDefinition.objects.filter(engagement=engagement, key="lead-stages-anonymous-visitor").delete()
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)

    response = consultant.get(e_url("definition-diff", engagement), {"from": 1, "to": 2})
    body = response.content.decode()
    assert response.status_code == 200 and "v1 → v2" in body
    assert "Changed" in body and "Our definition" in body
    assert "<del>The handoff point from Marketing to Sales." in body
    assert "<ins>ICP fit and a score of 60 within 90 days.</ins>" in body
    assert "Added" in body and "Product qualified." in body
    assert "Removed" in body and "Anonymous Visitor" in body

    # Without parameters: the latest two versions. Against the draft: nothing changed since v2.
    assert consultant.get(e_url("definition-diff", engagement)).context["older"] == 1
    same = consultant.get(e_url("definition-diff", engagement), {"from": 2, "to": "draft"}).content.decode()
    assert "No difference" in same
    bad = consultant.get(e_url("definition-diff", engagement), {"from": 7, "to": 2})
    assert bad.status_code == 400 and "Choose two published versions" in bad.content.decode()


# --------------------------------------------------------------------------------------------------
# Deliverables


def test_a_deliverable_is_requested_rendered_polled_and_downloaded_as_a_pdf(consultant, engagement):
    cast = engagement.cast
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    page = consultant.get(e_url("definitions", engagement)).content.decode()
    assert 'value="definition_alignment"' in page and f'<option value="{version.uuid}">v1</option>' in page

    response = consultant.post(
        e_url("artifact-request", engagement), {"kind": "definition_alignment", "version": str(version.uuid)}, **HTMX
    )
    body = response.content.decode()
    artifact = Artifact.objects.get(engagement=engagement)
    assert response.status_code == 200 and body.strip().startswith('<section id="deliverables"')
    assert "Definition Alignment Document #1 requested from v1." in body
    assert artifact.status == ArtifactStatus.DONE, artifact.error  # tasks run inline in tests
    assert "every 1s" not in body and "Download PDF" in body

    status = consultant.get(e_url("artifact-status", engagement, artifact_uuid=artifact.uuid), **HTMX)
    assert status.content.decode().strip().startswith(f'<li id="artifact-{artifact.uuid}"')
    assert "hx-trigger" not in status.content.decode()

    download = consultant.get(e_url("artifact-download", engagement, artifact_uuid=artifact.uuid))
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"] == 'attachment; filename="Acme-Robotics-definition-alignment-1.pdf"'
    assert {"private", "no-store"} <= {d.strip() for d in download["Cache-Control"].split(",")}
    data = b"".join(download.streaming_content)
    assert data.startswith(b"%PDF") and "Acme Robotics" in pdf_text(data)


def test_a_queued_render_is_polled_every_second_and_cannot_be_downloaded(consultant, engagement):
    cast = engagement.cast
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    artifact = Artifact.objects.create(
        organization=cast.org,
        engagement=engagement,
        kind="stage_reference_card",
        number=1,
        source_version=version,
        status=ArtifactStatus.RENDERING,
        progress=40,
        created_by=cast.consultant,
    )
    status_url = e_url("artifact-status", engagement, artifact_uuid=artifact.uuid)
    body = consultant.get(status_url, **HTMX).content.decode()
    assert f'hx-get="{status_url}" hx-trigger="every 1s" hx-swap="outerHTML"' in body
    assert '<progress id="progress-' in body and 'value="40"' in body and "Rendering… 40%" in body
    assert f'hx-get="{status_url}"' in consultant.get(e_url("definitions", engagement)).content.decode()
    assert consultant.get(e_url("artifact-download", engagement, artifact_uuid=artifact.uuid)).status_code == 404


def test_requesting_a_deliverable_of_another_engagements_version_is_refused(consultant, engagement, cast):
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    other = progression.create_engagement(
        client=cast.client,
        playbook_version=engagement.playbook_version,
        name="Other",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    response = consultant.post(
        e_url("artifact-request", other), {"kind": "definition_alignment", "version": version.uuid}
    )
    assert response.status_code == 302 and not Artifact.objects.across_tenants("test").exists()


# --------------------------------------------------------------------------------------------------
# Roles and query counts


def test_a_viewer_reads_but_gets_403_on_every_write(client, engagement):
    cast = engagement.cast
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    client.force_login(cast.viewer)
    page = client.get(e_url("definitions", engagement)).content.decode()
    assert "You have view access" in page and "Add a term" not in page and "Publish v" not in page
    term = mql(engagement)
    inline = client.get(e_url("term-edit", engagement, term_uuid=term.uuid), **HTMX).content.decode()
    assert inline.strip().startswith("<tr") and "Save term" not in inline  # a reader gets the row, not a form
    stage = StageDefinition.objects.filter(engagement=engagement).first()
    writes = [
        (e_url("term-add", engagement), {"term": "X", "definition": "Y"}),
        (e_url("term-edit", engagement, term_uuid=term.uuid), term_data(term, notes="viewer")),
        (e_url("term-delete", engagement, term_uuid=term.uuid), {}),
        (e_url("stage-add", engagement), {"name": "X", "domain": "lead"}),
        (e_url("stage-edit", engagement, stage_uuid=stage.uuid), {"name": "X", "domain": "lead"}),
        (e_url("stage-delete", engagement, stage_uuid=stage.uuid), {}),
        (e_url("definitions-publish", engagement), {"signers": [str(cast.stakeholder.uuid)]}),
        (e_url("artifact-request", engagement), {"kind": "definition_alignment", "version": str(version.uuid)}),
    ]
    before = ActivityEntry.objects.across_tenants("test").count()
    for url, data in writes:
        assert client.post(url, data).status_code == 403, url
        assert client.post(url, data, **HTMX).status_code == 403, url
    assert ActivityEntry.objects.across_tenants("test").count() == before
    assert DefinitionTerm.objects.across_tenants("test").filter(pk=term.pk, notes=term.notes).exists()
    assert DefinitionVersion.objects.across_tenants("test").count() == 1
    assert not Artifact.objects.across_tenants("test").exists()


def _count_queries(client, path) -> int:
    client.get(path)  # the first visit writes the session (current organization); measure a steady visit
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(ctx.captured_queries)


def _shape(engagement, n: int, versions: int) -> None:
    """Give the draft n terms and n stages, publish `versions` versions, each signed and rendered once."""
    cast = engagement.cast
    DefinitionTerm.objects.filter(engagement=engagement).delete()
    StageDefinition.objects.filter(engagement=engagement).delete()
    for i in range(n):
        DefinitionTerm.objects.create(
            organization=cast.org,
            engagement=engagement,
            key=f"t{i}",
            term=f"Term {i}",
            definition="D",
            order=i,
            stage_keys=[f"s{i}"],
        )
        StageDefinition.objects.create(
            organization=cast.org,
            engagement=engagement,
            key=f"s{i}",
            name=f"Stage {i}",
            domain=["lead", "sales"][i % 2],
            order=i,
            term_keys=[f"t{i}"],
        )
    for v in range(versions):
        DefinitionTerm.objects.filter(engagement=engagement, key="t0").update(definition=f"D{v}")
        version = definitions.publish(
            engagement=engagement, signers=[cast.stakeholder, engagement.tom], actor=cast.consultant
        )
        definitions.sign(version=version, stakeholder=cast.stakeholder, decisions=answers(version), comments={})
        Artifact.objects.create(
            organization=cast.org,
            engagement=engagement,
            kind="definition_alignment",
            number=v + 1,
            source_version=version,
            status=ArtifactStatus.QUEUED,
            created_by=cast.consultant,
        )


def test_query_counts_do_not_grow_with_terms_stages_versions_or_artifacts(consultant, engagement, cast):
    small = engagement
    big = progression.create_engagement(
        client=cast.client,
        playbook_version=engagement.playbook_version,
        name="Big",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Approver"), (engagement.tom, "Approver")],
    )
    big.cast, big.tom = cast, engagement.tom
    _shape(small, 2, 2)
    _shape(big, 30, 6)

    def pages(e):
        latest = definitions.latest_version(e)
        term = DefinitionTerm.objects.filter(engagement=e).first()
        return [
            e_url("definitions", e),
            e_url("definition-version", e, definition_version_uuid=latest.uuid),
            e_url("definition-diff", e) + "?from=1&to=2",
            e_url("definition-diff", e) + "?from=1&to=draft",
            e_url("definitions-publish", e),
            e_url("term-edit", e, term_uuid=term.uuid),
        ]

    for few_url, many_url in zip(pages(small), pages(big), strict=True):
        few, many = _count_queries(consultant, few_url), _count_queries(consultant, many_url)
        assert many == few, f"{many_url}: {few} queries for 2 terms and 2 versions, {many} for 30 terms and 6"
