from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import DomainError

from ..forms import PortalLinkRequestForm
from ..portal_access import SESSION_KEY, portal_view, redeem_portal_link, request_portal_links


def portal_login(request):
    form = PortalLinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        request_portal_links(email=form.cleaned_data["email"], request=request)
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
    target = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}) or not target.startswith("/portal/"):
        target = "portal:home"
    return redirect(target)


def portal_logout(request):
    if request.method == "POST":
        request.session.pop(SESSION_KEY, None)
        messages.info(request, "You have signed out of the client portal.")
        return redirect("portal:login")
    return redirect("portal:home")


@portal_view
def portal_home(request):
    return render(
        request, "portal/home.html", {"stakeholder": request.stakeholder, "client": request.stakeholder.client}
    )
