"""The consultant's side of the client's tasks: the due date, set inline on the engagement's checklist."""

from django.contrib import messages
from django.forms import DateField, Form
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from accounts.access import org_view
from accounts.models import DomainError

from .. import client_tasks
from ..models import ChecklistItem


class DueDateForm(Form):
    due_date = DateField(required=False, label="Due")


@org_view
@require_POST
def due_date(request, engagement_uuid, item_uuid):
    item = get_object_or_404(
        ChecklistItem.objects.for_org(request.org).client_owned().select_related("engagement", "phase", "sub_phase"),
        engagement__uuid=engagement_uuid,
        uuid=item_uuid,
    )
    form = DueDateForm(request.POST)
    error = ""
    if not form.is_valid():
        error = f"“{request.POST.get('due_date', '')}” is not a date: use the date picker (YYYY-MM-DD)."
    else:
        try:
            client_tasks.set_due_date(
                item=item, due_date=form.cleaned_data["due_date"], actor=request.user, request=request
            )
        except DomainError as exc:
            error = str(exc)
    item.refresh_from_db(fields=["due_date"])  # the control shows the true state, saved or not
    if request.htmx:
        context = {"item": item, "engagement": item.engagement, "due_error": error, "editable": True}
        return HttpResponse(render_to_string("engagements/_client_task_due.html", context, request=request))
    if error:
        messages.error(request, error)
    return redirect("engagements:engagement-detail", request.org.slug, item.engagement.uuid)
