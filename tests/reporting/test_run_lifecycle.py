"""A health run survives its worker: `kill -9` at each step (reading the CRM and figures, rendering, sending) and a
restarted worker finishes it, each recipient getting exactly one email; emails the mail server refused past the
retry budget go out once each when resent. Real Celery worker processes on Redis, PostgreSQL, an SMTP server on
loopback; the moments to kill at are made certain with PostgreSQL table locks and an SMTP server that holds the
first message, never with sleeps."""

import asyncio
import os
import threading
from datetime import date

import psycopg
import pytest
from aiosmtpd.controller import Controller
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from deliverables.models import Artifact, ArtifactKind
from gtm_ops.celery import app as celery_app
from reporting import figures, runs
from reporting.models import HealthCheckRun, ReportDelivery
from reporting.tasks import run_health_check
from tests.celery_workers import KillableWorker, blocked_backends
from tests.conftest import Mailbox, free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
OCTOBER = date(2026, 10, 1)
LEASE = 6  # seconds: a dead worker's run is taken back within moments, not the production 5 minutes; long enough
# that a live worker's heartbeat (every third of it) is never late on a host running both shards of the suite
# The recipients, from the engagement fixture: its stakeholder and its architect.
RECIPIENTS = ["carl@alpha.example", "maya@acme.example"]


class HoldingMailbox(Mailbox):
    """With `hold` set, the next message is held before the server answers, until `release`; then refused: the
    worker killed meanwhile never learns whether it went out, and this server did not deliver it."""

    def __init__(self):
        super().__init__()
        self.hold = False
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if self.hold:
            self.hold = False
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
            return "451 4.3.0 Held by the test: not delivered"
        return await super().handle_DATA(server, session, envelope)

    def start(self, port: int) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()


@pytest.fixture
def mailbox(settings):
    box = HoldingMailbox()
    box.port = free_port()
    box.start(box.port)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", box.port
    settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 5
    try:
        yield box
    finally:
        box.release.set()
        box.stop()


@pytest.fixture
def workers(transactional_db, mailbox, settings):
    if not os.environ.get("REDIS_URL"):
        pytest.fail("REDIS_URL is not set: run the suite with `make test`, which starts Redis.")
    settings.RUN_LEASE_SECONDS = LEASE
    pool = KillableWorker(
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mailbox.port), EMAIL_RETRY_DELAY="0", RUN_LEASE_SECONDS=str(LEASE)
    )
    celery_app.conf.task_always_eager = False
    try:
        yield pool
    finally:
        celery_app.conf.task_always_eager = True
        pool.stop()


_locks: list[psycopg.Connection] = []


@pytest.fixture(autouse=True)
def _release_locks(transactional_db):
    """A failed test must not leave a table locked: the flush after it (transactional_db) would wait for ever."""
    yield
    while _locks:
        _locks.pop().close()


def lock_table(table: str) -> psycopg.Connection:
    """A session of its own holding `table` exclusively (reads and writes of it wait) until it rolls back."""
    db = connection.settings_dict
    session = psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"]
    )
    _locks.append(session)
    session.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return session


def the_run(run) -> HealthCheckRun:
    return HealthCheckRun.objects.across_tenants("test").get(pk=run.pk)


def lease_expired(row) -> bool:
    row.refresh_from_db(fields=["lease_until"])
    return row.lease_until is not None and row.lease_until < timezone.now()


