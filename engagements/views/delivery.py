"""Delivery pages: the portfolio, a new engagement, its overview, phases, checklists, gates and decisions.

Views are thin: they resolve objects inside the organization, call engagements.progression (the one
place state changes) and render. Every page runs a fixed number of queries whatever the number of
engagements, items, checkpoints or decisions.
"""

import uuid
from html import escape  # what django.utils.html.escape does, without its lazy-string wrapper (~4x slower)

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import CharField, F, IntegerField, Max, Prefetch
from django.db.models.expressions import RawSQL
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from accounts.access import org_view
from accounts.models import DomainError
from playbooks.models import Playbook

from .. import enablement, progression
from ..forms_delivery import CheckpointForm, EngagementForm, GateDecisionForm, PortfolioFilterForm
from ..models import (
    ChecklistItem,
    ChecklistKind,
    ClientAccount,
    DecisionStatus,
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
    RiskStatus,
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
    sections, loose = [], {}
    by_sub = {s.pk: [] for s in sub_phases}
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


# A stand-in for an engagement's uuid: the detail URL is reversed once, then each row fills in its uuid.
_ANY_UUID = "00000000-0000-0000-0000-000000000000"


# The portfolio's columns beyond the engagement's own fields: (SQL, params, field) of correlated subqueries on the
# outer engagement row (a top-level query keeps the table's name, "engagements_engagement", as its alias).
# Written as SQL on purpose: built from ORM expressions (Subquery, OuterRef, Exists, joined F()), the same query
# cost about 2 ms of building and compiling on every request, more than the database takes to run it; and the
# planner settles these small subqueries faster than a five-table join. Constant SQL, run by SQLite and PostgreSQL.
PORTFOLIO_COLUMNS = {
    # The names of the client, the playbook (and its version's number) and the current phase.
    "client_name": (
        'SELECT c."name" FROM "engagements_clientaccount" c WHERE c."id" = "engagements_engagement"."client_id"',
        [],
        CharField(),
    ),
    "playbook_name": (
        'SELECT p."name" FROM "playbooks_playbookversion" v '
        'INNER JOIN "playbooks_playbook" p ON v."playbook_id" = p."id" '
        'WHERE v."id" = "engagements_engagement"."playbook_version_id"',
        [],
        CharField(),
    ),
    "playbook_number": (
        'SELECT v."number" FROM "playbooks_playbookversion" v '
        'WHERE v."id" = "engagements_engagement"."playbook_version_id"',
        [],
        IntegerField(),
    ),
    "phase_name": (
        'SELECT s."name" FROM "engagements_phasestate" s WHERE s."id" = "engagements_engagement"."current_phase_id"',
        [],
        CharField(),
    ),
    # "<key> <name>" of the current phase's first sub-phase that is not skipped and still has an open checklist
    # item (keys have no spaces: playbooks.schema.KEY_PATTERN).
    "current_sub": (
        """SELECT s."key" || ' ' || s."name" FROM "engagements_subphasestate" s
        WHERE s."phase_id" = "engagements_engagement"."current_phase_id" AND NOT s."skipped" AND EXISTS (
            SELECT 1 FROM "engagements_checklistitem" c WHERE c."sub_phase_id" = s."id" AND NOT c."done"
        ) ORDER BY s."order" LIMIT 1""",
        [],
        CharField(),
    ),
    # "<status> <name>" of the first open or pending gate, by phase order, of a phase that is not skipped.
    "next_gate": (
        """SELECT g."status" || ' ' || g."name" FROM "engagements_gate" g
        INNER JOIN "engagements_phasestate" p ON g."phase_id" = p."id"
        WHERE g."engagement_id" = "engagements_engagement"."id" AND g."status" IN (%s, %s) AND p."status" <> %s
        ORDER BY p."order" LIMIT 1""",
        [GateStatus.OPEN.value, GateStatus.PENDING.value, PhaseStatus.SKIPPED.value],
        CharField(),
    ),
    "open_decisions": (
        """SELECT COUNT(*) FROM "engagements_decisionlogentry" d
        WHERE d."engagement_id" = "engagements_engagement"."id" AND d."status" = %s""",
        [DecisionStatus.NEEDED.value],
        IntegerField(),
    ),
    "open_risks": (
        """SELECT COUNT(*) FROM "engagements_risk" r
        WHERE r."engagement_id" = "engagements_engagement"."id" AND r."status" = %s""",
        [RiskStatus.OPEN.value],
        IntegerField(),
    ),
}


def _split(value):
    """("<first word>", "<the rest>") of a "<key> <name>" column, (None, None) when there is none."""
    if value is None:
        return None, None
    first, _, rest = value.partition(" ")
    return first, rest


_STATUS_BADGE = {EngagementStatus.ACTIVE: "badge ok", EngagementStatus.ON_HOLD: "badge warn"}
_STATUS_LABEL = dict(EngagementStatus.choices)  # get_status_display() rebuilds this dict on every call
_NONE, _ZERO = '<span class="muted">—</span>', '<span class="muted">0</span>'


def _portfolio_row(e) -> str:
    """One row of the portfolio table, as HTML. Built here rather than in the template: fifty rows of nine cells
    through the template engine took longer than all the rest of the page. Same markup; every value escaped."""
    if e.current_phase_id is None:
        phase = _NONE
    elif e.current_sub_key:
        sub = f"{escape(e.current_sub_key)} {escape(e.current_sub_name)}"
        phase = f'{escape(e.phase_name)}<br><span class="muted small">{sub}</span>'
    else:
        phase = escape(e.phase_name)
    if not e.next_gate_name:
        gate = _NONE
    elif e.next_gate_status == GateStatus.OPEN:
        gate = f'{escape(e.next_gate_name)}<br><span class="muted small">awaiting decision</span>'
    else:
        gate = escape(e.next_gate_name)
    decisions = f'<span class="badge warn">{e.open_decisions}</span>' if e.open_decisions else _ZERO
    risks = f'<span class="badge bad">{e.open_risks}</span>' if e.open_risks else _ZERO
    days = e.days_since_update
    if days is None:
        update = '<span class="muted">Never</span>'
    elif days == 0:
        update = "Today"
    else:
        overdue = days > 7 and e.status == EngagementStatus.ACTIVE
        title = ' class="overdue" title="More than a week: the weekly update is due"' if overdue else ""
        update = f"<span{title}>{days} day{'' if days == 1 else 's'} ago</span>"
    status = escape(str(_STATUS_LABEL.get(e.status, e.status)))
    return mark_safe(  # noqa: S308 - every value above and below goes through escape()
        f"""<tr>
      <td><a href="{escape(e.detail_url)}"><strong>{escape(e.name)}</strong></a></td>
      <td>{escape(e.client_name)}</td>
      <td>{escape(e.playbook_name)} <span class="muted">v{e.playbook_number}</span></td>
      <td>{phase}</td>
      <td>{gate}</td>
      <td class="num">{decisions}</td>
      <td class="num">{risks}</td>
      <td>{update}</td>
      <td><span class="{_STATUS_BADGE.get(e.status, "badge ")}">{status}</span></td>
    </tr>"""
    )


@org_view
def portfolio(request):
    # The filters, the table and the pagination are the same for every member with this role, time zone and date
    # until the organization's data changes: cached (views/fragments.py), keyed by the query string as well.
    content = cached_fragment(
        request,
        "portfolio",
        request.META.get("QUERY_STRING", ""),
        build=lambda: {"html": render_fragment(request, "engagements/_portfolio_content.html", _portfolio(request))},
    )
    return render(request, "engagements/portfolio.html", {"content": content["html"]})


def _portfolio(request) -> dict:
    form = PortfolioFilterForm(request.GET or None, organization=request.org)
    order = ("-created_at", "-id")
    # Paginate the filtered engagements' ids, then compute the columns for that page's rows only: with OFFSET,
    # the subqueries would otherwise also run for every skipped row.
    ids = form.filter(Engagement.objects.for_org(request.org)).order_by(*order).values("pk")
    page = Paginator(ids, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = (
        Engagement.objects.for_org(request.org)
        .filter(pk__in=page.object_list)
        .only("uuid", "name", "status", "current_phase_id", "last_update_published_at")
        .annotate(
            **{name: RawSQL(sql, params, field) for name, (sql, params, field) in PORTFOLIO_COLUMNS.items()},  # noqa: S611
        )
        .order_by(*order)
    )
    page.object_list = list(rows)
    today = timezone.localdate()  # days since the last update: calendar days in the viewer's time zone
    detail_prefix, _, detail_suffix = reverse(
        "engagements:engagement-detail", args=[request.org.slug, _ANY_UUID]
    ).rpartition(_ANY_UUID)
    for engagement in page.object_list:
        published = engagement.last_update_published_at
        engagement.days_since_update = (today - timezone.localdate(published)).days if published else None
        engagement.detail_url = f"{detail_prefix}{engagement.uuid}{detail_suffix}"
        engagement.current_sub_key, engagement.current_sub_name = _split(engagement.current_sub)
        engagement.next_gate_status, engagement.next_gate_name = _split(engagement.next_gate)
        engagement.row = _portfolio_row(engagement)
    filtered = any(request.GET.get(name) for name in form.fields)
    return {"page": page, "filter_form": form, "filtered": filtered}


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
            .select_related("done_by")
            .order_by("order")
        )
    handover = list(
        ChecklistItem.objects.filter(
            engagement=engagement, kind__in=[ChecklistKind.HANDOVER, ChecklistKind.DOC_PACKAGE]
        )
        .select_related("done_by", "sub_phase")
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
    items = list(ChecklistItem.objects.filter(phase=phase).select_related("done_by").order_by("order"))
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
        ChecklistItem.objects.for_org(request.org).select_related("engagement", "phase", "sub_phase", "done_by"),
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
        return HttpResponse(
            render_to_string("engagements/engagement_detail.html#checklist-item", context, request=request)
            + render_to_string("engagements/_checklist_count_oob.html", context, request=request)
        )
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
    form.fields["note"].help_text = (
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
