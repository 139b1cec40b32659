"""The engagement state machine: the one place phase, gate and engagement status change.

A phase is pending, active, done or skipped; one phase at most is active. A gate opens when its phase
becomes active. Each decision option carries its precondition from the playbook: a ready option (proceed,
complete, approve a round) needs its checkpoints checked or waived with a reason; a not-ready option (hold,
extend, loop back, continue) needs a written reason and names the unmet checkpoints it is about, which stay
unmet. A waiver is for proceeding without a criterion, so a not-ready decision and a resume clear the gate's
waivers. Each decision option's effect (playbooks.schema.Effect) says where the engagement goes next:

    proceed           current phase done; the target phase (or the next pending one) becomes active
    complete          mark the option's skips; current phase done; remaining pending phases still run,
                      and the engagement closes when none is left
    loop_back         back to the target: a sub-phase of this phase (its checklist reopens) or an
                      earlier phase (it becomes active again); the gate must be re-validated
    extend            stay in the phase; the gate stays open
    repeat            the gate approves one round (e.g. a release) and opens again for the next
    extend_hypercare  hypercare runs another period; the gate must be re-validated
    on_hold           the engagement pauses until resumed

Anything else raises DomainError with a message that says why. Every change writes the activity log.
"""

import re
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import Truncator

from accounts import activity
from accounts.models import DomainError

from . import definitions, enablement, signoffs
from .models import (
    AssumptionStatus,
    ChecklistItem,
    ChecklistKind,
    CheckpointStatus,
    Engagement,
    EngagementMember,
    EngagementStakeholder,
    EngagementStatus,
    EngagementType,
    Gate,
    GateCheckpoint,
    GateDecision,
    GateStatus,
    PhaseState,
    PhaseStatus,
    Release,
    ReleaseStatus,
    SubPhaseState,
)
from .signals import engagement_created

DEFINITIONS_SIGNED = signoffs.DEFINITIONS_SIGNED
# The seed marks some documentation-package items "(for Single Project engagements)": a dedicated engagement's
# architect runs the maintenance schedule, so the customer is not handed it.
SINGLE_PROJECT_ONLY = re.compile(r"\(for single[- ]project engagements?\)", re.IGNORECASE)
HYPERCARE_KPI = enablement.HYPERCARE_KPI

NAME_LENGTH = 200  # the name columns of phases, sub-phases, gates and checklist groups


# --------------------------------------------------------------------------------------------------
# Creation: instantiate the playbook version's snapshot


@transaction.atomic
def create_engagement(
    *,
    client,
    playbook_version,
    name: str,
    start_date: date,
    actor,
    target_date: date | None = None,
    shape: str = "",
    engagement_type: str = "single_project",
    methodology_option: str = "",
    team: list[tuple] = (),
    stakeholders: list[tuple] = (),
    request=None,
) -> Engagement:
    spec = playbook_version.spec
    org = client.organization
    _validate_choice(shape, [s.key for s in spec.engagement_shapes], "shape")
    _validate_choice(methodology_option, [m.key for m in spec.methodology_options], "methodology option")
    engagement = Engagement.objects.create(
        organization=org,
        client=client,
        playbook_version=playbook_version,
        name=name,
        shape=shape,
        engagement_type=engagement_type,
        methodology_option=methodology_option,
        start_date=start_date,
        target_date=target_date,
    )
    _instantiate(engagement, spec)
    definitions.prefill(engagement)
    EngagementMember.objects.bulk_create(
        EngagementMember(organization=org, engagement=engagement, user=user, role=role) for user, role in team
    )
    for stakeholder, role in stakeholders:
        if stakeholder.client_id != client.pk:
            raise DomainError(f"{stakeholder.name} is a stakeholder of another client.")
        EngagementStakeholder.objects.create(
            organization=org, engagement=engagement, stakeholder=stakeholder, role=role
        )
    _not_part_of_shape(engagement, spec, shape)
    first = engagement.phases.filter(status=PhaseStatus.PENDING).order_by("order").first()
    _activate(engagement, first)
    activity.record(
        organization=org,
        actor=actor,
        verb="engagement.created",
        target=engagement,
        request=request,
        data={"playbook": playbook_version.playbook.key, "version": playbook_version.number},
    )
    engagement_created.send(sender=Engagement, engagement=engagement)
    return engagement


