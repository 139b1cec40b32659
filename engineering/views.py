"""Engagement → Engineering: the CRM Configuration Spec (generate, read, annotate, approve, PDF) and its change
plan. Thin: every change goes through engineering.services."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import org_view
from accounts.models import DomainError
from engagements.models import Engagement

from . import services, verification
from .deliverables import sections
from .models import ConfigurationSpec, SpecKind


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
    return {
        "engagement": engagement,
        "active_tab": "engineering",
        "kind_label": SpecKind(services.kind_for(engagement)).label,
        "signed": services.signed_version(engagement),
        "connection": services.connection_of(engagement),
        "spec": spec,
        "versions": list(services.specs_of(engagement).only("number", "status", "created_at")),
        "sections": sections(spec) if spec is not None else [],
        "notes": list(spec.notes.select_related("author")) if spec is not None else [],
        "plan": services.latest_plan(spec),
        "verified": verified,
        "verification": verification.checks(verified) if verified is not None else None,
        "can_change": request.membership.can_write,
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
        spec = services.generate(engagement=engagement, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
        return _back(request, engagement)
    messages.success(request, f"{spec} generated (SHA-256 {spec.sha256[:12]}…).")
    return _back(request, engagement, spec=spec)


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
        plan = services.make_plan(spec=spec, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Plan made: {len(plan.operations)} operations, {len(plan.held)} held back.")
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
        checks = services.verify(spec=spec, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        passed = sum(c.passed for c in checks)
        messages.success(request, f"Verified: {passed} of {len(checks)} checks match the approved spec.")
    return _back(request, engagement, "plan", spec=spec)
