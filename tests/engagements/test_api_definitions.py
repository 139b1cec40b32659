"""Definition alignment through the API: draft, publish, diff, status, deliverables."""

import subprocess
from datetime import date

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ActivityEntry
from engagements import definitions, progression
from engagements.models import DefinitionVersion, Signature
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks


def api_as(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def engagement(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    load_library_playbooks()
    version = Playbook.objects.library().get(key="gtm-lifecycle").latest_version()
    return progression.create_engagement(
        client=cast.client,
        playbook_version=version,
        name="Lifecycle",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )


def test_edit_draft_publish_diff_and_read_status(cast, engagement):
    api = api_as(cast.consultant)
    terms = api.get("/api/v1/o/alpha/terms/", {"engagement": str(engagement.uuid)}).json()["results"]
    assert len(terms) == 20
    mql = next(t for t in terms if t["key"] == "mql")
    published = api.post(
        "/api/v1/o/alpha/definition-versions/publish/",
        {"engagement": str(engagement.uuid), "signers": [str(cast.stakeholder.uuid)]},
        format="json",
    )
    assert published.status_code == 201, published.json()
    v1 = published.json()
    assert v1["number"] == 1 and v1["status"] == "awaiting signatures" and len(v1["content_hash"]) == 64

    response = api.patch(
        f"/api/v1/o/alpha/terms/{mql['uuid']}/", {"definition": "Score ≥ 60 and ICP fit."}, format="json"
    )
    assert response.status_code == 200
    v2 = api.post(
        "/api/v1/o/alpha/definition-versions/publish/",
        {"engagement": str(engagement.uuid), "signers": [str(cast.stakeholder.uuid)]},
        format="json",
    ).json()
    diff = api.get(f"/api/v1/o/alpha/definition-versions/{v2['uuid']}/diff/").json()
    assert diff["from"] == 1 and diff["to"] == 2
    [change] = diff["changes"]
    assert change["key"] == "mql" and change["fields"][0]["after"] == "Score ≥ 60 and ICP fit."

    version = DefinitionVersion.objects.across_tenants("test").get(uuid=v2["uuid"])
    first = version.items[0][0]
    definitions.sign(
        version=version,
        stakeholder=cast.stakeholder,
        decisions={k: ("no" if k == first else "yes") for k, _ in version.items},
        comments={first: "Too broad"},
    )
    detail = api.get(f"/api/v1/o/alpha/definition-versions/{v2['uuid']}/").json()
    assert detail["status"] == "contested"
    assert detail["contested_items"][0]["objections"] == [{"by": "maya@acme.example", "comment": "Too broad"}]
    assert detail["signatures"][0]["version_hash"] == v2["content_hash"]
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="definitions.term_changed").count() == 1


def test_publish_refusals_are_400_with_messages(cast, engagement):
    api = api_as(cast.consultant)
    url = "/api/v1/o/alpha/definition-versions/publish/"
    response = api.post(
        url, {"engagement": str(engagement.uuid), "signers": [str(cast.other_stakeholder.uuid)]}, format="json"
    )
    assert response.status_code == 400 and "Unknown stakeholder" in str(response.json())
    response = api.post(
        url, {"engagement": str(engagement.uuid), "signers": [str(cast.sibling_stakeholder.uuid)]}, format="json"
    )
    assert response.status_code == 400 and "not a stakeholder of Acme Robotics" in response.json()["detail"]
    assert not DefinitionVersion.objects.across_tenants("test").exists()


def test_signing_is_not_possible_through_the_api(cast, engagement):
    api = api_as(cast.owner)
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    paths = [p for p in api.get("/api/v1/schema/").content.decode().splitlines() if "/sign" in p]
    assert paths == []
    assert not Signature.objects.across_tenants("test").exists()


@pytest.mark.django_db(transaction=True)  # the render is queued on commit
def test_artifacts_render_and_download(cast, engagement):
    api = api_as(cast.consultant)
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    created = api.post(
        "/api/v1/o/alpha/artifacts/",
        {"engagement": str(engagement.uuid), "kind": "stage_reference_card"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    artifact = api.get(f"/api/v1/o/alpha/artifacts/{created.json()['uuid']}/").json()
    assert artifact["status"] == "done" and artifact["pages"] == 1
    pdf = b"".join(api.get(artifact["download_url"]).streaming_content)
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "Stage Reference Card" in text and "Acme Robotics" in text


def test_viewer_reads_but_cannot_edit_or_publish(cast, engagement):
    api = api_as(cast.viewer)
    term = api.get("/api/v1/o/alpha/terms/").json()["results"][0]
    assert api.patch(f"/api/v1/o/alpha/terms/{term['uuid']}/", {"term": "X"}, format="json").status_code == 403
    assert api.post("/api/v1/o/alpha/definition-versions/publish/", {}, format="json").status_code == 403
