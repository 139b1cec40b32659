"""Delivery pages: the portfolio, a new engagement, its overview, phases, checklists, gates and decisions.

Views are thin: they resolve objects inside the organization, call engagements.progression (the one
place state changes) and render. Every page runs a fixed number of queries whatever the number of
engagements, items, checkpoints or decisions.
"""

import uuid

from django.contrib import messages
from django.db.models import Exists, F, Max, OuterRef, Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.access import org_view
from accounts.models import DomainError
from playbooks.models import Playbook

from .. import enablement, progression, signoffs
from .. import portfolio as portfolio_rows
from ..forms_delivery import CheckpointForm, EngagementForm, GateDecisionForm, PortfolioFilterForm
from ..models import (
    ChecklistItem,
    ChecklistKind,
    ClientAccount,
    Engagement,
    EngagementMember,
    EngagementStakeholder,
    EngagementStatus,
    Gate,
    GateCheckpoint,
    GateDecision,
    GateStatus,
    PhaseState,
    PhaseStatus,
    SubPhaseState,
)
from .fragments import cached_fragment, render_fragment

PAGE_SIZE = 50


# --------------------------------------------------------------------------------------------------
# Helpers


def _overview(request, engagement):
    return redirect("engagements:engagement-detail", org_slug=request.org.slug, engagement_uuid=engagement.uuid)


def _back(request, engagement):
    """Where a non-htmx action returns: the page it came from (when it is ours), else the overview."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return _overview(request, engagement)


def _engagement(request, engagement_uuid) -> Engagement:
    queryset = Engagement.objects.for_org(request.org).select_related(
        "client", "playbook_version__playbook", "current_phase"
    )
    return get_object_or_404(queryset, uuid=engagement_uuid)


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _usable_playbooks(org):
    """Library playbooks and the organization's copies that have a version to start from."""
    return (
        Playbook.objects.for_org(org)
        .annotate(latest_number=Max("versions__number"))
        .filter(latest_number__isnull=False)
        .order_by(F("organization").asc(nulls_first=True), "name")
    )


def _phase_name(spec, key: str) -> str:
    for phase in spec.phases:
        if phase.key == key:
            return phase.name
        for sub in phase.sub_phases:
            if sub.key == key:
                return f"{sub.key} {sub.name}"
    return key


def describe_effect(*, effect: str, target: str, spec, phase_name: str, skips=(), hypercare_days=None) -> str:
    """What a decision does to the engagement, in plain words."""
    where = _phase_name(spec, target) if target else ""
    skipped = [_phase_name(spec, k) for skip in skips for k in skip.keys]
    skip_text = f" Skips {', '.join(skipped)}." if skipped else ""
    if effect == "proceed":
        return f"Completes {phase_name} and starts {where or 'the next phase'}.{skip_text}"
    if effect == "complete":
        return (
            f"Completes {phase_name}: the deliverable is done.{skip_text} Phases that still apply run next; "
            "the engagement closes when none is left."
        )
    if effect == "loop_back":
        return f"Goes back to {where}: its checklist reopens and this gate must be validated again."
    if effect == "extend":
        return f"Stays in {phase_name} to keep working; the gate stays open."
    if effect == "repeat":
        return "Approves this round (for example a release); the gate opens again for the next round."
    if effect == "extend_hypercare":
        days = f"another {hypercare_days} days" if hypercare_days else "another period"
        return f"Hypercare runs {days}; the gate must be validated again."
    if effect == "on_hold":
        return "Puts the engagement on hold until someone resumes it."
    return effect


def describe_precondition(gate, option) -> str:
    """What an option needs before it can be taken, in plain words (from the playbook's option data)."""
    if not option.is_ready:
        return (
            "A reason, and the unmet checkpoints it is about. Nothing is waived: they stay unmet, and any "
            "waiver on this gate is cleared."
        )
    if option.requires is None:
        return "Every checkpoint checked, or waived with a reason."
    names = [c.text for c in progression.required_checkpoints(gate, option)]
    return "Checked, or waived with a reason: " + "; ".join(names) + "."


def _described_options(gate, engagement) -> list[dict]:
    spec = engagement.spec
    days = spec.hypercare.duration_days if spec.hypercare else None
    return [
        {
            "key": o.key,
            "label": o.label,
            "when": o.when,
            "ready": o.is_ready,
            "needs": describe_precondition(gate, o),
            "blocked": bool(progression.blockers(gate, o)),
            "closes": gate.status == GateStatus.OPEN and progression.would_close(gate, o),
            "effect": describe_effect(
                effect=o.effect,
                target=o.target or "",
                spec=spec,
                phase_name=gate.phase.name,
                skips=o.skips,
                hypercare_days=days,
            ),
            "follow_up": o.follow_up,
        }
        for o in progression.gate_options(gate)
    ]


