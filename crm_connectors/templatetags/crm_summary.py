"""The client page's CRM block (its connection and latest audit). The client page belongs to engagements, below
crm_connectors, so it asks for this block by tag name rather than importing what it shows."""

from django import template

from ..audit import services
from ..models import CrmConnection

register = template.Library()


@register.inclusion_tag("crm_connectors/_client_summary.html", takes_context=True)
def crm_summary(context, client):
    org = context["request"].org
    return {
        "request": context["request"],
        "client": client,
        "connection": CrmConnection.objects.for_org(org).active().filter(client=client).first(),
        "audit": services.runs_with_counts(client).select_related("engagement").first(),
    }
