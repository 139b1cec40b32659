"""Client uploads: allowed types only, content matching the declared type, a size limit, SHA-256 recorded, stored
outside the web root and served only to the engagement's own people; a refused file stores nothing."""

import hashlib
import io
import zipfile
from datetime import date
from uuid import uuid4

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import ActivityEntry
from client_workspace import intake
from client_workspace.models import IntakeFile, SharedDocument
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
        {"field": field, field: SimpleUploadedFile(name, content)},
        HTTP_HX_REQUEST="true",
    )


def stored_files(settings) -> list:
    root = settings.PRIVATE_MEDIA_ROOT
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    ("name", "content"),
    [("stages.csv", STAGE_EXPORT), ("shot.png", PNG), ("stages.xlsx", xlsx()), ("notes.txt", "Étapes\n".encode())],
)
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
    """Tom is named on engagement B only (same client): he reaches none of A's form, answers or files (nor removes
    one), and Maya none of B's. A stakeholder of another organization reaches neither."""
    tom = Stakeholder.objects.create(organization=cast.org, client=cast.client, name="Tom", email="tom@acme.example")
    b = progression.create_engagement(
        client=cast.client,
        playbook_version=library["revenue-intelligence"],
        name="Revenue intelligence",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(tom, "Sponsor")],
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
        assert outsider.post(reverse("portal:intake-file-remove", args=[a_file.uuid])).status_code == 404
        response = outsider.post(
            reverse("portal:intake-save", args=[engagement.uuid]),
            {"field": "pain_points", "pain_points": "overwritten"},
        )
        assert response.status_code == 404
        assert upload(outsider, engagement, "x.csv", STAGE_EXPORT).status_code == 404
        assert outsider.post(reverse("portal:intake-submit", args=[engagement.uuid]), {}).status_code == 404
    assert maya.get(reverse("portal:intake", args=[b.uuid])).status_code == 404
    assert tom_client.get(reverse("portal:intake", args=[b.uuid])).status_code == 200
    assert intake.answers_of(intake.form_of(engagement)) == {"pain_points": "A's"}
    assert IntakeFile.objects.for_org(cast.org).count() == 1


def test_without_javascript_the_upload_button_posts_the_whole_form_and_comes_back(cast, client, engagement, settings):
    """The page's plain form, posted by the Upload button (no htmx): the file is stored, the answers typed beside
    it are kept, and the form comes back with a message; a refused file says why there. A file chosen and left
    when the whole form is submitted is stored too."""
    as_stakeholder(client, cast.stakeholder)
    url = reverse("portal:intake-upload", args=[engagement.uuid])
    page = client.get(reverse("portal:intake", args=[engagement.uuid])).content.decode()
    assert f'formaction="{url}"' in page and 'name="current_definitions"' in page and 'name="with_answers"' in page
    response = client.post(
        url,
        {
            "with_answers": "1",
            "field": "current_definitions",
            "pain_points": "Typed first",
            "current_definitions": SimpleUploadedFile("stages.csv", STAGE_EXPORT),
        },
        follow=True,
    )
    assert response.redirect_chain == [(reverse("portal:intake", args=[engagement.uuid]), 302)]
    assert "“stages.csv” is uploaded." in response.content.decode()
    assert intake.answers_of(intake.form_of(engagement)) == {"pain_points": "Typed first"}

    response = client.post(
        url, {"field": "current_definitions", "current_definitions": SimpleUploadedFile("run.exe", b"MZ")}, follow=True
    )
    assert "“run.exe” is not a type we accept" in response.content.decode()
    assert intake.answers_of(intake.form_of(engagement)) == {"pain_points": "Typed first"}  # one field posted alone

    # An answer that cannot be stored comes back on the page, beside the upload's message.
    response = client.post(
        url,
        {
            "with_answers": "1",
            "field": "current_definitions",
            "pain_points": "Typed first",
            "gtm_teams__0__team": "Sales",
            "gtm_teams__0__size": "-3",
            "current_definitions": SimpleUploadedFile("more.csv", STAGE_EXPORT),
        },
    )
    page = response.content.decode()
    assert response.status_code == 400 and "“more.csv” is uploaded." in page and "People cannot be negative" in page

    client.post(
        reverse("portal:intake-submit", args=[engagement.uuid]),
        {"with_answers": "1", "current_definitions": SimpleUploadedFile("shot.png", PNG)},
    )
    names = sorted(IntakeFile.objects.for_org(cast.org).values_list("name", flat=True))
    assert names == ["more.csv", "shot.png", "stages.csv"] and len(stored_files(settings)) == 3


