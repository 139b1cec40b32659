"""A client's CRM connection: where the CRM is, how to sign in, and what the last test could read."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import Q

from accounts.tenancy import OrgQuerySet, TenantModel

from . import crypto
from .base import AuthMethod, CrmConnector


class CrmKind(models.TextChoices):
    SALESFORCE = "salesforce", "Salesforce"
    HUBSPOT = "hubspot", "HubSpot"


class CrmAuth(models.TextChoices):
    SF_PASSWORD = AuthMethod.SF_PASSWORD, "Salesforce: username, password and security token"
    SF_CLIENT_CREDENTIALS = AuthMethod.SF_CLIENT_CREDENTIALS, "Salesforce: OAuth client credentials (My Domain)"
    SF_SESSION = AuthMethod.SF_SESSION, "Salesforce: access token and instance URL"
    HS_PRIVATE_APP = AuthMethod.HS_PRIVATE_APP, "HubSpot: private-app access token"


SECRET_FIELDS = ("password", "security_token", "consumer_secret", "access_token")
# which secrets each method uses; the others are dropped when the method changes
METHOD_SECRETS = {
    AuthMethod.SF_PASSWORD: ("password", "security_token"),
    AuthMethod.SF_CLIENT_CREDENTIALS: ("consumer_secret",),
    AuthMethod.SF_SESSION: ("access_token",),
    AuthMethod.HS_PRIVATE_APP: ("access_token",),
}
DEFAULT_BASE_URLS = {CrmKind.SALESFORCE: "https://login.salesforce.com", CrmKind.HUBSPOT: "https://api.hubapi.com"}


class CrmConnectionQuerySet(OrgQuerySet):
    def active(self) -> CrmConnectionQuerySet:
        return self.filter(is_active=True)


class CrmConnection(TenantModel):
    """One client's CRM. Secrets live only in `secrets_encrypted` (Fernet); nothing else holds them."""

    client = models.ForeignKey("engagements.ClientAccount", on_delete=models.CASCADE, related_name="crm_connections")
    kind = models.CharField(max_length=20, choices=CrmKind.choices)
    auth_method = models.CharField(max_length=30, choices=CrmAuth.choices)
    base_url = models.CharField(
        max_length=300,
        help_text="Salesforce: login.salesforce.com, test.salesforce.com, your My Domain or the instance URL. "
        "HubSpot: https://api.hubapi.com.",
    )
    username = models.CharField(max_length=200, blank=True)
    consumer_key = models.CharField(max_length=300, blank=True, help_text="Salesforce connected app consumer key")
    secrets_encrypted = models.TextField(blank=True, editable=False)
    secret_names = models.JSONField(default=list, blank=True, editable=False)  # which secrets are stored, not values
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_summary = models.JSONField(default=dict, blank=True)

    objects = CrmConnectionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["client"], condition=Q(is_active=True), name="one_active_crm_connection_per_client"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} connection for {self.client}"

    # ---- secrets

    def has_secret(self, name: str) -> bool:
        return name in (self.secret_names or [])

    def _decrypted(self) -> dict[str, str]:
        if not self.secrets_encrypted:
            return {}
        return json.loads(crypto.decrypt(self.secrets_encrypted))

    def set_secrets(self, **values: str) -> list[str]:
        """Store the non-blank values (blank means keep); drop secrets the auth method does not use.

        Returns the names that changed. Raises crypto.SecretKeyMissing when secrets cannot be stored.
        """
        unknown = set(values) - set(SECRET_FIELDS)
        if unknown:
            raise ValueError(f"unknown secret fields: {sorted(unknown)}")
        given = {k: v for k, v in values.items() if v}
        used = set(METHOD_SECRETS.get(self.auth_method, SECRET_FIELDS))
        dropped = [n for n in (self.secret_names or []) if n not in used]
        if not given and not dropped:
            return []
        try:
            current = self._decrypted()
        except crypto.SecretUnreadable:
            current = {}  # encrypted under a key that is gone: what is entered now replaces it
        current.update(given)
        current = {k: v for k, v in current.items() if k in used and v}
        self.secrets_encrypted = crypto.encrypt(json.dumps(current)) if current else ""
        self.secret_names = sorted(current)
        return sorted(set(given) | set(dropped))

    # ---- display

    @property
    def masked_username(self) -> str:
        return crypto.mask(self.username)

    @property
    def masked_consumer_key(self) -> str:
        return crypto.mask(self.consumer_key, keep=4)

    # ---- use

    def connector(self, **options: Any) -> CrmConnector:
        """The right connector for this connection, with its secrets decrypted only in memory."""
        secrets = self._decrypted()
        key = f"connection:{self.uuid}"
        if self.kind == CrmKind.HUBSPOT:
            from .hubspot import HubSpotConnector

            return HubSpotConnector(
                base_url=self.base_url,
                access_token=secrets.get("access_token", ""),
                auth_method=self.auth_method,
                key=key,
                **options,
            )
        from .salesforce import SalesforceConnector

        return SalesforceConnector(
            base_url=self.base_url,
            auth_method=self.auth_method,
            username=self.username,
            consumer_key=self.consumer_key,
            key=key,
            **{name: secrets.get(name, "") for name in SECRET_FIELDS},
            **options,
        )
