"""The client connects its own CRM from the portal: start an OAuth grant, finish it at the callback, paste a
HubSpot private-app token instead, or disconnect. Spans the grant, the connection, the access task and the log.

The `state` sent to the CRM is random, single use, short-lived and bound to the stakeholder's portal session and
the engagement; only its hash is stored, so the callback learns the engagement from the server, never the query.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from engagements.client_tasks import USER_AGENT_LENGTH, complete_client_task
from engagements.models import ChecklistItem, Engagement, Stakeholder

from . import crypto, oauth
from .base import AuthMethod, CrmError
from .models import CrmConnection, CrmKind, OAuthApp, OAuthGrant
from .services import test_connection

# The checklist items whose purpose is granting CRM access (the methods' Track A homework, seeds 002 and 004).
CRM_ACCESS_TASKS = ("provide-crm-admin-access",)
SESSION_BINDING = "crm_oauth_binding"  # a random value of the portal session; grants keep its hash
LABELS = dict(CrmKind.choices)


def access_task(engagement: Engagement) -> ChecklistItem | None:
    return engagement.checklist.client_owned().filter(key__in=CRM_ACCESS_TASKS).first()


def connection_of(engagement: Engagement) -> CrmConnection | None:
    return CrmConnection.objects.for_org(engagement.organization_id).active().filter(client=engagement.client).first()


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _binding(session: Any) -> str:
    if not session.get(SESSION_BINDING):
        session[SESSION_BINDING] = secrets.token_urlsafe(32)
    return str(session[SESSION_BINDING])


def _who(stakeholder: Stakeholder) -> str:
    return f"{stakeholder.name} <{stakeholder.email}>"


def _user_agent(request: Any) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH] if request is not None else ""


def authorize_origins(engagement: Engagement) -> list[str]:
    """The origins of the CRMs' authorise pages the access page's Connect forms are redirected to: its CSP must
    allow them as form targets (browsers apply `form-action` to a form's redirects too)."""
    apps = OAuthApp.objects.for_org(engagement.organization_id)
    urls = [
        oauth.hubspot_app_url() if app.platform == CrmKind.HUBSPOT else oauth.salesforce_login_url(app) for app in apps
    ]
    return sorted({"{0.scheme}://{0.netloc}".format(urlsplit(url)) for url in urls})


def start(*, engagement: Engagement, stakeholder: Stakeholder, platform: str, redirect_uri: str, request: Any) -> str:
    """Record a grant attempt and return the CRM's authorise URL to send the stakeholder to."""
    if platform not in LABELS:
        raise DomainError(f"Choose HubSpot or Salesforce (got {platform!r}).")
    app = OAuthApp.objects.for_org(engagement.organization_id).filter(platform=platform).first()
    if app is None or not app.has_secret:
        raise DomainError(f"Your consultant has not set up connecting {LABELS[platform]} yet. Nothing has changed.")
    state, verifier = secrets.token_urlsafe(32), oauth.new_verifier()
    # a grant is worth nothing once expired: the stakeholder's old attempts go as a new one starts
    OAuthGrant.objects.for_org(engagement.organization_id).filter(
        stakeholder=stakeholder, expires_at__lt=timezone.now()
    ).delete()
    OAuthGrant.objects.create(
        organization_id=engagement.organization_id,
        engagement=engagement,
        stakeholder=stakeholder,
        platform=platform,
        state_hash=_hash(state),
        session_hash=_hash(_binding(request.session)),
        verifier_encrypted=crypto.encrypt(verifier),
        expires_at=timezone.now() + timedelta(seconds=settings.CRM_OAUTH_STATE_MAX_AGE),
    )
    return oauth.authorize_url(app, redirect_uri=redirect_uri, state=state, verifier=verifier)


@dataclass
class Finished:
    engagement: Engagement | None  # None: the state named no grant of this stakeholder
    ok: bool
    message: str


def _claim(state: str, stakeholder: Stakeholder, session: Any) -> OAuthGrant:
    """The grant this state names, claimed once; DomainError when it is unknown, used, expired or not ours."""
    refused = DomainError(
        "This connection attempt is not valid: it may have expired or been used already. "
        "Start again from your CRM access task. Nothing has changed."
    )
    if not state:
        raise refused
    grants = OAuthGrant.objects.across_tenants("the state's hash names the grant, which names its tenant")
    grant = grants.select_related("engagement__client", "stakeholder").filter(state_hash=_hash(state)).first()
    binding = session.get(SESSION_BINDING) or ""
    if grant is None or grant.stakeholder_id != stakeholder.pk or grant.session_hash != _hash(binding):
        raise refused
    # a conditional UPDATE claims it: of two callbacks with one state only one gets through
    claimed = grants.filter(pk=grant.pk, used_at__isnull=True, expires_at__gt=timezone.now()).update(
        used_at=timezone.now()
    )
    if not claimed:
        raise refused
    return grant


def finish(*, query: Any, stakeholder: Stakeholder, redirect_uri: str, request: Any) -> Finished:
    """The callback: check the state, exchange the code, store the tokens, test, complete the access task."""
    try:
        grant = _claim(query.get("state", ""), stakeholder, request.session)
    except DomainError as exc:
        return Finished(None, False, str(exc))
    engagement, label = grant.engagement, LABELS[grant.platform]
    if query.get("error"):
        reason = query.get("error_description") or query.get("error")
        return Finished(engagement, False, f"{label} did not grant access ({reason}). Nothing has changed.")
    app = OAuthApp.objects.for_org(grant.organization_id).filter(platform=grant.platform).first()
    if app is None:
        return Finished(engagement, False, f"Connecting {label} is not set up any more. Nothing has changed.")
    try:
        tokens = oauth.exchange_code(
            app,
            code=query.get("code", ""),
            redirect_uri=redirect_uri,
            verifier=crypto.decrypt(grant.verifier_encrypted),
        )
    except CrmError as exc:
        return Finished(engagement, False, f"{exc} Nothing has changed.")
    method = AuthMethod.HS_OAUTH if grant.platform == CrmKind.HUBSPOT else AuthMethod.SF_OAUTH
    base_url = tokens.instance_url or oauth.hubspot_api_url()
    connection = _store(
        engagement,
        stakeholder,
        grant.platform,
        method,
        base_url,
        {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token},
        tokens.expires_at,
        request,
        how="OAuth",
    )
    return _tested(engagement, stakeholder, connection, request, how="through OAuth")


def paste_private_app_token(*, engagement: Engagement, stakeholder: Stakeholder, token: str, request: Any) -> Finished:
    """HubSpot's other way in: a private-app token the client pastes once (never shown again)."""
    token = token.strip()
    if not token or len(token) > 500 or any(c.isspace() for c in token):
        raise DomainError("Paste the private app's access token (one line, from HubSpot's Private apps page).")
    connection = _store(
        engagement,
        stakeholder,
        CrmKind.HUBSPOT,
        AuthMethod.HS_PRIVATE_APP,
        oauth.hubspot_api_url(),
        {"access_token": token},
        None,
        request,
        how="a private-app token",
    )
    return _tested(engagement, stakeholder, connection, request, how="with a private-app token")


def _store(engagement, stakeholder, platform, method, base_url, secret_values, expires_at, request, *, how):
    """Create or update the client's active connection with the new credentials, in one transaction."""
    with transaction.atomic():
        connection = (
            CrmConnection.objects.for_org(engagement.organization_id)
            .select_for_update()
            .active()
            .filter(client=engagement.client)
            .first()
        ) or CrmConnection(organization_id=engagement.organization_id, client=engagement.client)
        creating = connection.pk is None
        connection.kind, connection.auth_method, connection.base_url = platform, method, base_url
        connection.set_secrets(**secret_values)
        connection.token_expires_at, connection.reconnect_reason = expires_at, ""
        connection.save()
        activity.record(
            organization=engagement.organization,
            actor_label=_who(stakeholder),
            verb="crm_connection.client_connected",
            target=connection,
            request=request,
            data={
                "kind": platform,
                "how": how,
                "engagement": engagement.name,
                "created": creating,
                "user_agent": _user_agent(request),
            },
        )
    return connection


def _tested(engagement, stakeholder, connection, request, *, how) -> Finished:
    label = connection.get_kind_display()
    summary = test_connection(connection=connection, request=request)
    if not summary["ok"]:
        return Finished(
            engagement,
            False,
            f"{label} is connected, but reading it failed: {summary['error']} Your consultant can see this too.",
        )
    item = access_task(engagement)
    if item is not None and not item.done:
        try:
            complete_client_task(item, auto_reason=f"{stakeholder.name} connected {label} {how}", request=request)
        except DomainError:  # its phase is closed: the checklist keeps the item as it is
            pass
    return Finished(engagement, True, f"{label} is connected and GTM Ops could read it. Thank you.")


def disconnect(*, engagement: Engagement, stakeholder: Stakeholder, request: Any) -> str:
    """Revoke the grant at the CRM (best effort: a CRM that cannot be reached is said so) and forget the tokens."""
    connection = connection_of(engagement)
    if connection is None or not connection.secret_names:
        raise DomainError("There is no CRM connection to disconnect.")
    label, revoked = connection.get_kind_display(), "revoked at the CRM"
    if connection.is_oauth:
        try:
            stored = connection._decrypted()
            oauth.revoke(
                oauth.app_for(connection),
                refresh_token=stored.get("refresh_token", ""),
                instance_url=connection.base_url,
            )
        except (CrmError, crypto.SecretUnreadable) as exc:
            revoked = f"not revoked at the CRM ({exc})"
    else:
        revoked = "a private-app token: delete the private app in HubSpot to revoke it there"
    with transaction.atomic():
        row = CrmConnection.objects.for_org(engagement.organization_id).select_for_update().get(pk=connection.pk)
        row.secrets_encrypted, row.secret_names, row.token_expires_at = "", [], None
        row.reconnect_reason = f"{stakeholder.name} disconnected it from the portal"
        row.save(
            update_fields=["secrets_encrypted", "secret_names", "token_expires_at", "reconnect_reason", "updated_at"]
        )
        activity.record(
            organization=engagement.organization,
            actor_label=_who(stakeholder),
            verb="crm_connection.client_disconnected",
            target=row,
            request=request,
            data={
                "kind": row.kind,
                "engagement": engagement.name,
                "revoked": revoked,
                "user_agent": _user_agent(request),
            },
        )
    return f"{label} is disconnected: GTM Ops no longer holds its tokens ({revoked})."
