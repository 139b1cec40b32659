"""A client's CRM connection: where the CRM is, how to sign in, and what the last test could read."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import Q

from accounts.tenancy import OrgQuerySet, TenantModel
from gtm_ops.runs import Leased, Lifecycle

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
    SF_OAUTH = AuthMethod.SF_OAUTH, "Salesforce: OAuth, granted by the client in the portal"
    HS_OAUTH = AuthMethod.HS_OAUTH, "HubSpot: OAuth, granted by the client in the portal"


SECRET_FIELDS = ("password", "security_token", "consumer_secret", "access_token", "refresh_token")
# which secrets each method uses; the others are dropped when the method changes
METHOD_SECRETS = {
    AuthMethod.SF_PASSWORD: ("password", "security_token"),
    AuthMethod.SF_CLIENT_CREDENTIALS: ("consumer_secret",),
    AuthMethod.SF_SESSION: ("access_token",),
    AuthMethod.HS_PRIVATE_APP: ("access_token",),
    AuthMethod.SF_OAUTH: ("access_token", "refresh_token"),
    AuthMethod.HS_OAUTH: ("access_token", "refresh_token"),
}
DEFAULT_BASE_URLS: dict[str, str] = {CrmKind.SALESFORCE: "https://login.salesforce.com", CrmKind.HUBSPOT: "https://api.hubapi.com"}


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
    # OAuth connections (granted by the client in the portal): when the access token expires, and why the client
    # must grant access again (the CRM refused the refresh token); blank while the tokens work.
    token_expires_at = models.DateTimeField(null=True, blank=True)
    reconnect_reason = models.CharField(max_length=300, blank=True)

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

    @property
    def is_oauth(self) -> bool:
        return self.auth_method in AuthMethod.OAUTH

    @property
    def reconnect_message(self) -> str:
        """What the consultant's CRM page and the portal say when only the client can restore access."""
        if not self.reconnect_reason:
            return ""
        return f"The client must reconnect {self.get_kind_display()}: {self.reconnect_reason}"

    # ---- use

    def connector(self, **options: Any) -> CrmConnector:
        """The right connector for this connection, with its secrets decrypted only in memory."""
        secrets = self._decrypted()
        key = f"connection:{self.uuid}"
        if self.is_oauth:
            from .oauth import oauth_connector  # the OAuth tokens refresh themselves, persisted here

            return oauth_connector(self, secrets, key=key, **options)
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
            **{name: secrets.get(name, "") for name in SECRET_FIELDS if name != "refresh_token"},  # OAuth only
            **options,
        )


class OAuthApp(TenantModel):
    """The consultancy's OAuth app on one CRM platform, through which its clients grant access in the portal."""

    platform = models.CharField(max_length=20, choices=CrmKind.choices)
    client_id = models.CharField(max_length=300)
    client_secret_encrypted = models.TextField(blank=True, editable=False)
    login_url = models.CharField(
        max_length=300,
        blank=True,
        help_text="Salesforce only: https://login.salesforce.com (default), https://test.salesforce.com or the "
        "client's My Domain (https://<name>.my.salesforce.com).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "platform"], name="one_oauth_app_per_platform")]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} OAuth app"

    @property
    def has_secret(self) -> bool:
        return bool(self.client_secret_encrypted)

    def set_secret(self, secret: str) -> None:
        self.client_secret_encrypted = crypto.encrypt(secret)

    def secret(self) -> str:
        return crypto.decrypt(self.client_secret_encrypted) if self.client_secret_encrypted else ""


class OAuthGrant(TenantModel):
    """One attempt of a stakeholder to connect a CRM: the `state` sent to the CRM (kept as its hash), bound to the
    stakeholder's portal session and the engagement, single use, short-lived; the PKCE verifier encrypted."""

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="+")
    stakeholder = models.ForeignKey("engagements.Stakeholder", on_delete=models.CASCADE, related_name="+")
    platform = models.CharField(max_length=20, choices=CrmKind.choices)
    state_hash = models.CharField(max_length=64, unique=True)
    session_hash = models.CharField(max_length=64)
    verifier_encrypted = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


# --------------------------------------------------------------------------------------------------
# The Current State Audit (crm_connectors/audit): one run per audit, its findings, their states

from django.conf import settings  # noqa: E402 - appended section; the connection models above need no settings


class AuditStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"


ACTIVE_AUDIT_STATUSES = (AuditStatus.QUEUED, AuditStatus.RUNNING)
FINISHED_AUDIT_STATUSES = (AuditStatus.SUCCEEDED, AuditStatus.PARTIAL)


class AuditRunQuerySet(OrgQuerySet):
    def active(self) -> AuditRunQuerySet:
        return self.filter(status__in=ACTIVE_AUDIT_STATUSES)

    def finished(self) -> AuditRunQuerySet:
        """Runs whose findings can be read (a partial run's findings are real, only incomplete)."""
        return self.filter(status__in=FINISHED_AUDIT_STATUSES)