def _not_part_of_shape(engagement: Engagement, spec, shape_key: str) -> None:
    """A shape that starts at a later phase (an Embedded operation takes over a live system in Operate): the
    phases before it were never part of this engagement, so they are marked skipped saying so, not left pending
    as if they were still to come."""
    shape = next((s for s in spec.engagement_shapes if s.key == shape_key), None)
    if shape is None or shape.starts_at is None:
        return
    start = engagement.phases.get(key=shape.starts_at)
    reason = f"Not part of this engagement: {shape.name} starts in {start.name}. {shape.typical_starting_point}"
    engagement.phases.filter(order__lt=start.order, status=PhaseStatus.PENDING).update(
        status=PhaseStatus.SKIPPED, skip_reason=reason
    )


def _validate_choice(value: str, allowed: list[str], label: str) -> None:
    if value and value not in allowed:
        raise DomainError(f"Unknown {label} {value!r}; this playbook offers: {', '.join(allowed) or 'none'}.")


def _instantiate(engagement: Engagement, spec) -> None:
    org = engagement.organization
    order = 0
    items: list[ChecklistItem] = []
    handover_phase = None
    label = spec.consultancy_label

    def ours(text: str, limit: int | None = None) -> str:
        # The method's source names the consultancy that wrote it ("LeanScale-recommended", "LeanScale →
        # Customer"); in this engagement the organization running it is the one who recommends and hands over.
        # An organization's name may be 200 characters: a name column keeps its limit, cut with an ellipsis.
        text = text.replace(label, org.name) if label else text
        return Truncator(text).chars(limit) if limit else text

    def item(phase, sub, spec_item, kind=ChecklistKind.TASK, group=""):
        nonlocal order
        order += 1
        items.append(
            ChecklistItem(
                organization=org,
                engagement=engagement,
                phase=phase,
                sub_phase=sub,
                kind=kind,
                key=spec_item.key,
                text=ours(getattr(spec_item, "text", None) or spec_item.name),
                group=ours(getattr(spec_item, "group", None) or group, NAME_LENGTH),
                owner=getattr(spec_item, "owner", None) or "",
                critical=getattr(spec_item, "critical", False),
                order=order,
            )
        )

    for phase_spec in sorted(spec.phases, key=lambda p: p.order):
        phase = PhaseState.objects.create(
            organization=org,
            engagement=engagement,
            key=phase_spec.key,
            order=phase_spec.order,
            name=ours(phase_spec.name, NAME_LENGTH),
            weight=phase_spec.weight or "",
            goal=ours(phase_spec.goal or ""),
            status=PhaseStatus.PENDING if phase_spec.applies else PhaseStatus.SKIPPED,
            skip_reason="" if phase_spec.applies else ours(phase_spec.relevance_note or "Does not apply."),
        )
        for spec_item in phase_spec.activities:
            item(phase, None, spec_item, group="Activities")
        for spec_item in phase_spec.client_involvement:
            item(phase, None, spec_item, group="Client involvement")
        for n, sub_spec in enumerate(phase_spec.sub_phases, start=1):
            sub = SubPhaseState.objects.create(
                organization=org,
                engagement=engagement,
                phase=phase,
                key=sub_spec.key,
                order=phase_spec.order * 100 + n,
                name=ours(sub_spec.name, NAME_LENGTH),
                purpose=ours(sub_spec.purpose or ""),
            )
            for spec_item in sub_spec.checklist:
                item(phase, sub, spec_item)
        gate_spec = phase_spec.decision_gate
        if gate_spec is not None:
            gate = Gate.objects.create(
                organization=org,
                engagement=engagement,
                phase=phase,
                key=gate_spec.key,
                name=ours(gate_spec.name, NAME_LENGTH),
                statement=ours(gate_spec.statement or ""),
                sub_phase_key=gate_spec.sub_phase or "",
                per_release=gate_spec.per_release,
                recurring=gate_spec.recurring,
            )
            GateCheckpoint.objects.bulk_create(
                GateCheckpoint(
                    organization=org,
                    gate=gate,
                    key=c.key,
                    text=ours(c.text),
                    auto=c.auto or "",
                    kpi=c.kpi or "",
                    order=n,
                )
                for n, c in enumerate(gate_spec.checkpoints, start=1)
            )
        handover_phase = phase
    # The handover components (delivery model) and the documentation package (playbooks' external
    # handoff) are tracked item by item in the last phase, where the seeds hand over.
    if spec.handover is not None:
        for component in spec.handover.components:
            item(handover_phase, None, component, kind=ChecklistKind.HANDOVER, group="Handover components")
    if spec.handoff is not None:
        for doc in spec.handoff.external.documentation_package:
            if SINGLE_PROJECT_ONLY.search(doc.text) and engagement.engagement_type != EngagementType.SINGLE_PROJECT:
                continue
            item(handover_phase, None, doc, kind=ChecklistKind.DOC_PACKAGE, group="Documentation package")
    ChecklistItem.objects.bulk_create(items)


