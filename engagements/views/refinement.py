"""Refinement loop: meetings and architecture versions v0, v1, ... whose items move out of ASSUMED."""

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.access import org_view
from accounts.models import DomainError

from .. import refinement as loop
from ..forms_cadence import AssumptionForm, AssumptionStatusForm, MeetingForm, VersionStartForm
from ..models import ArchitectureVersion, AssumptionItem, AssumptionStatus, Gate, GateStatus, Meeting
from ..progression import DEFINITIONS_SIGNED
from .cadence import _engagement

ASSUMED = AssumptionStatus.ASSUMED


def _versions(request, engagement):
    return (
        ArchitectureVersion.objects.for_org(request.org)
        .filter(engagement=engagement)
        .select_related("meeting")
        .annotate(
            n_items=Count("items"),
            n_assumed=Count("items", filter=Q(items__status=ASSUMED)),
            n_critical_assumed=Count("items", filter=Q(items__status=ASSUMED, items__critical=True)),
        )
        .order_by("-number")
    )


def _blocked_gates(engagement) -> list[str]:
    """Names of the gates still to be decided that critical assumed items hold back (those whose checkpoints wait
    for signed definitions): once such a gate is decided, the banner must not say the items block it."""
    return list(
        Gate.objects.filter(engagement=engagement, checkpoints__auto=DEFINITIONS_SIGNED)
        .exclude(status=GateStatus.DECIDED)
        .order_by("phase__order")
        .values_list("name", flat=True)
        .distinct()
    )


def _render_loop(request, engagement, *, meeting_form=None, version_form=None, status=200):
    meetings = list(
        Meeting.objects.for_org(request.org)
        .filter(engagement=engagement)
        .prefetch_related("attendees")
        .order_by("-held_on", "-id")
    )
    versions = list(_versions(request, engagement))
    latest = versions[0] if versions else None
    return render(
        request,
        "engagements/refinement.html",
        {
            "engagement": engagement,
            "meetings": meetings,
            "versions": versions,
            "latest": latest,
            "blocked_gates": _blocked_gates(engagement),
            "meeting_form": meeting_form or MeetingForm(engagement=engagement),
            "version_form": version_form or VersionStartForm(engagement=engagement),
            "next_number": latest.number + 1 if latest else 0,
            "can_change": request.membership.can_write,
        },
        status=status,
    )


