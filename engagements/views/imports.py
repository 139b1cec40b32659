"""The progress of a large CSV import, as a fragment the upload page polls until the worker is done."""

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.access import org_view

from .cadence import _engagement


@org_view
@require_GET
def csv_import(request, engagement_uuid, import_uuid):
    engagement = _engagement(request, engagement_uuid)
    job = get_object_or_404(engagement.csv_imports.defer("text"), uuid=import_uuid)
    return render(request, "engagements/_csv_import.html", {"job": job, "engagement": engagement})