def test_kill_9_at_each_step_of_a_health_run_and_every_recipient_gets_one_email(cast, engagement, workers, mailbox):
    figures.record_metric(engagement=engagement, metric="forecast_submission_compliance", period=OCTOBER, value=70)
    run, _ = runs.create_run(engagement, OCTOBER)

    # 1. Killed while reading the CRM and the figures: its results wait on a lock, so nothing of the step is saved.
    results_lock = lock_table("reporting_healthresult")
    workers.start()
    run_health_check.delay(run.pk)
    wait_until(blocked_backends, timeout=90, what="the worker reaching the save of its figures")
    assert (the_run(run).status, the_run(run).step) == ("running", "evaluate")
    workers.kill()
    wait_until(lambda: lease_expired(run), what="the killed worker's lease expiring")

    # 2. Killed while rendering: a restarted worker takes the run back and reads the figures again; the report's
    # figures wait on a lock, so the report stays "rendering".
    workers.start()
    wait_until(blocked_backends, timeout=90, what="the restarted worker reaching the save of its figures")
    figures_lock = lock_table("reporting_metricvalue")
    results_lock.rollback()
    wait_until(
        lambda: Artifact.objects.across_tenants("test").filter(status="rendering").exists() and blocked_backends(),
        timeout=60,
        what="the worker rendering the report",
    )
    report = Artifact.objects.across_tenants("test").get(engagement=engagement, kind=ArtifactKind.HEALTH_CHECK_REPORT)
    assert (the_run(run).status, the_run(run).step) == ("running", "report")
    workers.kill()
    figures_lock.rollback()
    wait_until(lambda: lease_expired(run) and lease_expired(report), what="both leases expiring")

    # 3. Killed while sending: the mail server holds the first email, unanswered, and refuses it afterwards.
    mailbox.hold = True
    workers.start()
    assert mailbox.holding.wait(90), "the restarted worker never sent an email"
    [held] = ReportDelivery.objects.across_tenants("test").filter(run=run, status="sending")
    assert (the_run(run).status, the_run(run).step) == ("running", "send")
    workers.kill()
    mailbox.release.set()
    wait_until(lambda: lease_expired(run), what="the lease expiring")

    # 4. The last restart finishes it.
    workers.start()
    wait_until(lambda: the_run(run).status == "succeeded", timeout=90, what="the run succeeding")
    finished = the_run(run)
    assert finished.step == "done" and finished.red_count >= 1 and finished.report_id == report.pk
    assert sorted(m["To"] for m in mailbox.messages) == RECIPIENTS  # one each, none twice
    deliveries = {d.email: d for d in ReportDelivery.objects.across_tenants("test").filter(run=run)}
    assert {d.status for d in deliveries.values()} == {"sent"}
    assert deliveries[held.email].recoveries == 1  # taken back once from the killed worker, sent once more
    report.refresh_from_db()
    assert report.status == "done" and report.number == 1  # the report rendered again, not a second version
    assert all(len(list(m.iter_attachments())) == 1 for m in mailbox.messages)


def test_smtp_down_past_the_budget_then_resend_deliveries_sends_one_each(cast, engagement, workers, mailbox):
    mailbox.stop()
    run, _ = runs.create_run(engagement, OCTOBER)
    workers.start()
    run_health_check.delay(run.pk)
    wait_until(lambda: the_run(run).status == "partial", timeout=120, what="the run ending with refused emails")
    deliveries = ReportDelivery.objects.across_tenants("test").filter(run=run)
    assert sorted(deliveries.values_list("email", "status", "attempts")) == [(r, "failed", 6) for r in RECIPIENTS]
    assert the_run(run).status_text == "Partial: 2 of 2 emails not sent"

    mailbox.start(mailbox.port)  # the mail server is back
    with pytest.raises(CommandError, match="--run"):
        call_command("resend_deliveries", "--force")
    call_command("resend_deliveries", "--org", cast.org.slug)
    wait_until(lambda: the_run(run).status == "succeeded", timeout=90, what="the resent emails going out")
    assert sorted(m["To"] for m in mailbox.messages) == RECIPIENTS

    call_command("resend_deliveries", "--run", str(run.uuid))  # nothing failed any more: nothing is sent
    assert the_run(run).status == "succeeded" and len(mailbox.messages) == 2


def test_a_consultant_resends_failed_emails_from_the_run_page(cast, engagement, mailbox, client, settings):
    settings.EMAIL_RETRY_DELAY = 0
    mailbox.stop()
    run, _ = runs.create_run(engagement, OCTOBER)
    run_health_check(run.pk)  # inline: every try refused
    assert the_run(run).status == "partial" and mailbox.messages == []
    mailbox.start(mailbox.port)
    page = reverse("reporting:run-detail", args=[cast.org.slug, engagement.uuid, run.uuid])
    resend = reverse("reporting:run-resend", args=[cast.org.slug, engagement.uuid, run.uuid])

    client.force_login(cast.viewer)
    assert f'action="{resend}"' not in client.get(page).content.decode()
    assert client.post(resend).status_code == 403
    client.force_login(cast.consultant)
    html = client.get(page).content.decode()
    assert f'action="{resend}"' in html and 'data-confirm="Send the 2 failed emails again?' in html
    assert client.post(resend).status_code == 302
    assert the_run(run).status == "succeeded"
    assert sorted(m["To"] for m in mailbox.messages) == RECIPIENTS
    client.post(resend)  # a second click: nothing failed, nothing sent
    assert len(mailbox.messages) == 2
