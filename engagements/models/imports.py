"""A CSV upload too large to import inside the request: kept here, read by a worker, shown with its progress."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import DomainError
from accounts.tenancy import TenantModel


class ImportKind(models.TextChoices):
    METRICS = "metrics", "health-check figures"
    KPI_READINGS = "kpi_readings", "hypercare KPI readings"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for a worker"
    RUNNING = "running", "Importing"
    SUCCEEDED = "succeeded", "Imported"
    FAILED = "failed", "Nothing imported"


class CsvImport(TenantModel):
    """queued → running → succeeded | failed. Lines are checked one by one (the progress counts them), then every
    row is written in one transaction: a failed import, a crash included, leaves nothing behind."""

    TRANSITIONS = {
        ImportStatus.QUEUED: {ImportStatus.RUNNING, ImportStatus.FAILED},
        # running → running: a worker that died mid-import left it running; the redelivered task starts it again.
        ImportStatus.RUNNING: {ImportStatus.RUNNING, ImportStatus.SUCCEEDED, ImportStatus.FAILED},
    }

    engagement = models.ForeignKey("engagements.Engagement", on_delete=models.CASCADE, related_name="csv_imports")
    kind = models.CharField(max_length=20, choices=ImportKind.choices)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    file_name = models.CharField(max_length=255, blank=True)
    text = models.TextField(help_text="The uploaded file, decoded; emptied once imported.")
    lines = models.PositiveIntegerField(help_text="Data lines in the file (the header not counted).")
    checked = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def done(self) -> bool:
        return self.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED)

    @property
    def percent(self) -> int:
        """How much of the file is checked, 0-100 (writing is the last step, after 100% of the lines)."""
        if self.status == ImportStatus.SUCCEEDED:
            return 100
        percent = round(100 * self.checked / self.lines) if self.lines else 0
        if not 0 <= percent <= 100:
            raise DomainError(f"Import {self.uuid}: {self.checked} of {self.lines} lines checked is not a progress.")
        return percent

    def _move(self, to: str, **fields) -> bool:
        """Conditional update: only one worker moves an import out of a state, and only along TRANSITIONS."""
        sources = [s for s, targets in self.TRANSITIONS.items() if to in targets]
        moved = (
            CsvImport.objects.for_org(self.organization_id)
            .filter(pk=self.pk, status__in=sources)
            .update(status=to, **fields)
        )
        if moved:
            self.refresh_from_db()
        return bool(moved)

    def claim(self) -> bool:
        return self._move(ImportStatus.RUNNING, checked=0, error="")

    def progress(self, checked: int) -> None:
        CsvImport.objects.for_org(self.organization_id).filter(pk=self.pk).update(checked=checked)

    def succeed(self, imported: int) -> bool:
        return self._move(
            ImportStatus.SUCCEEDED, imported=imported, checked=self.lines, text="", finished_at=timezone.now()
        )

    def fail(self, error: str) -> bool:
        return self._move(ImportStatus.FAILED, error=error, finished_at=timezone.now())
