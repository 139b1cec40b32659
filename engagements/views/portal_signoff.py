"""The client's side of definition alignment: what waits for the stakeholder's sign-off, the sign-off form
(built for a phone: one card per term or stage), signed versions and the deliverables to download.

A stakeholder only ever sees their own client's engagements: every lookup goes through
DefinitionVersion.objects.for_stakeholder() or filters on the stakeholder's client and organization.
Pages run a fixed number of queries whatever the number of terms, stages or versions.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Subquery
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.utils.html import escape
from django.views.decorators.http import require_POST

from accounts.models import DomainError
from deliverables.models import Artifact

from .. import definitions, signoffs
from ..forms_definitions import NO, YES, SignoffForm
from ..models import DefinitionVersion, Engagement, Signature, SignoffRequest, StageDomain
from ..portal_access import portal_view
from .definitions import artifact_file_response

DOMAIN_ORDER = {value: n for n, value in enumerate(StageDomain.values)}
DOMAIN_LABELS = dict(StageDomain.choices)


def pending_signoffs(stakeholder) -> list[DefinitionVersion]:
    """definitions.awaiting(stakeholder) in one query: the latest version of each engagement that asks this
    stakeholder to sign and that they have not answered yet."""
    latest_number = (
        DefinitionVersion.objects.filter(engagement=OuterRef("engagement")).order_by("-number").values("number")[:1]
    )
    return list(
        DefinitionVersion.objects.for_stakeholder(stakeholder)
        .filter(requests__stakeholder=stakeholder)
        .exclude(signatures__stakeholder=stakeholder)
        .annotate(latest_number=Subquery(latest_number))
        .filter(number=F("latest_number"))
        .select_related("engagement", "published_by")
        .order_by("created_at")
    )


@portal_view
def signoff_list(request):
    stakeholder = request.stakeholder
    pending = pending_signoffs(stakeholder)
    latest_ids = set(
        DefinitionVersion.objects.for_stakeholder(stakeholder)
        .filter(number=Subquery(
            DefinitionVersion.objects.filter(engagement=OuterRef("engagement")).order_by("-number").values("number")[:1]
        ))
        .values_list("pk", flat=True)
    )
    answers = list(
        Signature.objects.for_org(request.org)
        .filter(stakeholder=stakeholder, version__engagement__in=Engagement.objects.visible_to(stakeholder))
        .select_related("version__engagement")
        .defer("version__content")
        .order_by("-created_at")
    )
    signed = list(
        DefinitionVersion.objects.for_stakeholder(stakeholder)
        .filter(signed_at__isnull=False)
        .select_related("engagement")
        .defer("content")
        .order_by("-signed_at")
    )
    artifacts = list(
        Artifact.objects.for_org(request.org)
        .ready()
        .filter(engagement__in=Engagement.objects.visible_to(stakeholder))
        .select_related("engagement__client", "source_version")
        .defer("source_version__content")
        .order_by("-created_at")
    )
    return render(
        request,
        "portal/signoffs.html",
        {
            "stakeholder": stakeholder,
            "client": stakeholder.client,
            "pending": pending,
            # Only answers on each engagement's current version wait on others; replaced versions are history.
            "answers": [a for a in answers if a.version.signed_at is None and a.version_id in latest_ids],
            "signed": signed,
            "artifacts": artifacts,
        },
    )


def _items(version: DefinitionVersion, *, form=None, signature=None, status=None, unchanged=None) -> list[dict]:
    """Every term, then every stage grouped by domain, each with what the page shows of it."""
    content = version.content
    term_names = {t["key"]: t["term"] for t in content["terms"]}
    stage_names = {s["key"]: s["name"] for s in content["stages"]}
    stages = sorted(content["stages"], key=lambda s: (DOMAIN_ORDER.get(s["domain"], 99), s["order"]))
    rows = [("term", t["term"], t, [stage_names.get(k, k) for k in t["stage_keys"]], "") for t in content["terms"]]
    rows += [
        ("stage", s["name"], s, [term_names.get(k, k) for k in s["term_keys"]], DOMAIN_LABELS.get(s["domain"], ""))
        for s in stages
    ]
    states = {i.key: i for i in status.items} if status else {}
    items = []
    for n, (kind, label, data, refs, domain) in enumerate(rows, start=1):
        key = f"{kind}:{data['key']}"
        item = {"n": n, "key": key, "kind": kind, "label": label, "data": data, "refs": refs, "domain": domain}
        if form is not None:
            item["field"] = form[key]
            item["comment"] = form[f"comment:{key}"]
            item["value"] = form[key].value()  # posted, else the answer saved earlier
            item["unchanged_since"] = (unchanged or {}).get(key)
        if signature is not None:
            item["answer"] = signature.decisions.get(key)
            item["your_comment"] = signature.comments.get(key, "")
        item["state"] = states.get(key)
        items.append(item)
    return items


@portal_view
def signoff(request, definition_version_uuid):
    stakeholder = request.stakeholder
    version = get_object_or_404(
        DefinitionVersion.objects.for_stakeholder(stakeholder).select_related("engagement__client", "published_by"),
        uuid=definition_version_uuid,
    )
    engagement = version.engagement
    engagement.organization = request.org  # the same row: spares a query in latest_version()
    required = SignoffRequest.objects.filter(version=version, stakeholder=stakeholder).exists()
    signature = Signature.objects.filter(version=version, stakeholder=stakeholder).first()
    latest = definitions.latest_version(engagement)
    replaced_by = latest if latest.pk != version.pk else None
    can_sign = required and signature is None and replaced_by is None

    form = None
    error = ""
    if request.method == "POST":
        if not required:
            raise PermissionDenied("You are not asked to sign this version.")
        form = SignoffForm(request.POST, version=version)
        if form.is_valid():
            try:
                definitions.sign(
                    version=version,
                    stakeholder=stakeholder,
                    decisions=form.decisions,
                    comments=form.comments,
                    request=request,
                )
            except DomainError as exc:  # replaced meanwhile, answered in another tab...: say so, keep the answers
                error = str(exc)
            else:
                return redirect("portal:signoff", definition_version_uuid=version.uuid)
    elif can_sign:
        saved = signoffs.current_answers(version, stakeholder)
        initial = {key: a.value for key, a in saved.items()} | {f"comment:{k}": a.comment for k, a in saved.items()}
        form = SignoffForm(version=version, initial=initial)

    status = definitions.version_status(version) if form is None else None
    unchanged = signoffs.unchanged_since_approved(version, stakeholder) if form is not None else {}
    items = _items(version, form=form, signature=signature, status=status, unchanged=unchanged)
    answered = _answered(items)
    context = {
        "stakeholder": stakeholder,
        "client": stakeholder.client,
        "version": version,
        "engagement": engagement,
        "items": items,
        "form": form,
        "error": error,
        "unanswered": [i for i in items if form is not None and i["field"].errors],
        "missing_comments": [i for i in items if form is not None and i["comment"].errors],
        "answered": answered,
        "changes_requested": sum(1 for i in items if i.get("value") == NO),
        "required": required,
        "signature": signature,
        "status": status,
        "replaced_by": replaced_by,
        "can_sign": can_sign,
        "unchanged_open": [i for i in items if i.get("unchanged_since") and i.get("value") not in (YES, NO)],
    }
    if signature is not None and form is None:
        context["your_no"] = [i for i in items if i["answer"] != YES]
        context["approved_count"] = len(items) - len(context["your_no"])
    failed = request.method == "POST"  # a successful POST redirected above
    return render(request, "portal/signoff.html", context, status=400 if failed else 200)


def _answered(items: list[dict]) -> int:
    answered = sum(1 for i in items if i.get("value") in (YES, NO))
    if not 0 <= answered <= len(items):
        raise ValueError(f"{answered} of {len(items)} answered is impossible")
    return answered


def _answerable(request, definition_version_uuid) -> DefinitionVersion:
    return get_object_or_404(
        DefinitionVersion.objects.for_stakeholder(request.stakeholder).select_related("engagement"),
        uuid=definition_version_uuid,
    )


@portal_view
@require_POST
def signoff_answer(request, definition_version_uuid):
    """Save one item's answer as it is given (htmx, from the sign-off form): the answer and the progress."""
    version = _answerable(request, definition_version_uuid)
    key = request.POST.get("item", "")
    try:
        signoffs.save_answer(
            version=version,
            stakeholder=request.stakeholder,
            item_key=key,
            value=request.POST.get(key, ""),
            comment=request.POST.get(f"comment:{key}", ""),
        )
    except DomainError as exc:
        return HttpResponse(f'<p role="alert">Not saved: {escape(exc)}</p>', status=400)
    answered, changes_requested = signoffs.progress(version, request.stakeholder)
    return render(request, "portal/_signoff_saved.html", {
        "answered": answered, "total": len(version.items), "changes_requested": changes_requested,
    })


@portal_view
@require_POST
def signoff_approve_unchanged(request, definition_version_uuid):
    """One deliberate action: Yes for every item unchanged since a version this signer approved."""
    version = _answerable(request, definition_version_uuid)
    try:
        n = signoffs.approve_unchanged(version=version, stakeholder=request.stakeholder)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Approved {n} unchanged item{pluralize(n)}. Review the others, then submit.")
    return redirect("portal:signoff", definition_version_uuid=version.uuid)


@portal_view
def artifact_download(request, artifact_uuid):
    artifact = get_object_or_404(
        Artifact.objects.for_org(request.org)
        .ready()
        .filter(engagement__in=Engagement.objects.visible_to(request.stakeholder))
        .select_related("engagement__client"),
        uuid=artifact_uuid,
    )
    return artifact_file_response(artifact)
