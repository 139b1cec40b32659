"""What the client's intake answers prefill on the consultant's pages of the apps above (the CRM connection page)
and beside (the draft definitions), included with one tag so those pages need not know where answers live."""

from django import template

from client_workspace import feeds, intake
from client_workspace.models import SharedDocument
from engagements.models import Engagement

register = template.Library()


@register.filter
def get_cell(mapping, key):
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.inclusion_tag("client_workspace/_crm_suggestion.html", takes_context=True)
def crm_suggestion(context, client):
    return {"suggestion": feeds.suggested_crm(client), "request": context.get("request")}


@register.inclusion_tag("client_workspace/_intake_beside_definitions.html", takes_context=True)
def intake_beside_definitions(context, engagement):
    return {"fed": feeds.definitions_inputs(engagement), "engagement": engagement, "request": context.get("request")}


@register.inclusion_tag("client_workspace/_portal_home_cards_body.html")
def portal_home_cards(stakeholder):
    engagements = list(Engagement.objects.visible_to(stakeholder).open().order_by("name"))
    cards = []
    for engagement in engagements:
        form = intake.form_of(engagement)
        if form is not None:
            required = [f.key for f in form.fields if f.required]
            missing = {f.key for f in intake.missing_required(form)}
            cards.append(
                {
                    "engagement": engagement,
                    "form": form,
                    "total": len(required),
                    "answered": len(required) - len(missing),
                }
            )
    shared = SharedDocument.objects.filter(
        organization_id=stakeholder.organization_id, engagement__in=engagements
    ).count()
    return {"cards": cards, "shared": shared}
