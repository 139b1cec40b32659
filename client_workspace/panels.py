"""What the client workspace shows on pages of engagements, the app below it (engagements/panels.py): the intake
answers beside the draft definitions, the client's forms and documents on the portal home."""

from engagements.models import Engagement

from . import feeds, intake
from .models import SharedDocument


def intake_beside(request, engagement: Engagement | None) -> dict | None:
    """Pipelines and stages and the current definitions the client gave, for the pages that draft or check them
    (the draft definitions, the audit); None when the client has given neither yet."""
    fed = feeds.definitions_inputs(engagement) if engagement is not None else None
    if fed is None or not (fed.pipelines or fed.definitions):
        return None
    return {"fed": fed, "engagement": engagement}


def portal_home_cards(request, stakeholder) -> dict | None:
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
    if not cards:
        return None
    shared = SharedDocument.objects.for_org(stakeholder.organization_id).filter(engagement__in=engagements).count()
    return {"cards": cards, "shared": shared}


def register() -> None:
    from engagements import panels

    panels.register("definitions", template="client_workspace/_intake_beside.html", context=intake_beside)
    panels.register("portal_home", template="client_workspace/_portal_home_cards.html", context=portal_home_cards)
