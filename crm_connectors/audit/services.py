"""Audit runs, findings and the Current State Audit PDF: the only place their state changes.

- `start_audit` creates a queued run (at most one queued or running per client: a second start returns the
  first run) and queues `crm_connectors.tasks.run_audit` on commit.
- `execute_run` claims a queued run through the run lifecycle (`gtm_ops.runs`, `AUDITS`: a conditional UPDATE
  and a lease its heartbeat extends), reads the CRM through the engine, runs the catalogue and stores the
  findings. A CRM error ends the run `failed` (no rule could be evaluated) or `partial` (some could), with the
  reason in plain words. The lifecycle's sweep fails runs whose worker died; `sweep_stuck_runs` also fails
  the runs no worker ever picked up.
- Finding states: open, acknowledged, explained, accepted as a risk. A later run that finds the same thing
  (same fingerprint: rule, object, field or pipeline) keeps an acknowledged or explained state. An accepted
  risk is kept while the offending values are the same (or fewer); when new values appear it reopens: the
  seed's Rogue Stage Audit treats any new value as a new governance issue (S1 §4a), and the risk that was
  accepted did not cover it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from deliverables import services as pipeline
from deliverables.models import ArtifactKind
from engagements.models import ClientAccount, Engagement

from ..base import CrmError
from ..crypto import SecretUnreadable
from ..models import (
    ACTIVE_AUDIT_STATUSES,
    AUDITS,
    FINISHED_AUDIT_STATUSES,
    AuditRun,
    AuditStatus,
    CrmConnection,
    Finding,
    FindingState,
)
from . import engine, rules

logger = logging.getLogger(__name__)

TRANSITIONS: dict[str, set[str]] = {
    FindingState.OPEN: {FindingState.ACKNOWLEDGED, FindingState.EXPLAINED, FindingState.ACCEPTED_RISK},
    FindingState.ACKNOWLEDGED: {FindingState.OPEN, FindingState.EXPLAINED, FindingState.ACCEPTED_RISK},
    FindingState.EXPLAINED: {FindingState.OPEN, FindingState.ACKNOWLEDGED, FindingState.ACCEPTED_RISK},
    FindingState.ACCEPTED_RISK: {FindingState.OPEN, FindingState.ACKNOWLEDGED, FindingState.EXPLAINED},
}
NEEDS_NOTE: dict[str, str] = {
    FindingState.EXPLAINED: "an explanation",
    FindingState.ACCEPTED_RISK: "why the risk is accepted",
}


def thresholds() -> dict[str, float]:
    return {**rules.THRESHOLDS, **getattr(settings, "CRM_AUDIT_THRESHOLDS", {})}


# ---------------------------------------------------------------- engagements and signed architecture


def current_engagement(client: ClientAccount) -> Engagement | None:
    """The client's engagement an audit belongs to when none is named: the newest open one."""
    return Engagement.objects.for_org(client.organization).filter(client=client).open().order_by("-created_at").first()


def signed_architecture(engagement: Engagement | None) -> tuple[Any, list[dict]]:
    """The latest definitions version if it is signed, and its stages that name CRM values."""
    if engagement is None:
        return None, []
    from engagements import definitions

    version = definitions.latest_version(engagement)
    if version is None or version.signed_at is None:
        return None, []
    stages = [
        s
        for s in version.content.get("stages", [])
        if s.get("crm_object") and s.get("crm_field") and s.get("crm_values")
    ]
    return version, stages


# ---------------------------------------------------------------- starting and sweeping


def sweep_stuck_runs(now=None) -> int:
    """Fail runs whose worker died (lease expired) and runs no worker ever picked up. Returns how many."""
    return AUDITS.sweep(now)


