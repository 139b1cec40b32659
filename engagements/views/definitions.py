"""Definition alignment for consultants: the draft (terms and stage architecture, edited inline with htmx),
publishing a version for sign-off, each version with its signatures, diffs, and the deliverables rendered
from a version.

Views stay thin: engagements.definitions edits the draft and publishes, engagements.deliverables asks for renders.
Every page runs a fixed number of queries whatever the number of terms, stages, versions or artifacts.
"""

import uuid
from dataclasses import dataclass

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.access import org_view
from accounts.models import DomainError
from deliverables.models import Artifact, ArtifactStatus

from .. import definitions, signoffs
from ..deliverables import request_artifact, retry_artifact
from ..forms_definitions import ArtifactRequestForm, PublishForm, StageForm, TermForm
from ..models import (
    DefinitionTerm,
    DefinitionVersion,
    Engagement,
    StageDefinition,
    StageDomain,
    Stakeholder,
)

ARTIFACTS_SHOWN = 20
DOMAIN_ORDER = {value: n for n, value in enumerate(StageDomain.values)}
DOMAIN_LABELS = dict(StageDomain.choices)
FIELD_LABELS = {
    "key": "Key",
    "term": "Term",
    "definition": "Our definition",
    "notes": "Notes",
    "stage_keys": "Referenced stages",
    "name": "Name",
    "domain": "Domain",
    "order": "Position",
    "entry_criteria": "Entry criteria",
    "exit_criteria": "Exit criteria",
    "transition_owner": "Transition owner",
    "golden": "Golden stage",
    "crm_object": "CRM object",
    "crm_field": "CRM field",
    "crm_values": "CRM values",
    "term_keys": "Referenced terms",
}


# --------------------------------------------------------------------------------------------------
# Helpers


def _engagement(request, engagement_uuid) -> Engagement:
    engagement = get_object_or_404(
        Engagement.objects.for_org(request.org).select_related("client", "playbook_version__playbook"),
        uuid=engagement_uuid,
    )
    engagement.organization = request.org  # the same row, already loaded by org_view
    return engagement


def can_change(request, engagement: Engagement) -> bool:
    return request.membership.can_write and engagement.is_open


def _page_url(request, engagement, anchor: str = "") -> str:
    url = reverse("engagements:definitions", args=[request.org.slug, engagement.uuid])
    return f"{url}#{anchor}" if anchor else url


@dataclass
class VersionRow:
    """What the versions list shows of one version, from prefetched rows (no content loaded)."""

    version: DefinitionVersion
    required: int
    answered: int
    contested: bool
    latest: bool

    @property
    def label(self) -> str:  # the same words as definitions.VersionStatus.label
        if self.version.signed_at:
            return "signed"
        return "contested" if self.contested else "awaiting signatures"

    @property
    def superseded(self) -> bool:
        return not self.latest and not self.version.signed_at


def _version_rows(request, engagement) -> list[VersionRow]:
    versions = (
        DefinitionVersion.objects.for_org(request.org)
        .filter(engagement=engagement)
        .defer("content")
        .select_related("published_by")
        .prefetch_related("requests", "signatures")
        .order_by("-number")
    )
    rows = []
    for n, version in enumerate(versions):
        signatures = list(version.signatures.all())
        rows.append(
            VersionRow(
                version=version,
                required=len(version.requests.all()),
                answered=len(signatures),
                contested=any(not s.approved_all for s in signatures),
                latest=n == 0,
            )
        )
    return rows


def _linked(items: list[tuple[str, list]], others: list[tuple[str, list]]) -> dict[str, list[str]]:
    """For each (key, refs) item, the keys it names itself, then the keys of the other side that name it, once each.
    A link between a term and a stage is one fact seen from both sides."""
    linked = {key: list(dict.fromkeys(refs or [])) for key, refs in items}
    for other_key, refs in others:
        for key in refs or []:
            if key in linked and other_key not in linked[key]:
                linked[key].append(other_key)
    return linked


