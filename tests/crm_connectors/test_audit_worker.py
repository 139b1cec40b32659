"""Audits on a real Celery worker process (Redis broker, PostgreSQL): run `make test`, or
`scripts/with-services.sh .venv/bin/python -m pytest tests/crm_connectors/test_audit_worker.py -q`.

A worker killed in the middle of an audit must not leave the run `running` forever: the next worker to start
(or the periodic sweep) fails runs whose lease expired (no heartbeat), with the reason in plain words."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from crm_connectors.audit import services
from crm_connectors.models import AuditRun, AuditStatus
from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from tests.conftest import wait_until
from tests.crm_connectors.test_audit import KEY, connect

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def audit_worker(request, monkeypatch, settings):
    """The conftest worker, started with the settings an audit of a loopback sandbox needs."""
    monkeypatch.setenv("CRM_ALLOW_HTTP", "true")  # the worker copies this process's environment
    monkeypatch.setenv("CRM_SECRET_KEY", KEY)
    settings.CRM_ALLOW_HTTP = True
    settings.CRM_SECRET_KEY = KEY
    return request.getfixturevalue("celery_worker")


def start_worker(log: Path) -> subprocess.Popen:
    """A second worker process, started like the conftest one."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": os.environ["REDIS_URL"],
    }
    command = [sys.executable, "-m", "celery", "-A", "gtm_ops", "worker", "--pool=solo", "--concurrency=1"]
    command += ["--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"]
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def status_of(run) -> tuple[str, int]:
    return tuple(AuditRun.objects.across_tenants("test").filter(pk=run.pk).values_list("status", "progress").get())


def test_a_real_worker_runs_the_audit(cast, audit_worker):
    with HubSpotSandbox(profile="demo", seed=3, size=500) as hs:
        connect(cast, hs)
        run, created = services.start_audit(client=cast.client, actor=cast.owner)
        assert created
        wait_until(lambda: status_of(run)[0] == AuditStatus.SUCCEEDED, timeout=90, what="the audit on the worker")
        run.refresh_from_db()
        assert run.progress == 100 and run.api_calls == hs.stats["total"] and run.findings.exists()
        assert run.attempts == 1 and run.lease_until is None and run.started_at <= run.finished_at


def test_a_worker_killed_mid_audit_leaves_no_run_running(cast, audit_worker, tmp_path):
    with SalesforceSandbox(profile="demo", seed=3, size=500) as sf:
        connect(cast, sf)
        sf.inject("slow", delay=0.5, count=None)  # every data request takes half a second: a long audit
        run, _ = services.start_audit(client=cast.client, actor=cast.owner)
        wait_until(
            lambda: status_of(run)[0] == AuditStatus.RUNNING and status_of(run)[1] >= 8,
            timeout=90,
            what="the audit to be under way",
        )
        audit_worker.kill()  # SIGKILL: no cleanup, no chance to write anything
        audit_worker.wait(timeout=10)  # dead: nothing can write to the run any more
        assert status_of(run)[0] == AuditStatus.RUNNING  # nobody left to finish it, nobody to say so
        sf.faults.clear()

        # Time passes: the dead worker's lease expires. The next worker to start sweeps.
        old = timezone.now() - timedelta(seconds=60)
        AuditRun.objects.across_tenants("test").filter(pk=run.pk).update(lease_until=old)
        second = start_worker(tmp_path / "worker2.log")
        try:
            wait_until(lambda: status_of(run)[0] == AuditStatus.FAILED, timeout=90, what="the sweep on worker start")
            # the client can audit again straight away, on the new worker
            again, created = services.start_audit(client=cast.client, actor=cast.owner)
            assert created
            wait_until(lambda: status_of(again)[0] == AuditStatus.SUCCEEDED, timeout=90, what="the next audit")
        finally:
            stop(second)
    run.refresh_from_db()
    assert run.error.startswith("The worker stopped before the audit finished")
    assert run.finished_at is not None and not run.findings.exists()
    assert not AuditRun.objects.across_tenants("test").filter(status=AuditStatus.RUNNING).exists()