def _editable(request, engagement, phase, sub) -> bool:
    return (
        request.membership.can_write
        and engagement.status == EngagementStatus.ACTIVE
        and phase.status not in (PhaseStatus.DONE, PhaseStatus.SKIPPED)
        and not (sub is not None and sub.skipped)
    )


def _mark_editable(request, engagement, items, phases_by_id, subs_by_id) -> None:
    for item in items:
        sub = subs_by_id.get(item.sub_phase_id)
        item.editable = _editable(request, engagement, phases_by_id[item.phase_id], sub)


def _in_our_name(engagement, items) -> None:
    """The method's source names the consultancy that wrote it ("LeanScale-recommended definitions"); in an
    engagement, the organization running it is the one recommending, so its checklist says so in its own name."""
    label = engagement.spec.consultancy_label
    if label:
        for item in items:
            item.text = item.text.replace(label, engagement.organization.name)


def _sections(sub_phases, items) -> list[dict]:
    """Group a phase's checklist: first the items without a sub-phase (by group), then each sub-phase."""
    sections: list[dict] = []
    loose: dict[str, list] = {}
    by_sub: dict[int, list] = {s.pk: [] for s in sub_phases}
    for item in items:
        if item.sub_phase_id is None:
            loose.setdefault(item.group or "Checklist", []).append(item)
        else:
            by_sub.setdefault(item.sub_phase_id, []).append(item)
    for group, group_items in loose.items():
        sections.append({"title": group, "sub": None, "items": group_items})
    for sub in sub_phases:
        sections.append({"title": f"{sub.key} {sub.name}", "sub": sub, "items": by_sub.get(sub.pk, [])})
    for section in sections:
        section["done"] = sum(1 for i in section["items"] if i.done)
    return sections


def _section_count(item) -> dict:
    """Done and total of the checklist section the item sits in (its sub-phase, or its group of loose items)."""
    checklist = ChecklistItem.objects.for_org(item.organization_id)
    siblings = checklist.filter(phase_id=item.phase_id, sub_phase_id=item.sub_phase_id)
    if item.sub_phase_id is None:
        siblings = siblings.filter(group=item.group)
    return {"done": siblings.filter(done=True).count(), "total": siblings.count()}


def _current_sub(phase) -> SubPhaseState | None:
    """The sub-phase the "Now in" badge names: the phase's first one not skipped that has an open checklist item."""
    open_items = ChecklistItem.objects.filter(sub_phase_id=OuterRef("pk"), done=False)
    return SubPhaseState.objects.filter(phase=phase, skipped=False).filter(Exists(open_items)).order_by("order").first()


def _gate_for(phase, engagement):
    if phase is None:
        return None
    checkpoints = GateCheckpoint.objects.select_related("resolved_by").order_by("order")
    gate = Gate.objects.filter(phase=phase).prefetch_related(Prefetch("checkpoints", queryset=checkpoints)).first()
    if gate is not None:
        gate.phase, gate.engagement = phase, engagement
    return gate


def _gate_context(request, engagement, gate) -> dict:
    if gate is None:
        return {"gate": None}
    checkpoints = list(gate.checkpoints.all())
    if any(c.auto == progression.HYPERCARE_KPI for c in checkpoints):
        # A checkpoint that follows a hypercare KPI shows the KPI's latest figure and verdict beside it.
        states = {k.kpi.key: k for k in enablement.hypercare_kpis(engagement)}
        for c in checkpoints:
            c.kpi_state = states.get(c.kpi)
    if any(c.auto == progression.DEFINITIONS_SIGNED for c in checkpoints):
        state = signoffs.signoff_state(engagement)  # who has signed, who is missing, and any contest
        for c in checkpoints:
            c.signoff = state if c.auto == progression.DEFINITIONS_SIGNED else None
    return {
        "gate": gate,
        "checkpoints": checkpoints,
        "blockers": progression.blockers(gate),
        "gate_actionable": request.membership.can_write
        and engagement.status == EngagementStatus.ACTIVE
        and gate.status == GateStatus.OPEN,
    }


def _phases(engagement) -> list[PhaseState]:
    return list(PhaseState.objects.filter(engagement=engagement).order_by("order"))


# --------------------------------------------------------------------------------------------------
# Portfolio and creation