# --------------------------------------------------------------------------------------------------
# Moves


def _lock(engagement: Engagement) -> Engagement:
    return Engagement.objects.for_org(engagement.organization_id).select_for_update().get(pk=engagement.pk)


def _require_active(engagement: Engagement) -> None:
    if engagement.status == EngagementStatus.CLOSED:
        raise DomainError("This engagement is closed; nothing can change any more.")
    if engagement.status == EngagementStatus.ON_HOLD:
        raise DomainError("This engagement is on hold; resume it first.")


def _activate(engagement: Engagement, phase: PhaseState | None) -> None:
    now = timezone.now()
    if phase is None:
        engagement.status = EngagementStatus.CLOSED
        engagement.closed_at = now
        engagement.current_phase = None
        engagement.save(update_fields=["status", "closed_at", "current_phase"])
        schedule_check_in(engagement)
        return
    phase.status = PhaseStatus.ACTIVE
    phase.started_at = phase.started_at or now
    phase.save(update_fields=["status", "started_at"])
    Gate.objects.filter(phase=phase).update(status=GateStatus.OPEN)
    engagement.current_phase = phase
    engagement.save(update_fields=["current_phase"])
    gate = Gate.objects.filter(phase=phase).first()
    if gate is not None:
        enablement.sync_kpi_checkpoints(gate)


def _next_pending(engagement: Engagement, after: PhaseState) -> PhaseState | None:
    return engagement.phases.filter(status=PhaseStatus.PENDING, order__gt=after.order).order_by("order").first()


def _skip(engagement: Engagement, keys: list[str], reason: str) -> list[str]:
    skipped = []
    for key in keys:
        phase = engagement.phases.filter(key=key).first()
        if phase is not None:
            if phase.status == PhaseStatus.PENDING:
                phase.status, phase.skip_reason = PhaseStatus.SKIPPED, reason
                phase.save(update_fields=["status", "skip_reason"])
                skipped.append(key)
            continue
        sub = engagement.sub_phases.filter(key=key).select_related("phase").first()
        if sub is None:
            raise DomainError(f"The playbook names {key!r} to skip, but this engagement has no such part.")
        if sub.phase.status not in (PhaseStatus.DONE, PhaseStatus.SKIPPED):
            sub.skipped, sub.skip_reason = True, reason
            sub.save(update_fields=["skipped", "skip_reason"])
            skipped.append(key)
    return skipped


def _reset_gate(gate: Gate, *, status: str) -> None:
    gate.round += 1
    gate.status = status
    gate.save(update_fields=["round", "status"])
    gate.checkpoints.update(status=CheckpointStatus.OPEN, waiver_reason="", resolved_by=None, resolved_at=None)
    enablement.sync_kpi_checkpoints(gate)


def _clear_waivers(gate: Gate, *, why: str, actor, request=None) -> list[str]:
    """A waiver lets a phase proceed without a criterion; when the phase does not proceed it no longer holds."""
    waived = list(gate.checkpoints.filter(status=CheckpointStatus.WAIVED))
    for checkpoint in waived:
        checkpoint.status, checkpoint.waiver_reason = CheckpointStatus.OPEN, ""
        checkpoint.resolved_by, checkpoint.resolved_at = None, None
        checkpoint.save(update_fields=["status", "waiver_reason", "resolved_by", "resolved_at"])
        activity.record(
            organization=checkpoint.organization,
            actor=actor,
            request=request,
            target=gate.engagement,
            verb="checkpoint.waiver_cleared",
            data={"gate": gate.key, "checkpoint": checkpoint.key, "reason": why},
        )
    return [c.key for c in waived]


