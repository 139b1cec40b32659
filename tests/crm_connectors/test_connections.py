"""CRM connections: encrypted secrets, the edit and test pages, and what they log. Against the CRM sandbox."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from accounts.models import ActivityEntry
from crm_connectors import services
from crm_connectors.crypto import SecretKeyMissing
from crm_connectors.models import CrmConnection
from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from crm_sandbox.connection import sandbox_connection

AS_OF = datetime(2025, 6, 15, tzinfo=UTC)
KEY = Fernet.generate_key().decode()
UNLIMITED = {"salesforce": "1000000/1", "hubspot": "1000000/1", "hubspot-search": "1000000/1"}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _crm_settings(settings):
    settings.CRM_ALLOW_HTTP = True
    settings.CRM_SECRET_KEY = KEY
    settings.CRM_RATE_LIMITS = UNLIMITED


@pytest.fixture
def sf():
    with SalesforceSandbox(profile="demo", seed=3, size=1_000, as_of=AS_OF) as sandbox:
        yield sandbox


@pytest.fixture
def hs():
    with HubSpotSandbox(profile="demo", seed=3, size=800, as_of=AS_OF) as sandbox:
        yield sandbox


def secrets_of(sandbox) -> list[str]:
    if sandbox.platform == "hubspot":
        return [sandbox.access_token]
    return [sandbox.password, sandbox.security_token, sandbox.consumer_secret, sandbox.session_id]


def edit_url(cast) -> str:
    return reverse(
        "crm_connectors:connection-edit", kwargs={"org_slug": cast.org.slug, "client_uuid": cast.client.uuid}
    )


def run_url(cast, conn) -> str:
    return reverse(
        "crm_connectors:connection-test",
        kwargs={"org_slug": cast.org.slug, "client_uuid": cast.client.uuid, "connection_uuid": conn.uuid},
    )


def raw_row(conn) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM crm_connectors_crmconnection WHERE id = %s", [conn.pk])
        return repr(cursor.fetchone())


def form_data(sf, **overrides) -> dict:
    data = {
        "kind": "salesforce",
        "auth_method": "password",
        "base_url": sf.base_url,
        "username": sf.username,
        "password": sf.password,
        "security_token": sf.security_token,
    }
    data.update(overrides)
    return data


# ---------------------------------------------------------------- secrets at rest


def test_secrets_are_encrypted_at_rest_and_never_in_str_repr_or_the_activity_log(cast, sf):
    conn = sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner)
    row = raw_row(conn)
    assert conn.secrets_encrypted and conn.secrets_encrypted in row
    for secret in (sf.password, sf.security_token):
        assert secret not in row
        assert secret not in str(conn) and secret not in repr(conn)
    assert conn.secret_names == ["password", "security_token"]
    assert str(conn) == "Salesforce connection for Acme Robotics"
    entry = ActivityEntry.objects.across_tenants("test").get(verb="crm_connection.created")
    assert entry.data["secrets_changed"] == ["password", "security_token"]
    assert sf.password not in json.dumps(entry.data) and sf.security_token not in entry.target_label
    with conn.connector() as connector:  # decrypted only in memory, and they work
        assert {o.kind: o.record_count for o in connector.objects()}["lead"] == 1_000


def test_switching_sign_in_method_drops_the_unused_secrets(cast, sf):
    conn = sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner)
    conn = sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner, auth_method="session")
    assert conn.secret_names == ["access_token"]
    assert CrmConnection.objects.filter(client=cast.client).count() == 1
    with conn.connector() as connector:
        assert connector.objects()


def test_secret_key_rotation_passphrases_and_a_missing_key(settings, cast, sf):
    conn = sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner)
    new_key = Fernet.generate_key().decode()
    settings.CRM_SECRET_KEY = f"{new_key},{KEY}"  # the new key first; the old one still decrypts
    assert conn.connector().objects()
    settings.CRM_SECRET_KEY = new_key
    summary = services.test_connection(connection=conn)
    assert summary["ok"] is False and "cannot be decrypted with the current CRM_SECRET_KEY" in summary["error"]
    settings.CRM_SECRET_KEY = "a long passphrase rather than a Fernet key"
    services.save_connection(connection=conn, secrets={"password": sf.password}, actor=cast.owner)
    assert conn.connector().objects()
    settings.CRM_SECRET_KEY = ""
    settings.DEBUG = False
    with pytest.raises(SecretKeyMissing, match="set the CRM_SECRET_KEY environment variable"):
        services.save_connection(connection=conn, secrets={"password": "new"}, actor=cast.owner)
    settings.DEBUG = True  # development: a key derived from SECRET_KEY
    services.save_connection(connection=conn, secrets={"password": sf.password}, actor=cast.owner)
    assert conn.connector().objects()


def test_one_active_connection_per_client(cast, sf, hs):
    first = sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner)
    again = sandbox_connection(client=cast.client, sandbox=hs, actor=cast.owner)
    assert again.pk == first.pk and again.kind == "hubspot" and again.secret_names == ["access_token"]
    replacement = CrmConnection(organization=cast.org, client=cast.client, kind="hubspot", auth_method="private_app")
    replacement.base_url = hs.base_url
    services.save_connection(connection=replacement, secrets={"access_token": hs.access_token}, actor=cast.owner)
    first.refresh_from_db()
    assert first.is_active is False
    assert list(CrmConnection.objects.for_org(cast.org).active()) == [replacement]
    with pytest.raises(IntegrityError), transaction.atomic():
        CrmConnection.objects.across_tenants("test").filter(pk=first.pk).update(is_active=True)


# ---------------------------------------------------------------- the edit page


def test_edit_page_saves_a_connection_with_write_only_secrets(client, cast, sf):
    client.force_login(cast.owner)
    page = client.get(edit_url(cast))
    assert page.status_code == 200 and b"No CRM connected" in page.content
    assert page.content.count(b'type="password"') == 4
    response = client.post(edit_url(cast), form_data(sf))
    assert response.status_code == 302 and response["Location"] == edit_url(cast)
    conn = CrmConnection.objects.get(client=cast.client)
    assert (conn.kind, conn.auth_method, conn.username, conn.base_url) == (
        "salesforce",
        "password",
        sf.username,
        sf.base_url,
    )
    page = client.get(edit_url(cast)).content.decode()
    assert conn.masked_username in page and "(stored)" in page
    assert '<span class="tag">Password</span> <span class="tag">Security token</span>' in page
    for secret in [sf.password, sf.security_token, sf.username]:
        assert secret not in page
    assert 'type="password" name="password"' in page and 'value="' + sf.password not in page


def test_blank_secrets_keep_the_stored_ones(client, cast, sf):
    client.force_login(cast.owner)
    client.post(edit_url(cast), form_data(sf))
    response = client.post(edit_url(cast), form_data(sf, username="", password="", security_token=""))
    assert response.status_code == 302
    conn = CrmConnection.objects.get(client=cast.client)
    assert conn.username == sf.username and conn.secret_names == ["password", "security_token"]
    assert (
        ActivityEntry.objects.across_tenants("test").filter(verb="crm_connection.updated").get().data["secrets_changed"]
        == []
    )
    assert conn.connector().objects()


def test_edit_page_refuses_what_cannot_work(client, cast, sf, settings):
    client.force_login(cast.owner)
    response = client.post(edit_url(cast), form_data(sf, password=""))
    assert response.status_code == 400 and b"Password is needed to sign in this way" in response.content
    response = client.post(edit_url(cast), form_data(sf, kind="hubspot"))
    assert response.status_code == 400 and b"does not fit HubSpot" in response.content
    settings.CRM_ALLOW_HTTP = False
    response = client.post(edit_url(cast), form_data(sf))
    assert response.status_code == 400 and b"Plain http:// is refused for Salesforce" in response.content
    settings.CRM_ALLOW_HTTP = True
    settings.CRM_SECRET_KEY = ""
    settings.DEBUG = False
    response = client.post(edit_url(cast), form_data(sf))
    assert response.status_code == 400 and b"CRM_SECRET_KEY" in response.content
    assert not CrmConnection.objects.across_tenants("test").exists()


def test_viewers_and_outsiders_cannot_touch_connections(client, cast, sf):
    conn = sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner)
    client.force_login(cast.viewer)
    assert client.get(edit_url(cast)).status_code == 200
    assert client.post(edit_url(cast), form_data(sf)).status_code == 403
    assert client.post(run_url(cast, conn)).status_code == 403
    client.force_login(cast.outsider)
    assert client.get(edit_url(cast)).status_code == 404
    assert client.post(run_url(cast, conn)).status_code == 404
    assert sf.stats["total"] == 0


# ---------------------------------------------------------------- the test page


@pytest.mark.parametrize("platform", ["salesforce", "hubspot"])
def test_connection_test_page_shows_what_it_read_and_the_budget_left(client, cast, sf, hs, platform):
    sandbox = sf if platform == "salesforce" else hs
    conn = sandbox_connection(client=cast.client, sandbox=sandbox, actor=cast.owner)
    client.force_login(cast.consultant)
    response = client.post(run_url(cast, conn))
    assert response.status_code == 200
    page = response.content.decode()
    conn.refresh_from_db()
    summary = conn.last_test_summary
    assert conn.last_test_ok is True and summary["calls_spent"] == sandbox.stats["total"] > 0
    model = sandbox.model
    objects = {o["kind"]: o for o in summary["objects"]}
    assert objects["contact"]["records"] == model.sets["contact"].size and objects["contact"]["fields"] > 5
    deal_pipelines = [p for p in summary["pipelines"] if p["object"] == "deal"]
    assert [p["label"] for p in deal_pipelines] == [pl.label for pl in model.schema.deal_pipelines]
    budget = summary["budget"]
    assert budget["budget_limit"] == int(0.05 * budget["daily_limit"])
    assert budget["budget_remaining"] == budget["budget_limit"] - summary["calls_spent"]
    assert "Connected" in page and f"Read with {summary['calls_spent']} API calls" in page
    assert f"{budget['budget_remaining']} of {budget['budget_limit']} calls left" in page
    assert "(5% of the daily allocation)" in page
    assert str(model.sets["contact"].size) in page and deal_pipelines[0]["label"] in page
    for secret in secrets_of(sandbox):
        assert secret not in page
    entry = ActivityEntry.objects.across_tenants("test").get(verb="crm_connection.tested")
    assert entry.data == {"ok": True, "calls_spent": summary["calls_spent"], "error_kind": None}
    # the edit page shows the stored result without calling the CRM again
    before = sandbox.stats["total"]
    assert "Read with" in client.get(edit_url(cast)).content.decode()
    assert sandbox.stats["total"] == before


def test_connection_test_failures_are_plain_words(client, cast, sf, hs):
    conn = sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner)
    services.save_connection(connection=conn, secrets={"password": "wrong-password"}, actor=cast.owner)
    client.force_login(cast.owner)
    page = client.post(run_url(cast, conn)).content.decode()
    assert "Failed" in page and "Salesforce rejected the credentials (INVALID_LOGIN" in page
    assert "wrong-password" not in page and "1 API call spent" in page
    conn.refresh_from_db()
    assert conn.last_test_ok is False and conn.last_test_summary["error_kind"] == "CrmAuthError"

    conn = sandbox_connection(client=cast.client, sandbox=hs, actor=cast.owner)
    hs.inject("request_limit", count=None)
    response = client.post(run_url(cast, conn), HTTP_HX_REQUEST="true")  # htmx: just the result fragment
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page and 'id="test-result"' in page
    assert "HubSpot refused the request: the account&#x27;s daily API limit is used up" in page
    assert hs.access_token not in page and hs.stats["total"] == 1


def test_logs_hold_no_secrets(client, cast, sf, hs, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "simple_salesforce", "hubspot", "crm_connectors", "django"):
        caplog.set_level(logging.DEBUG, logger=name)  # some libraries quieten their own loggers
    client.force_login(cast.owner)
    client.post(edit_url(cast), form_data(sf))
    conn = CrmConnection.objects.get(client=cast.client)
    client.post(run_url(cast, conn))
    sf.inject("expired_session", count=None)
    client.post(run_url(cast, conn))
    sandbox_connection(client=cast.client, sandbox=hs, actor=cast.owner)
    client.post(run_url(cast, conn))
    conn.refresh_from_db()
    assert conn.kind == "hubspot" and conn.last_test_ok is True
    secrets = secrets_of(sf) + secrets_of(hs)
    assert "urllib3.connectionpool" in caplog.text  # the HTTP clients did log (hubspot-api-client quietens urllib3)
    for secret in secrets:
        assert secret not in caplog.text
    entries = json.dumps(list(ActivityEntry.objects.across_tenants("test").values("data", "target_label")))
    assert not [s for s in secrets if s in entries]


def test_sandbox_connection_reads_a_running_sandbox_by_url(cast, hs):
    conn = sandbox_connection(client=cast.client, sandbox_url=hs.base_url, actor=cast.owner)
    assert (conn.kind, conn.base_url, conn.secret_names) == ("hubspot", hs.base_url, ["access_token"])
    assert services.test_connection(connection=conn)["ok"] is True
