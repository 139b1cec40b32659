from django.conf import settings
from django.db import models

from accounts.tenancy import TenantModel
from gtm_ops.runs import Leased, Lifecycle

# --------------------------------------------------------------------------------------------------
# Maintenance schedule and health checks


class ScheduleOwner(models.TextChoices):
    CLIENT = "client", "The client runs it"
    CONSULTANCY = "consultancy", "Our architect runs it"


class MaintenanceSchedule(TenantModel):
    engagement = models.OneToOneField(
        "engagements.Engagement", on_delete=models.CASCADE, related_name="maintenance_schedule"
    )
    owner = models.CharField(max_length=20, choices=ScheduleOwner.choices)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    live_since = models.DateField(help_text="Go-live date: first-business-cycle windows count from here.")
    active = models.BooleanField(default=True)

    FIRST_CYCLE_DAYS = (30, 90)  # when the playbook does not say (RI and PRM: 30-90 days; GTM Lifecycle: 30-60)

    @property
    def first_cycle_days(self) -> tuple[int, int]:
        """The first business cycle, in days after go-live, as the engagement's playbook states it."""
        maintenance = self.engagement.spec.maintenance
        cycle = maintenance.first_business_cycle if maintenance else None
        return (cycle.window_days.min, cycle.window_days.max) if cycle else self.FIRST_CYCLE_DAYS


class Cadence(models.TextChoices):
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    FIRST_CYCLE = "after_first_business_cycle", "After the first business cycle"
    HALF_YEARLY = "every_6_12_months", "Every 6-12 months"


class TaskKind(models.TextChoices):
    TASK = "task", "Maintenance task"
    TRIGGER = "trigger", "Refinement trigger"


class ScheduledTask(TenantModel):
    """One maintenance task or refinement trigger of an engagement, with its own (adjustable) rules."""

    schedule = models.ForeignKey(MaintenanceSchedule, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=10, choices=TaskKind.choices, default=TaskKind.TASK)
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    cadence = models.CharField(max_length=40, choices=Cadence.choices)
    what_to_check = models.TextField(blank=True)
    red_flag = models.TextField(blank=True)
    action = models.TextField(blank=True, help_text="What to do when it is off track.")
    rules = models.JSONField(default=list, help_text="playbooks.schema.Rule dumps; thresholds may be adjusted.")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["schedule", "order"]
        constraints = [models.UniqueConstraint(fields=["schedule", "key"], name="unique_scheduled_task")]

    def __str__(self) -> str:
        return self.name


class Baseline(TenantModel):
    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="baselines")
    metric = models.CharField(max_length=80)
    key = models.CharField(max_length=120, blank=True, help_text="Stage, transition, ... ('' for one figure).")
    value = models.FloatField()
    established_on = models.DateField()
    source = models.CharField(max_length=200, help_text="e.g. first business cycle (2026-10), set by hand")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["engagement", "metric", "key"], name="unique_baseline")]


class Granularity(models.TextChoices):
    MONTH = "month", "Month"
    WEEK = "week", "Week"


class MetricValue(TenantModel):
    """One figure of one metric for one period: computed from the CRM, or entered / uploaded by a person.

    Most figures are monthly; a rule read per week (RI recording coverage) reads weekly figures, whose period is
    the Monday of the week."""

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="metric_values")
    metric = models.CharField(max_length=80)
    key = models.CharField(max_length=120, blank=True)
    granularity = models.CharField(max_length=10, choices=Granularity.choices, default=Granularity.MONTH)
    period = models.DateField(help_text="First day of the period: the 1st of the month, or the week's Monday.")
    value = models.FloatField(null=True, blank=True)
    breakdown = models.JSONField(null=True, blank=True, help_text="e.g. {reason: count} for share rules.")
    source = models.CharField(max_length=20)  # crm / manual / csv
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["engagement", "metric", "key", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["engagement", "metric", "key", "granularity", "period"], name="unique_metric_value"
            )
        ]


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"


class RunStep(models.TextChoices):
    """A health run's durable steps, in order: each is saved before the next begins, and a run taken back from
    a worker that stopped resumes at the one it had reached."""

    EVALUATE = "evaluate", "reading the CRM and the figures"
    REPORT = "report", "rendering the report"
    SEND = "send", "sending the emails"
    DONE = "done", "done"


STEP_ORDER = list(RunStep.values)


