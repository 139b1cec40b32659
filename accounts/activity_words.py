"""The activity log in plain words: a sentence for every event code the app records (activity.record(verb=...)).

Codes stay as they are in the log (filters and the API read them); people read these sentences. {target} is the
entry's target label, what the event was about; other names come from the entry's data when it has them.
tests/accounts/test_activity_words.py checks that every code the source can record has a sentence.
"""

SENTENCES = {
    "organization.created": "created the organization {target}",
    "organization.updated": "changed the organization's settings",
    "member.invited": "invited {target} to join",
    "member.invitation_revoked": "withdrew the invitation to {target}",
    "member.joined": "joined the organization",
    "member.role_changed": "changed a member's role ({target})",
    "member.removed": "removed a member ({target})",
    "client.created": "added the client {target}",
    "client.updated": "updated the client {target}",
    "stakeholder.created": "added the stakeholder {target}",
    "stakeholder.updated": "updated the stakeholder {target}",
    "stakeholder.removed": "removed the stakeholder {target}",
    "portal.signed_in": "signed in to the client portal",
    "intake.submitted": "submitted the intake form of {target}",
    "intake.reopened": "reopened the intake form of {target} for changes",
    "intake.file_uploaded": "uploaded {file} to the intake form of {target}",
    "document.shared": "shared “{title}” to the portal of {target}",
    "document.unshared": "stopped sharing “{title}” on {target}",
    "playbook.cloned": "copied the playbook {target}",
    "playbook.edited": "edited the playbook {target}",
    "engagement.created": "started the engagement {target}",
    "engagement.resumed": "resumed {target} after a hold",
    "phase.completed": "completed a phase of {target}",
    "checklist.checked": "ticked “{text}” on {target}",
    "checklist.unchecked": "unticked “{text}” on {target}",
    "client_task.completed": "marked the task “{text}” done on {target}",
    "client_task.auto_completed": "completed the task “{text}” on {target} by itself: {reason}",
    "client_task.ticked_on_behalf": "ticked “{text}” on {target} on behalf of the client",
    "client_task.due_date_set": "set the due date of the client task “{text}” on {target} to {due}",
    "checkpoint.check": "checked a gate checkpoint of {target}",
    "checkpoint.waive": "waived a gate checkpoint of {target}",
    "checkpoint.reopen": "reopened a gate checkpoint of {target}",
    "checkpoint.waiver_cleared": "cleared a checkpoint waiver of {target}",
    "gate.decided": "took a gate decision on {target}",
    "definitions.term_added": "added a term to the definitions of {target}",
    "definitions.term_changed": "changed a term in the definitions of {target}",
    "definitions.term_removed": "removed a term from the definitions of {target}",
    "definitions.stage_added": "added a stage to the definitions of {target}",
    "definitions.stage_changed": "changed a stage in the definitions of {target}",
    "definitions.stage_removed": "removed a stage from the definitions of {target}",
    "definitions.published": "published the definitions of {target} for sign-off",
    "definitions.signed": "signed the definitions of {target}",
    "definitions.approver_assigned": "asked {stakeholder} to approve the definitions of {target} as {role}",
    "definitions.approver_waived": "waived the approver role {role} on the definitions of {target}",
    "definitions.contested": "contested the definitions of {target}",
    "architecture.version_started": "started a new architecture version of {target}",
    "assumption.added": "added an assumption to {target}",
    "assumption.status_changed": "changed the status of an assumption of {target}",
    "meeting.recorded": "recorded a refinement meeting of {target}",
    "workitem.created": "added the work item “{target}”",
    "workitem.updated": "updated the work item “{target}”",
    "workitem.deleted": "deleted the work item “{target}”",
    "decisionlogentry.created": "logged the decision “{target}”",
    "decisionlogentry.updated": "updated the decision “{target}”",
    "decisionlogentry.deleted": "deleted the decision “{target}”",
    "risk.created": "raised the risk “{target}”",
    "risk.updated": "updated the risk “{target}”",
    "risk.deleted": "deleted the risk “{target}”",
    "release.created": "planned the release “{target}”",
    "release.updated": "updated the release “{target}”",
    "release.deleted": "deleted the release “{target}”",
    "feedbackitem.created": "recorded the feedback “{target}”",
    "feedbackitem.updated": "updated the feedback “{target}”",
    "feedbackitem.deleted": "deleted the feedback “{target}”",
    "update.drafted": "drafted the weekly update {target}",
    "update.published": "published the weekly update {target}",
    "training.recorded": "recorded a training session for {target}",
    "retention.recorded": "recorded a retention check for {target}",
    "hypercare.scheduled": "scheduled hypercare for {target}",
    "hypercare.kpi_recorded": "recorded a hypercare KPI figure for {target}",
    "hypercare.kpis_imported": "imported hypercare KPI figures for {target}",
    "crm_connection.created": "connected a CRM ({target})",
    "crm_connection.updated": "changed the CRM connection {target}",
    "crm_connection.tested": "tested the CRM connection {target}",
    "crm_connection.client_connected": "connected {target} from the portal with {how}",
    "crm_connection.client_disconnected": "disconnected {target} from the portal ({revoked})",
    "crm_oauth_app.saved": "saved the consultancy's {platform} OAuth app",
    "crm_audit.started": "started a CRM audit of {target}",
    "crm_audit.finished": "finished a CRM audit of {target}",
    "crm_audit.finding_updated": "updated an audit finding ({target})",
    "artifact.requested": "asked for the document {target}",
    "crm_spec.generated": "generated {target}",
    "crm_spec.annotated": "added a note to {target}",
    "crm_spec.adjusted": "adjusted {target} before approval",
    "crm_spec.approved": "approved {target} for the build",
    "crm_spec.planned": "compared {target} with the live CRM",
    "crm_spec.verified": "verified the CRM build against {target}",
    "artifact.retried": "asked to render the document {target} again",
    "health.run_requested": "started a health check of {target}",
    "health.review_recorded": "recorded a health-check review ({target})",
    "health.flag_explained": "explained a red flag ({target})",
    "health.explanation_withdrawn": "withdrew a red-flag explanation ({target})",
    "health.flag_escalated": "turned a red flag into board work ({target})",
    "maintenance.started": "started the maintenance schedule of {target}",
    "maintenance.adjusted": "adjusted a maintenance task of {target}",
    "metrics.imported": "imported figures for {target}",
    "baseline.set": "set a baseline for {target}",
}


def sentence(entry) -> str:
    """ "Carl ticked “Kick-off held”": who did what, for an ActivityEntry. A code without a sentence (a new one)
    reads as its words rather than failing the page."""
    template = SENTENCES.get(entry.verb)
    if template is None:
        what = entry.verb.replace(".", " ").replace("_", " ")
        return f"{entry.actor_label} · {what} {entry.target_label}".strip()
    return f"{entry.actor_label} {template.format_map(_Fields(entry.data or {}, target=entry.target_label))}"


class _Fields(dict):
    """The entry's data with its target label; a name an older entry's data lacks reads as nothing."""

    def __missing__(self, key):
        return ""
