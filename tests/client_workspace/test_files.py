"""Client uploads: allowed types only, content matching the declared type, a size limit, SHA-256 recorded, stored
outside the web root and served only to the engagement's own people; a refused file stores nothing."""

import hashlib
import io
import zipfile
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from client_workspace import intake
from client_workspace.models import IntakeFile
from engagements import progression
from engagements.models import Stakeholder
from tests.client_workspace.conftest import as_stakeholder

STAGE_EXPORT = b"Stage,Definition\r\nMQL,Score above 60\r\nSQL,Discovery call booked\r\n"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def upload(client, engagement, name, content, field="current_definitions"):
    return client.post(
        reverse("portal:intake-upload", args=[engagement.uuid]),
        {"field": field, "file": SimpleUploadedFile(name, content)},
        HTTP_HX_REQUEST="true",
    )


def stored_files(settings) -> list:
    root = settings.PRIVATE_MEDIA_ROOT
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize(("name", "content"), [("stages.csv", STAGE_EXPORT), ("shot.png", PNG),
                                                ("stages.xlsx", xlsx()), ("notes.txt", "Étapes\n".encode())])
def test_an_allowed_file_is_stored_privately_with_its_digest(cast, client, engagement, settings, name, content):
    as_stakeholder(client, cast.stakeholder)
    response = upload(client, engagement, name, content)
    assert response.status_code == 200 and name in response.content.decode()
    stored = IntakeFile.objects.for_org(cast.org).get(engagement=engagement)
    assert stored.sha256 == hashlib.sha256(content).hexdigest() and stored.size == len(content)
    [path] = stored_files(settings)
    assert path.read_bytes() == content
    assert str(cast.org.uuid) in str(path) and not str(path).startswith(str(settings.MEDIA_ROOT))
    with pytest.raises(ValueError):
        _ = stored.file.url  # no public address: only views that check who asks serve it
    download = client.get(reverse("portal:intake-file", args=[stored.uuid]))
    assert download.status_code == 200 and b"".join(download.streaming_content) == content
    assert download["Content-Disposition"].startswith("attachment") and download["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("stages.exe", b"MZ\x90\x00", "is not a type we accept: upload a PDF, PNG, JPEG, CSV, XLSX, DOCX or TXT file"),
        ("stages.html", b"<script>alert(1)</script>", "is not a type we accept"),
        ("shot.png", b"<?php echo 1; ?>", "is called a PNG image but its content is not one"),
        ("report.pdf", PNG, "is called a PDF but its content is not one"),
        ("stages.csv", PNG, "is called a CSV file but its content is not one"),
        ("stages.xlsx", b"PK\x03\x04not really a zip", "is called an Excel workbook but its content is not one"),
        ("empty.csv", b"", "is empty"),
    ],
)
def test_a_refused_file_stores_nothing_and_says_why(cast, client, engagement, settings, name, content, message):
    as_stakeholder(client, cast.stakeholder)
    response = upload(client, engagement, name, content)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not IntakeFile.objects.for_org(cast.org).exists() and stored_files(settings) == []


def test_an_oversized_file_is_refused_by_the_setting(cast, client, engagement, settings):
    settings.CLIENT_UPLOAD_MAX_BYTES = 1024 * 1024
    as_stakeholder(client, cast.stakeholder)
    content = b"a,b\r\n" * (1024 * 1024 // 5 + 1)
    assert len(content) > settings.CLIENT_UPLOAD_MAX_BYTES
    response = upload(client, engagement, "big.csv", content)
    assert response.status_code == 422
    assert f"“big.csv” is {len(content) / 1048576:.1f} MB; files can be at most 1.0 MB." in response.content.decode()
    assert not IntakeFile.objects.for_org(cast.org).exists() and stored_files(settings) == []


def test_a_file_goes_only_to_a_file_field(cast, client, engagement, settings):
    as_stakeholder(client, cast.stakeholder)
    response = upload(client, engagement, "stages.csv", STAGE_EXPORT, field="pain_points")
    assert response.status_code == 422 and "does not take a file" in response.content.decode()
    assert stored_files(settings) == []


def test_a_stakeholder_of_engagement_a_never_reaches_b(cast, client, engagement, library, settings):
    """Tom is named on engagement B only (same client): he reaches none of A's form, answers or files, and
    Maya none of B's. A stakeholder of another organization reaches neither."""
    tom = Stakeholder.objects.create(organization=cast.org, client=cast.client, name="Tom", email="tom@acme.example")
    b = progression.create_engagement(
        client=cast.client, playbook_version=library["revenue-intelligence"], name="Revenue intelligence",
        start_date=date(2026, 11, 2), actor=cast.consultant, stakeholders=[(tom, "Sponsor")],
    )
    maya = as_stakeholder(client, cast.stakeholder)
    assert upload(maya, engagement, "stages.csv", STAGE_EXPORT).status_code == 200
    maya.post(reverse("portal:intake-save", args=[engagement.uuid]), {"field": "pain_points", "pain_points": "A's"})
    a_file = IntakeFile.objects.for_org(cast.org).get(engagement=engagement)

    tom_client = as_stakeholder(client.__class__(), tom)
    hank = as_stakeholder(client.__class__(), cast.other_stakeholder)
    for outsider in (tom_client, hank):
        assert outsider.get(reverse("portal:intake", args=[engagement.uuid])).status_code == 404
        assert outsider.get(reverse("portal:intake-file", args=[a_file.uuid])).status_code == 404
        response = outsider.post(reverse("portal:intake-save", args=[engagement.uuid]),
                                 {"field": "pain_points", "pain_points": "overwritten"})
        assert response.status_code == 404
        assert upload(outsider, engagement, "x.csv", STAGE_EXPORT).status_code == 404
        assert outsider.post(reverse("portal:intake-submit", args=[engagement.uuid]), {}).status_code == 404
    assert maya.get(reverse("portal:intake", args=[b.uuid])).status_code == 404
    assert tom_client.get(reverse("portal:intake", args=[b.uuid])).status_code == 200
    assert intake.answers_of(intake.form_of(engagement)) == {"pain_points": "A's"}
    assert IntakeFile.objects.for_org(cast.org).count() == 1
