"""Engagement → Engineering: the CRM Configuration Spec (generate, read, annotate, approve, PDF), its change plan
and the plan's way to the CRM (dry run, apply, undo). Thin: every change goes through engineering.services, reads
of the CRM through engineering.reads and writes through engineering.apply, both queued for a worker; the pages
poll `work_status` while one runs."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import org_view
from accounts.models import DomainError
from engagements.models import Engagement

from . import apply, reads, record_moves, services, verification
from .deliverables import sections
from .models import ApplyRun, ConfigurationSpec, RecordMove, SpecKind
from .spec import MOVED_OFF


def _engagement(request, engagement_uuid) -> Engagement:
    engagement = get_object_or_404(
        Engagement.objects.for_org(request.org).select_related("client", "playbook_version__playbook"),
        uuid=engagement_uuid,
    )
    engagement.organization = request.org
    return engagement


def _spec(engagement: Engagement, number: str | None) -> ConfigurationSpec | None:
    found = services.specs_of(engagement).select_related("source_version", "approved_by", "pdf", "decision")
    if number and number.isdigit():
        return get_object_or_404(found, number=int(number))
    return found.order_by("-number").first()


def _context(request, engagement: Engagement) -> dict:
    spec = _spec(engagement, request.GET.get("v") or request.POST.get("spec"))
    verified = services.latest_plan(spec, "verify")
    plan = services.latest_plan(spec)
    run = ApplyRun.objects.for_org(request.org).filter(plan=plan).first() if plan is not None else None
    move = RecordMove.objects.for_org(request.org).filter(plan=plan).first() if plan is not None else None
    work = _work(engagement, run)
    return {
        "engagement": engagement,
        "active_tab": "engineering",
        "kind_label": SpecKind(services.kind_for(engagement)).label,
        "signed": services.signed_version(engagement),
        "connection": services.connection_of(engagement),
        "spec": spec,
        "versions": list(services.specs_of(engagement).only("number", "status", "created_at")),
        "sections": sections(spec) if spec is not None else [],
        "moved_off": MOVED_OFF,
        "has_moves": spec is not None
        and any(v["action"] in MOVED_OFF for f in spec.document.get("fields", []) for v in f["values"]),
        "notes": list(spec.notes.select_related("author")) if spec is not None else [],
        "plan": plan,
        "verified": verified,
        "verification": verification.checks(verified) if verified is not None else None,
        "can_change": request.membership.can_write,
        "is_owner": request.membership.is_owner,
        "movable": record_moves.movable(plan) if plan is not None else [],
        "record_move": move,
        **work,
        "working": work["working"] or (move is not None and move.is_active),
    }


def _work(engagement: Engagement, run: ApplyRun | None) -> dict:
    """What the CRM queue is doing for this engagement: the latest read and the plan's apply run, with its steps."""
    read = reads.latest(engagement)
    return {
        "read": read,
        "run": run,
        "steps": list(run.steps.all()) if run is not None else [],
        "working": (read is not None and read.is_active) or (run is not None and run.is_active),
    }


def _back(request, engagement: Engagement, name: str = "spec", spec: ConfigurationSpec | None = None):
    url = reverse(f"engineering:{name}", args=[request.org.slug, engagement.uuid])
    return redirect(f"{url}?v={spec.number}" if spec is not None else url)


