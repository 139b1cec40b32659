"""The Current State Audit pages: run an audit, watch it, work through its findings, render the PDF."""

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import org_view
from accounts.models import DomainError
from deliverables.models import ArtifactStatus
from engagements.models import ClientAccount, DefinitionVersion, Engagement

from .audit import rules, services
from .models import AuditRun, CrmConnection, Finding, FindingState

TEMPLATE = "crm_connectors/audit.html"
# The drift rule's stand-in for records whose values HubSpot counts but names only in a deep audit: a note on the
# finding, not one of the CRM's values.
UNNAMED = "(values not named without a deep audit)"


def _client(request, client_uuid) -> ClientAccount:
    return get_object_or_404(ClientAccount.objects.for_org(request.org), uuid=client_uuid)


def _run(request, client, audit_run_uuid) -> AuditRun:
    return get_object_or_404(
        AuditRun.objects.for_org(request.org).select_related("client", "engagement", "connection", "requested_by"),
        uuid=audit_run_uuid,
        client=client,
    )


def _drift_engagement(request, engagements: list[Engagement], run: AuditRun | None) -> Engagement | None:
    """The engagement the next drift check is against unless the consultant picks another: the one the run on
    screen checked (the choice survives the run), else the one with the latest signed definitions version (an
    engagement with nothing signed has no architecture to drift from), else the newest."""
    by_id = {e.pk: e for e in engagements}
    if run is not None and run.engagement_id in by_id:
        return by_id[run.engagement_id]
    signed = (
        DefinitionVersion.objects.for_org(request.org)
        .filter(engagement_id__in=by_id, signed_at__isnull=False)
        .order_by("-signed_at", "-id")
        .values_list("engagement_id", flat=True)
        .first()
    )
    return (by_id.get(signed) if signed is not None else None) or (engagements[0] if engagements else None)


def _unnamed_apart(finding: Finding) -> Finding:
    """Sets the finding's CRM values and counts without the unnamed stand-in, and that stand-in's count apart."""
    counts = dict(finding.counts or {})
    finding.unnamed_count = counts.pop(UNNAMED, 0)  # type: ignore[attr-defined]
    finding.named_counts = counts  # type: ignore[attr-defined]
    finding.named_values = [v for v in finding.values or [] if v != UNNAMED]  # type: ignore[attr-defined]
    return finding


def _page(request, client: ClientAccount, run: AuditRun | None, status: int = 200):
    connection = CrmConnection.objects.for_org(request.org).active().filter(client=client).first()
    findings = list(services.findings_of(run)) if run is not None and run.has_findings else []
    for finding in findings:
        _unnamed_apart(finding)
    engagements = list(Engagement.objects.for_org(request.org).filter(client=client).open().order_by("-created_at"))
    summary = (run.summary or {}) if run is not None else {}
    context = {
        "client": client,
        "connection": connection,
        "run": run,
        "groups": services.group_findings(findings),
        "finding_count": len(findings),
        "severities": summary.get("severities") or {},
        "not_evaluated": sorted((summary.get("not_evaluated") or {}).items()),
        "not_run": sorted((summary.get("not_run") or {}).items()),
        "diff": services.diff(run) if run is not None else None,
        "reports": list(run.reports.order_by("-created_at")) if run is not None else [],
        "runs": list(services.runs_with_counts(client).select_related("requested_by")[:15]),
        "engagements": engagements,
        "current_engagement": _drift_engagement(request, engagements, run),
        "states": FindingState.choices,
        "catalogue": rules.CATALOGUE,
        "domain_labels": rules.DOMAIN_LABELS,
    }
    return render(request, TEMPLATE, context, status=status)


@org_view
@require_GET
def audit(request, client_uuid):
    """The client's audit page: the latest run (live progress while it runs), its findings and the diff."""
    client = _client(request, client_uuid)
    run = (
        AuditRun.objects.for_org(request.org)
        .filter(client=client)
        .select_related("client", "engagement", "connection", "requested_by")
        .first()
    )
    return _page(request, client, run)


