import re

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.api import OrgScopedViewSet
from accounts.models import ActivityEntry
from engagements.models import ClientAccount, Stakeholder


def api_as(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_token_obtained_with_email_and_password(cast):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": cast.owner.email, "password": "correct-horse-battery"}
    )
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=cast.owner).key


def test_bad_token_is_401(cast):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    response = client.get("/api/v1/organizations/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_organizations_lists_only_mine_with_role(cast):
    data = api_as(cast.viewer).get("/api/v1/organizations/").json()
    assert [(o["slug"], o["role"]) for o in data["results"]] == [("alpha", "viewer")]


def test_clients_and_stakeholders_are_scoped(cast):
    client = api_as(cast.consultant)
    names = [c["name"] for c in client.get("/api/v1/o/alpha/clients/").json()["results"]]
    assert names == ["Acme Robotics", "Initech"]
    assert client.get(f"/api/v1/o/alpha/clients/{cast.other_client.uuid}/").status_code == 404
    assert client.get("/api/v1/o/beta/clients/").status_code == 404
    members = client.get("/api/v1/o/alpha/members/").json()["results"]
    assert {m["email"] for m in members} == {"alice@alpha.example", "carl@alpha.example", "vic@alpha.example"}


def test_create_stakeholder_through_the_api_logs_activity(cast):
    client = api_as(cast.consultant)
    response = client.post(
        "/api/v1/o/alpha/stakeholders/",
        {
            "client": str(cast.client.uuid),
            "name": "Tom Becker",
            "email": "TOM@acme.example",
            "department": "sales",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["email"] == "tom@acme.example"
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="stakeholder.created").count() == 1


def test_bad_api_input_gets_field_messages_and_writes_nothing(cast):
    client = api_as(cast.consultant)
    before = Stakeholder.objects.across_tenants("test").count()
    response = client.post(
        "/api/v1/o/alpha/stakeholders/",
        {
            "client": str(cast.other_client.uuid),
            "name": "",
            "email": "not-an-email",
            "department": "nope",
        },
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"client", "name", "email", "department"}
    assert "does not exist" in errors["client"][0]  # another tenant's client is not even acknowledged
    assert Stakeholder.objects.across_tenants("test").count() == before
    response = client.post("/api/v1/o/alpha/clients/", {"name": "acme robotics"}, format="json")
    assert response.status_code == 400 and "already exists" in response.json()["name"][0]
    assert ClientAccount.objects.for_org(cast.org).count() == 2


def test_viewer_reads_but_cannot_write(cast):
    client = api_as(cast.viewer)
    assert client.get("/api/v1/o/alpha/clients/").status_code == 200
    response = client.post("/api/v1/o/alpha/clients/", {"name": "New"}, format="json")
    assert response.status_code == 403
    assert not ClientAccount.objects.across_tenants("test").filter(name="New").exists()


def test_subclasses_cannot_override_get_queryset():
    with pytest.raises(TypeError, match="must not override get_queryset"):
        type("Leaky", (OrgScopedViewSet,), {"get_queryset": lambda self: ClientAccount.objects.all()})


def test_openapi_schema_and_docs(cast, client):
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in (
        "/api/v1/organizations/",
        "/api/v1/o/{org_slug}/clients/",
        "/api/v1/o/{org_slug}/stakeholders/",
        "/api/v1/o/{org_slug}/members/",
    ):
        assert path in text
    assert client.get("/api/v1/docs/").status_code == 200


def test_docs_page_loads_nothing_from_a_cdn(client):
    body = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in body
    assert not re.search(r"""(src|href)=["']https?://""", body)


def test_openapi_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yml"))
    assert "/api/v1/o/{org_slug}/engagements/" in (tmp_path / "schema.yml").read_text()