def _finish(phase: PhaseState) -> None:
    phase.status = PhaseStatus.DONE
    phase.completed_at = timezone.now()
    phase.save(update_fields=["status", "completed_at"])


def checklist_editable(item: ChecklistItem) -> None:
    engagement = item.engagement
    _require_active(engagement)
    if item.phase.status == PhaseStatus.SKIPPED or (item.sub_phase_id and item.sub_phase.skipped):
        raise DomainError(f"“{item.text}” belongs to a skipped part of the engagement.")
    if item.phase.status == PhaseStatus.DONE:
        raise DomainError(f"{item.phase.name} is complete; loop back to it before changing its checklist.")


TICKED_ON_BEHALF = "client_task.ticked_on_behalf"  # a consultant ticks the client's own task for them


@transaction.atomic
def set_checklist_item(*, item: ChecklistItem, done: bool, actor, request=None) -> ChecklistItem:
    item.engagement = _lock(item.engagement)
    checklist_editable(item)
    if item.done == done:
        return item
    item.done = done
    item.done_by, item.done_at = (actor, timezone.now()) if done else (None, None)
    item.done_by_stakeholder, item.auto_reason = None, ""  # a consultant's tick replaces how it was done before
    item.save(update_fields=["done", "done_by", "done_at", "done_by_stakeholder", "auto_reason"])
    activity.record(
        organization=item.organization,
        actor=actor,
        request=request,
        target=item.engagement,
        verb=(TICKED_ON_BEHALF if item.is_client_task else "checklist.checked") if done else "checklist.unchecked",
        data={"item": item.key, "text": item.text},
    )
    return item


@transaction.atomic
def resolve_checkpoint(
    *, checkpoint: GateCheckpoint, action: str, actor, reason: str = "", request=None
) -> GateCheckpoint:
    gate = checkpoint.gate
    gate.engagement = _lock(gate.engagement)
    _require_active(gate.engagement)
    if gate.status != GateStatus.OPEN:
        raise DomainError(f"{gate.name} is not open: its phase is not the one in progress.")
    reason = reason.strip()
    if action == "check":
        if checkpoint.auto == DEFINITIONS_SIGNED and not signoffs.signoff_state(gate.engagement).complete:
            raise DomainError(
                "This checkpoint checks itself when the client signs the Definition Alignment Document (every "
                "approver role the playbook names, on the current version); it cannot be ticked by hand. Waive it "
                "with a reason if you must."
            )
        if checkpoint.auto == HYPERCARE_KPI and not enablement.kpi_meets_target(gate.engagement, checkpoint.kpi):
            raise DomainError(
                "This checkpoint checks itself when the hypercare KPI it names is recorded at its target "
                "(on the Enablement page); it cannot be ticked by hand. Waive it with a reason if you must."
            )
        checkpoint.status, checkpoint.waiver_reason = CheckpointStatus.CHECKED, ""
    elif action == "waive":
        if not reason:
            raise DomainError("A waiver needs a written reason.")
        checkpoint.status, checkpoint.waiver_reason = CheckpointStatus.WAIVED, reason
    elif action == "reopen":
        checkpoint.status, checkpoint.waiver_reason = CheckpointStatus.OPEN, ""
    else:
        raise DomainError(f"Unknown checkpoint action {action!r}.")
    checkpoint.resolved_by = actor if action != "reopen" else None
    checkpoint.resolved_at = timezone.now() if action != "reopen" else None
    checkpoint.save(update_fields=["status", "waiver_reason", "resolved_by", "resolved_at"])
    activity.record(
        organization=checkpoint.organization,
        actor=actor,
        request=request,
        target=gate.engagement,
        verb=f"checkpoint.{action}",
        data={"gate": gate.key, "checkpoint": checkpoint.key, "reason": reason},
    )
    return checkpoint


