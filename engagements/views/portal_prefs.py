from django.core import signing
from django.shortcuts import render

from ..models import Stakeholder


def unsubscribe(request, token):
    """One-click stop of the monthly health-check email, from the link in that email (no sign-in needed)."""
    try:
        stakeholder_uuid = signing.loads(token, salt="reporting.unsubscribe", max_age=60 * 60 * 24 * 120)
    except signing.BadSignature:
        return render(request, "portal/unsubscribe.html", {"invalid": True}, status=400)
    stakeholder = (
        Stakeholder.objects.across_tenants("a signed unsubscribe token names its stakeholder")
        .filter(uuid=stakeholder_uuid)
        .first()
    )
    if stakeholder is None:
        return render(request, "portal/unsubscribe.html", {"invalid": True}, status=400)
    if request.method == "POST":
        Stakeholder.objects.for_org(stakeholder.organization_id).filter(pk=stakeholder.pk).update(health_reports=False)
        return render(request, "portal/unsubscribe.html", {"done": True})
    return render(request, "portal/unsubscribe.html", {"stakeholder": stakeholder})
