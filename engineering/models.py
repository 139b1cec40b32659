"""A CRM Configuration Spec (or, on a Partnership engagement, a CRM Field Mapping Sheet): a versioned JSON document
generated from a signed definitions version and the CRM's metadata, annotated and adjusted while a draft, then
approved; and the change plans that compare it with the live CRM."""

from django.conf import settings
from django.db import models

from accounts.tenancy import TenantModel
from gtm_ops.runs import Leased, Lifecycle


class SpecKind(models.TextChoices):
    CONFIGURATION_SPEC = "crm_configuration_spec", "CRM Configuration Spec"
    FIELD_MAPPING_SHEET = "crm_field_mapping_sheet", "CRM Field Mapping Sheet"


class SpecStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"


# A draft is annotated and adjusted until it is approved; an approved spec never changes (a change is a new version).
TRANSITIONS: dict[str, frozenset[str]] = {
    SpecStatus.DRAFT: frozenset({SpecStatus.APPROVED}),
    SpecStatus.APPROVED: frozenset(),
}


class ConfigurationSpec(TenantModel):
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="crm_specs")
    kind = models.CharField(max_length=40, choices=SpecKind.choices)
    number = models.PositiveIntegerField(help_text="Spec version: 1, 2, ... per engagement and kind.")
    platform = models.CharField(max_length=20)
    source_version = models.ForeignKey(
        "engagements.DefinitionVersion", on_delete=models.PROTECT, related_name="crm_specs"
    )
    source_hash = models.CharField(max_length=64, help_text="The signed definitions version's content hash.")
    metadata_hash = models.CharField(max_length=64, help_text="SHA-256 of the CRM metadata the spec was built on.")
    document = models.JSONField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=SpecStatus.choices, default=SpecStatus.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    decision = models.ForeignKey(
        "engagements.DecisionLogEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pdf = models.ForeignKey("deliverables.Artifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["engagement", "kind", "number"], name="unique_crm_spec_number")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.number}"

    @property
    def is_draft(self) -> bool:
        return self.status == SpecStatus.DRAFT

    def can_become(self, status: str) -> bool:
        return status in TRANSITIONS[self.status]


