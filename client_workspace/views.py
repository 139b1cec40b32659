"""The consultant's side: an engagement's intake answers and files, and the documents shared to the portal."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.access import org_view
from accounts.models import DomainError
from deliverables.models import Artifact
from engagements.models import Engagement

from . import documents, intake
from .models import IntakeFile, SharedDocument
from .views_portal import file_response


def _engagement(request, engagement_uuid) -> Engagement:
    return get_object_or_404(Engagement.objects.for_org(request.org).select_related("client"), uuid=engagement_uuid)


@org_view
def intake_answers(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    form = intake.form_of(engagement)
    rows = []
    if form is not None:
        answers, files = intake.answers_of(form), intake.files_of(form)
        rows = [{"field": f, "value": answers.get(f.key), "files": files.get(f.key, [])} for f in form.fields]
    return render(
        request,
        "client_workspace/intake_answers.html",
        {
            "engagement": engagement,
            "form": form,
            "rows": rows,
            "active_tab": "client",
            "missing": intake.missing_required(form) if form is not None else [],
            "shared": engagement.shared_documents.select_related("artifact"),
            "artifacts": Artifact.objects.for_org(request.org).filter(engagement=engagement).ready(),
        },
    )


@org_view
@require_POST
def intake_reopen(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    form = intake.form_of(engagement)
    if form is not None:
        intake.reopen(form=form, actor=request.user, request=request)
        messages.success(request, f"The {form.name} is open again for {engagement.client.name}.")
    return redirect("client_workspace:intake", org_slug=request.org.slug, engagement_uuid=engagement.uuid)


@org_view
def intake_file(request, intake_file_uuid):
    return file_response(get_object_or_404(IntakeFile.objects.for_org(request.org), uuid=intake_file_uuid))


@org_view
@require_POST
def document_share(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    artifact = None
    if request.POST.get("artifact"):
        artifact = (
            Artifact.objects.for_org(request.org)
            .filter(engagement=engagement, uuid=request.POST["artifact"])
            .ready()
            .first()
        )
        if artifact is None:
            messages.error(request, "That deliverable is not a rendered document of this engagement.")
            return redirect("client_workspace:intake", org_slug=request.org.slug, engagement_uuid=engagement.uuid)
    try:
        document = documents.share(
            engagement=engagement,
            actor=request.user,
            artifact=artifact,
            title=request.POST.get("title", ""),
            url=request.POST.get("url", ""),
            request=request,
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"“{document.title}” is on {engagement.client.name}'s portal.")
    return redirect("client_workspace:intake", org_slug=request.org.slug, engagement_uuid=engagement.uuid)


@org_view
@require_POST
def document_unshare(request, engagement_uuid, document_uuid):
    document = get_object_or_404(
        SharedDocument.objects.for_org(request.org), engagement__uuid=engagement_uuid, uuid=document_uuid
    )
    documents.unshare(document=document, actor=request.user, request=request)
    messages.success(request, f"“{document.title}” is no longer shared.")
    return redirect("client_workspace:intake", org_slug=request.org.slug, engagement_uuid=engagement_uuid)