def gate_options(gate: Gate) -> list:
    phase_spec = next(p for p in gate.engagement.spec.phases if p.key == gate.phase.key)
    return list(phase_spec.decision_gate.options)


def required_checkpoints(gate: Gate, option) -> list[GateCheckpoint]:
    """The checkpoints a ready option needs checked or waived (a not-ready option needs none)."""
    if not option.is_ready:
        return []
    checkpoints = list(gate.checkpoints.all())
    return checkpoints if option.requires is None else [c for c in checkpoints if c.key in option.requires]


def unmet_checkpoints(gate: Gate) -> list[GateCheckpoint]:
    """Checkpoints not actually met: open, or waived (a waiver lets the phase proceed without the criterion)."""
    return [c for c in gate.checkpoints.all() if c.status != CheckpointStatus.CHECKED]


def blockers(gate: Gate, option=None) -> list[str]:
    """Why ``option`` cannot be taken now (without one: why the gate cannot be passed); empty when it can.

    A not-ready option is never blocked by checkpoints: it is the decision to take when they are unmet."""
    reasons = []
    if gate.status != GateStatus.OPEN:
        reasons.append(f"{gate.name} is not open: its phase is not the one in progress.")
    if option is not None and not option.is_ready:
        return reasons
    required = list(gate.checkpoints.all()) if option is None else required_checkpoints(gate, option)
    open_checkpoints = [c.text for c in required if c.status == CheckpointStatus.OPEN]
    if open_checkpoints:
        reasons.append(
            f"{len(open_checkpoints)} validation checkpoint(s) are neither checked nor waived: "
            + "; ".join(open_checkpoints[:3])
            + ("…" if len(open_checkpoints) > 3 else "")
        )
    if any(c.auto == DEFINITIONS_SIGNED for c in required):
        latest = gate.engagement.architecture_versions.order_by("-number").first()
        if latest is not None:
            assumed = latest.items.filter(critical=True, status=AssumptionStatus.ASSUMED).count()
            if assumed:
                reasons.append(
                    f"{assumed} critical item(s) in architecture v{latest.number} are still assumed; "
                    "confirm or correct them in the refinement loop first."
                )
    return reasons


def _named_unmet(gate: Gate, option, about: list[str] | None) -> list[GateCheckpoint]:
    """The unmet checkpoints a not-ready decision is about: those named, else the option's usual ones that are
    unmet, else every unmet one."""
    unmet = unmet_checkpoints(gate)
    if not unmet:
        raise DomainError(
            f"Every checkpoint of {gate.name} is checked, so “{option.label}” has nothing unmet to name. "
            "Reopen the checkpoint that is not really met, or take a decision that moves on."
        )
    if about is None:
        usual = [c for c in unmet if c.key in option.about]
        return usual or unmet
    by_key = {c.key: c for c in unmet}
    met = [k for k in about if k not in by_key]
    if met:
        raise DomainError(
            f"“{option.label}” names only unmet checkpoints; these are checked or unknown: {', '.join(met)}."
        )
    if not about:
        raise DomainError(f"Name the unmet checkpoint(s) “{option.label}” is about.")
    return [c for c in unmet if c.key in about]


