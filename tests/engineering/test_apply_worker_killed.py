"""A worker killed mid-apply: a real Celery worker process applies a plan to the HubSpot sandbox and is killed
(SIGKILL) while the portal holds the answer to its third write (the write is done; the worker never hears back). The
sweep marks the run partly applied and the plan page says so in words; a new worker resumes and writes each remaining
operation once (sandbox writes counted by HTTP method: the unconfirmed write is not sent again, no step is lost); undo
then gives back the portal as it was. The moment of the kill is made certain by the held answer, never by a sleep."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse
from django.utils import timezone

from crm_sandbox import HubSpotSandbox
from engineering import apply
from engineering.models import ApplyRun, ApplyStatus, StepStatus
from gtm_ops.celery import app as celery_app
from gtm_ops.runs import sweep_all
from tests.celery_workers import KillableWorker
from tests.conftest import wait_until
from tests.engineering.test_apply import SIZE, approved_plan, portal, writes

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = 4  # seconds: the killed worker's run is taken back within moments


@pytest.fixture
def worker(transactional_db, crm_sandbox_settings):
    if not os.environ.get("REDIS_URL"):
        pytest.fail("REDIS_URL is not set: run the suite with `make test`, which starts Redis.")
    crm_sandbox_settings.RUN_LEASE_SECONDS = LEASE
    one = KillableWorker(
        RUN_LEASE_SECONDS=str(LEASE), CRM_SECRET_KEY=crm_sandbox_settings.CRM_SECRET_KEY, CRM_ALLOW_HTTP="1"
    )
    celery_app.conf.task_always_eager = False
    try:
        yield one
    finally:
        celery_app.conf.task_always_eager = True
        one.stop()


def run_of(plan) -> ApplyRun:
    return ApplyRun.objects.across_tenants("test").get(plan=plan)


def ends_as(plan, status: str, what: str) -> ApplyRun:
    wait_until(lambda: run_of(plan).status == status, timeout=60, what=what)
    return run_of(plan)


def test_worker_killed_mid_apply_resumes_each_operation_once_and_undoes(cast, worker, client):
    confirm = "Lifecycle rebuild"
    worker.start()  # it starts while the plan is made
    with HubSpotSandbox(profile="demo", seed=3, size=SIZE) as hs:
        engagement, plan = approved_plan(cast, hs)
        original = portal(hs)
        apply.request(plan=plan, action="dry_run", actor=cast.owner)
        run = ends_as(plan, ApplyStatus.DRY_RUN_DONE, "the dry run")
        would = list(run.steps.filter(status=StepStatus.WOULD_CHANGE).values_list("position", flat=True))
        assert len(would) > 3

        hs.faults.add(kind="hold", method="WRITE", skip=2)  # the third write is done, its answer held
        before = writes(hs)
        apply.request(plan=plan, action="apply", actor=cast.owner, confirmation=confirm)
        assert hs.holding.wait(60), "the worker never sent its third write"
        worker.kill()
        hs.release_held()
        assert writes(hs) - before == 3
        worker.start()  # the next worker starts while the lease runs out; nothing is queued for it yet
        wait_until(lambda: run_of(plan).lease_until < timezone.now(), what="the killed worker's lease expiring")
        sweep_all()

        run = run_of(plan)
        assert run.status == ApplyStatus.PARTIAL and "The worker stopped while applying" in run.outcome
        statuses = dict(run.steps.values_list("position", "status"))
        assert [statuses[p] for p in would[:3]] == [StepStatus.APPLIED, StepStatus.APPLIED, StepStatus.WRITING]
        client.force_login(cast.owner)
        page = client.get(reverse("engineering:plan", args=[cast.org.slug, engagement.uuid])).content.decode()
        assert "The worker stopped while applying" in page and "Sent, not confirmed" in page and "Resume" in page

        apply.request(plan=plan, action="apply", actor=cast.owner, confirmation=confirm)
        run = ends_as(plan, ApplyStatus.APPLIED, "the resumed apply")
        assert writes(hs) - before == len(would)  # one write per operation: none sent twice, none lost
        statuses = dict(run.steps.values_list("position", "status"))
        assert {p for p, s in statuses.items() if s == StepStatus.APPLIED} == set(would)
        assert {s for p, s in statuses.items() if p not in would} <= {StepStatus.UNCHANGED}

        apply.request(plan=plan, action="undo", actor=cast.owner, confirmation=confirm)
        ends_as(plan, ApplyStatus.UNDONE, "the undo")
        assert portal(hs) == original