class HealthCheckRun(Leased, TenantModel):
    """The health check of one engagement for one period. At most one per engagement and period.

    It succeeds only when every step up to its `goal` is done: evaluated, its report rendered, its emails sent.
    A run whose CRM reading had errors, or some of whose emails could not be sent, ends partial."""

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="health_runs")
    period = models.DateField(help_text="First day of the month checked.")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    step = models.CharField(max_length=10, choices=RunStep.choices, default=RunStep.EVALUATE)
    goal = models.CharField(
        max_length=10, choices=RunStep.choices, default=RunStep.SEND, help_text="The last step this run goes to."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    api_calls = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    red_count = models.PositiveIntegerField(default=0)
    not_evaluable_count = models.PositiveIntegerField(default=0)
    report = models.ForeignKey(
        "deliverables.Artifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-period"]
        constraints = [models.UniqueConstraint(fields=["engagement", "period"], name="one_health_run_per_period")]

    def __str__(self) -> str:
        return f"Health check {self.period:%B %Y}"

    @property
    def status_text(self) -> str:
        """What people read: the status and what is pending ("Sending 2 of 4") or was not done ("Partial: 1 of 4
        emails not sent")."""
        active = self.status in (RunStatus.QUEUED, RunStatus.RUNNING)
        if active and self.step in (RunStep.REPORT, RunStep.DONE):
            return self.get_step_display().capitalize()
        if (active and self.step == RunStep.SEND) or self.status == RunStatus.PARTIAL:
            counts = dict(self.deliveries.values_list("status").annotate(n=models.Count("id")))
            total, sent, failed = sum(counts.values()), counts.get("sent", 0), counts.get("failed", 0)
            if not 0 <= sent + failed <= total:  # a count people read: never shown when it cannot be
                raise ValueError(f"Health run {self.pk}: {sent} sent and {failed} failed of {total} emails.")
            if active:
                return f"Sending {min(sent + 1, total)} of {total}"
            if failed:
                return f"Partial: {failed} of {total} emails not sent"
        return self.get_status_display()


class HealthResult(TenantModel):
    """One rule's verdict in a run (and, for `per` rules, one row per stage / transition)."""

    run = models.ForeignKey(HealthCheckRun, on_delete=models.CASCADE, related_name="results")
    task_key = models.CharField(max_length=80)
    task_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=TaskKind.choices)
    metric = models.CharField(max_length=80)
    key = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=20)
    message = models.TextField()
    value = models.FloatField(null=True, blank=True)
    baseline = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    explanation = models.TextField(blank=True)
    explained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    carried_from = models.ForeignKey(
        "FlagExplanation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="carried_into",
        help_text="The explanation of an earlier month that covers this flag (status explained).",
    )
    rule_index = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Which of the task's rules.")
    rule_text = models.TextField(blank=True, help_text="The rule that was judged, in words.")
    window = models.CharField(max_length=200, blank=True, help_text="The period the rule was judged over.")
    response = models.TextField(blank=True, help_text="The seed's response: action if off track, trigger response.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "id"]

    @property
    def is_review_item(self) -> bool:
        """A maintenance task without a machine rule, in the run for a person to review and record (who, when, a
        note): not evaluable until recorded, then ok."""
        return self.kind == TaskKind.TASK and not self.metric

    @property
    def explained_note(self) -> str:
        """'explained in October 2026 by Carl' for a carried explanation, 'explained by Carl' for this month's."""
        if not self.explanation:
            return ""
        who = (self.explained_by.get_full_name() or self.explained_by.email) if self.explained_by else ""
        when = f" in {self.carried_from.from_period:%B %Y}" if self.carried_from_id else ""
        return f"explained{when}{f' by {who}' if who else ''}"


class FlagExplanation(TenantModel):
    """Why a red flag is acceptable, carried into later months' runs of the same engagement.

    Written when a consultant explains a red result of the run for `from_period`. A later run whose same task,
    metric and key is red again shows it as explained (with this text and who wrote it) while the run's period
    is after `from_period` and at most `until_period`, unless the explanation was withdrawn before the run.
    Runs already evaluated keep what they showed.
    """

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="flag_explanations")
    source = models.ForeignKey(
        HealthResult, null=True, blank=True, on_delete=models.SET_NULL, related_name="explanations_given"
    )
    task_key = models.CharField(max_length=80)
    task_name = models.CharField(max_length=200)
    metric = models.CharField(max_length=80)
    key = models.CharField(max_length=120, blank=True)
    explanation = models.TextField()
    explained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_period = models.DateField(help_text="The month of the run in which the flag was explained.")
    until_period = models.DateField(help_text="The last month whose run it still covers (inclusive).")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-from_period", "-created_at"]
        indexes = [models.Index(fields=["engagement", "until_period"], name="flag_explanation_until")]

    def __str__(self) -> str:
        key = f" ({self.key})" if self.key else ""
        return f"Explanation of {self.task_name}{key}, {self.from_period:%B %Y}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class ReportDelivery(Leased, TenantModel):
    """The monthly email to one recipient. Unique per run and address: exactly one email, whatever retries.

    Claimed (pending -> sending, with a lease) right before the SMTP conversation and marked sent right after it:
    a worker that dies in between leaves it sending, and the run that takes it back sends it once more."""

    run = models.ForeignKey(HealthCheckRun, on_delete=models.CASCADE, related_name="deliveries")
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "email"], name="one_delivery_per_recipient")]


def _resume_run(run_id: int) -> None:
    from .tasks import resume_health_check  # the tasks import this module

    resume_health_check(run_id)


HEALTH_RUNS = Lifecycle(
    name="health check",
    model=HealthCheckRun,
    queued=RunStatus.QUEUED,
    running=RunStatus.RUNNING,
    failed=RunStatus.FAILED,
    dispatch=_resume_run,
)
# Sent only by the run's own worker: the run that takes a stopped run back takes back its deliveries too,
# so the beat sweep leaves them to it. Sent once more after a stop, then failed for a person to resend.
DELIVERIES = Lifecycle(
    name="monthly email",
    model=ReportDelivery,
    queued=DeliveryStatus.PENDING,
    running=DeliveryStatus.SENDING,
    failed=DeliveryStatus.FAILED,
    reason_field="last_error",
    finished_field="",
    max_recoveries=1,
    swept=False,
    gave_up="The worker stopped {times} times while sending this email: it may have arrived; resend it if not.",
)