@org_view
@require_GET
def spec_page(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    return render(request, "engineering/spec.html", _context(request, engagement))


@org_view
@require_POST
def spec_generate(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    try:
        reads.request(engagement=engagement, purpose="generate", actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    return _back(request, engagement)


@org_view
@require_POST
def spec_annotate(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    spec = _spec(engagement, request.POST.get("spec"))
    if spec is None:
        messages.error(request, "There is no spec to annotate yet: generate one first.")
        return _back(request, engagement)
    try:
        services.annotate(
            spec=spec,
            item=request.POST.get("item", ""),
            text=request.POST.get("text", ""),
            attribute=request.POST.get("attribute", ""),
            value=request.POST.get("value", ""),
            actor=request.user,
            request=request,
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Note saved.")
    if request.htmx:
        return render(request, "engineering/spec.html#notes", _context(request, engagement))
    return _back(request, engagement, spec=spec)


@org_view
@require_POST
def spec_targets(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    spec = _spec(engagement, request.POST.get("spec"))
    if spec is None:
        messages.error(request, "There is no spec yet: generate one first.")
        return _back(request, engagement)
    chosen = {k.removeprefix("maps_to:"): v for k, v in request.POST.items() if k.startswith("maps_to:")}
    try:
        changed = services.choose_targets(spec=spec, chosen=chosen, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Targets changed: {changed}." if changed else "No target changed.")
    return _back(request, engagement, spec=spec)


@org_view
@require_POST
def spec_approve(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    spec = _spec(engagement, request.POST.get("spec"))
    if spec is None:
        messages.error(request, "There is no spec to approve yet: generate one first.")
        return _back(request, engagement)
    try:
        services.approve(spec=spec, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{spec} approved; the decision is in the decision log.")
    return _back(request, engagement, spec=spec)


@org_view
@require_POST
def spec_pdf(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    spec = _spec(engagement, request.POST.get("spec"))
    if spec is None:
        messages.error(request, "There is no spec to render yet: generate one first.")
        return _back(request, engagement)
    services.request_pdf(spec=spec, actor=request.user, request=request)
    messages.success(request, "The PDF is being rendered; it appears below when ready.")
    return _back(request, engagement, spec=spec)


@org_view
@require_GET
def plan_page(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    return render(request, "engineering/plan.html", _context(request, engagement))


@org_view
@require_POST
def plan_make(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    spec = _spec(engagement, request.POST.get("spec"))
    if spec is None:
        messages.error(request, "There is no spec to plan from yet: generate one first.")
        return _back(request, engagement, "plan")
    try:
        reads.request(engagement=engagement, purpose="plan", spec=spec, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    return _back(request, engagement, "plan", spec=spec)


@org_view
@require_POST
def plan_verify(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    spec = _spec(engagement, request.POST.get("spec"))
    if spec is None:
        messages.error(request, "There is no spec to verify against yet: generate and approve one first.")
        return _back(request, engagement, "plan")
    try:
        reads.request(engagement=engagement, purpose="verify", spec=spec, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    return _back(request, engagement, "plan", spec=spec)


def _posted_plan(request, engagement_uuid):
    """The engagement, the posted spec and its latest plan; without a plan, says so to the user (plan is None)."""
    engagement = _engagement(request, engagement_uuid)
    spec = _spec(engagement, request.POST.get("spec"))
    plan = services.latest_plan(spec) if spec is not None else None
    if plan is None:
        messages.error(request, "There is no plan yet: compare the spec with the CRM first.")
    return engagement, spec, plan


@org_view
@require_POST
def plan_apply(request, engagement_uuid):
    """Dry run, apply (resume, apply again) or undo the spec's latest plan; apply.request refuses non-owners."""
    engagement, spec, plan = _posted_plan(request, engagement_uuid)
    if plan is None:
        return _back(request, engagement, "plan", spec=spec)
    try:
        apply.request(
            plan=plan,
            action=request.POST.get("action", ""),
            actor=request.user,
            confirmation=request.POST.get("confirmation", ""),
            request=request,
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    return _back(request, engagement, "plan", spec=spec)


@org_view
@require_POST
def plan_moves(request, engagement_uuid):
    """Count (the default) or move the records still on the plan's retired values; record_moves.request refuses
    non-owners, a move not opted into and a confirmation that does not name the client."""
    engagement, spec, plan = _posted_plan(request, engagement_uuid)
    if plan is None:
        return _back(request, engagement, "plan", spec=spec)
    try:
        record_moves.request(
            plan=plan,
            action=request.POST.get("action", "count"),
            actor=request.user,
            opted_in=request.POST.get("opt_in") == "on",
            confirmation=request.POST.get("confirmation", ""),
            request=request,
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    return _back(request, engagement, "plan", spec=spec)


@org_view
@require_GET
def work_status(request, engagement_uuid):
    """The htmx poll of a page while the CRM queue works for it; the page reloads once nothing runs."""
    engagement = _engagement(request, engagement_uuid)
    context = _context(request, engagement)
    response = render(request, "engineering/_work.html", context)
    if request.htmx and not context["working"]:
        response["HX-Refresh"] = "true"  # show what the work made
    return response
