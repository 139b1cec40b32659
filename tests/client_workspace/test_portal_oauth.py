"""The client connects its own CRM from the portal through OAuth, against the CRM sandboxes' real authorise and
token endpoints; the connectors then read through hubspot-api-client and simple-salesforce with those tokens."""

from datetime import date
from urllib.parse import urlsplit

import pytest
import requests

from accounts.models import ActivityEntry
from crm_connectors import crypto, oauth_portal, services
from crm_connectors.base import AuthMethod
from crm_connectors.models import CrmConnection, OAuthApp
from crm_sandbox.connection import sandbox_oauth_app
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from engagements import progression
from tests.client_workspace.conftest import as_stakeholder

UA = "Mozilla/5.0 (iPhone) test-portal-oauth"


@pytest.fixture(scope="module")
def hubspot():
    with HubSpotSandbox(profile="demo", seed=4, size=300) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def salesforce():
    with SalesforceSandbox(profile="demo", seed=4, size=300) as sandbox:
        yield sandbox


@pytest.fixture
def setup(cast, library, crm_sandbox_settings, hubspot, salesforce, client):
    """Revenue Intelligence (its homework has the CRM access task) for Acme, Maya signed in to the portal, the
    consultancy's OAuth apps pointing at the sandboxes."""
    settings = crm_sandbox_settings
    settings.CRM_OAUTH_HUBSPOT_APP_URL = settings.CRM_OAUTH_HUBSPOT_API_URL = hubspot.base_url
    for sandbox in (hubspot, salesforce):
        sandbox.oauth.knobs.update({"access_ttl": 1800, "refresh": "valid"})
        sandbox_oauth_app(organization=cast.org, sandbox_url=sandbox.base_url)  # as `make run` does
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=library["revenue-intelligence"],
        name="RI rollout",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Approver")],
    )
    client.defaults["HTTP_USER_AGENT"] = UA
    return engagement, as_stakeholder(client, cast.stakeholder)


def go_to_crm(client, engagement, platform, decision):
    """Connect: our redirect to the sandbox's consent page (a real HTTP request), the stakeholder's decision,
    and the sandbox's redirect back to our callback. Returns (callback path with query, callback response)."""
    response = client.post(f"/portal/crm/{engagement.uuid}/connect/", {"platform": platform})
    assert response.status_code == 302, response.content
    consent = requests.get(response["Location"], timeout=10)
    assert consent.status_code == 200 and "Approve" in consent.text
    back = requests.get(f"{response['Location']}&decision={decision}", allow_redirects=False, timeout=10)
    assert back.status_code == 302
    parts = urlsplit(back.headers["Location"])
    assert parts.path == "/portal/crm/callback/"
    callback = f"{parts.path}?{parts.query}"
    return callback, client.get(callback)


def stored(connection):
    connection.refresh_from_db()
    return connection, connection._decrypted()


def test_hubspot_connect_refresh_reconnect_and_revoke(setup, hubspot, cast, client_factory):
    engagement, client = setup
    task = oauth_portal.access_task(engagement)
    assert task is not None and not task.done
    assert f'href="/portal/crm/{engagement.uuid}/"' in client.get("/portal/").content.decode()

    _, response = go_to_crm(client, engagement, "hubspot", "approve")
    assert response.status_code == 302 and response["Location"] == f"/portal/crm/{engagement.uuid}/"
    connection = CrmConnection.objects.for_org(cast.org).get(client=cast.client, is_active=True)
    connection, tokens = stored(connection)
    assert connection.auth_method == AuthMethod.HS_OAUTH and connection.last_test_ok is True
    assert set(connection.secret_names) == {"access_token", "refresh_token"}
    assert tokens["access_token"] not in connection.secrets_encrypted  # stored encrypted
    assert connection.token_expires_at is not None
    task.refresh_from_db()
    assert task.done and "Maya Patel connected HubSpot through OAuth" in task.done_how
    entry = ActivityEntry.objects.for_org(cast.org).get(verb="crm_connection.client_connected")
    assert entry.actor_label.startswith("Maya Patel") and entry.ip == "127.0.0.1" and entry.data["user_agent"] == UA
    page = client.get(f"/portal/crm/{engagement.uuid}/").content.decode()
    assert "HubSpot is connected" in page and tokens["access_token"] not in page

    # the access token expired: the 401 answer makes the connector refresh, persist and carry on
    hubspot.oauth.expire_access_tokens()
    assert services.test_connection(connection=connection)["ok"] is True
    connection, refreshed = stored(connection)
    assert refreshed["access_token"] != tokens["access_token"] and refreshed["refresh_token"] == tokens["refresh_token"]

    # the client revoked the grant at HubSpot: the connection asks for a reconnect, in words
    hubspot.oauth.expire_access_tokens()
    hubspot.oauth.knobs.update({"refresh": "revoked"})
    summary = services.test_connection(connection=connection)
    assert summary["ok"] is False and summary["error"].startswith("The client must reconnect HubSpot")
    assert "Traceback" not in summary["error"]
    connection.refresh_from_db()
    assert "refused the stored refresh token" in connection.reconnect_reason
    assert "The client must reconnect HubSpot" in client.get(f"/portal/crm/{engagement.uuid}/").content.decode()
    consultant = client_factory()
    consultant.force_login(cast.consultant)
    crm_page = consultant.get(f"/o/{cast.org.slug}/clients/{cast.client.uuid}/crm/").content.decode()
    assert "The client must reconnect HubSpot" in crm_page
    hubspot.oauth.knobs.update({"refresh": "valid"})

    # disconnect from the portal: confirmation, then the refresh token is revoked at HubSpot and forgotten here
    assert b"Disconnect HubSpot?" in client.get(f"/portal/crm/{engagement.uuid}/disconnect/").content
    response = client.post(f"/portal/crm/{engagement.uuid}/disconnect/")
    assert response.status_code == 302
    connection, left = stored(connection)
    assert left == {} and connection.secret_names == []
    assert refreshed["refresh_token"] not in hubspot.oauth._refresh
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="crm_connection.client_disconnected").exists()
    logged = str(list(ActivityEntry.objects.for_org(cast.org).values_list("data", flat=True)))
    assert not [t for t in (*tokens.values(), *refreshed.values()) if t in logged]


