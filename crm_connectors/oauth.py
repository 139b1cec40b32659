"""OAuth 2.0 with the CRMs: the authorise URL, the code exchange, refreshing and revoking tokens.

HubSpot: authorisation code (app.hubspot.com/oauth/authorize, api.hubapi.com/oauth/v1/token).
Salesforce: web server flow with PKCE S256 against the login domain or My Domain (<login>/services/oauth2/...);
refresh and revoke go to the org's instance URL, which is its My Domain.

Every request to a token endpoint goes through the platform's Guard (budget, limiter, bounded retries). Tokens
never leave this module and the connection's encrypted secrets: messages name what failed, never a token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .base import AuthMethod, CrmAuthError, CrmConnector, CrmReconnectNeeded, scrub
from .http import Budget, CaseInsensitive, HttpOptions, Outcome, TransportFailure, check_url, short_hash

if TYPE_CHECKING:
    from .models import CrmConnection, OAuthApp

# What the Current State Audit and Test connection read, and nothing more (HubSpot scopes; `oauth` is required).
HUBSPOT_SCOPES = (
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.companies.read",
    "crm.objects.deals.read",
    "crm.schemas.contacts.read",
    "crm.schemas.companies.read",
    "crm.schemas.deals.read",
    "tickets",
)
SALESFORCE_SCOPES = ("api", "refresh_token")
# An access token this close to its expiry is refreshed before use rather than spent on a 401.
EXPIRY_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime | None
    instance_url: str = ""  # Salesforce: where the org's API is


def hubspot_app_url() -> str:
    return str(settings.CRM_OAUTH_HUBSPOT_APP_URL).rstrip("/")


def hubspot_api_url() -> str:
    return str(settings.CRM_OAUTH_HUBSPOT_API_URL).rstrip("/")


def salesforce_login_url(app: OAuthApp) -> str:
    return (app.login_url or str(settings.CRM_OAUTH_SALESFORCE_LOGIN_URL)).rstrip("/")


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters, within PKCE's 43-128


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def authorize_url(app: OAuthApp, *, redirect_uri: str, state: str, verifier: str) -> str:
    if app.platform == "hubspot":
        query = {
            "client_id": app.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(HUBSPOT_SCOPES),
            "state": state,
        }
        return f"{hubspot_app_url()}/oauth/authorize?{urlencode(query)}"
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "scope": " ".join(SALESFORCE_SCOPES),
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    return f"{salesforce_login_url(app)}/services/oauth2/authorize?{urlencode(query)}"


# ---------------------------------------------------------------- token endpoint


def _guard(platform: str, url: str, secret: str = "") -> Any:
    from .hubspot import HubSpotGuard
    from .salesforce import SalesforceGuard

    options = HttpOptions.from_settings()
    label = "HubSpot" if platform == "hubspot" else "Salesforce"
    check_url(url, label, allow_http=options.allow_http)
    parts = urlsplit(url)
    host = short_hash(f"{parts.scheme}://{parts.netloc}")  # one budget and rate window per token endpoint's host
    budget = Budget(
        key=f"oauth:{platform}:{host}", share=options.share, store=options.store, label=label, default_daily=100_000
    )
    guard = (HubSpotGuard if platform == "hubspot" else SalesforceGuard)(label, options, budget, rate_key=host)
    if secret:  # HubSpot's revoke URL holds the refresh token: the path the Guard logs and reports must not
        shown = guard.display_path
        guard.display_path = lambda url: scrub(shown(url), [secret])  # type: ignore[method-assign]
    return guard


def _send(
    platform: str, method: str, url: str, form: dict[str, str] | None = None, *, secret: str = ""
) -> tuple[int, Any]:
    """One request to a token or revoke endpoint, through the Guard: (status, parsed JSON or None)."""
    guard = _guard(platform, url, secret)
    session = requests.Session()
    session.trust_env = (urlsplit(url).hostname or "") not in ("127.0.0.1", "localhost", "::1")

    def send() -> Outcome:
        try:
            response = session.request(method, url, data=form, timeout=guard.timeout)
        except requests.exceptions.Timeout as exc:
            raise TransportFailure("timeout", type(exc).__name__) from None
        except requests.exceptions.RequestException as exc:
            raise TransportFailure("connection", type(exc).__name__) from None
        return Outcome(
            response.status_code, CaseInsensitive(response.headers), response.content, response.reason, response
        )

    bucket = "hubspot" if platform == "hubspot" else "salesforce"
    try:
        response = guard.call(method, url, send, bucket=bucket)
    finally:
        session.close()
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def _error_words(body: Any) -> str:
    if not isinstance(body, dict):
        return "no reason given"
    # HubSpot: {status, message}; Salesforce: {error, error_description}
    return str(body.get("error_description") or body.get("message") or body.get("error") or body.get("status"))[:200]


def _tokens(platform: str, body: Any, *, refresh_token: str = "", instance_url: str = "") -> Tokens:
    if not isinstance(body, dict) or not body.get("access_token"):
        raise CrmAuthError(
            f"The {_label(platform)} token endpoint answered without an access token.", platform=platform
        )
    expires_in = body.get("expires_in")
    expires_at = timezone.now() + timedelta(seconds=int(expires_in)) if expires_in is not None else None
    return Tokens(
        access_token=str(body["access_token"]),
        refresh_token=str(body.get("refresh_token") or refresh_token),  # Salesforce keeps the refresh token
        expires_at=expires_at,
        instance_url=str(body.get("instance_url") or instance_url),
    )


def _label(platform: str) -> str:
    return "HubSpot" if platform == "hubspot" else "Salesforce"


def _token_url(app: OAuthApp, base: str = "") -> str:
    if app.platform == "hubspot":
        return f"{hubspot_api_url()}/oauth/v1/token"
    return f"{(base or salesforce_login_url(app)).rstrip('/')}/services/oauth2/token"


def exchange_code(app: OAuthApp, *, code: str, redirect_uri: str, verifier: str) -> Tokens:
    """The tokens for an authorisation code; CrmAuthError in words when the CRM refuses it."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": app.client_id,
        "client_secret": app.secret(),
    }
    if app.platform == "salesforce":
        form["code_verifier"] = verifier
    status, body = _send(app.platform, "POST", _token_url(app), form)
    if status != 200:
        raise CrmAuthError(
            f"{_label(app.platform)} did not accept the grant ({_error_words(body)}).",
            platform=app.platform,
            status=status,
        )
    return _tokens(app.platform, body)


