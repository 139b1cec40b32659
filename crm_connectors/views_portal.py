"""The stakeholder's CRM access page in the portal: connect through OAuth (or paste a HubSpot private-app token),
the OAuth callback, and disconnecting. The work is in oauth_portal.py."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import DomainError
from engagements.models import Engagement
from engagements.portal_access import portal_view

from . import oauth_portal
from .models import CrmKind


def _engagement(request, engagement_uuid) -> Engagement:
    engagements = Engagement.objects.visible_to(request.stakeholder).select_related("client")
    return get_object_or_404(engagements, uuid=engagement_uuid)


def _callback_uri(request) -> str:
    return request.build_absolute_uri(reverse("portal:crm-callback"))


def _back(engagement):
    return redirect("portal:crm-access", engagement_uuid=engagement.uuid)


@portal_view
def crm_access(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    response = render(
        request,
        "portal/crm_access.html",
        {
            "stakeholder": request.stakeholder,
            "engagement": engagement,
            "platforms": CrmKind.choices,
            "connection": oauth_portal.connection_of(engagement),
            "task": oauth_portal.access_task(engagement),
        },
    )
    # Connect posts here and is redirected to the CRM's authorise page: a redirect the policy must allow.
    targets = " ".join(["'self'", *oauth_portal.authorize_origins(engagement)])
    response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action {targets}"
    )
    return response


@portal_view
@require_POST
def crm_connect(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    try:
        url = oauth_portal.start(
            engagement=engagement,
            stakeholder=request.stakeholder,
            platform=request.POST.get("platform", ""),
            redirect_uri=_callback_uri(request),
            request=request,
        )
    except DomainError as exc:
        messages.error(request, str(exc))
        return _back(engagement)
    return redirect(url)


@portal_view
def crm_callback(request):
    """One fixed URL for every engagement: which one comes from the server-side grant the state names."""
    done = oauth_portal.finish(
        query=request.GET, stakeholder=request.stakeholder, redirect_uri=_callback_uri(request), request=request
    )
    if done.engagement is None:
        return render(
            request, "portal/crm_callback_refused.html", {"stakeholder": request.stakeholder, "message": done.message}
        )
    (messages.success if done.ok else messages.error)(request, done.message)
    return _back(done.engagement)


@portal_view
@require_POST
def crm_token(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    try:
        done = oauth_portal.paste_private_app_token(
            engagement=engagement, stakeholder=request.stakeholder, token=request.POST.get("token", ""), request=request
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        (messages.success if done.ok else messages.error)(request, done.message)
    return _back(engagement)


@portal_view
def crm_disconnect(request, engagement_uuid):
    """GET asks for confirmation; POST revokes and forgets the tokens."""
    engagement = _engagement(request, engagement_uuid)
    if request.method != "POST":
        return render(
            request,
            "portal/crm_disconnect.html",
            {
                "stakeholder": request.stakeholder,
                "engagement": engagement,
                "connection": oauth_portal.connection_of(engagement),
            },
        )
    try:
        messages.success(
            request, oauth_portal.disconnect(engagement=engagement, stakeholder=request.stakeholder, request=request)
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    return _back(engagement)