class AuditRun(Leased, TenantModel):
    """One audit of a client's CRM: what it read (`snapshot`), what it cost, how it ended and why."""

    client = models.ForeignKey("engagements.ClientAccount", on_delete=models.CASCADE, related_name="audit_runs")
    engagement = models.ForeignKey(
        "engagements.Engagement",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_runs",
        help_text="Drift is checked against this engagement's signed stage architecture.",
    )
    connection = models.ForeignKey(CrmConnection, null=True, on_delete=models.SET_NULL, related_name="audit_runs")
    platform = models.CharField(max_length=20, choices=CrmKind.choices)
    status = models.CharField(max_length=10, choices=AuditStatus.choices, default=AuditStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    deep = models.BooleanField(default=False, help_text="Also walk records (duplicates): costs calls per record.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    api_calls = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the run failed or is partial, in plain words.")
    snapshot = models.JSONField(default=dict, blank=True, help_text="The CRM metadata and aggregates the run read.")
    summary = models.JSONField(default=dict, blank=True, help_text="Rules evaluated / not evaluated / not run.")
    signed_version = models.PositiveIntegerField(null=True, blank=True, help_text="Definitions version checked.")
    reports = models.ManyToManyField("deliverables.Artifact", blank=True, related_name="+")

    objects = AuditRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # running the same audit twice at once starts one run
            models.UniqueConstraint(
                fields=["client"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_audit_per_client",
            )
        ]
        indexes = [models.Index(fields=["client", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} audit of {self.client} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_AUDIT_STATUSES

    @property
    def has_findings(self) -> bool:
        return self.status in FINISHED_AUDIT_STATUSES

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


# An audit whose worker stopped is failed, not re-run: running it again spends the client's CRM API quota, which
# a person decides (the reason says to start it again).
AUDITS = Lifecycle(
    name="audit",
    model=AuditRun,
    queued=AuditStatus.QUEUED,
    running=AuditStatus.RUNNING,
    failed=AuditStatus.FAILED,
    max_recoveries=0,
    gave_up="The worker stopped before the audit finished (no sign of life for {minutes} minutes); "
    "start the audit again.",
    queue_timeout_setting="CRM_AUDIT_QUEUE_TIMEOUT",
    never_started="No worker picked the audit up within {minutes} minutes; start the audit again.",
)


class Severity(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INFO = "info", "Info"


class AuditDomain(models.TextChoices):
    LEAD_LIFECYCLE = "lead_lifecycle", "Lead / contact lifecycle"
    SALES_PIPELINES = "sales_pipelines", "Sales pipelines"
    CUSTOMER_LIFECYCLE = "customer_lifecycle", "Customer lifecycle"
    COMPANY_LIFECYCLE = "company_lifecycle", "Company lifecycle"
    DATA_QUALITY = "data_quality", "Data quality"
    DRIFT = "drift", "Drift from the signed architecture"


class FindingState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    EXPLAINED = "explained", "Explained"
    ACCEPTED_RISK = "accepted_risk", "Accepted as a risk"


class Finding(TenantModel):
    """One rule's verdict on one object / field / pipeline in a run, with the evidence and the seed's fix."""

    run = models.ForeignKey(AuditRun, on_delete=models.CASCADE, related_name="findings")
    rule_id = models.CharField(max_length=60, help_text="Stable across CRMs and runs, e.g. LC-NO-SAL.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    domain = models.CharField(max_length=30, choices=AuditDomain.choices)
    object = models.CharField(max_length=40, blank=True, help_text="lead, contact, company, deal, ticket")
    field = models.CharField(max_length=300, blank=True, help_text="Field API name or pipeline.")
    values = models.JSONField(default=list, blank=True, help_text="The offending values.")
    counts = models.JSONField(default=dict, blank=True, help_text="Records (or figures) per offending value.")
    count = models.PositiveIntegerField(default=0)
    evidence = models.JSONField(default=dict, blank=True)
    message = models.TextField()
    recommendation = models.TextField(blank=True)
    seed_ref = models.CharField(max_length=300, blank=True)
    fingerprint = models.CharField(max_length=40, help_text="Same rule, object and field in a later run.")
    state = models.CharField(max_length=20, choices=FindingState.choices, default=FindingState.OPEN)
    note = models.TextField(blank=True)
    state_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state_at = models.DateTimeField(null=True, blank=True)
    carried_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Same finding, last run."
    )

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "fingerprint"], name="one_finding_per_fingerprint")]
        indexes = [models.Index(fields=["fingerprint"])]

    def __str__(self) -> str:
        return f"{self.rule_id} on {self.object}.{self.field}" if self.field else f"{self.rule_id} on {self.object}"
