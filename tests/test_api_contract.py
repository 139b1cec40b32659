"""The API keeps its contract: what schemathesis found over /api/v1/schema/, pinned down one by one.
(The generated run itself is tests/api_contract_schemathesis.py.)"""

from datetime import date

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ActivityEntry
from engagements import definitions, progression
from engagements.models import Stakeholder
from playbooks.models import Playbook
from tests.conftest import PASSWORD, ensure_library

API = "/api/v1/o/alpha"


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def asked_to_sign(cast):
    """Maya (cast.stakeholder) was asked to sign a published definition version: the request is kept for good."""
    ensure_library()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.owner,
    )
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.owner)
    return engagement


def test_deleting_a_stakeholder_asked_to_sign_answers_409_with_the_reason(cast, asked_to_sign):
    logged_before = ActivityEntry.objects.across_tenants("test").filter(verb="stakeholder.removed").count()
    response = api_as(cast.owner).delete(f"{API}/stakeholders/{cast.stakeholder.uuid}/")
    assert response.status_code == 409
    assert "Maya Patel cannot be deleted" in response.json()["detail"]
    assert "1 signoff request" in response.json()["detail"]
    assert Stakeholder.objects.across_tenants("test").filter(pk=cast.stakeholder.pk).exists()
    assert ActivityEntry.objects.across_tenants("test").filter(verb="stakeholder.removed").count() == logged_before


def test_deleting_an_unreferenced_stakeholder_still_works(cast, asked_to_sign):
    response = api_as(cast.owner).delete(f"{API}/stakeholders/{cast.sibling_stakeholder.uuid}/")
    assert response.status_code == 204
    assert not Stakeholder.objects.across_tenants("test").filter(pk=cast.sibling_stakeholder.pk).exists()


def test_remove_button_on_a_stakeholder_asked_to_sign_shows_a_message(cast, asked_to_sign, client):
    client.login(username=cast.owner.email, password=PASSWORD)
    url = reverse(
        "engagements:stakeholder-remove",
        kwargs={"org_slug": "alpha", "client_uuid": cast.client.uuid, "stakeholder_uuid": cast.stakeholder.uuid},
    )
    response = client.post(url, follow=True)
    assert response.status_code == 200
    assert "Maya Patel cannot be deleted" in response.content.decode()
    assert Stakeholder.objects.across_tenants("test").filter(pk=cast.stakeholder.pk).exists()


def test_phase_without_gate_reads_null_and_the_schema_allows_it(cast, asked_to_sign):
    api = api_as(cast.owner)
    phases = api.get(f"{API}/phases/", {"engagement": str(asked_to_sign.uuid)}).json()["results"]
    assert None in [p["gate"] for p in phases]  # e.g. Handoff has no decision gate
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["schemas"]["Phase"]["properties"]["gate"]["nullable"] is True


@pytest.mark.parametrize("website", [12345, "acme", "javascript:alert(1)"])
def test_client_website_must_be_a_web_address(cast, website):
    response = api_as(cast.owner).post(f"{API}/clients/", {"name": "Umbrella", "website": website}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["website"]


def test_client_website_accepts_an_address_or_nothing(cast):
    api = api_as(cast.owner)
    created = api.post(f"{API}/clients/", {"name": "Umbrella", "website": "https://umbrella.example"}, format="json")
    assert created.status_code == 201
    assert api.post(f"{API}/clients/", {"name": "Wayne", "website": ""}, format="json").status_code == 201


def test_malformed_ids_and_blank_filters_answer_json(cast):
    api = api_as(cast.owner)
    response = api.get(f"{API}/clients/not-a-uuid/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    response = api.get(f"{API}/phases/", {"status": ""})
    assert response.status_code == 400 and list(response.json()) == ["status"]


def test_error_answers_are_documented_with_the_bodies_they_have(cast):
    schema = api_as(cast.owner).get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    destroy = schema["paths"]["/api/v1/o/{org_slug}/stakeholders/{stakeholder_uuid}/"]["delete"]["responses"]
    assert {"401", "403", "404", "409", "429"} <= set(destroy)
    create = schema["paths"]["/api/v1/o/{org_slug}/clients/"]["post"]
    bad_input = create["responses"]["400"]["content"]["application/json"]["schema"]
    assert "required" not in bad_input  # keyed by field, not a lone `detail`
    assert list(create["requestBody"]["content"]) == ["application/json"]