@transaction.atomic
def decide_gate(
    *,
    gate: Gate,
    option_key: str,
    actor,
    note: str = "",
    release: Release | None = None,
    about: list[str] | None = None,
    request=None,
) -> GateDecision:
    """Take one of the gate's options. ``about``: for a not-ready option, the keys of the unmet checkpoints
    it is about (None: the option's usual ones that are unmet)."""
    engagement = _lock(gate.engagement)
    gate = Gate.objects.for_org(gate.organization_id).select_for_update().select_related("phase").get(pk=gate.pk)
    gate.engagement = engagement
    _require_active(engagement)
    options = {o.key: o for o in gate_options(gate)}
    option = options.get(option_key)
    if option is None:
        raise DomainError(f"{gate.name} has no option {option_key!r}; choose one of: {', '.join(options)}.")
    problems = blockers(gate, option)
    if problems:
        raise DomainError(" ".join(problems))
    note = note.strip()
    unmet: list[GateCheckpoint] = []
    if not option.is_ready:
        if not note:
            raise DomainError(f"“{option.label}” needs a reason: say what is not ready yet.")
        unmet = _named_unmet(gate, option, about)

    decision = GateDecision.objects.create(
        organization=engagement.organization,
        gate=gate,
        round=gate.round,
        option_key=option.key,
        label=option.label,
        effect=option.effect,
        target=option.target or "",
        note=note,
        ready=option.is_ready,
        unmet=[{"key": c.key, "text": c.text} for c in unmet],
        decided_by=actor,
    )
    cleared: list[str] = []
    if not option.is_ready:
        cleared = _clear_waivers(
            gate,
            why=f"{option.label}: the phase did not proceed, so the waiver no longer holds.",
            actor=actor,
            request=request,
        )
    phase = gate.phase
    skipped: list[str] = []
    for skip in option.skips:
        skipped += _skip(engagement, skip.keys, skip.reason)

    effect = option.effect
    if effect in ("proceed", "complete"):
        _finish(phase)
        gate.status = GateStatus.DECIDED
        gate.save(update_fields=["status"])
        if release is not None:
            _approve_release(release, decision)
        target = None
        if effect == "proceed" and option.target:
            target = engagement.phases.filter(key=option.target, status=PhaseStatus.PENDING).first()
        _activate(engagement, target or _next_pending(engagement, phase))
    elif effect == "loop_back":
        _loop_back(engagement, gate, option.target)
    elif effect == "repeat":
        if release is not None:
            _approve_release(release, decision)
        _reset_gate(gate, status=GateStatus.OPEN)
    elif effect == "extend_hypercare":
        _extend_hypercare(engagement, option.target)
        _reset_gate(gate, status=GateStatus.OPEN)
    elif effect == "on_hold":
        engagement.status = EngagementStatus.ON_HOLD
        engagement.save(update_fields=["status"])
    elif effect != "extend":
        raise DomainError(f"Unknown decision effect {effect!r} in the playbook.")

    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="gate.decided",
        data={
            "gate": gate.key,
            "option": option.key,
            "effect": effect,
            "target": option.target or "",
            "skipped": skipped,
            "note": note,
            "unmet": [c.key for c in unmet],
            "waivers_cleared": cleared,
            # Closing with handover components undone is allowed, but the record says so.
            "handover_undone": undone_handover(engagement) if engagement.status == EngagementStatus.CLOSED else [],
        },
    )
    return decision


def _loop_back(engagement: Engagement, gate: Gate, target: str) -> None:
    phase = gate.phase
    sub = engagement.sub_phases.filter(key=target).select_related("phase").first()
    if sub is not None and sub.phase_id == phase.pk:
        # Redo a sub-phase of this phase: its checklist reopens and the gate must be re-validated.
        sub.checklist.update(done=False, done_by=None, done_at=None)
        phase.iteration += 1
        phase.save(update_fields=["iteration"])
        _reset_gate(gate, status=GateStatus.OPEN)
        return
    target_phase = sub.phase if sub is not None else engagement.phases.filter(key=target).first()
    if target_phase is None or target_phase.order > phase.order:
        raise DomainError(f"Cannot loop back to {target!r}: it is not at or before {phase.name}.")
    # Back to an earlier phase: everything from it up to here becomes pending again, gates re-validate.
    for reopened in engagement.phases.filter(order__gte=target_phase.order, order__lte=phase.order):
        reopened.status = PhaseStatus.PENDING
        reopened.completed_at = None
        reopened.save(update_fields=["status", "completed_at"])
        reopened_gate = Gate.objects.filter(phase=reopened).first()
        if reopened_gate is not None:
            _reset_gate(reopened_gate, status=GateStatus.PENDING)
    target_phase.iteration += 1
    target_phase.save(update_fields=["iteration"])
    _activate(engagement, PhaseState.objects.for_org(target_phase.organization_id).get(pk=target_phase.pk))


