"""Intake forms (with answers) and intake files through /api/v1/: readable by the consultancy, scoped to it,
documented in the schema."""

import hashlib

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from client_workspace import intake
from client_workspace.files import store_intake_file

API = "/api/v1/o/alpha"
EXPORT = b"Stage\r\nMQL\r\nSQL\r\n"


def api_as(user) -> APIClient:
    api = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


def test_a_consultant_reads_the_answers_and_files(cast, engagement):
    form = intake.form_of(engagement)
    intake.save_answer(
        form=form, field_key="crm_platform", data={"crm_platform": "HubSpot"}, stakeholder=cast.stakeholder
    )
    stored = store_intake_file(
        form=form,
        field_key="current_definitions",
        upload=SimpleUploadedFile("stages.csv", EXPORT),
        stakeholder=cast.stakeholder,
    )
    api = api_as(cast.viewer)  # reading needs no write rights

    [listed] = api.get(f"{API}/intake-forms/", {"engagement": str(engagement.uuid)}).json()["results"]
    assert listed["uuid"] == str(form.uuid) and listed["status"] == "open"
    assert listed["answers"] == {"crm_platform": "HubSpot"}
    required = [f["key"] for f in listed["questions"] if f.get("required")]
    assert listed["missing_required"] == [k for k in required if k != "crm_platform"]

    [file] = api.get(f"{API}/intake-files/").json()["results"]
    assert file["sha256"] == hashlib.sha256(EXPORT).hexdigest() and file["uploaded_by"] == "maya@acme.example"
    download = api.get(file["download_url"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == EXPORT
    assert str(stored.uuid) == file["uuid"]


def test_another_organization_sees_none_of_it(cast, engagement):
    form = intake.form_of(engagement)
    stored = store_intake_file(
        form=form,
        field_key="current_definitions",
        upload=SimpleUploadedFile("stages.csv", EXPORT),
        stakeholder=cast.stakeholder,
    )
    outsider = api_as(cast.outsider)
    assert outsider.get(f"{API}/intake-forms/").status_code == 404
    assert outsider.get("/api/v1/o/beta/intake-forms/").json()["results"] == []
    assert outsider.get(f"/api/v1/o/beta/intake-files/{stored.uuid}/").status_code == 404
    assert outsider.get(f"/api/v1/o/beta/intake-files/{stored.uuid}/download/").status_code == 404
    assert outsider.get(f"/api/v1/o/beta/intake-forms/{form.uuid}/").status_code == 404


def test_the_schema_documents_them(cast):
    schema = api_as(cast.owner).get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert {"get"} == set(paths["/api/v1/o/{org_slug}/intake-forms/"])
    assert "/api/v1/o/{org_slug}/intake-files/{intake_file_uuid}/download/" in paths
    parameters = {p["name"] for p in paths["/api/v1/o/{org_slug}/intake-files/"]["get"]["parameters"]}
    assert "engagement" in parameters
    form = schema["components"]["schemas"]["IntakeForm"]["properties"]
    assert {"answers", "missing_required", "questions", "submitted_by"} <= set(form)