def start_audit(
    *,
    client: ClientAccount,
    actor,
    engagement: Engagement | None = None,
    deep: bool = False,
    request=None,
    queue: bool = True,
) -> tuple[AuditRun, bool]:
    """Create a queued run for the client's active CRM connection and queue it on commit.

    Returns (run, created). While a run of this client is queued or running, that run is returned and
    nothing new starts. Raises DomainError when there is no connection or the engagement is another client's.
    """
    sweep_stuck_runs()
    org = client.organization
    if engagement is not None and engagement.client_id != client.pk:
        raise DomainError(f"{engagement} is not an engagement of {client}.")
    with transaction.atomic():
        # One start at a time per client.
        ClientAccount.objects.for_org(org).select_for_update().filter(pk=client.pk).first()
        existing = AuditRun.objects.for_org(org).filter(client=client).active().first()
        if existing is not None:
            return existing, False
        crm = CrmConnection.objects.for_org(org).active().filter(client=client).first()
        if crm is None:
            raise DomainError(f"Connect {client}'s CRM first: there is nothing to audit yet.")
        try:
            with transaction.atomic():
                run = AuditRun.objects.create(
                    organization=org,
                    client=client,
                    engagement=engagement or current_engagement(client),
                    connection=crm,
                    platform=crm.kind,
                    deep=deep,
                    requested_by=actor,
                )
        except IntegrityError:  # another start won the race (a database without row locks)
            return AuditRun.objects.for_org(org).filter(client=client).active().get(), False
        activity.record(
            organization=org,
            actor=actor,
            request=request,
            target=client,
            verb="crm_audit.started",
            data={"run": str(run.uuid), "platform": crm.kind, "deep": deep},
        )
        if queue:
            from ..tasks import run_audit  # the task module imports this one

            transaction.on_commit(lambda: run_audit.delay(run.pk))
    return run, True


# ---------------------------------------------------------------- running


def execute_run(run_id: int, *, connector_options: dict[str, Any] | None = None, heartbeat: bool = True):
    """Claim a queued run and audit the CRM. Returns the run, or None when another worker has it."""
    token = AUDITS.claim(run_id, started_at=timezone.now(), progress=1)
    if token is None:
        return None
    run = AuditRun.objects.for_task(run_id).select_related("client", "engagement", "connection", "organization").get()
    try:
        if heartbeat:
            with AUDITS.beating(run_id, token):
                _audit(run, connector_options or {})
        else:
            _audit(run, connector_options or {})
    except Exception as exc:  # a bug must not leave the run "running": say so on the row
        logger.exception("Audit run %s failed", run_id)
        _finish(run, AuditStatus.FAILED, f"GTM Ops could not finish the audit ({type(exc).__name__}). Try again.")
    run.refresh_from_db()
    return run


def _finish(run: AuditRun, status: str, error: str = "", **fields: Any) -> bool:
    """End the run this worker holds; False when it no longer holds it (the sweep gave up on it: dropped)."""
    return AUDITS.finish(run.pk, run.worker, status, error, **fields)


def previous_run(run: AuditRun) -> AuditRun | None:
    """The client's last run with findings before this one."""
    return (
        AuditRun.objects.for_org(run.organization)
        .filter(client_id=run.client_id, status__in=FINISHED_AUDIT_STATUSES, created_at__lt=run.created_at)
        .exclude(pk=run.pk)
        .order_by("-created_at")
        .first()
    )


def _baseline(run: AuditRun, version) -> AuditRun | None:
    """The first run after the architecture was signed: the labels the consultants saw at sign-off."""
    if version is None or version.signed_at is None:
        return None
    return (
        AuditRun.objects.for_org(run.organization)
        .filter(client_id=run.client_id, status__in=FINISHED_AUDIT_STATUSES, started_at__gte=version.signed_at)
        .exclude(pk=run.pk)
        .filter(platform=run.platform, created_at__lt=run.created_at)
        .order_by("created_at")
        .first()
    )