def _draft_context(request, engagement) -> dict:
    """Terms and stages of the draft, each with its references resolved to names (two queries)."""
    terms = list(DefinitionTerm.objects.for_org(request.org).filter(engagement=engagement).order_by("order", "id"))
    stages = sorted(
        StageDefinition.objects.for_org(request.org).filter(engagement=engagement),
        key=lambda s: (DOMAIN_ORDER.get(s.domain, len(DOMAIN_ORDER)), s.order, s.id),
    )
    term_names = {t.key: t.term for t in terms}
    stage_names = {s.key: s.name for s in stages}
    term_links = [(t.key, t.stage_keys) for t in terms]
    stage_links = [(s.key, s.term_keys) for s in stages]
    stage_keys_of, term_keys_of = _linked(term_links, stage_links), _linked(stage_links, term_links)
    for term in terms:
        term.engagement = engagement
        term.refs = [(k, stage_names.get(k)) for k in stage_keys_of[term.key]]  # type: ignore[attr-defined]
    groups: dict[str, list] = {}
    for stage in stages:
        stage.engagement = engagement
        stage.refs = [(k, term_names.get(k)) for k in term_keys_of[stage.key]]  # type: ignore[attr-defined]
        groups.setdefault(stage.domain, []).append(stage)
    stage_choices = [(s.key, f"{s.name} ({DOMAIN_LABELS.get(s.domain, s.domain)})") for s in stages]
    term_choices = [(t.key, t.term) for t in terms]
    return {
        "terms": terms,
        "stages": stages,
        "stage_groups": [(domain, DOMAIN_LABELS.get(domain, domain), rows) for domain, rows in groups.items()],
        "term_add_form": TermForm(engagement=engagement, ref_choices=stage_choices, auto_id="new-term-%s"),
        "stage_add_form": StageForm(engagement=engagement, ref_choices=term_choices, auto_id="new-stage-%s"),
    }


def _status_context(request, engagement, rows=None) -> dict:
    rows = _version_rows(request, engagement) if rows is None else rows
    latest = rows[0] if rows else None
    changed = latest is None or definitions.seal(definitions.draft_content(engagement)) != latest.version.content_hash
    return {"version_rows": rows, "latest_row": latest, "unpublished": changed}


def _artifacts(request, engagement) -> list[Artifact]:
    artifacts = list(
        Artifact.objects.for_org(request.org)
        .filter(engagement=engagement)
        .select_related("source_version")
        .defer("source_version__content")
        .order_by("-created_at", "-id")[:ARTIFACTS_SHOWN]
    )
    for artifact in artifacts:
        artifact.engagement = engagement
    return artifacts


def _deliverables_context(request, engagement, rows, *, form=None, notice="", error="") -> dict:
    return {
        "artifacts": _artifacts(request, engagement),
        "artifact_form": form or ArtifactRequestForm(engagement=engagement),
        "artifact_versions": [r.version for r in rows],
        "artifact_notice": notice,
        "artifact_error": error,
    }


def _page_context(request, engagement, **extra) -> dict:
    rows = _version_rows(request, engagement)
    return {
        "engagement": engagement,
        "active_tab": "definitions",
        "can_change": can_change(request, engagement),
        **_draft_context(request, engagement),
        **_status_context(request, engagement, rows),
        **_deliverables_context(request, engagement, rows),
        **extra,
    }


# --------------------------------------------------------------------------------------------------
# The draft page


PARTS = {"status": "draft-status", "draft": "draft", "versions": "versions", "deliverables": "deliverables"}