def refresh(app: OAuthApp, *, refresh_token: str, instance_url: str = "") -> Tokens:
    """New tokens from the refresh token; CrmReconnectNeeded when the CRM refuses it (revoked, expired)."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": app.client_id,
        "client_secret": app.secret(),
    }
    status, body = _send(app.platform, "POST", _token_url(app, instance_url), form)
    if status != 200:
        raise CrmReconnectNeeded(
            f"{_label(app.platform)} refused the stored refresh token ({_error_words(body)}).",
            platform=app.platform,
            status=status,
        )
    return _tokens(app.platform, body, refresh_token=refresh_token, instance_url=instance_url)


def revoke(app: OAuthApp, *, refresh_token: str, instance_url: str = "") -> None:
    """Ask the CRM to forget the grant. A token it no longer knows is as good as revoked."""
    if app.platform == "hubspot":
        url = f"{hubspot_api_url()}/oauth/v1/refresh-tokens/{refresh_token}"
        _send("hubspot", "DELETE", url, secret=refresh_token)
    else:
        _send("salesforce", "POST", f"{instance_url.rstrip('/')}/services/oauth2/revoke", {"token": refresh_token})


# ---------------------------------------------------------------- connectors that refresh themselves


def app_for(connection: CrmConnection) -> OAuthApp:
    from .models import OAuthApp

    app = OAuthApp.objects.for_org(connection.organization_id).filter(platform=connection.kind).first()
    if app is None:
        raise CrmAuthError(
            f"The consultancy's {connection.get_kind_display()} OAuth app is not set up in the "
            "organization's settings.",
            platform=connection.kind,
        )
    return app


def refresh_connection(connection: CrmConnection) -> Tokens:
    """Refresh the connection's tokens and store them encrypted; a refused refresh token marks the connection
    for reconnecting (in words) and raises CrmReconnectNeeded with that reason."""
    from .models import CrmConnection

    secrets_now = connection._decrypted()
    try:
        tokens = refresh(
            app_for(connection),
            refresh_token=secrets_now.get("refresh_token", ""),
            instance_url=connection.base_url if connection.kind == "salesforce" else "",
        )
    except CrmReconnectNeeded as exc:
        CrmConnection.objects.for_org(connection.organization_id).filter(pk=connection.pk).update(
            reconnect_reason=str(exc)[:300]
        )
        connection.reconnect_reason = str(exc)[:300]
        raise CrmReconnectNeeded(connection.reconnect_message, platform=exc.platform, status=exc.status) from None
    with transaction.atomic():
        row = CrmConnection.objects.for_org(connection.organization_id).select_for_update().get(pk=connection.pk)
        row.set_secrets(access_token=tokens.access_token, refresh_token=tokens.refresh_token)
        row.token_expires_at, row.reconnect_reason = tokens.expires_at, ""
        if tokens.instance_url:
            row.base_url = tokens.instance_url
        row.save(
            update_fields=[
                "secrets_encrypted",
                "secret_names",
                "token_expires_at",
                "reconnect_reason",
                "base_url",
                "updated_at",
            ]
        )
    connection.secrets_encrypted, connection.secret_names = row.secrets_encrypted, row.secret_names
    connection.token_expires_at, connection.reconnect_reason = row.token_expires_at, ""
    return tokens


def oauth_connector(
    connection: CrmConnection, secrets_now: dict[str, str], *, key: str, **options: Any
) -> CrmConnector:
    if connection.reconnect_reason:
        raise CrmReconnectNeeded(connection.reconnect_message, platform=connection.kind)
    access = secrets_now.get("access_token", "")
    expires = connection.token_expires_at
    if not access or (expires is not None and expires <= timezone.now() + EXPIRY_MARGIN):
        access = refresh_connection(connection).access_token

    def refreshed() -> str:
        return refresh_connection(connection).access_token

    if connection.kind == "hubspot":
        from .hubspot import HubSpotConnector

        return HubSpotConnector(
            base_url=connection.base_url,
            access_token=access,
            auth_method=AuthMethod.HS_OAUTH,
            key=key,
            refresh=refreshed,
            **options,
        )
    from .salesforce import SalesforceConnector

    return SalesforceConnector(
        base_url=connection.base_url,
        access_token=access,
        auth_method=AuthMethod.SF_OAUTH,
        key=key,
        refresh=refreshed,
        **options,
    )
