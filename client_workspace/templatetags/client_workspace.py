"""The client's intake answers where the apps above show them (the CRM connection page, the audit). Pages of
engagements, below this app, get theirs as panels (client_workspace/panels.py)."""

from django import template

from client_workspace import feeds, panels

register = template.Library()


@register.filter
def get_cell(mapping, key):
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.inclusion_tag("client_workspace/_crm_suggestion.html", takes_context=True)
def crm_suggestion(context, client):
    return {"suggestion": feeds.suggested_crm(client), "request": context.get("request")}


@register.inclusion_tag("client_workspace/_intake_beside.html", takes_context=True)
def intake_beside(context, engagement):
    request = context.get("request")
    return {"request": request, **(panels.intake_beside(request, engagement) or {})}