@org_view
def definitions_page(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    context = _page_context(request, engagement)
    part = PARTS.get(request.GET.get("part", ""))
    if request.htmx and part:
        return render(request, f"engagements/definitions.html#{part}", context)
    return render(request, "engagements/definitions.html", context)


KINDS = {
    "term": {"model": DefinitionTerm, "form": TermForm, "label": "term", "name": "term"},
    "stage": {"model": StageDefinition, "form": StageForm, "label": "stage", "name": "name"},
}


def _ref_choices(request, engagement, kind) -> list[tuple[str, str]]:
    if kind == "term":
        stages = StageDefinition.objects.for_org(request.org).filter(engagement=engagement)
        return [
            (s.key, f"{s.name} ({DOMAIN_LABELS.get(s.domain, s.domain)})")
            for s in sorted(stages, key=lambda s: (DOMAIN_ORDER.get(s.domain, 99), s.order, s.id))
        ]
    terms = DefinitionTerm.objects.for_org(request.org).filter(engagement=engagement).order_by("order", "id")
    return [(t.key, t.term) for t in terms]


def _item_response(request, engagement, kind, item, *, form, status=200):
    """An item's form: inline (a table row, or the add box) for htmx, else a page of its own."""
    context = {
        "engagement": engagement,
        "kind": kind,
        "kind_label": KINDS[kind]["label"],
        "item": item,
        "form": form,
        f"{kind}_add_form": form,
        "can_change": can_change(request, engagement),
        "active_tab": "definitions",
    }
    if request.htmx:
        fragment = f"{kind}-edit-row" if item is not None else f"{kind}-add"
        response = render(request, f"engagements/definitions.html#{fragment}", context)
        if request.method == "POST":
            # The form posts with the whole draft as its target; a form with errors goes back where it was.
            response["HX-Retarget"] = f"#{kind}-{item.uuid}" if item is not None else f"#{kind}-add"
            response["HX-Reswap"] = "outerHTML"
        return response
    return render(request, "engagements/definitions_item.html", context, status=status)


def _edit(request, engagement, kind, item=None):
    spec = KINDS[kind]
    writable = can_change(request, engagement)
    if request.method == "GET" and request.htmx and item is not None and (request.GET.get("row") or not writable):
        # "Cancel" of an inline form (or a reader): the row as it is, references resolved like on the page.
        draft = _draft_context(request, engagement)
        row = next(r for r in draft[f"{kind}s"] if r.pk == item.pk)
        context = {"engagement": engagement, "can_change": writable, kind: row}
        return render(request, f"engagements/definitions.html#{kind}-row", context)
    previous_key = item.key if item is not None else ""
    form = spec["form"](
        request.POST if request.method == "POST" else None,
        instance=item,
        engagement=engagement,
        ref_choices=_ref_choices(request, engagement, kind),
        # Several inline forms can be open at once: ids must differ, names stay plain.
        auto_id=f"{kind}-{item.uuid.hex[:8]}-%s" if item is not None else f"new-{kind}-%s",
    )
    if request.method == "POST":
        if not writable:
            form.add_error(None, "This engagement is closed; its definitions are read-only.")
        elif form.is_valid():
            try:
                saved = definitions.save_draft_item(
                    item=form.save(commit=False), actor=request.user, request=request, previous_key=previous_key
                )
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                label = getattr(saved, spec["name"])
                notice = f"Saved “{label}”." if item is not None else f"Added “{label}”."
                if request.htmx:
                    context = {
                        "engagement": engagement,
                        "can_change": can_change(request, engagement),
                        "draft_notice": notice,
                        "highlight": saved.uuid,
                        "reopen": kind if item is None else "",  # adding several in a row keeps the form open
                        **_draft_context(request, engagement),
                        **_status_context(request, engagement),
                    }
                    return render(request, "engagements/definitions.html#draft-swap", context)
                messages.success(request, notice)
                return redirect(_page_url(request, engagement, f"{kind}-{saved.uuid}"))
        return _item_response(request, engagement, kind, item, form=form, status=400)
    return _item_response(request, engagement, kind, item, form=form)


def _term(request, engagement, term_uuid) -> DefinitionTerm:
    term = get_object_or_404(DefinitionTerm.objects.for_org(request.org), engagement=engagement, uuid=term_uuid)
    term.engagement = engagement
    return term


def _stage(request, engagement, stage_uuid) -> StageDefinition:
    stage = get_object_or_404(StageDefinition.objects.for_org(request.org), engagement=engagement, uuid=stage_uuid)
    stage.engagement = engagement
    return stage


@org_view
def term_add(request, engagement_uuid):
    return _edit(request, _engagement(request, engagement_uuid), "term")


@org_view
def term_edit(request, engagement_uuid, term_uuid):
    engagement = _engagement(request, engagement_uuid)
    return _edit(request, engagement, "term", _term(request, engagement, term_uuid))


@org_view
def stage_add(request, engagement_uuid):
    return _edit(request, _engagement(request, engagement_uuid), "stage")


@org_view
def stage_edit(request, engagement_uuid, stage_uuid):
    engagement = _engagement(request, engagement_uuid)
    return _edit(request, engagement, "stage", _stage(request, engagement, stage_uuid))


def _delete(request, engagement, kind, item):
    error = ""
    label = getattr(item, KINDS[kind]["name"])
    if request.method == "POST":
        try:
            unlinked = definitions.delete_draft_item(item=item, actor=request.user, request=request)
        except DomainError as exc:
            error = str(exc)
        else:
            other = "stage" if kind == "term" else "term"
            also = f" It was also unlinked from {unlinked} {other}{'s' if unlinked != 1 else ''}." if unlinked else ""
            messages.success(request, f"Deleted “{label}” from the draft.{also}")
            return redirect(_page_url(request, engagement, "terms" if kind == "term" else "stages"))
    other_field = "stage_keys" if kind == "stage" else "term_keys"
    other_model = DefinitionTerm if kind == "stage" else StageDefinition
    referrers = [
        row
        for row in other_model.objects.for_org(request.org).filter(engagement=engagement)
        if item.key in (getattr(row, other_field) or [])
    ]
    return render(
        request,
        "engagements/definitions_delete.html",
        {
            "engagement": engagement,
            "kind": kind,
            "item": item,
            "label": label,
            "referrers": referrers,
            "error": error,
            "can_change": can_change(request, engagement),
            "active_tab": "definitions",
        },
        status=400 if error else 200,
    )


@org_view
def term_delete(request, engagement_uuid, term_uuid):
    engagement = _engagement(request, engagement_uuid)
    return _delete(request, engagement, "term", _term(request, engagement, term_uuid))


@org_view
def stage_delete(request, engagement_uuid, stage_uuid):
    engagement = _engagement(request, engagement_uuid)
    return _delete(request, engagement, "stage", _stage(request, engagement, stage_uuid))


# --------------------------------------------------------------------------------------------------
# Publishing


def _signer_choices(request, engagement, form) -> list[dict]:
    """Every stakeholder of the client: the engagement's own stakeholders first, with their role."""
    roles = {es.stakeholder_id: es.role or "Stakeholder" for es in definitions.signers_for(engagement)}
    people = Stakeholder.objects.for_org(request.org).filter(client_id=engagement.client_id).order_by("name")
    selected = {str(v) for v in (form["signers"].value() or [])}
    rows = [
        {
            "stakeholder": s,
            "role": roles.get(s.pk, ""),
            "on_engagement": s.pk in roles,
            "checked": str(s.uuid) in selected,
        }
        for s in people
    ]
    return sorted(rows, key=lambda r: not r["on_engagement"])


def _approver_choices(request, engagement, latest, people) -> tuple[list[dict], dict | None]:
    """Each approver role the playbook names, with what was chosen for it (a stakeholder's UUID, "waive" and a
    reason, or nothing yet), and the mapping definitions.publish() takes when every role is settled. The roles
    start as the previous version had them, else with the stakeholder whose title is the role."""
    data = request.POST if request.method == "POST" else {}
    by_uuid = {str(s.uuid): s for s in people if s.portal_enabled}
    by_title = {(s.title or "").strip().lower(): str(s.uuid) for s in people if s.portal_enabled}
    before = {a.role: a for a in latest.approvers.select_related("stakeholder")} if latest is not None else {}
    rows, mapping = [], {}
    for n, role in enumerate(signoffs.approver_roles(engagement), start=1):
        previous = before.get(role)
        if previous is not None and (previous.stakeholder or previous.waiver_reason):
            default = str(previous.stakeholder.uuid) if previous.stakeholder else "waive"
        else:
            default = by_title.get(role.lower(), "")
        chosen = data.get(f"approver-{n}", default)
        reason = data.get(f"waiver-{n}", previous.waiver_reason if previous is not None else "").strip()
        error = ""
        if chosen == "waive":
            mapping[role] = reason
            error = "" if reason else "Say why this role is waived."
        elif chosen in by_uuid:
            mapping[role] = by_uuid[chosen]
        else:
            error = "Choose who holds this role, or waive it with a reason."
        rows.append({"n": n, "role": role, "chosen": chosen, "reason": reason,
                     "error": error if request.method == "POST" else ""})
    return rows, (None if any(r["error"] for r in rows) or request.method != "POST" else mapping)


def _confirmation(engagement, signers: list, approvers: dict) -> str:
    """What the consultant confirms, as a fingerprint: the draft, the signers and the role mapping. Publishing
    refuses a confirmation of anything else (the draft edited in another tab, a signer changed)."""
    return definitions.seal({
        "draft": definitions.seal(definitions.draft_content(engagement)),
        "signers": sorted(str(s.uuid) for s in signers),
        "approvers": {role: str(v.uuid) if isinstance(v, Stakeholder) else v for role, v in approvers.items()},
    })


@org_view
def definitions_publish(request, engagement_uuid):
    """Choose the signers and map the playbook's approver roles, confirm (naming the signers and the item count),
    publish. Publishing is irreversible, so the server publishes only a confirmation of exactly what is current."""
    engagement = _engagement(request, engagement_uuid)
    latest = definitions.latest_version(engagement)
    if latest is not None:
        initial = [str(r.stakeholder.uuid) for r in latest.requests.select_related("stakeholder")]
    else:
        initial = [str(es.stakeholder.uuid) for es in definitions.signers_for(engagement)]
    data = request.POST if request.method == "POST" else None
    form = PublishForm(data, engagement=engagement, initial={"signers": initial})
    people = list(Stakeholder.objects.for_org(request.org).filter(client_id=engagement.client_id).order_by("name"))
    approver_rows, approvers = _approver_choices(request, engagement, latest, people)
    draft = definitions.draft_content(engagement)
    confirm = None
    if request.method == "POST" and form.is_valid() and approvers is not None:
        signers = list(form.cleaned_data["signers"])
        signers += [s for s in approvers.values() if isinstance(s, Stakeholder) and s not in signers]
        token = _confirmation(engagement, signers, approvers)
        posted = request.POST.get("confirm", "")
        if posted == token:
            try:
                version = definitions.publish(
                    engagement=engagement, signers=signers, approvers=approvers, actor=request.user, request=request
                )
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                n = len(signers)
                messages.success(
                    request,
                    f"Published v{version.number}. {n} sign-off request{'s' if n != 1 else ''} emailed; "
                    "answers appear below as they arrive.",
                )
                return redirect(
                    "engagements:definition-version",
                    org_slug=request.org.slug,
                    engagement_uuid=engagement.uuid,
                    definition_version_uuid=version.uuid,
                )
        else:
            roles = {s.pk: role for role, s in approvers.items() if isinstance(s, Stakeholder)}
            confirm = {
                "token": token,
                "signers": [(s, roles.get(s.pk, "")) for s in signers],
                "waived": [(role, reason) for role, reason in approvers.items() if isinstance(reason, str)],
                "items": len(draft["terms"]) + len(draft["stages"]),
                "changed": bool(posted),  # a confirmation of something that has since changed
            }
    context = {
        "engagement": engagement,
        "active_tab": "definitions",
        "form": form,
        "latest": latest,
        "changes": definitions.diff(latest.content, draft) if latest is not None else None,
        "draft_counts": (len(draft["terms"]), len(draft["stages"])),
        "signer_rows": _signer_choices(request, engagement, form),
        "approver_rows": approver_rows,
        "people": [s for s in people if s.portal_enabled],
        "confirm": confirm,
        "can_change": can_change(request, engagement),
    }
    template = "engagements/definitions_publish.html"
    if request.htmx and request.method == "GET":
        template += "#dialog"
    ok = request.method == "GET" or (confirm is not None and not confirm["changed"])
    return render(request, template, context, status=200 if ok else 400)


# --------------------------------------------------------------------------------------------------
# Versions and diffs


def _content_sections(content: dict, states: dict | None = None) -> dict:
    """A version's content for display: terms, then stages grouped by domain, references resolved."""
    term_names = {t["key"]: t["term"] for t in content["terms"]}
    stage_names = {s["key"]: s["name"] for s in content["stages"]}
    term_links = [(t["key"], t["stage_keys"]) for t in content["terms"]]
    stage_links = [(s["key"], s["term_keys"]) for s in content["stages"]]
    stage_keys_of, term_keys_of = _linked(term_links, stage_links), _linked(stage_links, term_links)
    terms = [
        {
            **t,
            "item_key": f"term:{t['key']}",
            "refs": [stage_names.get(k, k) for k in stage_keys_of[t["key"]]],
            "state": (states or {}).get(f"term:{t['key']}"),
        }
        for t in content["terms"]
    ]
    groups: dict[str, list] = {}
    for s in sorted(content["stages"], key=lambda s: (DOMAIN_ORDER.get(s["domain"], 99), s["order"])):
        groups.setdefault(s["domain"], []).append(
            {
                **s,
                "item_key": f"stage:{s['key']}",
                "refs": [term_names.get(k, k) for k in term_keys_of[s["key"]]],
                "state": (states or {}).get(f"stage:{s['key']}"),
            }
        )
    return {
        "content_terms": terms,
        "content_stage_groups": [(d, DOMAIN_LABELS.get(d, d), rows) for d, rows in groups.items()],
    }


@org_view
def definition_version(request, engagement_uuid, definition_version_uuid):
    engagement = _engagement(request, engagement_uuid)
    version = get_object_or_404(
        DefinitionVersion.objects.for_org(request.org).select_related("published_by"),
        engagement=engagement,
        uuid=definition_version_uuid,
    )
    version.engagement = engagement
    status = definitions.version_status(version)
    signers = []
    for stakeholder in status.required:
        signature = status.signatures.get(stakeholder.pk)
        objections = [k for k, v in signature.decisions.items() if v != "yes"] if signature else []
        signers.append({"stakeholder": stakeholder, "signature": signature, "objections": len(objections)})
    others = list(
        DefinitionVersion.objects.for_org(request.org)
        .filter(engagement=engagement)
        .exclude(pk=version.pk)
        .order_by("-number")
        .values_list("number", flat=True)
    )
    latest_number = max([version.number, *others])
    return render(
        request,
        "engagements/definitions_version.html",
        {
            "engagement": engagement,
            "active_tab": "definitions",
            "version": version,
            "status": status,
            "signers": signers,
            "other_numbers": others,
            "latest_number": latest_number,
            "is_latest": latest_number == version.number,
            "contested_items": [i for i in status.items if i.contested],
            "stage_count": len(version.content["stages"]),
            "can_change": can_change(request, engagement),
            "approver_rows": _approver_rows(version, engagement),
            "people": [s for s in Stakeholder.objects.for_org(request.org).filter(client_id=engagement.client_id)
                       .order_by("name") if s.portal_enabled],
            **_content_sections(version.content, {i.key: i for i in status.items}),
        },
    )


@org_view
@require_POST
def definition_approver(request, engagement_uuid, definition_version_uuid):
    """Settle an approver role left unassigned at publishing: ask a stakeholder to sign, or waive it."""
    engagement = _engagement(request, engagement_uuid)
    version = get_object_or_404(
        DefinitionVersion.objects.for_org(request.org), engagement=engagement, uuid=definition_version_uuid
    )
    version.engagement = engagement
    role = request.POST.get("role", "")
    chosen = request.POST.get("holder", "")
    if chosen == "waive":
        holder = request.POST.get("reason", "")
    else:
        holder = Stakeholder.objects.for_org(request.org).filter(uuid=chosen).first() if _is_uuid(chosen) else None
    try:
        if holder is None:
            raise DomainError(f"Choose who holds {role or 'the role'}, or waive it with a reason.")
        signoffs.settle_approver(version=version, role=role, holder=holder, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{role}: asked {holder.name} to sign v{version.number}."
                         if isinstance(holder, Stakeholder) else f"{role}: waived on v{version.number}.")
    return redirect("engagements:definition-version", org_slug=request.org.slug,
                    engagement_uuid=engagement.uuid, definition_version_uuid=version.uuid)


def _approver_rows(version, engagement) -> list[tuple[str, object]]:
    """Each role the playbook names with its VersionApprover row of this version (None: never mapped)."""
    mapped = {a.role: a for a in version.approvers.select_related("stakeholder", "waived_by")}
    return [(role, mapped.get(role)) for role in signoffs.approver_roles(engagement)]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _display(field: str, value) -> str:
    if value in (None, "", []):
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if field == "domain":
        return str(DOMAIN_LABELS.get(value, value))
    return str(value)


def _parse_side(value: str, numbers: list[int], *, allow_draft: bool):
    if allow_draft and value == "draft":
        return "draft"
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number in numbers else None


@org_view
def definition_diff(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    numbers = list(
        DefinitionVersion.objects.for_org(request.org)
        .filter(engagement=engagement)
        .order_by("-number")
        .values_list("number", flat=True)
    )
    error = ""
    raw_from, raw_to = request.GET.get("from", ""), request.GET.get("to", "")
    if raw_from or raw_to:
        older = _parse_side(raw_from, numbers, allow_draft=False)
        newer = _parse_side(raw_to, numbers, allow_draft=True)
        if older is None or newer is None:
            error = "Choose two published versions of this engagement (or the draft) to compare."
        elif older == newer:
            error = "Choose two different versions to compare."
    elif len(numbers) >= 2:
        older, newer = numbers[1], numbers[0]
    else:
        older = newer = None
    changes = None
    if not error and older is not None and newer is not None:
        wanted = [n for n in (older, newer) if n != "draft"]
        contents = dict(
            DefinitionVersion.objects.for_org(request.org)
            .filter(engagement=engagement, number__in=wanted)
            .values_list("number", "content")
        )
        before = contents[older]
        after = definitions.draft_content(engagement) if newer == "draft" else contents[newer]
        # An added item is described from the newer side, a removed one from the older side.
        items = {(k[:-1], i["key"]): i for content in (before, after) for k in ("terms", "stages") for i in content[k]}
        changes = [
            {
                "difference": d,
                "item": items.get((d.kind, d.key), {}),
                "fields": [(FIELD_LABELS.get(f, f), _display(f, b), _display(f, a)) for f, b, a in d.fields],
            }
            for d in definitions.diff(before, after)
        ]
    return render(
        request,
        "engagements/definitions_diff.html",
        {
            "engagement": engagement,
            "active_tab": "definitions",
            "numbers": numbers,
            "older": older if not error else None,
            "newer": newer if not error else None,
            "raw_from": raw_from,
            "raw_to": raw_to,
            "changes": changes,
            "error": error,
        },
        status=400 if error else 200,
    )


# --------------------------------------------------------------------------------------------------
# Deliverables


def _deliverables_response(request, engagement, **kwargs):
    rows = _version_rows(request, engagement)
    context = {
        "engagement": engagement,
        "can_change": can_change(request, engagement),
        **_deliverables_context(request, engagement, rows, **kwargs),
    }
    return render(request, "engagements/definitions.html#deliverables", context)


@org_view
@require_POST
def artifact_request(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    form = ArtifactRequestForm(request.POST, engagement=engagement)
    notice = error = ""
    if form.is_valid():
        version = form.cleaned_data["version"]
        try:
            artifact = request_artifact(
                engagement=engagement,
                kind=form.cleaned_data["kind"],
                actor=request.user,
                source_version=version,
                request=request,
            )
        except DomainError as exc:
            error = str(exc)
        else:
            notice = f"{artifact.get_kind_display()} #{artifact.number} requested from v{version.number}."
    else:
        error = " ".join(e for errors in form.errors.values() for e in errors)
    if request.htmx:
        return _deliverables_response(request, engagement, notice=notice, error=error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect(_page_url(request, engagement, "deliverables"))


def _artifact(request, engagement, artifact_uuid, *, ready=False) -> Artifact:
    artifacts = Artifact.objects.for_org(request.org).select_related("source_version").defer("source_version__content")
    if ready:
        artifacts = artifacts.ready()
    artifact = get_object_or_404(artifacts, engagement=engagement, uuid=artifact_uuid)
    artifact.engagement = engagement
    return artifact


@org_view
def artifact_status(request, engagement_uuid, artifact_uuid):
    """The artifact's line in the deliverables list; htmx polls it every second until the render finishes."""
    engagement = _engagement(request, engagement_uuid)
    artifact = _artifact(request, engagement, artifact_uuid)
    return render(request, "engagements/definitions.html#artifact", {"engagement": engagement, "artifact": artifact})


@org_view
@require_POST
def artifact_retry(request, engagement_uuid, artifact_uuid):
    """Render a failed deliverable again, from wherever it is listed (this page, an audit, a health run)."""
    engagement = _engagement(request, engagement_uuid)
    artifact = _artifact(request, engagement, artifact_uuid)
    try:
        artifact = retry_artifact(artifact=artifact, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    artifact.engagement = engagement
    if request.htmx:
        context = {"engagement": engagement, "artifact": artifact}
        return render(request, "engagements/definitions.html#artifact", context)
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect(_page_url(request, engagement, "deliverables"))


def artifact_file_response(artifact: Artifact) -> FileResponse:
    if artifact.status != ArtifactStatus.DONE or not artifact.file:
        raise Http404("This deliverable is not ready.")
    try:
        handle = artifact.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("This deliverable's file is missing.") from exc
    return FileResponse(handle, as_attachment=True, filename=artifact.filename, content_type="application/pdf")


@org_view
def artifact_download(request, engagement_uuid, artifact_uuid):
    engagement = _engagement(request, engagement_uuid)
    return artifact_file_response(_artifact(request, engagement, artifact_uuid, ready=True))

