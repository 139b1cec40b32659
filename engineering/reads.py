"""The engineering pages' CRM reads (generate the spec, make a plan, verify the build) on the CRM queue: a person
asks (`request`), a worker reads (`execute`, through the run lifecycle), the page polls the run until it ends with
the spec or plan it made or the reason in words. A request while the same read is queued or running returns it."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction

from accounts import activity
from accounts.models import DomainError
from engagements.models import Engagement

from . import services
from .models import READS, ConfigurationSpec, ReadPurpose, ReadRun, ReadStatus

logger = logging.getLogger(__name__)


def _dispatch(pk: int) -> None:
    from .tasks import queued, run_read  # the task module imports this one

    queued(run_read, pk)


def latest(engagement: Engagement, purposes: tuple[str, ...] = tuple(ReadPurpose.values)) -> ReadRun | None:
    return (
        ReadRun.objects.for_org(engagement.organization_id)
        .filter(engagement=engagement, purpose__in=purposes)
        .order_by("-created_at", "-id")
        .first()
    )


def request(
    *, engagement: Engagement, purpose: str, actor, spec: ConfigurationSpec | None = None, request=None
) -> ReadRun:
    if purpose not in ReadPurpose.values:
        raise DomainError(f"Unknown read {purpose!r}: generate, plan or verify.")
    if purpose != ReadPurpose.GENERATE and spec is None:
        raise DomainError("There is no spec to read the CRM against yet: generate one first.")
    if services.connection_of(engagement) is None:
        raise DomainError(f"{engagement.client} has no CRM connection with credentials: connect the CRM first.")
    with transaction.atomic():
        Engagement.objects.for_org(engagement.organization_id).select_for_update().filter(pk=engagement.pk).first()
        active = ReadRun.objects.for_org(engagement.organization_id).filter(
            engagement=engagement, purpose=purpose, status__in=[ReadStatus.QUEUED, ReadStatus.RUNNING]
        )
        existing = active.first()
        if existing is not None:
            return existing
        run = ReadRun.objects.create(
            organization_id=engagement.organization_id,
            engagement=engagement,
            spec=spec,
            purpose=purpose,
            requested_by=actor,
        )
        activity.record(
            organization=engagement.organization,
            actor=actor,
            request=request,
            target=spec or engagement,
            verb="crm_spec.read_requested",
            data={"purpose": purpose, "run": str(run.uuid)},
        )
        transaction.on_commit(partial(_dispatch, run.pk))
    return run


def execute(run_id: int, *, connector_options: dict[str, Any] | None = None) -> ReadRun | None:
    token = READS.claim(run_id)
    if token is None:
        return None
    run = ReadRun.objects.for_task(run_id).select_related("engagement__client", "spec", "requested_by").get()
    made: dict[str, Any] = {}
    try:
        with READS.beating(run_id, token):
            outcome = _read(run, connector_options, made)
    except DomainError as exc:
        READS.finish(run_id, token, ReadStatus.FAILED, str(exc))
    except Exception as exc:  # a bug must not leave the run running: say so on the row
        logger.exception("CRM read %s failed", run_id)
        READS.finish(run_id, token, ReadStatus.FAILED, f"GTM Ops could not finish the read ({type(exc).__name__}).")
    else:
        READS.finish(run_id, token, ReadStatus.SUCCEEDED, outcome, **made)
    run.refresh_from_db()
    return run


def _read(run: ReadRun, options: dict[str, Any] | None, made: dict[str, Any]) -> str:
    actor = run.requested_by
    if run.purpose == ReadPurpose.GENERATE:
        spec = services.generate(engagement=run.engagement, actor=actor, connector_options=options)
        made["made_spec"] = spec
        return f"{spec} generated (SHA-256 {spec.sha256[:12]}…)."
    assert run.spec is not None  # request() refuses a plan or a verification without a spec
    run.spec.engagement = run.engagement
    if run.purpose == ReadPurpose.PLAN:
        plan = services.make_plan(spec=run.spec, actor=actor, connector_options=options)
        made["made_plan"] = plan
        return f"Plan made: {len(plan.operations)} operations, {len(plan.held)} held back."
    checks = services.verify(spec=run.spec, actor=actor, connector_options=options)
    made["made_plan"] = services.latest_plan(run.spec, "verify")
    return f"Verified: {sum(c.passed for c in checks)} of {len(checks)} checks match the approved spec."