def _audit(run: AuditRun, options: dict[str, Any]) -> None:
    crm = run.connection
    if crm is None:
        _finish(run, AuditStatus.FAILED, "The CRM connection of this audit was removed; connect the CRM again.")
        return
    version, signed = signed_architecture(run.engagement)
    previous = previous_run(run)
    baseline = _baseline(run, version)
    try:
        connector = crm.connector(**options)
    except (CrmError, SecretUnreadable) as exc:
        _finish(run, AuditStatus.FAILED, str(exc))
        return

    def on_progress(percent: int, calls: int) -> None:
        AUDITS.held(run.pk, run.worker).update(
            progress=max(1, min(percent, 99)), api_calls=calls, lease_until=AUDITS.lease()
        )

    try:
        snapshot = engine.collect(
            connector,
            deep=run.deep,
            mapped=[(s["crm_object"], s["crm_field"]) for s in signed],
            stale_days=int(thresholds()["stale_days"]),
            on_progress=on_progress,
        )
    finally:
        connector.close()
    ctx = rules.Context(
        thresholds=thresholds(),
        signed=signed or None,
        signed_version=version.number if version is not None else None,
        # "new since the last audit" only means something for the same CRM
        previous=rules.Snapshot(previous.snapshot)
        if previous is not None and previous.connection_id == run.connection_id
        else None,
        baseline=rules.Snapshot(baseline.snapshot) if baseline is not None else None,
    )
    evaluation = rules.evaluate(snapshot, ctx)
    status, error = _verdict(snapshot, evaluation)
    summary = {
        "evaluated": evaluation.evaluated,
        "not_evaluated": evaluation.not_evaluated,
        "not_run": evaluation.not_run,
        "severities": _severity_counts(evaluation.hits),
        "cost": snapshot.get("cost", {}),
        "deep_estimate": None if run.deep else engine.deep_cost_estimate(snapshot),
        "previous_run": str(previous.uuid) if previous is not None else None,
    }
    with transaction.atomic():
        if not _finish(
            run,
            status,
            error,
            progress=100,
            api_calls=snapshot.get("calls", connector.calls_spent),
            snapshot=snapshot,
            summary=summary,
            signed_version=ctx.signed_version,
        ):
            return
        if status != AuditStatus.FAILED:
            _store_findings(run, evaluation.hits)
        activity.record(
            organization=run.organization,
            actor_label="GTM Ops audit",
            target=run.client,
            verb="crm_audit.finished",
            data={
                "run": str(run.uuid),
                "status": status,
                "findings": len(evaluation.hits) if status != AuditStatus.FAILED else 0,
                "api_calls": snapshot.get("calls", 0),
            },
        )


def _verdict(snapshot: dict, evaluation: rules.Evaluation) -> tuple[str, str]:
    errors = snapshot.get("errors") or []
    fatal = next((e for e in errors if e.get("fatal")), None)
    if not evaluation.evaluated:
        reason = fatal["message"] if fatal else "nothing could be read from the CRM"
        return AuditStatus.FAILED, f"Nothing could be audited: {reason}"
    if fatal or errors or evaluation.not_evaluated:
        parts = []
        if fatal:
            parts.append(f"The CRM stopped answering while reading {fatal['step']}: {fatal['message']}")
        for e in errors:
            if not e.get("fatal"):
                parts.append(f"Could not read {e['step']}: {e['message']}")
        if evaluation.not_evaluated:
            parts.append(
                f"{len(evaluation.not_evaluated)} rule(s) not evaluated: {', '.join(sorted(evaluation.not_evaluated))}."
            )
        return AuditStatus.PARTIAL, " ".join(parts)
    return AuditStatus.SUCCEEDED, ""


def _severity_counts(hits: list[rules.Hit]) -> dict[str, int]:
    counts = dict.fromkeys(rules.SEVERITIES, 0)
    for h in hits:
        counts[h.severity] += 1
    return counts


