"""The client page's CRM block (its connection and latest audit): the client page belongs to engagements, below
this app, so the block is handed down as a panel (engagements/panels.py) rather than imported."""

from .audit import services
from .models import CrmConnection


def crm_summary(request, client) -> dict:
    return {
        "client": client,
        "connection": CrmConnection.objects.for_org(request.org).active().filter(client=client).first(),
        "audit": services.runs_with_counts(client).select_related("engagement").first(),
    }


def register() -> None:
    from engagements import panels

    panels.register("client", template="crm_connectors/_client_summary.html", context=crm_summary)
