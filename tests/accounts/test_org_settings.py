import io
import subprocess
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import ActivityEntry


def png(width=120, height=40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (31, 78, 140)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_owner_renames_and_uploads_a_logo(cast, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(cast.owner)
    url = reverse("accounts:org-settings", args=[cast.org.slug])
    response = client.post(
        url, {"name": "Alpha Advisory Group", "logo": SimpleUploadedFile("logo.png", png(), content_type="image/png")}
    )
    assert response.status_code == 302
    cast.org.refresh_from_db()
    assert cast.org.name == "Alpha Advisory Group" and cast.org.logo
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="organization.updated").exists()
    logo = client.get(reverse("accounts:org-logo", args=[cast.org.slug]))
    assert logo.status_code == 200 and b"".join(logo.streaming_content).startswith(b"\x89PNG")


def test_a_file_that_is_not_an_image_is_refused(cast, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(cast.owner)
    response = client.post(
        reverse("accounts:org-settings", args=[cast.org.slug]),
        {"name": "Alpha", "logo": SimpleUploadedFile("logo.png", b"not an image")},
    )
    assert response.status_code == 200 and "Upload a valid image" in response.content.decode()
    cast.org.refresh_from_db()
    assert not cast.org.logo and cast.org.name == "Alpha Advisory"


def test_only_owners_open_settings(cast, client):
    client.force_login(cast.consultant)
    assert client.get(reverse("accounts:org-settings", args=[cast.org.slug])).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_logo_appears_on_deliverables(cast, settings, tmp_path):
    from engagements import definitions, progression
    from engagements.deliverables import request_artifact
    from playbooks.models import Playbook
    from tests.conftest import ensure_library

    settings.MEDIA_ROOT = tmp_path
    cast.org.logo.save("logo.png", io.BytesIO(png()), save=True)
    ensure_library()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    artifact = request_artifact(engagement=engagement, kind="stage_reference_card", actor=cast.consultant)
    artifact.refresh_from_db()
    path = tmp_path / "card.pdf"
    path.write_bytes(artifact.file.read())
    listing = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, check=True).stdout.decode()
    assert any(line.split()[3:5] == ["120", "40"] for line in listing.splitlines()[2:])  # the 120x40 logo
