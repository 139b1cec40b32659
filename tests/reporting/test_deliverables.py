"""Deliverables are real WeasyPrint PDFs, read back with pdftotext."""

import hashlib
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
from django.urls import reverse

from accounts.models import DomainError
from deliverables.models import Artifact, ArtifactStatus
from engagements import definitions, progression
from engagements.deliverables import request_artifact
from playbooks.models import Playbook
from tests.conftest import ensure_library

pytestmark = pytest.mark.django_db(transaction=True)


def pdf_text(data: bytes, *extra: str) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", *extra, "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


@pytest.fixture
def signed(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    ensure_library()
    version = Playbook.objects.library().get(key="gtm-lifecycle").latest_version()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=version,
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    published = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    definitions.sign(
        version=published, stakeholder=cast.stakeholder, decisions={k: "yes" for k, _ in published.items}, comments={}
    )
    return engagement, published


def test_definition_alignment_document(cast, signed):
    engagement, version = signed
    artifact = request_artifact(engagement=engagement, kind="definition_alignment", actor=cast.consultant)
    artifact.refresh_from_db()
    assert artifact.status == ArtifactStatus.DONE and artifact.progress == 100
    data = artifact.file.read()
    assert hashlib.sha256(data).hexdigest() == artifact.sha256 and data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "Definition Alignment Document" in text and "Acme Robotics" in text and "Alpha Advisory" in text
    assert version.content_hash in text.replace("\n", "").replace(" ", "")
    assert "Signature certificate" in text and "Maya Patel" in text and "approved" in text
    assert "Alpha Advisory · Acme Robotics" in pdf_text(data, "-f", "2", "-l", "2")  # running header
    first_term = version.content["terms"][0]["term"]
    assert first_term.split()[0] in text
    assert f"Page 1 of {artifact.pages}" in text and artifact.pages >= 3
    assert artifact.source_version == version and artifact.number == 1


def test_stage_reference_card_is_one_page(cast, signed):
    engagement, version = signed
    artifact = request_artifact(engagement=engagement, kind="stage_reference_card", actor=cast.consultant)
    artifact.refresh_from_db()
    assert artifact.pages == 1
    text = pdf_text(artifact.file.read())
    assert "Stage Reference Card" in text and "definitions v1" in text
    assert version.content["stages"][0]["name"] in text
    second = request_artifact(engagement=engagement, kind="stage_reference_card", actor=cast.consultant)
    assert second.number == 2  # artifacts are versioned, never overwritten


def test_nothing_to_render_before_a_version_is_published(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    ensure_library()
    version = Playbook.objects.library().get(key="delivery-model").latest_version()
    engagement = progression.create_engagement(
        client=cast.client, playbook_version=version, name="Audit", start_date=date(2026, 11, 2), actor=cast.consultant
    )
    with pytest.raises(DomainError, match="Publish a version"):
        request_artifact(engagement=engagement, kind="definition_alignment", actor=cast.consultant)
    assert not Artifact.objects.across_tenants("test").exists()


def test_a_render_runs_once_however_often_it_is_queued(cast, signed):
    from deliverables.services import render

    engagement, _ = signed
    artifact = request_artifact(engagement=engagement, kind="stage_reference_card", actor=cast.consultant)
    assert render(artifact.pk) is None  # already rendered by the task; a retry claims nothing


def test_a_render_that_fails_leaves_a_failed_row_with_the_error(cast, signed):
    from engagements.models import DefinitionVersion

    engagement, version = signed
    # No "stages": cannot render.
    DefinitionVersion.objects.across_tenants("test").filter(pk=version.pk).update(content={"terms": []})
    artifact = request_artifact(engagement=engagement, kind="definition_alignment", actor=cast.consultant)
    artifact.refresh_from_db()
    assert artifact.status == ArtifactStatus.FAILED
    assert "KeyError" in artifact.error and "stages" in artifact.error
    assert not artifact.file and artifact.finished_at is not None


# --------------------------------------------------------------------------------------------------
# Every kind through the one pipeline, whatever the client's name holds (issue 14: safe file names)

ODD_NAME = 'Procter & Gamble / Europe \\ "Q1" ' + "Zürich Überseehandel " * 20
# Worked out by hand: ASCII letters and digits kept (ü -> u), every other run of characters one dash, 60 at most.
ODD_SLUG = "Procter-Gamble-Europe-Q1-Zurich-Uberseehandel-Zurich-Ubersee"
SAFE_NAME = re.compile(r"[A-Za-z0-9.-]+")


def words(data: bytes) -> str:
    return " ".join(pdf_text(data).split())


@pytest.fixture
def odd_client(cast):
    from engagements.models import ClientAccount

    longest = ClientAccount._meta.get_field("name").max_length  # as long as a client's name can be stored
    cast.client.name = ODD_NAME[:longest]
    cast.client.save(update_fields=["name"])
    return cast.client


def audit_run_with_a_finding(cast, engagement):
    from crm_connectors.models import AuditRun, CrmConnection, Finding

    connection = CrmConnection.objects.create(
        organization=cast.org, client=cast.client, kind="salesforce", auth_method="password",
        base_url="https://login.salesforce.com", username="odd@alpha.example",
    )
    run = AuditRun.objects.create(
        organization=cast.org, client=cast.client, engagement=engagement, connection=connection,
        platform="salesforce", status="succeeded", progress=100,
    )
    Finding.objects.create(
        organization=cast.org, run=run, rule_id="LC-NO-SAL", severity="high", domain="lead_lifecycle",
        object="lead", message="No SAL stage.", fingerprint="odd",
    )
    return run


def health_engagement(cast):
    from reporting import figures, schedules

    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="revenue-intelligence").latest_version(),
        name="Forecasting",
        start_date=date(2026, 6, 1),
        actor=cast.consultant,
        engagement_type="dedicated",
        team=[(cast.consultant, "architect")],
        stakeholders=[(cast.stakeholder, "RevOps lead")],
    )
    schedules.start_schedule(engagement=engagement, actor=cast.consultant, live_since=date(2026, 8, 1))
    figures.record_metric(
        engagement=engagement, metric="forecast_submission_compliance", period=OCTOBER, value=78, actor=cast.consultant
    )
    return engagement


