"""An engagement and its progression: phases, sub-phases, checklist items, gates, checkpoints and decisions.

Rows here are instantiated from a pinned playbook version when the engagement is created (the snapshot),
so editing the playbook later never changes a running engagement. Status fields are written only by
engagements.progression, from decisions; no form edits them.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, Role
from accounts.tenancy import OrgQuerySet, TenantModel


class EngagementStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ON_HOLD = "on_hold", "On hold"
    CLOSED = "closed", "Closed"


class EngagementType(models.TextChoices):
    SINGLE_PROJECT = "single_project", "Single project"
    DEDICATED = "dedicated", "Dedicated"


class EngagementQuerySet(OrgQuerySet):
    def active(self) -> "EngagementQuerySet":
        return self.filter(status=EngagementStatus.ACTIVE)

    def open(self) -> "EngagementQuerySet":
        return self.exclude(status=EngagementStatus.CLOSED)

    def visible_to(self, stakeholder) -> "EngagementQuerySet":
        """The portal's scope: engagements of the stakeholder's own client that name them as a stakeholder."""
        return self.filter(
            organization_id=stakeholder.organization_id,
            client_id=stakeholder.client_id,
            stakeholder_roles__stakeholder=stakeholder,
        )


class Engagement(TenantModel):
    client = models.ForeignKey("engagements.ClientAccount", on_delete=models.PROTECT, related_name="engagements")
    playbook_version = models.ForeignKey("playbooks.PlaybookVersion", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    shape = models.CharField(max_length=40, blank=True, help_text="Audit, Build or Embedded operation.")
    engagement_type = models.CharField(
        max_length=20, choices=EngagementType.choices, default=EngagementType.SINGLE_PROJECT
    )
    methodology_option = models.CharField(max_length=80, blank=True)
    start_date = models.DateField()
    target_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=EngagementStatus.choices, default=EngagementStatus.ACTIVE)
    current_phase = models.ForeignKey(
        "engagements.PhaseState", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    hypercare_start = models.DateField(null=True, blank=True)
    hypercare_end = models.DateField(null=True, blank=True)
    handed_off_on = models.DateField(null=True, blank=True)
    check_in_date = models.DateField(null=True, blank=True)
    check_in_reminder_sent_at = models.DateTimeField(null=True, blank=True)
    last_update_published_at = models.DateTimeField(null=True, blank=True)

    objects = EngagementQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def spec(self):
        return self.playbook_version.spec

    @property
    def is_open(self) -> bool:
        return self.status != EngagementStatus.CLOSED

    def consultants_to_notify(self, *, owners: str = "always", also=()):
        """The one answer to "which consultants hear about this engagement": its team, plus `also` (user ids, such
        as whoever published), plus the organization's owners "always" (events an owner answers for: sign-offs,
        check-ins) or only "if_no_team" (a monthly report must reach someone). Memberships, with their users."""
        team = self.team.values("user")
        wanted = Q(user__in=team) | Q(user__in=[u for u in also if u])
        if owners == "always" or (owners == "if_no_team" and not team.exists()):
            wanted |= Q(role=Role.OWNER)
        return Membership.objects.for_org(self.organization_id).filter(wanted).select_related("user")


class TeamRole(models.TextChoices):
    ARCHITECT = "architect", "Architect"
    ENGINEER = "engineer", "Engineer"
    SME = "sme", "Subject-matter expert"
    SPECIALIST = "specialist", "Specialist"


class EngagementMember(TenantModel):
    """The consultancy's internal team on an engagement."""

    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="team")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=20, choices=TeamRole.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["engagement", "user", "role"], name="unique_engagement_member_role")
        ]


