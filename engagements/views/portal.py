from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import DomainError

from .. import cadence
from ..forms import PortalLinkRequestForm
from ..models import Engagement, UpdateStatus, WeeklyUpdate
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


@portal_view
def portal_home(request):
    """What the stakeholder's client shares: client-visible board lanes and published updates, never drafts."""
    client = request.stakeholder.client
    engagements = list(Engagement.objects.visible_to(request.stakeholder).open().order_by("name"))
    updates: dict[int, list] = {e.pk: [] for e in engagements}
    for update in WeeklyUpdate.objects.for_org(request.org).filter(
        engagement__in=engagements, status=UpdateStatus.PUBLISHED
    ).order_by("-week_start"):
        if len(updates[update.engagement_id]) < UPDATES_SHOWN:
            updates[update.engagement_id].append(update)
    boards = []
    for engagement in engagements:
        engagement.organization = request.org  # the same row: spares a query per engagement
        lanes = cadence.board_lanes(engagement, client_view=True)
        boards.append(
            {
                "engagement": engagement,
                "lanes": [(key, label, lanes[key]) for key, label in cadence.LANES],
                "empty": not any(lanes.values()),
                "updates": updates[engagement.pk],
            }
        )
    return render(request, "portal/home.html", {
        "stakeholder": request.stakeholder, "client": client, "boards": boards,
        "pending": pending_signoffs(request.stakeholder),
    })
