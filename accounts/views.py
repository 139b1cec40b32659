from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from . import services
from .access import org_view
from .forms import ActivityFilterForm, InviteForm, OrganizationForm, OrganizationSettingsForm, RoleForm, SignupForm
from .models import ActivityEntry, DomainError, Invitation, Membership

User = get_user_model()


def healthz(request):
    """Liveness for load balancers (and the benchmark's baseline): the database, which every page needs, and the
    cache, which none needs (gtm_ops/cache.py falls back to the database). 503 only when the database fails."""
    from django.http import JsonResponse

    from gtm_ops import probes

    checks = {"database": probes.database(), "cache": probes.cache()}
    ok = checks["database"] == "ok"
    return JsonResponse({"status": "ok" if ok else "failing", **checks}, status=200 if ok else 503)


def readyz(request):
    """Readiness: /healthz/'s checks and the Celery broker, which audits, health checks, renders and emails need.
    503 when the database or the broker fails: the page would load, but the work it starts would not."""
    from django.http import JsonResponse

    from gtm_ops import probes

    checks = {"database": probes.database(), "cache": probes.cache(), "broker": probes.broker()}
    ok = checks["database"] == "ok" and checks["broker"] in ("ok", probes.INLINE)
    return JsonResponse({"status": "ok" if ok else "failing", **checks}, status=200 if ok else 503)


@login_required
def home(request):
    memberships = list(Membership.objects.of_user(request.user).select_related("organization"))
    slugs = [m.organization.slug for m in memberships]
    current = request.session.get("current_org")
    if current in slugs:
        return redirect("accounts:org-home", org_slug=current)
    if len(slugs) == 1:
        return redirect("accounts:org-home", org_slug=slugs[0])
    return redirect("accounts:org-list")


@login_required
def org_list(request):
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        org = services.create_organization(name=form.cleaned_data["name"], owner=request.user, request=request)
        messages.success(request, f"{org.name} is ready. You are its owner.")
        return redirect("accounts:org-home", org_slug=org.slug)
    memberships = Membership.objects.of_user(request.user).select_related("organization").order_by("organization__name")
    return render(request, "accounts/org_list.html", {"memberships": memberships, "form": form})


@org_view
def members(request):
    form = InviteForm(request.POST or None)
    if request.method == "POST":
        if not request.membership.is_owner:
            messages.error(request, "Only owners can invite members.")
        elif form.is_valid():
            try:
                services.invite_member(
                    organization=request.org,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by=request.user,
                    request=request,
                )
            except DomainError as exc:
                form.add_error("email", str(exc))
            else:
                messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
                return redirect("accounts:members", org_slug=request.org.slug)
    memberships = Membership.objects.for_org(request.org).select_related("user")
    invitations = Invitation.objects.for_org(request.org).pending().select_related("invited_by")
    return render(
        request,
        "accounts/members.html",
        {
            "memberships": memberships,
            "invitations": invitations,
            "form": form,
            "role_form": RoleForm(),
        },
    )


@org_view(owner_only=True)
@require_POST
def member_role(request, member_uuid):
    membership = get_object_or_404(Membership.objects.for_org(request.org).select_related("user"), uuid=member_uuid)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
    else:
        try:
            services.change_role(
                membership=membership, role=form.cleaned_data["role"], actor=request.user, request=request
            )
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display().lower()}.")
    return redirect("accounts:members", org_slug=request.org.slug)


@org_view(owner_only=True)
def member_remove(request, member_uuid):
    membership = get_object_or_404(Membership.objects.for_org(request.org).select_related("user"), uuid=member_uuid)
    if request.method == "POST":
        try:
            services.remove_member(membership=membership, actor=request.user, request=request)
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{membership.user.email} no longer has access to {request.org}.")
        return redirect("accounts:members", org_slug=request.org.slug)
    return render(request, "accounts/member_remove.html", {"member": membership})


@org_view(owner_only=True)
@require_POST
def invitation_revoke(request, invitation_uuid):
    invitation = get_object_or_404(Invitation.objects.for_org(request.org), uuid=invitation_uuid)
    try:
        services.revoke_invitation(invitation=invitation, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Invitation for {invitation.email} revoked.")
    return redirect("accounts:members", org_slug=request.org.slug)


def invitation_accept(request, token):
    invitation = Invitation.find(token)
    if invitation is None or invitation.status != "pending":
        reason = "not valid" if invitation is None else invitation.status
        status = 404 if invitation is None else 410
        return render(request, "accounts/invitation_invalid.html", {"reason": reason}, status=status)
    signup_form = None
    existing_user = User.objects.filter(username=invitation.email).exists()
    if request.user.is_authenticated:
        if request.method == "POST":
            return _accept(request, token)
    elif not existing_user:
        signup_form = SignupForm(request.POST or None)
        if request.method == "POST" and signup_form.is_valid():
            user, _ = services.get_or_create_user(
                email=invitation.email,
                password=signup_form.cleaned_data["password1"],
                first_name=signup_form.cleaned_data["name"],
            )
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return _accept(request, token)
    return render(
        request,
        "accounts/invitation_accept.html",
        {
            "invitation": invitation,
            "signup_form": signup_form,
            "existing_user": existing_user,
        },
    )


def _accept(request, token):
    try:
        membership = services.accept_invitation(token=token, user=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("home")
    messages.success(request, f"Welcome to {membership.organization}.")
    return redirect("accounts:org-home", org_slug=membership.organization.slug)


@org_view(owner_only=True)
def org_settings(request):
    form = OrganizationSettingsForm(request.POST or None, request.FILES or None, instance=request.org)
    if request.method == "POST" and form.is_valid():
        services.save_organization(organization=form.save(commit=False), actor=request.user, request=request)
        messages.success(request, "Organization settings saved.")
        return redirect("accounts:org-settings", org_slug=request.org.slug)
    return render(request, "accounts/org_settings.html", {"form": form})


@org_view
def org_logo(request):
    """The logo through the tenant wall: uploaded files are never served from a public media URL."""
    from django.http import FileResponse, Http404

    if not request.org.logo:
        raise Http404("This organization has no logo.")
    return FileResponse(request.org.logo.open("rb"))


@org_view(owner_only=True)
def activity_log(request):
    form = ActivityFilterForm(request.GET or None)
    entries = form.filter(ActivityEntry.objects.for_org(request.org))
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/activity.html", {"form": form, "page": page})


@login_required
def api_token(request):
    if request.method == "POST":
        Token.objects.filter(user=request.user).delete()
        Token.objects.create(user=request.user)
        messages.success(request, "A new API token was created; the old one no longer works.")
        return redirect("accounts:api-token")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "accounts/api_token.html", {"token": token})
