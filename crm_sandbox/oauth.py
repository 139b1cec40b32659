"""The sandboxes' OAuth 2.0: the authorise page and the token and revoke endpoints, in each platform's wire format.

HubSpot (authorisation code):
  GET    /oauth/authorize?client_id&redirect_uri&scope&state         a consent page (Approve / Deny)
  POST   /oauth/v1/token  grant_type=authorization_code|refresh_token  {access_token, refresh_token, expires_in,
                                                                       token_type}; errors {status: BAD_AUTH_CODE
                                                                       | BAD_REFRESH_TOKEN | BAD_CLIENT_ID, message}
  DELETE /oauth/v1/refresh-tokens/{token}                              204
Salesforce (web server flow with PKCE S256):
  GET    /services/oauth2/authorize?response_type=code&client_id&redirect_uri&state&code_challenge
  POST   /services/oauth2/token  grant_type=authorization_code (code_verifier checked) | refresh_token
                                 {access_token, refresh_token, instance_url, id, issued_at, signature, token_type};
                                 errors {"error": "invalid_grant", "error_description": "..."}
  POST   /services/oauth2/revoke token=...                             200
(Salesforce's password and client-credentials grants stay in salesforce.py.)

The consent page's Approve and Deny redirect back with `code` and `state`, or `error=access_denied`.
An access token issued here works on the sandbox's API until it expires; an expired one is answered like the
platform (HubSpot 401 EXPIRED_AUTHENTICATION, Salesforce 401 INVALID_SESSION_ID).

Knobs, like faults, are set at run time: `sandbox.oauth.knobs` or POST /__sandbox__/oauth with any of
  access_ttl   seconds an access token lives (0: expired at once; default 1800)
  refresh      "valid" | "expired" (the next refresh is refused as expired) | "revoked" (refused as revoked)
POST /__sandbox__/oauth {"expire_issued": true} (or `expire_access_tokens()`) expires every access token issued so far.
GET /__sandbox__/oauth shows the knobs and the OAuth app's client id and secret the sandbox accepts.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import parse_qs, urlencode

from .server import Request, Response

CLIENT_ID = "sandbox-oauth-client-id"
CLIENT_SECRET = "sandbox-oauth-client-secret"  # noqa: S105 - a sandbox's published test secret
REFRESH_STATES = ("valid", "expired", "revoked")
CODE_TTL = 600.0  # seconds an authorisation code may wait to be exchanged

AUTHORIZE = {"hubspot": "/oauth/authorize", "salesforce": "/services/oauth2/authorize"}
TOKEN = {"hubspot": "/oauth/v1/token", "salesforce": "/services/oauth2/token"}
HS_REVOKE_PREFIX = "/oauth/v1/refresh-tokens/"
SF_REVOKE = "/services/oauth2/revoke"
ORG_ID, USER_ID = "00D000000000001AAA", "005000000000001AAA"


@dataclass
class Knobs:
    access_ttl: float = 1800.0
    refresh: str = "valid"

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown OAuth knobs: {sorted(unknown)}")
        if "refresh" in values and values["refresh"] not in REFRESH_STATES:
            raise ValueError(f"refresh must be one of {', '.join(REFRESH_STATES)}")
        if "access_ttl" in values:
            ttl = float(values["access_ttl"])
            if ttl < 0:
                raise ValueError("access_ttl must be >= 0")
            values = {**values, "access_ttl": ttl}
        for name, value in values.items():
            setattr(self, name, value)


@dataclass
class _Code:
    redirect_uri: str
    scope: str
    challenge: str
    issued: float


class OAuthProvider:
    """One sandbox's OAuth server: codes, access tokens (with expiry) and refresh tokens it issued."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.platform: str = sandbox.platform
        self.knobs = Knobs()
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, float] = {}  # token -> expiry (monotonic)
        self._refresh: dict[str, str] = {}  # token -> scope; a revoked token is removed
        self._lock = threading.Lock()

    # ---- dispatch (called by SandboxServer.dispatch before the platform's own routes)

    def control(self, req: Request) -> Response:
        if req.method == "POST":
            try:
                values = dict(req.json() or {})
                if values.pop("expire_issued", False):
                    self.expire_access_tokens()
                self.knobs.update(values)
            except (ValueError, TypeError, AttributeError) as exc:
                return Response.json({"error": str(exc)}, 400)
        return Response.json(
            {"knobs": asdict(self.knobs), "client_id": self.client_id, "client_secret": self.client_secret}
        )

    def handle(self, req: Request) -> Response | None:
        """An OAuth endpoint's answer; None for the platform's own routes (an issued, unexpired access token is
        swapped for the sandbox's own credential on the way, so every API endpoint accepts it)."""
        path = req.path.rstrip("/")
        if path == AUTHORIZE[self.platform] and req.method == "GET":
            return self._authorize(req)
        if path == TOKEN[self.platform] and req.method == "POST":
            form = _form(req)
            if self.platform == "salesforce" and form.get("grant_type") not in ("authorization_code", "refresh_token"):
                return None  # password and client-credentials grants: salesforce.py
            return self._token(form, req)
        if self.platform == "hubspot" and req.path.startswith(HS_REVOKE_PREFIX) and req.method == "DELETE":
            self._revoke(req.path[len(HS_REVOKE_PREFIX) :])
            return Response(204, b"", {}, "text/plain")
        if self.platform == "salesforce" and path == SF_REVOKE and req.method == "POST":
            self._revoke(_form(req).get("token", ""))
            return Response(200, b"", {}, "text/plain")
        return self._bearer(req)

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access = dict.fromkeys(self._access, 0.0)

    # ---- the consent page

    def _authorize(self, req: Request) -> Response:
        args = {k: v[0] for k, v in req.query.items()}
        redirect_uri, state = args.get("redirect_uri", ""), args.get("state", "")
        if args.get("client_id") != self.client_id or not redirect_uri:
            return Response.text("<h1>Unknown OAuth app or missing redirect_uri</h1>", 400, "text/html")
        if self.platform == "salesforce" and args.get("code_challenge_method", "S256") != "S256":
            return Response.text("<h1>Only code_challenge_method=S256 is supported</h1>", 400, "text/html")
        decision = args.pop("decision", "")
        if decision == "approve":
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = _Code(
                    redirect_uri, args.get("scope", ""), args.get("code_challenge", ""), time.monotonic()
                )
            return _redirect(redirect_uri, {"code": code, "state": state})
        if decision == "deny":
            return _redirect(
                redirect_uri,
                {"error": "access_denied", "error_description": "end-user denied authorization", "state": state},
            )
        base = html.escape(f"{req.path}?{urlencode(args)}")
        page = (
            f"<!doctype html><title>Sandbox {self.platform} consent</title>"
            f"<h1>Allow access to your sandbox {self.platform} account?</h1>"
            f"<p>Scopes: {html.escape(args.get('scope', ''))}</p>"
            f'<a id="approve" href="{base}&amp;decision=approve">Approve</a> '
            f'<a id="deny" href="{base}&amp;decision=deny">Deny</a>'
        )
        return Response.text(page, 200, "text/html;charset=UTF-8")

    # ---- tokens

    def _token(self, form: dict[str, str], req: Request) -> Response:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode(errors="replace").partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return self._error("BAD_CLIENT_ID", "invalid_client", "invalid client credentials")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)  # a code works once
            if code is None or time.monotonic() - code.issued > CODE_TTL:
                return self._error("BAD_AUTH_CODE", "invalid_grant", "invalid authorization code")
            if code.redirect_uri != form.get("redirect_uri"):
                return self._error("BAD_REDIRECT_URI", "redirect_uri_mismatch", "redirect_uri must match")
            if self.platform == "salesforce" and _challenge(form.get("code_verifier", "")) != code.challenge:
                return self._error("BAD_AUTH_CODE", "invalid_grant", "invalid code verifier")
            scope, refresh = code.scope, secrets.token_urlsafe(32)
            with self._lock:
                self._refresh[refresh] = scope
        elif grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            with self._lock:
                scope = self._refresh.get(refresh)
            if self.knobs.refresh == "expired":
                return self._error("BAD_REFRESH_TOKEN", "invalid_grant", "expired access/refresh token")
            if scope is None or self.knobs.refresh == "revoked":
                return self._error("BAD_REFRESH_TOKEN", "invalid_grant", "token revoked or invalid")
        else:
            return self._error("BAD_GRANT_TYPE", "unsupported_grant_type", "grant type not supported")
        access = self._issue_access()
        if self.platform == "hubspot":
            # HubSpot answers a refresh with the same refresh token; Salesforce leaves it out
            return Response.json(
                {
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires_in": int(self.knobs.access_ttl),
                    "token_type": "bearer",
                }
            )
        body = {
            "access_token": access,
            "instance_url": self.sandbox.base_url,
            "id": f"{self.sandbox.base_url}/id/{ORG_ID}/{USER_ID}",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            "scope": scope,
        }
        if grant == "authorization_code":
            body["refresh_token"] = refresh
        return Response.json(body)

    def _issue_access(self) -> str:
        if self.platform == "salesforce":
            token = self.sandbox.issue_session()  # a session the org's API accepts as it is
        else:
            token = f"CO{secrets.token_urlsafe(40)}"
        with self._lock:
            self._access[token] = time.monotonic() + self.knobs.access_ttl
        return token

    def _revoke(self, token: str) -> None:
        with self._lock:
            self._refresh.pop(token, None)
            self._access.pop(token, None)

    def _error(self, hubspot_status: str, sf_error: str, description: str) -> Response:
        if self.platform == "hubspot":
            return Response.json(
                {"status": hubspot_status, "message": description, "correlationId": str(uuid.uuid4())}, 400
            )
        return Response.json({"error": sf_error, "error_description": description}, 400)

    # ---- the API's bearer tokens

    def _bearer(self, req: Request) -> Response | None:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        with self._lock:
            expiry = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None:
            return None  # not ours: the platform checks its own credentials
        if time.monotonic() >= expiry:
            if self.platform == "hubspot":
                return Response.json(
                    {
                        "status": "error",
                        "message": "The OAuth token used to make this call expired 0 hour(s) ago.",
                        "correlationId": str(uuid.uuid4()),
                        "category": "EXPIRED_AUTHENTICATION",
                    },
                    401,
                )
            return Response.json([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401)
        if self.platform == "hubspot":
            req.headers["authorization"] = f"Bearer {self.sandbox.access_token}"
        return None


def _form(req: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _redirect(uri: str, params: dict[str, str]) -> Response:
    joiner = "&" if "?" in uri else "?"
    return Response(302, b"", {"Location": f"{uri}{joiner}{urlencode(params)}"}, "text/plain")
