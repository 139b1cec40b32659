import hashlib
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from .tenancy import OrgQuerySet, TenantModel


class DomainError(Exception):
    """An illegal move in the domain; views and the API show its message to the user."""


class Organization(models.Model):
    """A consultancy: the tenant."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    logo = models.ImageField(upload_to="logos/", blank=True, help_text="Shown on deliverables (PNG or JPEG).")
    created_at = models.DateTimeField(auto_now_add=True)
    # Incremented by every change to the organization's data (accounts/data_version.py): keys its cached pages.
    data_version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def unique_slug(cls, name: str) -> str:
        base = slugify(name)[:50] or "org"
        slug, n = base, 2
        while cls.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    CONSULTANT = "consultant", "Consultant"
    VIEWER = "viewer", "Viewer"


class MembershipQuerySet(OrgQuerySet):
    def of_user(self, user) -> "MembershipQuerySet":
        return self.across_tenants("a user's own memberships span organizations").filter(user=user)

    def owners(self) -> "MembershipQuerySet":
        return self.filter(role=Role.OWNER)


class Membership(TenantModel):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CONSULTANT)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_user")]
        ordering = ["user__email"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_write(self) -> bool:
        return self.role in (Role.OWNER, Role.CONSULTANT)

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(OrgQuerySet):
    def pending(self) -> "InvitationQuerySet":
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())


class Invitation(TenantModel):
    """An emailed invitation to join an organization. The raw token only ever lives in the email."""

    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CONSULTANT)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.email} to {self.organization}"

    @classmethod
    def new(cls, *, organization: Organization, email: str, role: str, invited_by) -> tuple["Invitation", str]:
        token = secrets.token_urlsafe(32)
        invitation = cls.objects.create(
            organization=organization,
            email=email.lower(),
            role=role,
            invited_by=invited_by,
            token_hash=_hash_token(token),
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
        )
        return invitation, token

    @classmethod
    def find(cls, token: str) -> "Invitation | None":
        by_token = cls.objects.across_tenants("an invitation token names its organization")
        return by_token.select_related("organization").filter(token_hash=_hash_token(token)).first()

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class ActivityQuerySet(OrgQuerySet):
    def update(self, **kwargs):
        raise DomainError("Activity entries are append-only.")

    def delete(self):
        raise DomainError("Activity entries are append-only.")


class ActivityEntry(TenantModel):
    """Append-only record of who changed what. Written only by services; never edited or deleted."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    actor_label = models.CharField(max_length=200, help_text="Who acted, kept even for portal users.")
    verb = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=80, blank=True)
    target_uuid = models.UUIDField(null=True, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]
        verbose_name_plural = "activity entries"

    def __str__(self) -> str:
        return f"{self.actor_label} {self.verb} {self.target_label}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise DomainError("Activity entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise DomainError("Activity entries are append-only.")


class LimitHit(models.Model):
    """One attempt counted against an abuse limit (accounts/throttling.py): a failed sign-in, a portal link request.

    The database copy of what the cache counts, so limits hold when the cache is cleared or Redis is down. `key` is
    a digest of the limit's scope and subject (an email address, an IP address, a stakeholder), never the subject.
    """

    key = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["key", "created_at"]), models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.key[:12]}… at {self.created_at:%Y-%m-%d %H:%M:%S}"