def _store_findings(run: AuditRun, hits: list[rules.Hit]) -> None:
    fingerprints = [h.fingerprint for h in hits]
    prior: dict[str, Finding] = {}
    earlier = (
        Finding.objects.for_org(run.organization)
        .filter(run__client_id=run.client_id, run__status__in=FINISHED_AUDIT_STATUSES, fingerprint__in=fingerprints)
        .exclude(run=run)
        .order_by("fingerprint", "-run__created_at")
    )
    for f in earlier:
        prior.setdefault(f.fingerprint, f)
    now = timezone.now()
    rows, seen = [], set()
    for h in hits:
        if h.fingerprint in seen:  # two hits of one rule on one place: the first one speaks for both
            logger.warning("Audit run %s: duplicate finding %s on %s.%s dropped", run.pk, h.rule_id, h.object, h.field)
            continue
        seen.add(h.fingerprint)
        finding = Finding(
            organization=run.organization,
            run=run,
            rule_id=h.rule_id,
            severity=h.severity,
            domain=h.domain,
            object=h.object[:40],
            field=h.field[:300],
            values=h.values,
            counts=h.counts,
            count=max(0, int(h.count)),
            evidence=h.evidence,
            message=h.message,
            recommendation=h.recommendation,
            seed_ref=h.seed[:300],
            fingerprint=h.fingerprint,
        )
        before = prior.get(h.fingerprint)
        if before is not None:
            finding.carried_from = before
            _carry_state(finding, before, h, now)
        rows.append(finding)
    Finding.objects.bulk_create(rows)


def _carry_state(finding: Finding, before: Finding, hit: rules.Hit, now) -> None:
    if before.state in (FindingState.ACKNOWLEDGED, FindingState.EXPLAINED):
        finding.state, finding.note = before.state, before.note
        finding.state_by_id, finding.state_at = before.state_by_id, before.state_at
    elif before.state == FindingState.ACCEPTED_RISK:
        new_values = [v for v in hit.values if v not in set(before.values or [])]
        if new_values:
            finding.state = FindingState.OPEN
            finding.note = (
                f"Reopened: new value(s) since the risk was accepted: {', '.join(new_values)}. "
                f"Earlier note: {before.note}"
            ).strip()
            finding.state_at = now
        else:
            finding.state, finding.note = before.state, before.note
            finding.state_by_id, finding.state_at = before.state_by_id, before.state_at


# ---------------------------------------------------------------- findings


@transaction.atomic
def update_finding(*, finding: Finding, state: str, note: str = "", actor, request=None) -> Finding:
    """Acknowledge, explain, accept as a risk or reopen a finding; explaining and accepting need a note."""
    finding = Finding.objects.for_org(finding.organization_id).select_for_update().get(pk=finding.pk)
    note = (note or "").strip()
    if state not in FindingState.values:
        raise DomainError(f"Unknown state {state!r}.")
    if state != finding.state and state not in TRANSITIONS[finding.state]:
        raise DomainError(f"A finding cannot go from {finding.get_state_display()} to {state}.")
    if state in NEEDS_NOTE and not note:
        raise DomainError(f"Say {NEEDS_NOTE[state]} in the note.")
    old = finding.state
    finding.state, finding.note = state, note
    finding.state_by, finding.state_at = actor, timezone.now()
    finding.save(update_fields=["state", "note", "state_by", "state_at"])
    activity.record(
        organization=finding.organization,
        actor=actor,
        request=request,
        target=finding,
        verb="crm_audit.finding_updated",
        data={"rule": finding.rule_id, "from": old, "to": state},
    )
    return finding


def findings_of(run: AuditRun):
    return Finding.objects.for_org(run.organization).filter(run=run).select_related("state_by")


def group_findings(findings) -> list[dict]:
    """Findings by domain (catalogue order), then severity, for pages and the PDF."""
    order = {s: i for i, s in enumerate(rules.SEVERITIES)}
    groups: dict[str, list] = {}
    for f in sorted(findings, key=lambda f: (order.get(f.severity, 9), f.rule_id, f.object, f.field)):
        groups.setdefault(f.domain, []).append(f)
    return [
        {
            "domain": d,
            "label": rules.DOMAIN_LABELS[d],
            "findings": groups[d],
            "by_severity": [(s, [f for f in groups[d] if f.severity == s]) for s in rules.SEVERITIES],
        }
        for d in rules.DOMAINS
        if d in groups
    ]


