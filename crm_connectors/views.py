from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.access import org_view
from engagements.models import ClientAccount

from . import services
from .base import CrmConfigurationError
from .crypto import SecretKeyMissing
from .forms import CrmConnectionForm
from .models import CrmConnection


@org_view
def connection_edit(request, client_uuid):
    """Create or edit the client's CRM connection; shows the last test result."""
    client = get_object_or_404(ClientAccount.objects.for_org(request.org), uuid=client_uuid)
    connection = CrmConnection.objects.for_org(request.org).active().filter(client=client).first()
    instance = connection or CrmConnection(organization=request.org, client=client)
    form = CrmConnectionForm(request.POST or None, instance=instance)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                saved = services.save_connection(
                    connection=form.save(commit=False), secrets=form.secrets(), actor=request.user, request=request
                )
            except (CrmConfigurationError, SecretKeyMissing) as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{saved.get_kind_display()} connection saved. Test it to see what it reads.")
                return redirect("crm_connectors:connection-edit", org_slug=request.org.slug, client_uuid=client.uuid)
        status = 400
    return render(
        request,
        "crm_connectors/connection_form.html",
        {"client": client, "connection": connection, "form": form, "summary": _summary(connection)},
        status=status,
    )


@org_view
@require_POST
def connection_test(request, client_uuid, connection_uuid):
    """Run the connection test now; show what it could read and the budget left, or the error."""
    connection = get_object_or_404(
        CrmConnection.objects.for_org(request.org).select_related("client"),
        uuid=connection_uuid,
        client__uuid=client_uuid,
    )
    services.test_connection(connection=connection, actor=request.user, request=request)
    template = "crm_connectors/connection_test.html"
    return render(
        request,
        f"{template}#result" if request.htmx else template,
        {"client": connection.client, "connection": connection, "summary": _summary(connection)},
    )


def _summary(connection):
    return connection.last_test_summary if connection is not None and connection.last_test_summary else None