def _extend_hypercare(engagement: Engagement, target: str | None) -> None:
    hypercare = engagement.spec.hypercare
    sub = engagement.sub_phases.filter(key=target or (hypercare.sub_phase if hypercare else "")).first()
    if sub is not None and sub.skipped:
        raise DomainError("Hypercare was skipped for this engagement, so it cannot be extended.")
    days = hypercare.duration_days if hypercare else 14
    start = engagement.hypercare_end or engagement.hypercare_start or timezone.localdate()
    engagement.hypercare_start = engagement.hypercare_start or start
    engagement.hypercare_end = start + timedelta(days=days)
    engagement.save(update_fields=["hypercare_start", "hypercare_end"])


def _approve_release(release: Release, decision: GateDecision) -> None:
    if release.engagement_id != decision.gate.engagement_id:
        raise DomainError("That release belongs to another engagement.")
    release.status = ReleaseStatus.RELEASED
    release.released_on = release.released_on or timezone.localdate()
    release.gate_decision = decision
    release.save(update_fields=["status", "released_on", "gate_decision", "updated_at"])


@transaction.atomic
def complete_phase(*, phase: PhaseState, actor, request=None) -> PhaseState:
    """Close a phase that has no decision gate (e.g. Handoff) once its checklist is done."""
    engagement = _lock(phase.engagement)
    _require_active(engagement)
    phase.refresh_from_db()
    if phase.status != PhaseStatus.ACTIVE:
        raise DomainError(f"{phase.name} is not the phase in progress.")
    if Gate.objects.filter(phase=phase).exists():
        raise DomainError(f"{phase.name} ends at its decision gate; decide the gate instead.")
    open_items = phase.checklist.filter(done=False).exclude(sub_phase__skipped=True).count()
    if open_items:
        raise DomainError(f"{open_items} checklist item(s) in {phase.name} are still open.")
    _finish(phase)
    _activate(engagement, _next_pending(engagement, phase))
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="phase.completed",
        data={"phase": phase.key},
    )
    return phase


@transaction.atomic
def resume_engagement(*, engagement: Engagement, actor, request=None) -> Engagement:
    engagement = _lock(engagement)
    if engagement.status != EngagementStatus.ON_HOLD:
        raise DomainError("Only an engagement on hold can be resumed.")
    engagement.status = EngagementStatus.ACTIVE
    engagement.save(update_fields=["status"])
    gate = (
        Gate.objects.for_org(engagement.organization_id)
        .filter(phase_id=engagement.current_phase_id, status=GateStatus.OPEN)
        .first()
    )
    if gate is not None:
        gate.engagement = engagement
        _clear_waivers(gate, why="Resumed after a hold: the waiver no longer holds.", actor=actor, request=request)
    activity.record(
        organization=engagement.organization, actor=actor, request=request, target=engagement, verb="engagement.resumed"
    )
    return engagement


def schedule_check_in(engagement: Engagement) -> None:
    """Record the handoff; a dedicated engagement also gets its refinement check-in, about a quarter after
    go-live (the retention seed's dedicated path, 002 4d). Go-live is the start of hypercare (post-launch);
    without one, the handoff. Single-project engagements follow the upsell path and have no check-in."""
    engagement.handed_off_on = timezone.localdate()
    retention = engagement.spec.retention
    if retention is not None and engagement.engagement_type == EngagementType.DEDICATED:
        days = retention.dedicated.check_in_days or 90
        engagement.check_in_date = (engagement.hypercare_start or engagement.handed_off_on) + timedelta(days=days)
    engagement.save(update_fields=["handed_off_on", "check_in_date"])


def undone_handover(engagement: Engagement) -> list[str]:
    """The handover components (delivery model) not yet ticked: closing with these undone deserves a warning."""
    undone = (
        engagement.checklist.filter(kind=ChecklistKind.HANDOVER, done=False)
        .exclude(phase__status=PhaseStatus.SKIPPED)
        .order_by("order")
    )
    return list(undone.values_list("text", flat=True))


def would_close(gate: Gate, option) -> bool:
    """Taking ``option`` closes the engagement: it finishes the phase and no phase is left to run."""
    if option.effect not in ("proceed", "complete"):
        return False
    skipped = {key for skip in option.skips for key in skip.keys}
    later = gate.engagement.phases.filter(status=PhaseStatus.PENDING, order__gt=gate.phase.order)
    return not later.exclude(key__in=skipped).exists()