@org_view
def refinement(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    return _render_loop(request, engagement)


@org_view
@require_POST
def meeting_add(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    form = MeetingForm(request.POST, engagement=engagement)
    if form.is_valid():
        try:
            meeting = loop.record_meeting(
                engagement=engagement,
                type=form.cleaned_data["type"],
                held_on=form.cleaned_data["held_on"],
                attendees=list(form.cleaned_data["attendees"]),
                notes=form.cleaned_data["notes"],
                actor=request.user,
                request=request,
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Recorded {meeting}.")
            return redirect("engagements:refinement", org_slug=request.org.slug, engagement_uuid=engagement.uuid)
    return _render_loop(request, engagement, meeting_form=form, status=400)


@org_view
def meeting_detail(request, engagement_uuid, meeting_uuid):
    engagement = _engagement(request, engagement_uuid)
    meeting = get_object_or_404(Meeting.objects.for_org(request.org), engagement=engagement, uuid=meeting_uuid)
    return render(
        request,
        "engagements/refinement_meeting.html",
        {
            "engagement": engagement,
            "meeting": meeting,
            "attendees": list(meeting.attendees.order_by("name")),
            "versions": list(_versions(request, engagement).filter(meeting=meeting)),
        },
    )


@org_view
@require_POST
def version_start(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    form = VersionStartForm(request.POST, engagement=engagement)
    if form.is_valid():
        try:
            version = loop.start_version(
                engagement=engagement,
                meeting=form.cleaned_data["meeting"],
                notes=form.cleaned_data["notes"],
                actor=request.user,
                request=request,
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            copied = " with the previous version's items" if version.number else ""
            messages.success(request, f"Started v{version.number}{copied}.")
            return redirect(
                "engagements:version-detail",
                org_slug=request.org.slug,
                engagement_uuid=engagement.uuid,
                version_uuid=version.uuid,
            )
    return _render_loop(request, engagement, version_form=form, status=400)


def _version(request, engagement, version_uuid) -> ArchitectureVersion:
    return get_object_or_404(
        ArchitectureVersion.objects.for_org(request.org).select_related("meeting"),
        engagement=engagement,
        uuid=version_uuid,
    )


def version_context(request, engagement, version, *, add_form=None, error_item=None, error_form=None) -> dict:
    items = list(version.items.order_by("-critical", "document", "key"))
    latest = loop.latest_version(engagement)
    is_latest = latest is not None and latest.pk == version.pk
    previous = (
        ArchitectureVersion.objects.for_org(request.org)
        .filter(engagement=engagement, number=version.number - 1)
        .first()
        if version.number
        else None
    )
    return {
        "engagement": engagement,
        "version": version,
        "items": items,
        "latest": latest,
        "is_latest": is_latest,
        "previous": previous,
        "changes": loop.diff(previous, version) if previous else None,
        "critical_assumed": [i for i in items if i.critical and i.status == ASSUMED],
        "blocked_gates": _blocked_gates(engagement),
        "statuses": AssumptionStatus.choices,
        "add_form": add_form or AssumptionForm(),
        "can_change": request.membership.can_write and is_latest,
        "error_item": error_item,
        "error_form": error_form,
    }


@org_view
def version_detail(request, engagement_uuid, version_uuid):
    engagement = _engagement(request, engagement_uuid)
    version = _version(request, engagement, version_uuid)
    return render(request, "engagements/refinement_version.html", version_context(request, engagement, version))


@org_view
@require_POST
def assumption_add(request, engagement_uuid, version_uuid):
    engagement = _engagement(request, engagement_uuid)
    version = _version(request, engagement, version_uuid)
    form = AssumptionForm(request.POST)
    if form.is_valid():
        try:
            item = loop.add_item(version=version, actor=request.user, request=request, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Added {item.key} to v{version.number}.")
            return redirect(
                "engagements:version-detail",
                org_slug=request.org.slug,
                engagement_uuid=engagement.uuid,
                version_uuid=version.uuid,
            )
    return render(
        request,
        "engagements/refinement_version.html",
        version_context(request, engagement, version, add_form=form),
        status=400,
    )


@org_view
@require_POST
def assumption_status(request, engagement_uuid, assumption_uuid):
    """Confirm or correct one item of the latest version; htmx swaps the items section back."""
    engagement = _engagement(request, engagement_uuid)
    item = get_object_or_404(
        AssumptionItem.objects.for_org(request.org).select_related("version__meeting"),
        version__engagement=engagement,
        uuid=assumption_uuid,
    )
    version = item.version
    form = AssumptionStatusForm(request.POST)
    error_form = None
    if form.is_valid():
        try:
            loop.set_item_status(
                item=item,
                status=form.cleaned_data["status"],
                correction=form.cleaned_data["correction"],
                actor=request.user,
                request=request,
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
            error_form = form
    else:
        error_form = form
    if request.htmx:
        context = version_context(
            request, engagement, version, error_item=item.uuid if error_form else None, error_form=error_form
        )
        return render(request, "engagements/refinement_version.html#items", context)
    if error_form is not None:
        messages.error(request, " ".join(e for errors in error_form.errors.values() for e in errors))
    else:
        messages.success(request, f"{item.key}: {item.get_status_display().lower()}.")
    return redirect(
        "engagements:version-detail",
        org_slug=request.org.slug,
        engagement_uuid=engagement.uuid,
        version_uuid=version.uuid,
    )