def diff(run: AuditRun) -> dict[str, Any] | None:
    """New, resolved and still-open findings against the client's previous run with findings."""
    if not run.has_findings:
        return None
    before = previous_run(run)
    if before is None:
        return None
    now = {f.fingerprint: f for f in findings_of(run)}
    then = {f.fingerprint: f for f in findings_of(before)}
    evaluated = set((run.summary or {}).get("evaluated") or [])
    return {
        "previous": before,
        "new": [f for fp, f in now.items() if fp not in then],
        "still_open": [f for fp, f in now.items() if fp in then],
        # a rule this run could not evaluate resolved nothing
        "resolved": [f for fp, f in then.items() if fp not in now and f.rule_id in evaluated],
    }


def findings_json(run: AuditRun) -> list[dict[str, Any]]:
    return [
        {
            "rule_id": f.rule_id,
            "severity": f.severity,
            "domain": f.domain,
            "object": f.object,
            "field": f.field,
            "values": f.values,
            "count": f.count,
            "message": f.message,
        }
        for f in findings_of(run).order_by("id")
    ]


def runs_with_counts(client: ClientAccount):
    return (
        AuditRun.objects.for_org(client.organization)
        .filter(client=client)
        .annotate(finding_count=Count("findings"))
        .defer("snapshot")
        .order_by("-created_at")
    )


# ---------------------------------------------------------------- the Current State Audit PDF


@transaction.atomic
def request_report(*, run: AuditRun, actor, request=None):
    """Queue the Current State Audit PDF of a run as a versioned artifact of its engagement."""
    if not run.has_findings:
        raise DomainError("Only a finished audit (succeeded or partial) can be rendered as a report.")
    engagement = run.engagement or current_engagement(run.client)
    if engagement is None:
        raise DomainError(
            f"Deliverables belong to an engagement: start an engagement for {run.client} first, then render the report."
        )
    kind = ArtifactKind.CURRENT_STATE_AUDIT
    artifact = pipeline.request(engagement=engagement, kind=kind, actor=actor)
    run.reports.add(artifact)  # the context builder finds the run through this link
    activity.record(
        organization=run.organization,
        actor=actor,
        request=request,
        target=artifact,
        verb="artifact.requested",
        data={"kind": kind, "audit_run": str(run.uuid)},
    )
    return artifact


def report_context(run: AuditRun) -> dict[str, Any]:
    findings = list(findings_of(run))
    snap = rules.Snapshot(run.snapshot)
    objects = [
        {"kind": k, "label": o.get("label"), "records": o.get("records")}
        for k, o in (run.snapshot.get("objects") or {}).items()
        if o.get("available")
    ]
    summary = run.summary or {}
    return {
        "run": run,
        "organization": run.organization,
        "client": run.client,
        "engagement": run.engagement,
        "groups": group_findings(findings),
        "findings": findings,
        "severities": summary.get("severities") or _severity_counts([]),
        "not_evaluated": sorted((summary.get("not_evaluated") or {}).items()),
        "not_run": sorted((summary.get("not_run") or {}).items()),
        "objects": objects,
        "pipelines": snap.pipelines("deal"),
        "diff": diff(run),
        "catalogue": rules.CATALOGUE,
        "generated_at": timezone.now(),
    }


def report_context_of(artifact) -> dict[str, Any]:
    """The deliverables pipeline's context builder for a Current State Audit artifact."""
    run = AuditRun.objects.select_related("client", "engagement", "organization").get(
        reports=artifact, organization=artifact.organization
    )
    return report_context(run)


__all__ = [
    "ACTIVE_AUDIT_STATUSES",
    "diff",
    "execute_run",
    "findings_json",
    "group_findings",
    "report_context_of",
    "request_report",
    "start_audit",
    "sweep_stuck_runs",
    "update_finding",
]