OCTOBER = date(2026, 10, 1)


def test_every_kind_renders_and_the_email_goes_out_whatever_the_client_is_called(
    cast, signed, odd_client, smtp, client, settings
):
    from crm_connectors.audit import services as audit_services
    from reporting import runs
    from reporting.models import HealthCheckRun, ReportDelivery
    from reporting.tasks import run_health_check

    engagement, _ = signed
    forecasting = health_engagement(cast)
    run, _ = runs.create_run(forecasting, OCTOBER)
    run_health_check(run.pk)  # before the audit's CRM connection exists: figures entered by hand only
    requested = [
        request_artifact(engagement=engagement, kind="definition_alignment", actor=cast.consultant),
        request_artifact(engagement=engagement, kind="stage_reference_card", actor=cast.consultant),
        audit_services.request_report(run=audit_run_with_a_finding(cast, engagement), actor=cast.consultant),
        HealthCheckRun.objects.across_tenants("test").get(pk=run.pk).report,
    ]

    media = Path(settings.MEDIA_ROOT).resolve()
    for artifact in requested:
        artifact.refresh_from_db()
        assert artifact.status == ArtifactStatus.DONE, (artifact.kind, artifact.error)
        stored = Path(artifact.file.path).resolve()
        assert SAFE_NAME.fullmatch(artifact.filename) and artifact.filename.startswith(ODD_SLUG + "-")
        assert stored.parent == media / "artifacts" / str(cast.org.uuid) / str(artifact.engagement.uuid)
        assert stored.name == artifact.filename
        data = artifact.file.read()
        assert hashlib.sha256(data).hexdigest() == artifact.sha256
        assert 'Procter & Gamble / Europe \\ "Q1"' in words(data), artifact.kind
    assert {a.kind for a in requested} == {
        "definition_alignment", "stage_reference_card", "current_state_audit", "health_check_report"
    }
    assert requested[0].filename == f"{ODD_SLUG}-definition-alignment-1.pdf"
    assert requested[3].filename == f"{ODD_SLUG}-health-check-2026-10.pdf"

    client.force_login(cast.consultant)
    dad = requested[0]
    download = client.get(reverse("engagements:artifact-download", args=[cast.org.slug, engagement.uuid, dad.uuid]))
    assert download["Content-Disposition"] == f'attachment; filename="{ODD_SLUG}-definition-alignment-1.pdf"'

    messages = smtp.wait_for(2)
    assert {m["To"] for m in messages} == {"maya@acme.example", "carl@alpha.example"}
    for mail in messages:
        [attachment] = list(mail.iter_attachments())
        assert attachment.get_filename() == f"{ODD_SLUG}-health-check-2026-10.pdf"
        assert "Health-Check Report" in words(attachment.get_content())
    assert set(ReportDelivery.objects.filter(run=run).values_list("status", flat=True)) == {"sent"}
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_the_file_name_of_any_name_is_a_short_safe_slug():
    from deliverables.models import safe_slug

    # 25 characters of the name, then "e-" as long as 60 allows, and no dash at the end
    expected = "Procter-Gamble-Europe-Q1-" + "e-" * 17 + "e"
    assert safe_slug('Procter & Gamble / Europe \\ "Q1"' + "é/" * 300) == expected
    assert safe_slug("../../etc/passwd") == "etc-passwd"
    assert safe_slug("株式会社 / \\ \"'") == "client"  # nothing ASCII left: a neutral word, never an empty name


