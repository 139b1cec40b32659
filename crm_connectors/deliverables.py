"""The Current State Audit PDF, registered with the deliverables pipeline (which renders it in a worker)."""

from deliverables import registry
from deliverables.models import ArtifactKind

from .audit.services import report_context_of

registry.register(
    ArtifactKind.CURRENT_STATE_AUDIT, template="reports/current_state_audit.html", context=report_context_of
)