def test_salesforce_pkce_denied_bad_and_reused_state(setup, salesforce, cast):
    engagement, client = setup

    # denied consent: a message, no connection
    _, response = go_to_crm(client, engagement, "salesforce", "deny")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Salesforce did not grant access (end-user denied authorization). Nothing has changed." in page
    assert not CrmConnection.objects.for_org(cast.org).exists()

    # a state we never issued
    response = client.get("/portal/crm/callback/?code=abc&state=made-up")
    assert "This connection attempt is not valid" in response.content.decode()
    assert not CrmConnection.objects.for_org(cast.org).exists()

    # approve: the code is exchanged with its PKCE verifier; Test connection reads through simple-salesforce
    callback, response = go_to_crm(client, engagement, "salesforce", "approve")
    connection = CrmConnection.objects.for_org(cast.org).get(client=cast.client, is_active=True)
    connection, tokens = stored(connection)
    assert connection.auth_method == AuthMethod.SF_OAUTH and connection.last_test_ok is True, (
        connection.last_test_summary
    )
    assert connection.base_url == salesforce.base_url and tokens["refresh_token"]
    assert crypto.decrypt(connection.secrets_encrypted)  # readable only through the key

    # the same callback again (a reload, a replay): refused, nothing changes
    before = connection.secrets_encrypted
    assert "This connection attempt is not valid" in client.get(callback).content.decode()
    connection.refresh_from_db()
    assert connection.secrets_encrypted == before

    # an expired session: simple-salesforce's re-login is the refresh-token grant, persisted
    salesforce.oauth.expire_access_tokens()
    assert services.test_connection(connection=connection)["ok"] is True
    connection, refreshed = stored(connection)
    assert refreshed["access_token"] != tokens["access_token"]

    # an expired refresh token: reconnect, in words
    salesforce.oauth.expire_access_tokens()
    salesforce.oauth.knobs.update({"refresh": "expired"})
    summary = services.test_connection(connection=connection)
    assert summary["error"].startswith("The client must reconnect Salesforce")
    assert "expired access/refresh token" in summary["error"]


def test_a_state_works_only_in_the_session_that_started_it(setup, cast, client_factory):
    engagement, client = setup
    response = client.post(f"/portal/crm/{engagement.uuid}/connect/", {"platform": "hubspot"})
    back = requests.get(f"{response['Location']}&decision=approve", allow_redirects=False, timeout=10)
    parts = urlsplit(back.headers["Location"])
    other = as_stakeholder(client_factory(), cast.sibling_stakeholder)
    assert "This connection attempt is not valid" in other.get(f"{parts.path}?{parts.query}").content.decode()
    assert not CrmConnection.objects.for_org(cast.org).exists()
    # nor can a stakeholder of another client start one on Acme's engagement
    assert other.post(f"/portal/crm/{engagement.uuid}/connect/", {"platform": "hubspot"}).status_code == 404


def test_a_private_app_token_instead(setup, hubspot, cast):
    engagement, client = setup
    response = client.post(f"/portal/crm/{engagement.uuid}/token/", {"token": "not a token"}, follow=True)
    assert "access token (one line, from HubSpot" in response.content.decode()
    response = client.post(f"/portal/crm/{engagement.uuid}/token/", {"token": hubspot.access_token}, follow=True)
    assert "HubSpot is connected and GTM Ops could read it." in response.content.decode()
    assert hubspot.access_token not in response.content.decode()
    connection = CrmConnection.objects.for_org(cast.org).get(client=cast.client, is_active=True)
    assert connection.auth_method == AuthMethod.HS_PRIVATE_APP and connection.last_test_ok
    assert oauth_portal.access_task(engagement).done


def test_the_owner_sets_the_oauth_apps_and_never_sees_the_secret(cast, client_factory, crm_sandbox_settings):
    url = f"/o/{cast.org.slug}/settings/crm-oauth/"
    consultant = client_factory()
    consultant.force_login(cast.consultant)
    assert consultant.get(url).status_code == 403
    owner = client_factory()
    owner.force_login(cast.owner)
    response = owner.post(url, {"platform": "salesforce", "salesforce-client_id": "3MVG9", "salesforce-login_url": ""})
    assert response.status_code == 400 and "client secret is needed" in response.content.decode()
    data = {
        "platform": "salesforce",
        "salesforce-client_id": "3MVG9",
        "salesforce-client_secret": "s3cr3t-value",
        "salesforce-login_url": "https://acme.my.salesforce.com",
    }
    assert owner.post(url, data).status_code == 302
    app = OAuthApp.objects.for_org(cast.org).get(platform="salesforce")
    assert app.secret() == "s3cr3t-value" and "s3cr3t-value" not in app.client_secret_encrypted
    page = owner.get(url).content.decode()
    assert "s3cr3t-value" not in page and "(set)" in page and "Replace the Salesforce app" in page
    data["salesforce-client_secret"] = ""  # blank keeps it
    assert owner.post(url, data).status_code == 302
    app.refresh_from_db()
    assert app.secret() == "s3cr3t-value"


@pytest.fixture
def client_factory():
    from django.test import Client

    return Client
