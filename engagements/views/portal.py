from django.contrib import messages
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.models import DomainError

from .. import cadence, client_tasks
from ..forms import PortalLinkRequestForm
from ..models import ChecklistItem, Engagement, GateStatus, UpdateStatus, WeeklyUpdate
from ..portal_access import SESSION_KEY, LinkNotQueued, portal_view, redeem_portal_link, request_portal_links
from .portal_signoff import pending_signoffs


def portal_login(request):
    form = PortalLinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            request_portal_links(email=form.cleaned_data["email"], request=request)
        except LinkNotQueued as exc:  # nothing was kept: the visitor may simply ask again
            return render(request, "portal/login.html", {"form": form, "error": str(exc)}, status=503)
        return render(request, "portal/link_sent.html", {"email": form.cleaned_data["email"]})
    return render(request, "portal/login.html", {"form": form})


def portal_redeem(request, token):
    # GET only shows a button: mail scanners that prefetch links must not use up the link.
    if request.method != "POST":
        return render(request, "portal/redeem.html", {"token": token})
    try:
        redeem_portal_link(token=token, request=request)
    except DomainError as exc:
        return render(request, "portal/link_invalid.html", {"reason": str(exc)}, status=400)
    target, home = request.GET.get("next", ""), reverse("portal:home")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}) or not target.startswith(home):
        target = home
    return redirect(target)


def portal_logout(request):
    if request.method == "POST":
        request.session.pop(SESSION_KEY, None)
        messages.info(request, "You have signed out of the client portal.")
        return redirect("portal:login")
    return redirect("portal:home")


UPDATES_SHOWN = 4  # the latest published updates per engagement on the home page


def _where_it_stands(engagement, tasks: list, signoffs: list) -> dict:
    """Phase, what comes next and what waits on the client, for one engagement's card."""
    phase = engagement.current_phase
    if phase is None:
        next_step = "Not started yet." if engagement.is_open else "The engagement is complete."
    else:
        open_items = ChecklistItem.objects.filter(sub_phase_id=OuterRef("pk"), done=False)
        now = phase.sub_phases.filter(skipped=False).filter(Exists(open_items)).order_by("order").first()
        gate = getattr(phase, "gate", None)
        steps = [f"Now: {now.name}." if now else ""]
        if gate is not None and gate.status == GateStatus.OPEN and now is None:
            steps.append(f"Your consultant decides at {gate.name}.")
        elif gate is not None:
            steps.append(f"{phase.name} closes at {gate.name}.")
        next_step = " ".join(step for step in steps if step) or f"{phase.name} is under way."
    open_tasks = [t for t in tasks if not t.done]
    return {
        "phase": phase,
        "next_step": next_step,
        "waiting": len(open_tasks) + len(signoffs),
        "open_tasks": len(open_tasks),
        "signoffs": signoffs,
    }


@portal_view
def portal_home(request):
    """Per engagement: where it stands, the client's tasks, the client-visible board and published updates (never
    drafts). Overdue is judged on the stakeholder's own calendar (the browser's time zone, when it sent one)."""
    client = request.stakeholder.client
    today = timezone.localdate()
    engagements = list(
        Engagement.objects.visible_to(request.stakeholder).open().select_related("current_phase__gate").order_by("name")
    )
    updates: dict[int, list] = {e.pk: [] for e in engagements}
    for update in WeeklyUpdate.objects.for_org(request.org).filter(
        engagement__in=engagements, status=UpdateStatus.PUBLISHED
    ).order_by("-week_start"):
        if len(updates[update.engagement_id]) < UPDATES_SHOWN:
            updates[update.engagement_id].append(update)
    tasks: dict[int, list] = {e.pk: [] for e in engagements}
    for task in client_tasks.for_stakeholder(request.stakeholder):
        task.why = client_tasks.why(task)
        task.overdue = task.is_overdue(today)
        tasks[task.engagement_id].append(task)
    pending = pending_signoffs(request.stakeholder)
    boards = []
    for engagement in engagements:
        engagement.organization = request.org  # the same row: spares a query per engagement
        lanes = cadence.board_lanes(engagement, client_view=True)
        signoffs = [v for v in pending if v.engagement_id == engagement.pk]
        boards.append(
            {
                "engagement": engagement,
                "lanes": [(key, label, lanes[key]) for key, label in cadence.LANES],
                "empty": not any(lanes.values()),
                "updates": updates[engagement.pk],
                "tasks": tasks[engagement.pk],
                **_where_it_stands(engagement, tasks[engagement.pk], signoffs),
            }
        )
    return render(request, "portal/home.html", {
        "stakeholder": request.stakeholder, "client": client, "boards": boards, "pending": pending, "today": today,
    })


@portal_view
@require_POST
def task_done(request, item_uuid):
    """The stakeholder marks one of their tasks done; only tasks of engagements that name them can be reached."""
    task = get_object_or_404(client_tasks.for_stakeholder(request.stakeholder), uuid=item_uuid)
    try:
        client_tasks.complete_client_task(task, by_stakeholder=request.stakeholder, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Marked done: {task.text}")
    return redirect(f"{reverse('portal:home')}#task-{task.uuid}")
