"""The playbook browser: the library and the organization's copies, versions, cloning and editing a copy.

Playbooks are always looked up through `Playbook.objects.for_org(request.org)` (the shared library plus
the organization's own copies), so another organization's copy answers 404.
"""

from django.contrib import messages
from django.db.models import Count, Max, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.access import org_view
from accounts.models import DomainError

from . import services
from .forms import PlaybookEditForm
from .loader import PlaybookFileError
from .models import Playbook, PlaybookVersion

COMPARISONS = {
    "below": "below",
    "above": "above",
    "drop_pp": "drops by more than",
    "drop_pct": "drops by more than",
    "drop_from_peak": "falls from its peak by more than",
    "share_above": "share above",
    "count_above": "count above",
    "new_value_vs_signed": "has a value that is not in the signed definitions",
    "duration_above": "stays open longer than",
    "no_increase": "does not increase",
    "target": "misses its target",
    "track": "is tracked (no red flag)",
}
UNITS = {
    "pct": "%",
    "pp": " pp",
    "points": " points",
    "count": "",
    "hours": " hours",
    "days": " days",
    "per_week": " per week",
    "ratio": "",
    "multiple": "×",
}
CADENCES = {
    "weekly": "Weekly",
    "monthly": "Monthly",
    "quarterly": "Quarterly",
    "after_first_business_cycle": "After the first business cycle",
    "every_6_12_months": "Every 6–12 months",
}
TARGET_OPS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


def _words(key: str) -> str:
    return key.replace("_", " ")


def describe_rule(rule) -> str:
    """A maintenance rule in one readable line: metric, comparison, threshold, scope and data source."""
    if rule.event:
        text = f"When {_words(rule.event)} happens"
    else:
        text = f"{_words(rule.metric).capitalize()} {COMPARISONS.get(rule.comparison, rule.comparison)}"
        if rule.threshold is not None:
            text += f" {rule.threshold:g}{UNITS.get(rule.unit, '')}"
        if rule.per:
            text += f", per {_words(rule.per)}"
        if rule.period:
            text += f", each {rule.period}"
        if rule.sustained:
            text += f", {rule.sustained.n} {rule.sustained.period}s in a row"
        if rule.target:
            t = rule.target
            of = "" if t.of == "value" else f" ({_words(t.of)})"
            text += f"; target {TARGET_OPS[t.op]} {t.value:g}{UNITS.get(t.unit, '')}{of}"
        if rule.evaluate_after:
            text += f"; judged after {rule.evaluate_after.n} {rule.evaluate_after.period}s"
    return f"{text} · source: {', '.join(_words(s) for s in rule.data_source)}"


def _playbook(request, playbook_uuid) -> Playbook:
    return get_object_or_404(Playbook.objects.for_org(request.org).select_related("cloned_from"), uuid=playbook_uuid)


@org_view
def playbook_list(request):
    latest = PlaybookVersion.objects.filter(playbook=OuterRef("pk")).order_by("-number")
    playbooks = list(
        Playbook.objects.for_org(request.org)
        .annotate(
            latest_number=Max("versions__number"),
            n_versions=Count("versions"),
            summary=Subquery(latest.annotate(s=KT("content__summary")).values("s")[:1]),
        )
        .select_related("cloned_from")
        .order_by("name")
    )
    return render(
        request,
        "playbooks/playbook_list.html",
        {
            "library": [p for p in playbooks if p.is_library],
            "own": [p for p in playbooks if not p.is_library],
        },
    )


def _render_version(request, playbook, version, *, is_latest: bool):
    versions = playbook.versions.defer("content").select_related("created_by").order_by("-number")
    spec = version.spec
    maintenance = []
    if spec.maintenance:
        maintenance = [
            {"task": t, "cadence": CADENCES.get(t.cadence, t.cadence), "rules": [describe_rule(r) for r in t.rules]}
            for t in spec.maintenance.tasks
        ]
    return render(
        request,
        "playbooks/playbook_detail.html",
        {
            "playbook": playbook,
            "version": version,
            "is_latest": is_latest,
            "spec": spec,
            "maintenance": maintenance,
            "terms": spec.definition_alignment.terms if spec.definition_alignment else [],
            "versions": versions,
        },
    )


@org_view
def playbook_detail(request, playbook_uuid):
    playbook = _playbook(request, playbook_uuid)
    version = playbook.latest_version()
    if version is None:
        return render(request, "playbooks/playbook_detail.html", {"playbook": playbook, "version": None})
    return _render_version(request, playbook, version, is_latest=True)


@org_view
def playbook_version(request, playbook_uuid, playbook_version_uuid):
    playbook = _playbook(request, playbook_uuid)
    version = get_object_or_404(PlaybookVersion.objects.filter(playbook=playbook), uuid=playbook_version_uuid)
    latest_number = playbook.versions.aggregate(n=Max("number"))["n"]
    return _render_version(request, playbook, version, is_latest=version.number == latest_number)


@org_view
@require_POST
def playbook_clone(request, playbook_uuid):
    source = _playbook(request, playbook_uuid)
    try:
        copy = services.clone_playbook(source=source, organization=request.org, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("playbooks:playbook-detail", org_slug=request.org.slug, playbook_uuid=source.uuid)
    messages.success(request, f"“{copy.name}” is your organization's copy: edit it freely; the library stays as it is.")
    return redirect("playbooks:playbook-detail", org_slug=request.org.slug, playbook_uuid=copy.uuid)


@org_view
def playbook_edit(request, playbook_uuid):
    playbook = _playbook(request, playbook_uuid)
    if playbook.is_library:
        return render(request, "playbooks/playbook_read_only.html", {"playbook": playbook}, status=403)
    latest = playbook.latest_version()
    form = PlaybookEditForm(request.POST or None, initial={"text": services.as_yaml(latest) if latest else ""})
    file_error = None
    if request.method == "POST" and form.is_valid():
        try:
            version, created = services.save_edited_playbook(
                playbook=playbook, text=form.cleaned_data["text"], actor=request.user, request=request
            )
        except PlaybookFileError as exc:
            file_error = exc
            form.fields["text"].widget.attrs["aria-describedby"] = "file-error id_text_helptext"
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            if created:
                messages.success(request, f"Saved as version {version.number}. Running engagements keep their version.")
            else:
                messages.info(request, f"Nothing changed: version {version.number} is still the latest.")
            return redirect("playbooks:playbook-detail", org_slug=request.org.slug, playbook_uuid=playbook.uuid)
    return render(
        request,
        "playbooks/playbook_edit.html",
        {"playbook": playbook, "latest": latest, "form": form, "file_error": file_error},
        status=400 if request.method == "POST" else 200,
    )
