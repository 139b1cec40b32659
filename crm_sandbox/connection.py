"""Connecting a client to a running sandbox: the demo (`manage.py connect_demo_crm`), tests and benchmarks.

It lives here, not in crm_connectors, because only a sandbox serves `/__sandbox__/org` with its credentials;
the product's connections are made through the connection form.
"""

from __future__ import annotations

from typing import Any

import requests

from crm_connectors.base import AuthMethod
from crm_connectors.models import CrmConnection, CrmKind, OAuthApp
from crm_connectors.services import save_connection
from engagements.models import ClientAccount


def sandbox_connection(
    *,
    client: ClientAccount,
    actor=None,
    sandbox: Any = None,
    sandbox_url: str | None = None,
    auth_method: str | None = None,
) -> CrmConnection:
    """Point a client's connection at a running CRM sandbox (an object, or a URL of `manage.py crm_sandbox`).

    For the demo and tests; needs CRM_ALLOW_HTTP since sandboxes serve http on loopback.
    """
    if sandbox is not None:
        platform, base_url, creds = sandbox.platform, sandbox.base_url, sandbox.credentials()
    elif sandbox_url:
        session = requests.Session()
        session.trust_env = False
        info = session.get(f"{sandbox_url.rstrip('/')}/__sandbox__/org", timeout=5).json()
        platform, base_url, creds = info["platform"], info["base_url"], info["credentials"]
    else:
        raise ValueError("pass a sandbox or a sandbox_url")
    connection = CrmConnection.objects.for_org(client.organization).active().filter(
        client=client
    ).first() or CrmConnection(organization=client.organization, client=client)
    connection.kind = CrmKind.HUBSPOT if platform == "hubspot" else CrmKind.SALESFORCE
    connection.base_url = base_url
    if connection.kind == CrmKind.HUBSPOT:
        connection.auth_method = AuthMethod.HS_PRIVATE_APP
        secrets = {"access_token": creds["access_token"]}
    else:
        connection.auth_method = auth_method or AuthMethod.SF_PASSWORD
        connection.username = creds["username"]
        connection.consumer_key = creds["consumer_key"]
        secrets = {
            AuthMethod.SF_PASSWORD: {"password": creds["password"], "security_token": creds["security_token"]},
            AuthMethod.SF_CLIENT_CREDENTIALS: {"consumer_secret": creds["consumer_secret"]},
            AuthMethod.SF_SESSION: {"access_token": creds["session_id"]},
        }[connection.auth_method]
    return save_connection(
        connection=connection,
        secrets=secrets,
        actor=actor,
    )


def sandbox_oauth_app(*, organization: Any, sandbox_url: str) -> OAuthApp:
    """Register a running sandbox's OAuth app (its published client id and secret) as the organization's app for
    that platform, so the portal's Connect goes to the sandbox's consent page (`make run`)."""
    session = requests.Session()
    session.trust_env = False
    base = sandbox_url.rstrip("/")
    platform = session.get(f"{base}/__sandbox__/org", timeout=5).json()["platform"]
    info = session.get(f"{base}/__sandbox__/oauth", timeout=5).json()
    app = OAuthApp.objects.for_org(organization).filter(platform=platform).first() or OAuthApp(
        organization=organization, platform=platform
    )
    app.client_id = info["client_id"]
    app.login_url = base if platform == CrmKind.SALESFORCE else ""
    app.set_secret(info["client_secret"])
    app.save()
    return app
