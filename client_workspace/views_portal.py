"""The stakeholder's pages: the intake form (saved field by field, then submitted), its files, shared documents."""

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import DomainError
from engagements.models import Engagement
from engagements.portal_access import portal_view

from . import intake
from .files import FileRefused, remove_intake_file, store_intake_file
from .models import IntakeFile, SharedDocument


def _engagement(request, engagement_uuid) -> Engagement:
    return get_object_or_404(Engagement.objects.visible_to(request.stakeholder), uuid=engagement_uuid)


def _form(request, engagement_uuid):
    form = intake.form_of(_engagement(request, engagement_uuid))
    if form is None:
        raise Http404("This engagement's playbook has no intake form.")
    return form


SPARE_ROWS = 3  # blank table rows offered below the answered ones


def _rows(form):
    """Each field with its answer, files and spare table rows, as the form and its partials render them."""
    answers, files = intake.answers_of(form), intake.files_of(form)
    for field in form.fields:
        value = answers.get(field.key)
        yield {
            "field": field,
            "value": value,
            "files": files.get(field.key, []),
            "rows": [*(value or []), *([None] * SPARE_ROWS)] if field.type == "table" else [],
        }


def _page(request, form, *, errors=None, missing=(), status=200):
    return render(
        request,
        "client_workspace/portal_intake.html",
        {
            "stakeholder": request.stakeholder,
            "form": form,
            "engagement": form.engagement,
            "rows": list(_rows(form)),
            "errors": errors or {},
            "missing": missing,
        },
        status=status,
    )


@portal_view
def intake_form(request, engagement_uuid):
    return _page(request, _form(request, engagement_uuid))


@portal_view
@require_POST
def intake_save(request, engagement_uuid):
    """One field, saved as the client leaves it (htmx, on change): answers the field's status line."""
    form = _form(request, engagement_uuid)
    key = request.POST.get("field", "")
    try:
        intake.save_answer(form=form, field_key=key, data=request.POST, stakeholder=request.stakeholder)
    except DomainError as exc:
        return _status(request, key, str(exc), status=422)
    return _status(request, key, "")


def _status(request, key, error, *, status=200):
    html = render_to_string("client_workspace/_field_status.html", {"key": key, "error": error, "saved": not error})
    return HttpResponse(html, status=status)


@portal_view
@require_POST
def intake_upload(request, engagement_uuid):
    """One file for one field. With htmx (on the file input's change) it answers the field's fieldset; without
    JavaScript the field's Upload button posts the whole form here, so its typed answers are kept too, and the
    page comes back with a message."""
    form = _form(request, engagement_uuid)
    key = request.POST.get("field", "")
    error = ""
    upload = request.FILES.get(key)
    try:
        if upload is None:
            raise FileRefused("Choose a file to upload.")
        store_intake_file(form=form, field_key=key, upload=upload, stakeholder=request.stakeholder, request=request)
    except DomainError as exc:
        error = str(exc)
    if not request.htmx:
        return _after_plain_post(request, form, error or f"“{upload.name}” is uploaded.", failed=bool(error))
    row = next((r for r in _rows(form) if r["field"].key == key), None)
    if row is None:
        return _status(request, key, error, status=422)
    context = {
        "row": row,
        "form": form,
        "engagement": form.engagement,
        "stakeholder": request.stakeholder,
        "upload_error": error,
        "uploaded": not error,
    }
    return HttpResponse(render_to_string("client_workspace/_file_list.html", context), status=422 if error else 200)


def _after_plain_post(request, form, message, *, failed=False):
    """Back to the form after a post without JavaScript, keeping the answers that came with it (the page marks
    its whole form with_answers, so a post of one field alone never empties the others)."""
    errors = {}
    if request.POST.get("with_answers") and not form.is_submitted:
        errors = intake.save_posted(form=form, data=request.POST, stakeholder=request.stakeholder)
    (messages.error if failed else messages.success)(request, message)
    if errors:
        form.refresh_from_db()
        return _page(request, form, errors=errors, status=400)
    return redirect("portal:intake", engagement_uuid=form.engagement.uuid)


@portal_view
@require_http_methods(["GET", "POST"])
def intake_file_remove(request, intake_file_uuid):
    """Take back an upload: a page that asks (it works without JavaScript), then the POST that removes."""
    file = get_object_or_404(_visible_files(request), uuid=intake_file_uuid)
    if request.method != "POST":
        return render(
            request,
            "client_workspace/portal_file_remove.html",
            {"stakeholder": request.stakeholder, "file": file, "form": file.form, "engagement": file.engagement},
        )
    try:
        remove_intake_file(file=file, stakeholder=request.stakeholder, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"“{file.name}” is removed.")
    return redirect("portal:intake", engagement_uuid=file.engagement.uuid)


def _visible_files(request):
    return (
        IntakeFile.objects.for_org(request.org)
        .filter(engagement__in=Engagement.objects.visible_to(request.stakeholder))
        .select_related("engagement", "form")
    )


def _store_posted_files(request, form) -> dict[str, str]:
    """Files chosen but not uploaded yet when the whole form is submitted (the page without JavaScript)."""
    refused = {}
    for field in form.fields:
        upload = request.FILES.get(field.key) if field.type == "file" else None
        if upload is None:
            continue
        try:
            store_intake_file(
                form=form, field_key=field.key, upload=upload, stakeholder=request.stakeholder, request=request
            )
        except DomainError as exc:
            refused[field.key] = str(exc)
    return refused


@portal_view
@require_POST
def intake_submit(request, engagement_uuid):
    form = _form(request, engagement_uuid)
    refused = _store_posted_files(request, form)
    if refused:  # not submitted with a file left behind: the page says which, every answer kept
        errors = refused | intake.save_posted(form=form, data=request.POST, stakeholder=request.stakeholder)
        return _page(request, form, errors=errors, missing=intake.missing_required(form), status=400)
    try:
        result = intake.submit(form=form, data=request.POST, stakeholder=request.stakeholder, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("portal:intake", engagement_uuid=form.engagement.uuid)
    if not result.submitted:
        form.refresh_from_db()
        return _page(request, form, errors=result.errors, missing=result.missing, status=400)
    messages.success(request, f"Thank you: the {form.name} is submitted. Your consultant has been told.")
    return redirect("portal:intake", engagement_uuid=form.engagement.uuid)


@portal_view
def intake_file(request, intake_file_uuid):
    return file_response(get_object_or_404(_visible_files(request), uuid=intake_file_uuid))


def file_response(file: IntakeFile) -> FileResponse:
    # Always a download with the stored type: a client's file is never rendered as a page of ours.
    handle = file.file.open("rb")
    response = FileResponse(handle, as_attachment=True, filename=file.name, content_type=file.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@portal_view
def documents(request):
    engagements = list(Engagement.objects.visible_to(request.stakeholder).order_by("name"))
    shared = (
        SharedDocument.objects.for_org(request.org)
        .filter(engagement__in=engagements)
        .select_related("artifact", "engagement")
    )
    return render(
        request,
        "client_workspace/portal_documents.html",
        {
            "stakeholder": request.stakeholder,
            "groups": [(e, [d for d in shared if d.engagement_id == e.pk]) for e in engagements],
        },
    )
