"""Maintenance schedules and monthly health checks: rules, runs, the report and the exactly-once email."""

import subprocess
from datetime import date

import pytest

from accounts.models import ActivityEntry, DomainError
from engagements import progression
from engagements.models import EngagementStakeholder
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks
from reporting import health
from reporting.models import HealthCheckRun, HealthResult, ReportDelivery, ScheduledTask
from reporting.tasks import queue_health_checks, run_health_check
from tests.conftest import body_text, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
OCTOBER = date(2026, 10, 1)


@pytest.fixture
def engagement(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    load_library_playbooks()
    version = Playbook.objects.library().get(key="revenue-intelligence").latest_version()
    e = progression.create_engagement(
        client=cast.client,
        playbook_version=version,
        name="Forecasting",
        start_date=date(2026, 6, 1),
        actor=cast.consultant,
        engagement_type="dedicated",
        team=[(cast.consultant, "architect")],
        stakeholders=[(cast.stakeholder, "RevOps lead")],
    )
    health.start_schedule(engagement=e, actor=cast.consultant, live_since=date(2026, 8, 1))
    return e


def pdf_text(data: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def test_schedule_comes_from_the_playbook_with_its_owner(engagement):
    schedule = engagement.maintenance_schedule
    assert schedule.owner == "consultancy"  # dedicated: our architect runs it
    keys = set(ScheduledTask.objects.filter(schedule=schedule).values_list("key", flat=True))
    assert {"forecast-submission-compliance", "recording-coverage-audit", "forecast-accuracy-declining"} <= keys
    with pytest.raises(DomainError, match="already been started"):
        health.start_schedule(engagement=engagement, actor=schedule.started_by)


def test_adjusting_a_threshold_is_logged_and_validated(cast, engagement):
    task = ScheduledTask.objects.get(schedule__engagement=engagement, key="forecast-submission-compliance")
    health.adjust_task(task=task, threshold=80, actor=cast.consultant)
    task.refresh_from_db()
    assert task.rules[0]["threshold"] == 80
    entry = ActivityEntry.objects.get(verb="maintenance.adjusted")
    assert entry.data["before"]["rules"][0]["threshold"] == 85


def test_a_month_end_run_flags_evaluates_reports_and_emails_once(cast, engagement, smtp):
    health.record_metric(
        engagement=engagement, metric="forecast_submission_compliance", period=OCTOBER, value=78, actor=cast.consultant
    )
    run, created = health.create_run(engagement, OCTOBER)
    assert created
    run_health_check(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.red_count >= 1
    flag = HealthResult.objects.get(run=run, task_key="forecast-submission-compliance")
    assert flag.status == "red" and "78" in flag.message
    unknown = HealthResult.objects.filter(run=run, status="not_evaluable")
    assert unknown.exists()
    assert all(r.message for r in unknown)  # never silent: each says why
    assert "needs manual input" in set(
        unknown.values_list("message", flat=True)
    ) or "no CRM connection for this client" in set(unknown.values_list("message", flat=True))

    messages = smtp.wait_for(2)
    assert {m["To"] for m in messages} == {"maya@acme.example", "carl@alpha.example"}
    mail = next(m for m in messages if m["To"] == "maya@acme.example")
    assert "1 red flag" in mail["Subject"] or "red flags" in mail["Subject"]
    text = body_text(mail)
    assert text.index("RED FLAGS") < text.index("NEEDS A DECISION OR DATA")
    assert "/portal/unsubscribe/" in text
    [attachment] = [p for p in mail.iter_attachments()]
    report = pdf_text(attachment.get_content())
    assert "Health-Check Report" in report and "October 2026" in report and "78" in report

    # A retried run task or a duplicate beat tick sends nothing more.
    run_health_check(run.pk)
    assert health.create_run(engagement, OCTOBER) == (run, False)
    assert len(smtp.messages) == 2
    assert set(ReportDelivery.objects.values_list("status", flat=True)) == {"sent"}


def test_duplicate_beat_ticks_create_one_run(engagement, smtp):
    queue_health_checks()
    queue_health_checks()
    assert HealthCheckRun.objects.filter(engagement=engagement).count() == 1


def test_unsubscribed_stakeholder_gets_no_email(cast, engagement, smtp, client):
    health.record_metric(engagement=engagement, metric="forecast_submission_compliance", period=OCTOBER, value=90)
    run, _ = health.create_run(engagement, OCTOBER)
    run_health_check(run.pk)
    mail = next(m for m in smtp.wait_for(2) if m["To"] == "maya@acme.example")
    path = (
        body_text(mail)
        .split("Stop receiving these monthly reports: ")[1]
        .split()[0]
        .removeprefix("http://127.0.0.1:8000")
    )
    assert client.post(path).status_code == 200
    cast.stakeholder.refresh_from_db()
    assert cast.stakeholder.health_reports is False
    november, _ = health.create_run(engagement, date(2026, 11, 1))
    run_health_check(november.pk)
    assert [d.email for d in ReportDelivery.objects.filter(run=november)] == ["carl@alpha.example"]


def test_smtp_outage_is_retried_and_reported(cast, engagement, celery_worker, smtp):
    """A real worker against a mail server that is down: five retries, then the delivery says why."""
    smtp.stop()
    EngagementStakeholder.objects.update(receives_updates=False)
    run, _ = health.create_run(engagement, OCTOBER)
    run_health_check.delay(run.pk)
    wait_until(lambda: ReportDelivery.objects.filter(run=run, status="failed").exists(), what="the delivery failing")
    delivery = ReportDelivery.objects.get(run=run)
    assert delivery.attempts == 6  # the first try and five retries
    assert "refused" in delivery.last_error.lower()


def test_real_worker_sends_exactly_one_email_per_recipient(cast, engagement, celery_worker, smtp):
    health.record_metric(engagement=engagement, metric="forecast_submission_compliance", period=OCTOBER, value=70)
    run, _ = health.create_run(engagement, OCTOBER)
    run_health_check.delay(run.pk)
    run_health_check.delay(run.pk)  # a redelivered message
    smtp.wait_for(2)
    wait_until(lambda: ReportDelivery.objects.filter(run=run, status="sent").count() == 2, what="two sends")
    queue_health_checks.delay()  # a beat tick after the fact finds the run already there
    run_health_check.delay(run.pk)
    wait_until(lambda: HealthCheckRun.objects.get(pk=run.pk).status == "succeeded", what="the run")
    assert sorted(m["To"] for m in smtp.messages) == ["carl@alpha.example", "maya@acme.example"]