class SpecNote(TenantModel):
    """A consultant's note on one item of a draft spec, and the adjustment it made, if any (before -> after)."""

    spec = models.ForeignKey(ConfigurationSpec, on_delete=models.CASCADE, related_name="notes")
    item = models.CharField(max_length=300, help_text="The item's id in the spec document.")
    text = models.TextField(blank=True)
    attribute = models.CharField(max_length=40, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at", "id"]


class ChangePlan(TenantModel):
    """The spec compared with the live CRM: one operation per difference, each with its effect in records. Bound to
    the spec's hash and to the metadata it read, so apply (next) can refuse a CRM that changed since."""

    spec = models.ForeignKey(ConfigurationSpec, on_delete=models.CASCADE, related_name="plans")
    spec_sha256 = models.CharField(max_length=64)
    metadata_hash = models.CharField(max_length=64)
    operations = models.JSONField(default=list)
    held = models.JSONField(default=list, help_text="Destructive operations held back: no mapping target yet.")
    unlisted = models.JSONField(
        default=list,
        help_text="Values records hold that no option lists, with their records and the value they move to: record "
        "moves move them (apply has nothing to retire).",
    )
    unreadable = models.JSONField(default=list, help_text="What the read could not see, in words.")
    calls = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    purpose = models.CharField(max_length=10, default="plan", help_text="plan, or verify (a read after the build).")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Change plan for {self.spec}"

    @property
    def drift(self) -> int:
        return len(self.operations) + len(self.held)


# --------------------------------------------------------------------------------------------------
# Reading the CRM and writing to it happen on the CRM queue, through the one run lifecycle (gtm_ops/runs.py).


class ReadPurpose(models.TextChoices):
    GENERATE = "generate", "Generate the spec"
    PLAN = "plan", "Compare the spec with the CRM"
    VERIFY = "verify", "Verify the build"


class ReadStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Reading the CRM"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"


class ReadRun(Leased, TenantModel):
    """One read of the CRM for the engineering pages (generate, plan, verify), queued by a person, run by a worker;
    it ends with the spec or plan it made, or the reason in words."""

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="+")
    spec = models.ForeignKey(ConfigurationSpec, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=10, choices=ReadPurpose.choices)
    status = models.CharField(max_length=10, choices=ReadStatus.choices, default=ReadStatus.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    made_spec = models.ForeignKey(ConfigurationSpec, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    made_plan = models.ForeignKey(ChangePlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.TextField(blank=True, help_text="What the read found, or why it failed, in words.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def is_active(self) -> bool:
        return self.status in (ReadStatus.QUEUED, ReadStatus.RUNNING)


def _dispatch_read(pk: int) -> None:
    from .tasks import queued, run_read

    queued(run_read, pk)


READS = Lifecycle(
    name="CRM read",
    model=ReadRun,
    queued=ReadStatus.QUEUED,
    running=ReadStatus.RUNNING,
    failed=ReadStatus.FAILED,
    reason_field="outcome",
    max_recoveries=1,  # a read changes nothing: reading again is safe
    dispatch=_dispatch_read,
)


class ApplyStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    DRY_RUN_QUEUED = "dry_run_queued", "Dry run queued"
    DRY_RUNNING = "dry_running", "Dry run reading the CRM"
    DRY_RUN_DONE = "dry_run_done", "Dry run done"
    APPLY_QUEUED = "apply_queued", "Apply queued"
    APPLYING = "applying", "Applying"
    APPLIED = "applied", "Applied"
    PARTIAL = "partial", "Partly applied"
    FAILED = "failed", "Not applied"
    UNDO_QUEUED = "undo_queued", "Undo queued"
    UNDOING = "undoing", "Undoing"
    UNDONE = "undone", "Undone"
    UNDO_PARTIAL = "undo_partial", "Partly undone"


S = ApplyStatus
# The plan's way to the CRM. A dry run reads and writes nothing; apply needs a dry run first; a partial apply resumes
# (apply again) or is undone; an applied plan can be applied again (it changes nothing) or undone.
APPLY_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PLANNED: frozenset({S.DRY_RUN_QUEUED}),
    S.DRY_RUN_QUEUED: frozenset({S.DRY_RUNNING}),
    S.DRY_RUNNING: frozenset({S.DRY_RUN_DONE, S.PLANNED}),
    S.DRY_RUN_DONE: frozenset({S.DRY_RUN_QUEUED, S.APPLY_QUEUED}),
    S.APPLY_QUEUED: frozenset({S.APPLYING}),
    S.APPLYING: frozenset({S.APPLIED, S.PARTIAL, S.FAILED}),
    S.APPLIED: frozenset({S.APPLY_QUEUED, S.UNDO_QUEUED}),
    S.PARTIAL: frozenset({S.APPLY_QUEUED, S.UNDO_QUEUED}),
    S.FAILED: frozenset({S.DRY_RUN_QUEUED, S.APPLY_QUEUED}),
    S.UNDO_QUEUED: frozenset({S.UNDOING}),
    S.UNDOING: frozenset({S.UNDONE, S.UNDO_PARTIAL}),
    S.UNDONE: frozenset({S.DRY_RUN_QUEUED}),
    S.UNDO_PARTIAL: frozenset({S.UNDO_QUEUED}),
}


class ApplyRun(Leased, TenantModel):
    """A change plan on its way to the CRM: its dry run, apply (and resume) and undo, one operation per step."""

    plan = models.OneToOneField(ChangePlan, on_delete=models.CASCADE, related_name="apply_run")
    status = models.CharField(max_length=20, choices=ApplyStatus.choices, default=ApplyStatus.PLANNED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    write_allowed = models.BooleanField(null=True, help_text="What the CRM said at the last read: may we write?")
    refusal = models.TextField(blank=True, help_text="Why the CRM may not be changed now, in words.")
    outcome = models.TextField(blank=True, help_text="How the last action ended and the next step, in words.")
    writes = models.PositiveIntegerField(default=0, help_text="Writes the last action sent.")
    calls = models.PositiveIntegerField(default=0, help_text="API calls the last action spent.")
    metadata_after = models.CharField(
        max_length=64, blank=True, help_text="The CRM's metadata hash after our last write: what a resume expects."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Apply of {self.plan.spec}"

    def can_become(self, status: str) -> bool:
        return status in APPLY_TRANSITIONS[self.status]

    @property
    def is_active(self) -> bool:
        return self.status in (S.DRY_RUN_QUEUED, S.DRY_RUNNING, S.APPLY_QUEUED, S.APPLYING, S.UNDO_QUEUED, S.UNDOING)


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    WOULD_CHANGE = "would_change", "Would change"
    UNCHANGED = "unchanged", "Already as planned"
    WRITING = "writing", "Sent, not confirmed"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
    UNDONE = "undone", "Undone"


class ApplyStep(TenantModel):
    """One operation of the plan: the CRM's state read just before our first write (`prior`, what undo restores)
    and after our last (`after`)."""

    run = models.ForeignKey(ApplyRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    op = models.JSONField()
    status = models.CharField(max_length=15, choices=StepStatus.choices, default=StepStatus.PENDING)
    prior = models.JSONField(null=True, blank=True)
    prior_read = models.BooleanField(default=False, help_text="`prior` was read (None there means: absent).")
    after = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    written_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="one_apply_step_per_position")]

    @property
    def prior_words(self) -> str:
        return state_words(self.prior) if self.prior_read else "not read yet"

    @property
    def after_words(self) -> str:
        return state_words(self.after) if self.written_at else ""

    @property
    def target_words(self) -> str:
        return state_words(self.op.get("target"))


def state_words(state: dict | None) -> str:
    """A value, stage or field state (crm_connectors.base) as a person reads it."""
    if state is None:
        return "absent"
    if "values" in state:
        return f"{state.get('type')}: {', '.join(map(str, state['values']))}"
    words = str(state.get("label"))
    if state.get("probability") is not None:
        words += f" · {state['probability']}%"
    return words if state.get("active", True) else words + " · inactive"


def _dispatch_apply(pk: int) -> None:
    from .tasks import queued, run_apply

    queued(run_apply, pk)


# Each action has its own queued and running words; a write whose worker stopped is not retried by the sweep (a
# person looks at the steps and resumes or undoes), a dry run is (it only reads).
DRY_RUNS = Lifecycle(
    name="dry run",
    model=ApplyRun,
    queued=S.DRY_RUN_QUEUED,
    running=S.DRY_RUNNING,
    failed=S.PLANNED,
    reason_field="outcome",
    max_recoveries=1,
    dispatch=_dispatch_apply,
)
APPLIES = Lifecycle(
    name="apply",
    model=ApplyRun,
    queued=S.APPLY_QUEUED,
    running=S.APPLYING,
    failed=S.PARTIAL,
    reason_field="outcome",
    max_recoveries=0,
    gave_up="The worker stopped while applying (no sign of life for {minutes} minutes): read the steps, then "
    "resume or undo.",
)
UNDOS = Lifecycle(
    name="undo",
    model=ApplyRun,
    queued=S.UNDO_QUEUED,
    running=S.UNDOING,
    failed=S.UNDO_PARTIAL,
    reason_field="outcome",
    max_recoveries=0,
    gave_up="The worker stopped while undoing (no sign of life for {minutes} minutes): read the steps, then undo "
    "again.",
)
LIFECYCLES: dict[str, Lifecycle] = {S.DRY_RUN_QUEUED: DRY_RUNS, S.APPLY_QUEUED: APPLIES, S.UNDO_QUEUED: UNDOS}


# --------------------------------------------------------------------------------------------------
# Moving records off retired values (engineering/record_moves.py): opt-in, a count first, then the move.


class MoveStatus(models.TextChoices):
    PLANNED = "planned", "Not counted yet"
    COUNT_QUEUED = "count_queued", "Count queued"
    COUNTING = "counting", "Counting the records"
    COUNTED = "counted", "Counted"
    MOVE_QUEUED = "move_queued", "Move queued"
    MOVING = "moving", "Moving records"
    MOVED = "moved", "Moved"
    MOVE_PARTIAL = "move_partial", "Partly moved"


M = MoveStatus
# A count reads and writes nothing; a move needs a count first; a partial move is moved again (the records still on
# the retired value are found anew) or counted again.
MOVE_TRANSITIONS: dict[str, frozenset[str]] = {
    M.PLANNED: frozenset({M.COUNT_QUEUED}),
    M.COUNT_QUEUED: frozenset({M.COUNTING}),
    M.COUNTING: frozenset({M.COUNTED, M.PLANNED}),
    M.COUNTED: frozenset({M.COUNT_QUEUED, M.MOVE_QUEUED}),
    M.MOVE_QUEUED: frozenset({M.MOVING}),
    M.MOVING: frozenset({M.MOVED, M.MOVE_PARTIAL}),
    M.MOVED: frozenset({M.COUNT_QUEUED}),
    M.MOVE_PARTIAL: frozenset({M.COUNT_QUEUED, M.MOVE_QUEUED}),
}


class RecordMove(Leased, TenantModel):
    """A plan's move of records off its retired values onto their mapped values: one entry per deactivate_value
    operation with a mapping target in `moves` ({op, object, field, pipeline, value, label, mapping, counted,
    moved, error})."""

    plan = models.OneToOneField(ChangePlan, on_delete=models.CASCADE, related_name="record_move")
    status = models.CharField(max_length=15, choices=MoveStatus.choices, default=MoveStatus.PLANNED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    moves = models.JSONField(default=list)
    outcome = models.TextField(blank=True, help_text="How the last count or move ended, in words.")
    writes = models.PositiveIntegerField(default=0, help_text="Records the last move changed.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def can_become(self, status: str) -> bool:
        return status in MOVE_TRANSITIONS[self.status]

    @property
    def is_active(self) -> bool:
        return self.status in (M.COUNT_QUEUED, M.COUNTING, M.MOVE_QUEUED, M.MOVING)


def _dispatch_move(pk: int) -> None:
    from .tasks import queued, run_record_move

    queued(run_record_move, pk)


MOVE_COUNTS = Lifecycle(
    name="record count",
    model=RecordMove,
    queued=M.COUNT_QUEUED,
    running=M.COUNTING,
    failed=M.PLANNED,
    reason_field="outcome",
    max_recoveries=1,  # a count only reads
    dispatch=_dispatch_move,
)
MOVES = Lifecycle(
    name="record move",
    model=RecordMove,
    queued=M.MOVE_QUEUED,
    running=M.MOVING,
    failed=M.MOVE_PARTIAL,
    reason_field="outcome",
    max_recoveries=0,
    gave_up="The worker stopped while moving records (no sign of life for {minutes} minutes): count again, then "
    "move the rest.",
)
MOVE_LIFECYCLES: dict[str, Lifecycle] = {M.COUNT_QUEUED: MOVE_COUNTS, M.MOVE_QUEUED: MOVES}
