from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, ProtectedError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.access import org_view
from accounts.api import still_referenced

from .. import portal_access, portfolio, services
from ..forms import ClientAccountForm, StakeholderForm
from ..models import ClientAccount, Engagement, Stakeholder


@org_view
def client_list(request):
    form = ClientAccountForm(request.POST or None, organization=request.org)
    if request.method == "POST" and form.is_valid():
        client = services.save_client(client=form.save(commit=False), actor=request.user, request=request)
        messages.success(request, f"Client {client.name} added.")
        return redirect("engagements:client-detail", org_slug=request.org.slug, client_uuid=client.uuid)
    clients = ClientAccount.objects.for_org(request.org).annotate(n_stakeholders=Count("stakeholders")).order_by("name")
    page = Paginator(clients, 50).get_page(request.GET.get("page"))
    return render(request, "engagements/client_list.html", {"page": page, "form": form})


@org_view
def client_detail(request, client_uuid):
    client = get_object_or_404(ClientAccount.objects.for_org(request.org), uuid=client_uuid)
    edit_form = ClientAccountForm(request.POST or None, instance=client, organization=request.org)
    if request.method == "POST" and edit_form.is_valid():
        services.save_client(client=edit_form.save(commit=False), actor=request.user, request=request)
        messages.success(request, "Client saved.")
        return redirect("engagements:client-detail", org_slug=request.org.slug, client_uuid=client.uuid)
    return render(
        request,
        "engagements/client_detail.html",
        {
            "client": client,
            "engagements": portfolio.rows(
                request.org,
                Engagement.objects.for_org(request.org).filter(client=client).values("pk"),
                order=[F("created_at").desc(), F("id").desc()],
                today=timezone.localdate(),
            ),
            "edit_form": edit_form,
            "stakeholders": Stakeholder.objects.for_org(request.org).filter(client=client),
            "stakeholder_form": StakeholderForm(client=client),
        },
    )


@org_view
@require_POST
def stakeholder_add(request, client_uuid):
    client = get_object_or_404(ClientAccount.objects.for_org(request.org), uuid=client_uuid)
    form = StakeholderForm(request.POST, client=client)
    if form.is_valid():
        stakeholder = services.save_stakeholder(
            stakeholder=form.save(commit=False), actor=request.user, request=request
        )
        messages.success(request, f"{stakeholder.name} added.")
        return redirect("engagements:client-detail", org_slug=request.org.slug, client_uuid=client.uuid)
    return render(
        request,
        "engagements/client_detail.html",
        {
            "client": client,
            "edit_form": ClientAccountForm(instance=client, organization=request.org),
            "stakeholders": Stakeholder.objects.for_org(request.org).filter(client=client),
            "stakeholder_form": form,
        },
        status=400,
    )


def _stakeholder(request, client_uuid, stakeholder_uuid) -> Stakeholder:
    return get_object_or_404(
        Stakeholder.objects.for_org(request.org).select_related("client"),
        client__uuid=client_uuid,
        uuid=stakeholder_uuid,
    )


@org_view
def stakeholder_edit(request, client_uuid, stakeholder_uuid):
    stakeholder = _stakeholder(request, client_uuid, stakeholder_uuid)
    form = StakeholderForm(request.POST or None, instance=stakeholder, client=stakeholder.client)
    if request.method == "POST" and form.is_valid():
        services.save_stakeholder(stakeholder=form.save(commit=False), actor=request.user, request=request)
        messages.success(request, f"{stakeholder.name} saved.")
        return redirect("engagements:client-detail", org_slug=request.org.slug, client_uuid=client_uuid)
    return render(request, "engagements/stakeholder_form.html", {"form": form, "stakeholder": stakeholder})


@org_view
def stakeholder_remove(request, client_uuid, stakeholder_uuid):
    stakeholder = _stakeholder(request, client_uuid, stakeholder_uuid)
    if request.method == "POST":
        try:
            with transaction.atomic():
                services.remove_stakeholder(stakeholder=stakeholder, actor=request.user, request=request)
        except ProtectedError as error:
            messages.error(request, still_referenced(stakeholder, error))
        else:
            messages.success(request, f"{stakeholder.name} removed; their portal access has ended.")
        return redirect("engagements:client-detail", org_slug=request.org.slug, client_uuid=client_uuid)
    return render(request, "engagements/stakeholder_remove.html", {"stakeholder": stakeholder})


@org_view
@require_POST
def stakeholder_send_link(request, client_uuid, stakeholder_uuid):
    stakeholder = _stakeholder(request, client_uuid, stakeholder_uuid)
    if not stakeholder.portal_enabled:
        messages.error(request, f"Portal access is switched off for {stakeholder.name}.")
    else:
        try:
            portal_access.send_portal_link(stakeholder=stakeholder, request=request)
        except portal_access.LinkNotQueued as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"A sign-in link was emailed to {stakeholder.email}.")
    return redirect("engagements:client-detail", org_slug=request.org.slug, client_uuid=client_uuid)