@org_view
def portfolio(request):
    # The filters, the table and the pagination are the same for every member with this role, time zone and date
    # until the organization's data changes: cached (views/fragments.py), keyed by the query string as well. An htmx
    # request (a filter changed, a column sorted, a page turned) gets the same content without the page around it.
    content = cached_fragment(
        request,
        "portfolio",
        request.META.get("QUERY_STRING", ""),
        build=lambda: {"html": render_fragment(request, "engagements/_portfolio_content.html", _portfolio(request))},
    )
    if request.htmx:
        return HttpResponse(content["html"])
    return render(request, "engagements/portfolio.html", {"content": content["html"]})


def _portfolio(request) -> dict:
    form = PortfolioFilterForm(request.GET or None, organization=request.org)
    context = portfolio_rows.page(
        request.org,
        form,
        sort=request.GET.get("sort", ""),
        page_number=request.GET.get("page"),
        today=timezone.localdate(),
    )
    filtered = any(request.GET.get(name) for name in form.fields if name != "sort")
    return {**context, "filter_form": form, "filtered": filtered}


@org_view
def engagement_create(request):
    playbooks = _usable_playbooks(request.org)
    if request.method == "POST":
        source = request.POST
    elif request.htmx:
        source = request.GET
    else:
        source = {}
    playbook_uuid, client_uuid = _uuid_or_none(source.get("playbook")), _uuid_or_none(source.get("client"))
    playbook = playbooks.filter(uuid=playbook_uuid).first() if playbook_uuid else None
    version = playbook.latest_version() if playbook else None
    client = ClientAccount.objects.for_org(request.org).filter(uuid=client_uuid).first() if client_uuid else None
    options = {
        "organization": request.org,
        "playbooks": playbooks,
        "spec": version.spec if version else None,
        "client": client,
        "refresh_url": request.path,
    }

    if request.method == "POST":
        form = EngagementForm(request.POST, **options)
        if form.is_valid():
            data = form.cleaned_data
            try:
                engagement = progression.create_engagement(
                    client=data["client"],
                    playbook_version=version,
                    name=data["name"],
                    shape=data["shape"],
                    engagement_type=data["engagement_type"],
                    methodology_option=data["methodology_option"],
                    start_date=data["start_date"],
                    target_date=data["target_date"],
                    team=form.team(),
                    stakeholders=form.chosen_stakeholders(),
                    actor=request.user,
                    request=request,
                )
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"Engagement “{engagement.name}” started in {engagement.current_phase}.")
                return _overview(request, engagement)
        return render(request, "engagements/engagement_form.html", {"form": form}, status=400)

    form = EngagementForm(initial=source.dict() if hasattr(source, "dict") else {}, **options)
    template = "engagements/engagement_form.html"
    if request.htmx and request.htmx.trigger_name == "playbook":
        template += "#playbook-fields"
    elif request.htmx and request.htmx.trigger_name == "client":
        template += "#stakeholder-fields"
    return render(request, template, {"form": form})


# --------------------------------------------------------------------------------------------------
# Overview and phases