class EngagementStakeholderQuerySet(OrgQuerySet):
    # Who receives what: every email to an engagement's stakeholders asks here, so the rules cannot drift apart.
    # A weekly update links to the portal; the health report is an opt-out of its own (unsubscribe link).
    # The overdue-task digest honours the one unsubscribe a stakeholder has (the link in the monthly email).
    RECEIVES = {
        "weekly_update": models.Q(stakeholder__portal_enabled=True),
        "health_report": models.Q(stakeholder__health_reports=True),
        "task_digest": models.Q(stakeholder__portal_enabled=True, stakeholder__health_reports=True),
    }

    def recipients_of(self, engagement, document: str) -> "EngagementStakeholderQuerySet":
        """The engagement's stakeholders who receive `document` (a key of RECEIVES)."""
        if document not in self.RECEIVES:
            raise ValueError(f"Unknown document {document!r}: one of {', '.join(self.RECEIVES)}.")
        return self.filter(self.RECEIVES[document], engagement=engagement, receives_updates=True)


class EngagementStakeholder(TenantModel):
    """A client stakeholder's role on this engagement (approver, champion, ...)."""

    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="stakeholder_roles")
    stakeholder = models.ForeignKey("engagements.Stakeholder", on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=120, blank=True)
    receives_updates = models.BooleanField(default=True)

    objects = EngagementStakeholderQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["engagement", "stakeholder"], name="unique_engagement_stakeholder")
        ]


class PhaseStatus(models.TextChoices):
    PENDING = "pending", "Not started"
    ACTIVE = "active", "In progress"
    DONE = "done", "Complete"
    SKIPPED = "skipped", "Skipped"


class PhaseState(TenantModel):
    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="phases")
    key = models.CharField(max_length=80)
    order = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    weight = models.CharField(max_length=10, blank=True)
    goal = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=PhaseStatus.choices, default=PhaseStatus.PENDING)
    skip_reason = models.TextField(blank=True)
    iteration = models.PositiveIntegerField(default=1, help_text="Goes up each time a loop-back reopens it.")
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["engagement", "order"]
        constraints = [models.UniqueConstraint(fields=["engagement", "key"], name="unique_phase_key")]

    def __str__(self) -> str:
        return self.name


class SubPhaseState(TenantModel):
    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="sub_phases")
    phase = models.ForeignKey(PhaseState, on_delete=models.CASCADE, related_name="sub_phases")
    key = models.CharField(max_length=20)
    order = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    purpose = models.TextField(blank=True)
    skip_reason = models.TextField(blank=True)
    skipped = models.BooleanField(default=False)

    class Meta:
        ordering = ["engagement", "order"]
        constraints = [models.UniqueConstraint(fields=["engagement", "key"], name="unique_sub_phase_key")]

    def __str__(self) -> str:
        return f"{self.key} {self.name}"


class ChecklistKind(models.TextChoices):
    TASK = "task", "Checklist"
    HANDOVER = "handover", "Handover component"
    DOC_PACKAGE = "doc_package", "Documentation package"


# The playbooks name the client's own work "customer" (the methods' Track A homework) or "client" (the delivery
# model's client involvement): either makes the item a task in the client's portal.
CLIENT_OWNERS = ("customer", "client")


class ChecklistItemQuerySet(OrgQuerySet):
    def client_owned(self) -> "ChecklistItemQuerySet":
        """The client's tasks: items whose owner is the customer, in parts of the engagement that apply."""
        owned = models.Q()
        for owner in CLIENT_OWNERS:
            owned |= models.Q(owner__iexact=owner)
        return self.filter(owned).exclude(phase__status=PhaseStatus.SKIPPED).exclude(sub_phase__skipped=True)

    def overdue(self, today) -> "ChecklistItemQuerySet":
        """Client tasks past their due date and not done, in engagements still running."""
        return self.client_owned().filter(done=False, due_date__lt=today, engagement__status=EngagementStatus.ACTIVE)


