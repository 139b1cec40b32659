"""Deliverables are real WeasyPrint PDFs, read back with pdftotext."""

import hashlib
import subprocess
from datetime import date

import pytest

from accounts.models import DomainError
from engagements import definitions, progression
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks
from reporting.models import Artifact, ArtifactStatus
from reporting.services import request_artifact

pytestmark = pytest.mark.django_db(transaction=True)


def pdf_text(data: bytes, *extra: str) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", *extra, "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


@pytest.fixture
def signed(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    load_library_playbooks()
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
    load_library_playbooks()
    version = Playbook.objects.library().get(key="delivery-model").latest_version()
    engagement = progression.create_engagement(
        client=cast.client, playbook_version=version, name="Audit", start_date=date(2026, 11, 2), actor=cast.consultant
    )
    with pytest.raises(DomainError, match="Publish a version"):
        request_artifact(engagement=engagement, kind="definition_alignment", actor=cast.consultant)
    assert not Artifact.objects.exists()


def test_a_render_runs_once_however_often_it_is_queued(cast, signed):
    from reporting.services import render

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
