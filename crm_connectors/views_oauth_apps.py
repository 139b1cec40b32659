"""The organization's settings: the consultancy's OAuth apps through which clients connect their CRM (owner only)."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import activity
from accounts.access import org_view

from .forms_oauth import OAuthAppForm
from .models import CrmKind, OAuthApp


@org_view(owner_only=True)
def oauth_apps(request):
    apps = {app.platform: app for app in OAuthApp.objects.for_org(request.org)}
    posted = request.POST.get("platform") if request.method == "POST" else None
    forms = [
        OAuthAppForm(
            request.POST if kind == posted else None,
            instance=apps.get(kind) or OAuthApp(organization=request.org, platform=kind),
            platform=kind,
        )
        for kind in CrmKind.values
    ]
    form = next((f for f in forms if f.platform == posted), None)
    if form is not None and form.is_valid():
        app = form.save()
        activity.record(
            organization=request.org,
            actor=request.user,
            request=request,
            target=app,
            verb="crm_oauth_app.saved",
            data={"platform": app.get_platform_display(), "secret_changed": bool(form.cleaned_data["client_secret"])},
        )
        messages.success(request, f"The {app.get_platform_display()} OAuth app is saved.")
        return redirect("crm_connectors:oauth-apps", org_slug=request.org.slug)
    callback = request.build_absolute_uri(reverse("portal:crm-callback"))
    return render(
        request,
        "crm_connectors/oauth_apps.html",
        {"forms": forms, "callback": callback},
        status=400 if form is not None else 200,
    )
