"""The Health-Check Report, registered with the deliverables pipeline."""

from deliverables import registry
from deliverables.models import ArtifactKind

from . import monthly_report

registry.register(
    ArtifactKind.HEALTH_CHECK_REPORT,
    template="reports/health_check_report.html",
    context=monthly_report.report_context,
    name=monthly_report.report_name,
    on_done=monthly_report.report_done,
)