def test_a_stakeholder_removes_her_own_upload_after_confirming(
    cast, client, engagement, settings, django_capture_on_commit_callbacks
):
    maya = as_stakeholder(client, cast.stakeholder)
    upload(maya, engagement, "stages.csv", STAGE_EXPORT)
    mine = IntakeFile.objects.for_org(cast.org).get(engagement=engagement)
    remove = reverse("portal:intake-file-remove", args=[mine.uuid])
    assert remove in maya.get(reverse("portal:intake", args=[engagement.uuid])).content.decode()

    # A colleague on the same engagement sees the file but cannot take it back; nor can a link shared by the
    # consultant be reached through this door.
    tom = Stakeholder.objects.create(organization=cast.org, client=cast.client, name="Tom", email="tom@acme.example")
    engagement.stakeholder_roles.create(organization=cast.org, stakeholder=tom, role="Sponsor")
    tom_client = as_stakeholder(client.__class__(), tom)
    assert remove not in tom_client.get(reverse("portal:intake", args=[engagement.uuid])).content.decode()
    refused = tom_client.post(remove, follow=True)
    assert "was uploaded by someone else" in refused.content.decode()
    link = SharedDocument.objects.create(
        organization=cast.org,
        engagement=engagement,
        title="Intro video",
        url="https://video.example/intro",
        shared_by=cast.consultant,
    )
    assert maya.post(reverse("portal:intake-file-remove", args=[link.uuid])).status_code == 404
    assert SharedDocument.objects.for_org(cast.org).filter(pk=link.pk).exists()

    # A second row naming the same stored bytes keeps them on disk until it goes too.
    twin = IntakeFile.objects.for_org(cast.org).get(pk=mine.pk)
    twin.pk, twin.uuid = None, uuid4()
    twin.save()
    [path] = stored_files(settings)
    confirm = maya.get(remove)
    assert confirm.status_code == 200 and "Remove “stages.csv”?" in confirm.content.decode()
    assert IntakeFile.objects.for_org(cast.org).count() == 2 and path.exists()  # asking removes nothing
    with django_capture_on_commit_callbacks(execute=True) as removals:  # the bytes go once the removal commits
        response = maya.post(remove, follow=True)
    assert len(removals) == 1 and "“stages.csv” is removed." in response.content.decode()
    assert IntakeFile.objects.for_org(cast.org).count() == 1 and path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        maya.post(reverse("portal:intake-file-remove", args=[twin.uuid]))
    assert not IntakeFile.objects.for_org(cast.org).exists() and stored_files(settings) == []
    removed = ActivityEntry.objects.for_org(cast.org).filter(verb="intake.file_removed")
    assert [(e.actor_label, e.data["file"]) for e in removed] == [("Maya Patel <maya@acme.example>", "stages.csv")] * 2


def test_a_submitted_form_keeps_its_files(cast, client, engagement, settings):
    maya = as_stakeholder(client, cast.stakeholder)
    upload(maya, engagement, "stages.csv", STAGE_EXPORT)
    stored = IntakeFile.objects.for_org(cast.org).get(engagement=engagement)
    form = intake.form_of(engagement)
    form.status = "submitted"
    form.submitted_at = form.created_at
    form.save()
    response = maya.post(reverse("portal:intake-file-remove", args=[stored.uuid]), follow=True)
    assert "ask your consultant to reopen it" in response.content.decode()
    assert IntakeFile.objects.for_org(cast.org).filter(pk=stored.pk).exists() and len(stored_files(settings)) == 1