@org_view
@require_GET
def audit_run(request, client_uuid, audit_run_uuid):
    """Any run of the client; an htmx poll gets only the status card, and a page reload once it finished."""
    client = _client(request, client_uuid)
    run = _run(request, client, audit_run_uuid)
    if request.htmx:
        response = render(request, f"{TEMPLATE}#run-status", {"client": client, "run": run})
        if not run.is_active:
            response["HX-Refresh"] = "true"  # show the findings
        return response
    return _page(request, client, run)


@org_view
@require_POST
def audit_start(request, client_uuid):
    client = _client(request, client_uuid)
    engagement = None
    if request.POST.get("engagement"):
        try:
            engagement = (
                Engagement.objects.for_org(request.org).filter(client=client).get(uuid=request.POST["engagement"])
            )
        except (Engagement.DoesNotExist, ValueError, DomainError):
            messages.error(request, "Choose one of this client's engagements.")
            return redirect("crm_connectors:audit", org_slug=request.org.slug, client_uuid=client.uuid)
    try:
        run, created = services.start_audit(
            client=client,
            actor=request.user,
            engagement=engagement,
            deep=request.POST.get("deep") in ("1", "on", "true"),
            request=request,
        )
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("crm_connectors:audit", org_slug=request.org.slug, client_uuid=client.uuid)
    if created:
        messages.success(request, "Audit started. It reads the CRM's metadata and counts, not its records.")
    else:
        messages.info(request, "An audit of this client is already running: here it is.")
    return redirect(
        "crm_connectors:audit-run", org_slug=request.org.slug, client_uuid=client.uuid, audit_run_uuid=run.uuid
    )


@org_view
@require_POST
def finding_update(request, client_uuid, finding_uuid):
    client = _client(request, client_uuid)
    finding = get_object_or_404(
        Finding.objects.for_org(request.org).select_related("run", "state_by"), uuid=finding_uuid, run__client=client
    )
    error = ""
    try:
        finding = services.update_finding(
            finding=finding,
            state=request.POST.get("state", ""),
            note=request.POST.get("note", ""),
            actor=request.user,
            request=request,
        )
    except DomainError as exc:
        error = str(exc)
    if request.htmx:
        context = {
            "client": client,
            "run": finding.run,
            "finding": _unnamed_apart(finding),
            "error": error,
            "states": FindingState.choices,
            "catalogue": rules.CATALOGUE,
        }
        return render(request, f"{TEMPLATE}#finding", context, status=400 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{finding.rule_id}: {finding.get_state_display().lower()}.")
    url = redirect(
        "crm_connectors:audit-run", org_slug=request.org.slug, client_uuid=client.uuid, audit_run_uuid=finding.run.uuid
    )
    url["Location"] += f"#finding-{finding.uuid}"
    return url


@org_view
@require_POST
def audit_pdf(request, client_uuid, audit_run_uuid):
    client = _client(request, client_uuid)
    run = _run(request, client, audit_run_uuid)
    try:
        services.request_report(run=run, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The Current State Audit PDF is being rendered.")
    response = redirect(
        "crm_connectors:audit-run", org_slug=request.org.slug, client_uuid=client.uuid, audit_run_uuid=run.uuid
    )
    response["Location"] += "#reports"
    return response


@org_view
@require_GET
def audit_pdf_download(request, client_uuid, audit_run_uuid, audit_artifact_uuid):
    client = _client(request, client_uuid)
    run = _run(request, client, audit_run_uuid)
    artifact = (
        run.reports.filter(organization=request.org, uuid=audit_artifact_uuid)
        .select_related("engagement__client")
        .first()
    )
    if artifact is None or artifact.status != ArtifactStatus.DONE or not artifact.file:
        raise Http404("No such report for this audit, or it is not ready yet.")
    try:
        handle = artifact.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("This report's file is missing.") from exc
    return FileResponse(handle, as_attachment=True, filename=artifact.filename, content_type="application/pdf")
