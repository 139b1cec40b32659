import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import DomainError
from accounts.tenancy import OrgQuerySet, ScopedQuerySet

from .loader import content_hash, parse_playbook
from .schema import Playbook as PlaybookSpec

_SPECS: dict[str, PlaybookSpec] = {}


class PlaybookQuerySet(OrgQuerySet):
    def for_org(self, org) -> "PlaybookQuerySet":
        """The playbooks an organization can use: the shared library plus its own copies."""
        return self.filter(Q(organization__isnull=True) | Q(organization=org))

    def library(self) -> "PlaybookQuerySet":
        return self.filter(organization__isnull=True)


class Playbook(models.Model):
    """A method. Library playbooks (no organization) are read-only; an organization edits its own copies."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    framework = models.CharField(max_length=40)
    cloned_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PlaybookQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="unique_playbook_key_per_org"),
            models.UniqueConstraint(
                fields=["key"], condition=Q(organization__isnull=True), name="unique_library_playbook_key"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_library(self) -> bool:
        return self.organization_id is None

    def latest_version(self) -> "PlaybookVersion | None":
        return self.versions.order_by("-number").first()


class PlaybookVersion(models.Model):
    """An immutable snapshot of a playbook's content. Engagements pin one version."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    label = models.CharField(max_length=40, help_text="The version the file's authors gave it.")
    content = models.JSONField()
    content_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()  # owned through its playbook: scoped by a loaded or scoped playbook

    class Meta:
        ordering = ["playbook", "-number"]
        constraints = [models.UniqueConstraint(fields=["playbook", "number"], name="unique_playbook_version")]

    def __str__(self) -> str:
        return f"{self.playbook.name} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise DomainError("A playbook version never changes; save a new version instead.")
        super().save(*args, **kwargs)

    @property
    def spec(self) -> PlaybookSpec:
        # Versions never change, so a parsed spec can be shared by every row with the same content hash.
        spec = _SPECS.get(self.content_hash)
        if spec is None:
            spec = _SPECS[self.content_hash] = parse_playbook(self.content, file=f"version {self.number}")
        return spec

    @staticmethod
    def hash_of(spec: PlaybookSpec) -> str:
        return content_hash(spec)