class ChecklistItem(TenantModel):
    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="checklist")
    phase = models.ForeignKey(PhaseState, on_delete=models.CASCADE, related_name="checklist")
    sub_phase = models.ForeignKey(
        SubPhaseState, null=True, blank=True, on_delete=models.CASCADE, related_name="checklist"
    )
    kind = models.CharField(max_length=20, choices=ChecklistKind.choices, default=ChecklistKind.TASK)
    key = models.CharField(max_length=120)
    text = models.TextField()
    group = models.CharField(max_length=200, blank=True)
    owner = models.CharField(max_length=120, blank=True)
    critical = models.BooleanField(default=False)
    order = models.PositiveIntegerField()
    done = models.BooleanField(default=False)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    # A client task is done by one of: the stakeholder in the portal, a consultant on the client's behalf
    # (done_by), or itself when its completion criterion is met (auto_reason says which).
    done_by_stakeholder = models.ForeignKey(
        "engagements.Stakeholder", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    auto_reason = models.CharField(max_length=200, blank=True)
    due_date = models.DateField(null=True, blank=True, help_text="Set by the consultant for a client task.")

    objects = ChecklistItemQuerySet.as_manager()

    class Meta:
        ordering = ["engagement", "order"]
        indexes = [models.Index(fields=["engagement", "phase", "done"])]

    def __str__(self) -> str:
        return self.text

    @property
    def is_client_task(self) -> bool:
        return self.owner.strip().lower() in CLIENT_OWNERS

    def is_overdue(self, today) -> bool:
        return not self.done and self.due_date is not None and self.due_date < today

    @property
    def overdue_today(self) -> bool:
        """Overdue on the viewer's calendar (the time zone their browser sent, else the site's)."""
        return self.is_overdue(timezone.localdate())

    @property
    def done_how(self) -> str:
        """Who completed a done item, in words: "Maya Patel", "Carl Jones on behalf of the client", "itself
        (intake form submitted)"."""
        if not self.done:
            return ""
        if self.done_by_stakeholder_id:
            return self.done_by_stakeholder.name
        if self.auto_reason:
            return f"itself ({self.auto_reason})"
        if self.done_by_id:
            name = self.done_by.get_full_name() or self.done_by.email
            return f"{name} on behalf of the client" if self.is_client_task else name
        return ""


class GateStatus(models.TextChoices):
    PENDING = "pending", "Not reached"
    OPEN = "open", "Awaiting decision"
    DECIDED = "decided", "Decided"


class Gate(TenantModel):
    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="gates")
    phase = models.OneToOneField(PhaseState, on_delete=models.CASCADE, related_name="gate")
    key = models.CharField(max_length=80)
    name = models.CharField(max_length=200)
    statement = models.TextField(blank=True)
    sub_phase_key = models.CharField(max_length=20, blank=True)
    per_release = models.BooleanField(default=False)
    recurring = models.BooleanField(default=False)
    round = models.PositiveIntegerField(default=1, help_text="Goes up when the gate repeats or is re-opened.")
    status = models.CharField(max_length=10, choices=GateStatus.choices, default=GateStatus.PENDING)

    def __str__(self) -> str:
        return self.name


class CheckpointStatus(models.TextChoices):
    OPEN = "open", "Open"
    CHECKED = "checked", "Checked"
    WAIVED = "waived", "Waived"


class GateCheckpoint(TenantModel):
    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="checkpoints")
    key = models.CharField(max_length=120)
    text = models.TextField()
    auto = models.CharField(
        max_length=40, blank=True, help_text="Checks itself from app state (definitions_signed, hypercare_kpi)."
    )
    kpi = models.CharField(max_length=80, blank=True, help_text="The hypercare KPI a hypercare_kpi checkpoint reads.")
    order = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=CheckpointStatus.choices, default=CheckpointStatus.OPEN)
    waiver_reason = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["gate", "order"]

    def __str__(self) -> str:
        return self.text


class GateDecision(TenantModel):
    """One decision taken at a gate. Never edited: the history of an engagement's route."""

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="decisions")
    round = models.PositiveIntegerField()
    option_key = models.CharField(max_length=80)
    label = models.CharField(max_length=200)
    effect = models.CharField(max_length=20)
    target = models.CharField(max_length=80, blank=True)
    note = models.TextField(blank=True)
    # A not-ready decision (hold, extend, loop back, continue) names the checkpoints it is about, as they
    # stood: [{"key", "text"}]. They stay unmet; nothing is waived for it.
    ready = models.BooleanField(default=True)
    unmet = models.JSONField(default=list, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.gate.name}: {self.label}"