@org_view
def engagement_detail(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    phases = _phases(engagement)
    phases_by_id = {p.pk: p for p in phases}
    current = phases_by_id.get(engagement.current_phase_id)
    sub_phases = list(SubPhaseState.objects.filter(phase=current).order_by("order")) if current else []
    subs_by_id = {s.pk: s for s in sub_phases}
    items = []
    if current is not None:
        items = list(
            ChecklistItem.objects.filter(engagement=engagement, phase=current, kind=ChecklistKind.TASK)
            .select_related("done_by", "done_by_stakeholder")
            .order_by("order")
        )
    handover = list(
        ChecklistItem.objects.filter(
            engagement=engagement, kind__in=[ChecklistKind.HANDOVER, ChecklistKind.DOC_PACKAGE]
        )
        .select_related("done_by", "done_by_stakeholder", "sub_phase")
        .order_by("order")
    )
    _mark_editable(request, engagement, items, phases_by_id, subs_by_id)
    _mark_editable(request, engagement, handover, phases_by_id, {i.sub_phase_id: i.sub_phase for i in handover})
    _in_our_name(engagement, [*items, *handover])
    handover_groups: dict[str, list] = {}
    for item in handover:
        handover_groups.setdefault(item.group or item.get_kind_display(), []).append(item)

    gate = _gate_for(current, engagement)
    spec = engagement.spec
    current_sub = next(
        (s for s in sub_phases if not s.skipped and any(not i.done for i in items if i.sub_phase_id == s.pk)), None
    )
    context = {
        "engagement": engagement,
        "phases": phases,
        "current": current,
        "current_sub": current_sub,
        "sections": _sections(sub_phases, items),
        "handover_groups": handover_groups,
        "shape_name": next((s.name for s in spec.engagement_shapes if s.key == engagement.shape), engagement.shape),
        "methodology_name": next(
            (m.option for m in spec.methodology_options if m.key == engagement.methodology_option),
            engagement.methodology_option,
        ),
        "decisions": GateDecision.objects.filter(gate__engagement=engagement)
        .select_related("gate__phase", "decided_by")
        .order_by("-created_at", "-id"),
        "team": EngagementMember.objects.filter(engagement=engagement).select_related("user").order_by("role"),
        "stakeholders": EngagementStakeholder.objects.filter(engagement=engagement)
        .select_related("stakeholder")
        .order_by("stakeholder__name"),
        "can_complete_phase": current is not None
        and gate is None
        and engagement.status == EngagementStatus.ACTIVE
        and request.membership.can_write,
        **_gate_context(request, engagement, gate),
    }
    return render(request, "engagements/engagement_detail.html", context)


@org_view
def phase_detail(request, engagement_uuid, phase_uuid):
    engagement = _engagement(request, engagement_uuid)
    phase = get_object_or_404(PhaseState.objects.for_org(request.org), engagement=engagement, uuid=phase_uuid)
    phases = _phases(engagement)
    sub_phases = list(SubPhaseState.objects.filter(phase=phase).order_by("order"))
    items = list(
        ChecklistItem.objects.filter(phase=phase).select_related("done_by", "done_by_stakeholder").order_by("order")
    )
    _mark_editable(request, engagement, items, {phase.pk: phase}, {s.pk: s for s in sub_phases})
    _in_our_name(engagement, items)
    gate = _gate_for(phase, engagement)
    decisions = []
    if gate is not None:
        decisions = GateDecision.objects.filter(gate=gate).select_related("decided_by").order_by("-created_at", "-id")
    context = {
        "engagement": engagement,
        "phase": phase,
        "phases": phases,
        "sections": _sections(sub_phases, items),
        "read_only": phase.status in (PhaseStatus.DONE, PhaseStatus.SKIPPED),
        "decisions": decisions,
        **_gate_context(request, engagement, gate),
    }
    return render(request, "engagements/phase_detail.html", context)


# --------------------------------------------------------------------------------------------------
# Actions


@org_view
@require_POST
def checklist_toggle(request, engagement_uuid, item_uuid):
    item = get_object_or_404(
        ChecklistItem.objects.for_org(request.org).select_related(
            "engagement", "phase", "sub_phase", "done_by", "done_by_stakeholder"
        ),
        engagement__uuid=engagement_uuid,
        uuid=item_uuid,
    )
    wanted = request.POST.get("done")
    done = (not item.done) if wanted is None else wanted in ("1", "true", "on")
    error = ""
    try:
        progression.set_checklist_item(item=item, done=done, actor=request.user, request=request)
    except DomainError as exc:
        error = str(exc)
    if request.htmx:
        item.editable = _editable(request, item.engagement, item.phase, item.sub_phase)
        _in_our_name(item.engagement, [item])
        context = {"item": item, "engagement": item.engagement, "item_error": error, **_section_count(item)}
        badge = {"oob": True, "current_sub": _current_sub(item.phase)}
        html = render_to_string("engagements/engagement_detail.html#checklist-item", context, request=request)
        html += render_to_string("engagements/_checklist_count_oob.html", context, request=request)
        if item.phase_id == item.engagement.current_phase_id:  # the "Now in" badge shows the current phase's
            html += render_to_string("engagements/engagement_detail.html#current-sub", badge, request=request)
        return HttpResponse(html)
    if error:
        messages.error(request, error)
    return _back(request, item.engagement)


@org_view
@require_POST
def checkpoint_resolve(request, engagement_uuid, gate_uuid, checkpoint_uuid):
    checkpoint = get_object_or_404(
        GateCheckpoint.objects.for_org(request.org).select_related("gate"),
        gate__engagement__uuid=engagement_uuid,
        gate__uuid=gate_uuid,
        uuid=checkpoint_uuid,
    )
    form = CheckpointForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Choose whether to check, waive or reopen this checkpoint."
    else:
        try:
            progression.resolve_checkpoint(
                checkpoint=checkpoint,
                action=form.cleaned_data["action"],
                reason=form.cleaned_data["reason"],
                actor=request.user,
                request=request,
            )
        except DomainError as exc:
            error = str(exc)
    engagement = _engagement(request, engagement_uuid)
    if request.htmx:
        gate = _gate_for(PhaseState.objects.for_org(request.org).get(pk=checkpoint.gate.phase_id), engagement)
        context = {
            "engagement": engagement,
            "checkpoint_error": error,
            "error_checkpoint": checkpoint.pk,
            **_gate_context(request, engagement, gate),
        }
        return render(request, "engagements/engagement_detail.html#gate-panel", context)
    if error:
        messages.error(request, error)
    return _back(request, engagement)


@org_view
def gate_decide(request, engagement_uuid, gate_uuid):
    engagement = _engagement(request, engagement_uuid)
    gate = get_object_or_404(Gate.objects.for_org(request.org), engagement=engagement, uuid=gate_uuid)
    gate = _gate_for(PhaseState.objects.for_org(request.org).get(pk=gate.phase_id), engagement)
    options = _described_options(gate, engagement)
    form = GateDecisionForm(request.POST or None, options=progression.gate_options(gate), gate=gate)
    form.fields[
        "note"
    ].help_text = (
        "Why this decision, for the decision history. A decision not to proceed needs one: say what is not ready."
    )
    about = request.POST.getlist("unmet") if request.method == "POST" else []
    if request.method == "POST":
        if form.is_valid():
            try:
                decision = progression.decide_gate(
                    gate=gate,
                    option_key=form.cleaned_data["option"],
                    note=form.cleaned_data["note"],
                    release=form.cleaned_data.get("release"),
                    about=about or None,
                    actor=request.user,
                    request=request,
                )
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{gate.name}: “{decision.label}” recorded.")
                engagement.refresh_from_db()
                undone = progression.undone_handover(engagement) if not engagement.is_open else []
                if undone:
                    messages.warning(
                        request,
                        f"The engagement closed with {len(undone)} handover component(s) not done: "
                        + "; ".join(undone)
                        + ".",
                    )
                return _overview(request, engagement)
    unmet = progression.unmet_checkpoints(gate) if any(not o["ready"] for o in options) else []
    context = {
        "engagement": engagement,
        "form": form,
        "options": options,
        "unmet": unmet,
        "about": about,
        "handover_undone": progression.undone_handover(engagement) if any(o["closes"] for o in options) else [],
        # Whether to extend hypercare is read from its KPIs: show them where that decision is taken.
        "kpis": enablement.hypercare_kpis(engagement)
        if any(o.effect == "extend_hypercare" for o in progression.gate_options(gate))
        else [],
        **_gate_context(request, engagement, gate),
    }
    template = "engagements/gate_decide.html"
    if request.htmx and request.method == "GET":
        template += "#dialog"
    return render(request, template, context, status=400 if request.method == "POST" else 200)


@org_view
@require_POST
def phase_complete(request, engagement_uuid, phase_uuid):
    engagement = _engagement(request, engagement_uuid)
    phase = get_object_or_404(PhaseState.objects.for_org(request.org), engagement=engagement, uuid=phase_uuid)
    try:
        progression.complete_phase(phase=phase, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        engagement.refresh_from_db()
        if engagement.status == EngagementStatus.CLOSED:
            messages.success(request, f"{phase.name} complete. The engagement is closed.")
        else:
            messages.success(request, f"{phase.name} complete; {engagement.current_phase} is in progress.")
    return _overview(request, engagement)


@org_view
@require_POST
def engagement_resume(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    try:
        progression.resume_engagement(engagement=engagement, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Engagement resumed.")
    return _overview(request, engagement)


@org_view
def gate_decision_detail(request, engagement_uuid, gate_decision_uuid):
    engagement = _engagement(request, engagement_uuid)
    decision = get_object_or_404(
        GateDecision.objects.for_org(request.org).select_related("gate__phase", "decided_by"),
        gate__engagement=engagement,
        uuid=gate_decision_uuid,
    )
    spec = engagement.spec
    phase_spec = next((p for p in spec.phases if p.key == decision.gate.phase.key), None)
    gate_spec = phase_spec.decision_gate if phase_spec else None
    option = next((o for o in gate_spec.options if o.key == decision.option_key), None) if gate_spec else None
    effect = describe_effect(
        effect=decision.effect,
        target=decision.target,
        spec=spec,
        phase_name=decision.gate.phase.name,
        skips=option.skips if option else (),
        hypercare_days=spec.hypercare.duration_days if spec.hypercare else None,
    )
    return render(
        request,
        "engagements/gate_decision_detail.html",
        {"engagement": engagement, "decision": decision, "option": option, "effect_text": effect},
    )
