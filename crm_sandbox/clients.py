"""Real simple-salesforce and hubspot-api-client clients pointed at a sandbox.

simple-salesforce builds every URL as https://<host>/... (login.salesforce.com, <domain>.salesforce.com
or the instance from the login answer). `LoopbackSession` is a requests.Session that rewrites any
URL's scheme and host to the sandbox's http://127.0.0.1:<port> before sending, so nothing can leave
the machine and no TLS certificate is needed. It also ignores proxy variables from the environment
(`trust_env = False`) and gives every request a timeout, which neither library does by default.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from hubspot import HubSpot
from hubspot.discovery.discovery_base import DiscoveryBase
from simple_salesforce import Salesforce
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT = 30.0


class LoopbackSession(requests.Session):
    def __init__(self, base_url: str, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.trust_env = False
        target = urlsplit(base_url)
        self._scheme, self._netloc = target.scheme, target.netloc
        self.timeout = timeout
        self.sent: list[str] = []  # rewritten URLs, for tests that check what the client asked for

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(url.decode() if isinstance(url, bytes) else url)
        rewritten = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, parts.fragment))
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        self.sent.append(rewritten)
        return super().request(method, rewritten, *args, **kwargs)


def _base(sandbox_or_url: Any) -> str:
    return sandbox_or_url if isinstance(sandbox_or_url, str) else sandbox_or_url.base_url


def salesforce_client(
    sandbox: Any,
    auth: str = "soap",
    *,
    version: str = "59.0",
    timeout: float | None = DEFAULT_TIMEOUT,
    **overrides: Any,
) -> Salesforce:
    """A real `simple_salesforce.Salesforce` logged in to `sandbox` (a SalesforceSandbox).

    auth: "soap" (username + password + security token), "oauth" (OAuth password grant),
    "client_credentials" (OAuth client-credentials grant, which simple-salesforce only uses with a
    My Domain, hence domain="sandbox-org.my") or "session" (an existing session id, no login).
    `overrides` replace any credential (e.g. password="wrong").
    """
    creds = {
        "username": sandbox.username,
        "password": sandbox.password,
        "security_token": sandbox.security_token,
        "consumer_key": sandbox.consumer_key,
        "consumer_secret": sandbox.consumer_secret,
        "session_id": sandbox.session_id,
    }
    creds.update(overrides)
    session = LoopbackSession(_base(sandbox), timeout)
    common = {"version": version, "session": session}
    if auth == "soap":
        return Salesforce(
            username=creds["username"],
            password=creds["password"],
            security_token=creds["security_token"],
            **common,
        )
    if auth == "oauth":
        return Salesforce(
            username=creds["username"],
            password=creds["password"],
            consumer_key=creds["consumer_key"],
            consumer_secret=creds["consumer_secret"],
            **common,
        )
    if auth == "client_credentials":
        return Salesforce(
            consumer_key=creds["consumer_key"],
            consumer_secret=creds["consumer_secret"],
            domain="sandbox-org.my",
            **common,
        )
    if auth == "session":
        return Salesforce(instance_url=_base(sandbox), session_id=creds["session_id"], **common)
    raise ValueError(f"unknown auth {auth!r}")


def hubspot_client(
    sandbox_or_url: Any,
    access_token: str | None = None,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    retry: Retry | None = None,
) -> HubSpot:
    """A real `hubspot.HubSpot` client talking to a HubSpotSandbox (or its base URL).

    hubspot-api-client passes `_request_timeout=None` unless each call sets one, so the API factory
    wraps every generated API's REST client to default the timeout.
    """
    token = access_token or getattr(sandbox_or_url, "access_token", None)

    def factory(api_client_package: Any, api_name: str, config: dict[str, Any]) -> Any:
        api = DiscoveryBase._default_api_factory(api_client_package, api_name, config)
        rest = api.api_client.rest_client
        original = rest.request

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("_request_timeout") is None:
                kwargs["_request_timeout"] = timeout
            return original(method, url, *args, **kwargs)

        rest.request = request
        return api

    return HubSpot(access_token=token, host=_base(sandbox_or_url), retry=retry, api_factory=factory)