def test_a_failed_render_says_why_and_the_retry_button_renders_it_again(cast, signed, client, settings, tmp_path):
    engagement, version = signed
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = blocked  # the PDF renders, but its file cannot be stored
    artifact = request_artifact(engagement=engagement, kind="stage_reference_card", actor=cast.consultant)
    artifact.refresh_from_db()
    assert artifact.status == ArtifactStatus.FAILED and "Error" in artifact.error and not artifact.file

    client.force_login(cast.consultant)
    page = client.get(reverse("engagements:definitions", args=[cast.org.slug, engagement.uuid])).content.decode()
    retry_url = reverse("engagements:artifact-retry", args=[cast.org.slug, engagement.uuid, artifact.uuid])
    assert f'action="{retry_url}"' in page and "Failed" in page

    settings.MEDIA_ROOT = tmp_path / "media"
    response = client.post(retry_url)
    assert response.status_code == 302
    artifact.refresh_from_db()
    assert artifact.status == ArtifactStatus.DONE and artifact.error == "" and artifact.number == 1
    assert "Stage Reference Card" in words(artifact.file.read())
    assert client.post(retry_url).status_code == 302  # nothing left to retry: a message, not a second render
    assert Artifact.objects.filter(engagement=engagement).count() == 1


def test_a_viewer_cannot_retry(cast, signed, client, settings, tmp_path):
    engagement, _ = signed
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    settings.MEDIA_ROOT = blocked
    artifact = request_artifact(engagement=engagement, kind="stage_reference_card", actor=cast.consultant)
    client.force_login(cast.viewer)
    retry_url = reverse("engagements:artifact-retry", args=[cast.org.slug, engagement.uuid, artifact.uuid])
    assert client.post(retry_url).status_code == 403
    artifact.refresh_from_db()
    assert artifact.status == ArtifactStatus.FAILED


def test_health_emails_wait_for_a_failed_report_and_go_out_after_its_retry(cast, smtp, client, settings, tmp_path):
    from reporting import runs
    from reporting.models import HealthCheckRun, ReportDelivery
    from reporting.tasks import run_health_check

    ensure_library()
    forecasting = health_engagement(cast)
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    settings.MEDIA_ROOT = blocked
    run, _ = runs.create_run(forecasting, OCTOBER)
    run_health_check(run.pk)
    run = HealthCheckRun.objects.across_tenants("test").select_related("report").get(pk=run.pk)
    # not succeeded without its report: failed with the reason, the emails not even planned
    assert run.status == "failed" and run.report.status == ArtifactStatus.FAILED
    assert "report could not be rendered" in run.error
    assert not ReportDelivery.objects.filter(run=run).exists()
    assert smtp.messages == []  # no email without its report

    client.force_login(cast.consultant)
    run_page = reverse("reporting:run-detail", args=[cast.org.slug, forecasting.uuid, run.uuid])
    retry_url = reverse("engagements:artifact-retry", args=[cast.org.slug, forecasting.uuid, run.report.uuid])
    page = client.get(run_page).content.decode()
    assert "Report failed" in page and f'action="{retry_url}"' in page

    settings.MEDIA_ROOT = tmp_path / "media"
    response = client.post(retry_url, {"next": run_page})
    assert response.status_code == 302 and response["Location"] == run_page
    messages = smtp.wait_for(2)
    assert {m["To"] for m in messages} == {"maya@acme.example", "carl@alpha.example"}
    assert all(len(list(m.iter_attachments())) == 1 for m in messages)
    assert set(ReportDelivery.objects.filter(run=run).values_list("status", flat=True)) == {"sent"}
    run.refresh_from_db()
    assert run.status == "succeeded"
