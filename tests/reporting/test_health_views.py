"""The maintenance schedule and health-check pages: start a schedule, adjust it, enter and upload figures, run a
month now, work through its red flags, read the deliveries and the PDF, and the portfolio health page.

Everything goes through the real views, services and tasks (inline: `transaction=True` so on_commit fires).
"""

import subprocess
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import ActivityEntry
from engagements import progression
from engagements.models import DecisionLogEntry, Engagement, EngagementMember, Risk, WorkItem
from playbooks.models import Playbook
from reporting import figures, periods, runs, schedules
from reporting.models import (
    Baseline,
    HealthCheckRun,
    HealthResult,
    MaintenanceSchedule,
    MetricValue,
    ReportDelivery,
    ScheduledTask,
)
from tests.conftest import body_text, ensure_library

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def versions(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    ensure_library()
    return {p.key: p.latest_version() for p in Playbook.objects.library()}


@pytest.fixture
def ri(cast, versions):
    """A dedicated Revenue Intelligence engagement, Carl its architect, Maya receiving updates; no schedule yet."""
    return progression.create_engagement(
        client=cast.client,
        playbook_version=versions["revenue-intelligence"],
        name="Forecasting",
        start_date=date(2026, 1, 5),
        actor=cast.consultant,
        engagement_type="dedicated",
        team=[(cast.consultant, "architect")],
        stakeholders=[(cast.stakeholder, "RevOps lead")],
    )


@pytest.fixture
def scheduled(cast, ri):
    live = periods.add_months(periods.due_period(), -6)
    schedules.start_schedule(engagement=ri, actor=cast.consultant, live_since=live)
    return ri


@pytest.fixture
def consultant(client, cast):
    client.force_login(cast.consultant)
    return client


def u(name, engagement, **kwargs):
    return reverse(
        f"reporting:{name}",
        kwargs={"org_slug": engagement.organization.slug, "engagement_uuid": engagement.uuid, **kwargs},
    )


def text_of(response) -> str:
    return response.content.decode()


def pdf_text(data: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


# --------------------------------------------------------------------------------------------------
# Starting and adjusting the schedule


def test_start_the_schedule_from_the_page(consultant, cast, ri):
    page = consultant.get(u("health", ri))
    body = text_of(page)
    assert page.status_code == 200
    assert "No maintenance schedule yet" in body and "Start maintenance schedule" in body
    assert "Our architect runs it</strong> — Carl, for Acme Robotics" in body, "dedicated: our architect, named"
    assert 'aria-current="page">Health</a>' in body, "the engagement's Health tab"
    assert f'value="{timezone.localdate():%Y-%m-%d}"' in body, "go-live defaults to today before handoff"

    response = consultant.post(u("schedule-start", ri), {"live_since": "2026-03-01"})
    assert response.status_code == 302 and response["Location"] == u("health", ri)
    schedule = MaintenanceSchedule.objects.get(engagement=ri)
    assert (schedule.owner, schedule.live_since) == ("consultancy", date(2026, 3, 1))
    assert ActivityEntry.objects.across_tenants("test").filter(verb="maintenance.started", target_uuid=ri.uuid).exists()

    body = text_of(consultant.get(u("health", ri)))
    assert "Forecast submission compliance" in body and "Monthly" in body and "Quarterly" in body
    assert "Red when forecast submission compliance is below 85%" in body, "the rule in plain words"
    assert "Refinement trigger" in body
    assert "Run this month&#x27;s check now" in body or "Run this month's check now" in body

    again = consultant.post(u("schedule-start", ri), {"live_since": "2026-04-01"}, follow=True)
    assert (
        "already been started" in text_of(again)
        and MaintenanceSchedule.objects.across_tenants("test").get().live_since.month == 3
    )


def test_single_project_schedule_is_the_clients_and_bad_dates_are_refused(consultant, cast, versions):
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=versions["revenue-intelligence"],
        name="Scoring",
        start_date=date(2026, 1, 5),
        actor=cast.consultant,
    )
    assert "Acme Robotics runs it themselves" in text_of(consultant.get(u("health", engagement)))
    response = consultant.post(u("schedule-start", engagement), {"live_since": "not a date"})
    assert response.status_code == 400
    assert (
        'id="id_live_since_error"' in text_of(response)
        and not MaintenanceSchedule.objects.across_tenants("test").exists()
    )


def test_the_owner_named_before_the_start_is_the_one_the_schedule_gets(consultant, cast, versions):
    """The delivery model's Operate schedule is the consultancy's (its playbook says so, it has no engagement
    types): the page must not promise the client before the start and then give it to the consultancy."""
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=versions["delivery-model"],
        name="Embedded RevOps",
        start_date=date(2026, 1, 5),
        actor=cast.consultant,
        engagement_type="",
        team=[(cast.consultant, "architect")],
    )
    body = text_of(consultant.get(u("health", engagement)))
    assert "Our architect runs it</strong> — Carl, for Acme Robotics" in body
    consultant.post(u("schedule-start", engagement), {"live_since": "2026-03-01"})
    assert MaintenanceSchedule.objects.get(engagement=engagement).owner == "consultancy"


def test_adjusting_a_threshold_and_cadence_is_logged(consultant, cast, scheduled):
    task = ScheduledTask.objects.get(schedule__engagement=scheduled, key="forecast-submission-compliance")
    prefix = f"task-{task.key}"
    response = consultant.post(
        u("task-adjust", scheduled, task_uuid=task.uuid),
        {f"{prefix}-cadence": "weekly", f"{prefix}-rule": "0", f"{prefix}-threshold": "80"},
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#task-{task.key}")
    task.refresh_from_db()
    assert (task.cadence, task.rules[0]["threshold"]) == ("weekly", 80)
    entry = ActivityEntry.objects.across_tenants("test").get(verb="maintenance.adjusted")
    assert entry.data["before"]["rules"][0]["threshold"] == 85 and entry.data["after"]["cadence"] == "weekly"
    assert "below 80%" in text_of(consultant.get(u("health", scheduled)))

    unchanged = consultant.post(
        u("task-adjust", scheduled, task_uuid=task.uuid),
        {f"{prefix}-cadence": "weekly", f"{prefix}-rule": "0", f"{prefix}-threshold": "80"},
    )
    assert unchanged.status_code == 400 and "Nothing changed" in text_of(unchanged)
    assert ActivityEntry.objects.across_tenants("test").filter(verb="maintenance.adjusted").count() == 1

    two_rules = ScheduledTask.objects.get(schedule__engagement=scheduled, key="integration-health-check")
    prefix = f"task-{two_rules.key}"
    consultant.post(
        u("task-adjust", scheduled, task_uuid=two_rules.uuid),
        {f"{prefix}-cadence": "monthly", f"{prefix}-rule": "1", f"{prefix}-threshold": "3"},
    )
    two_rules.refresh_from_db()
    assert [r["threshold"] for r in two_rules.rules] == [0, 3], "only the chosen rule changed"


# --------------------------------------------------------------------------------------------------
# Figures and baselines


def test_figures_entered_by_hand_and_uploaded_as_csv(consultant, cast, scheduled):
    response = consultant.post(
        u("metric-add", scheduled),
        {
            "figure-metric": "forecast_submission_compliance",
            "figure-key": "",
            "figure-period": "2026-09",
            "figure-value": "82.5",
        },
    )
    assert response.status_code == 302
    row = MetricValue.objects.get(engagement=scheduled, metric="forecast_submission_compliance")
    assert (row.period, row.value, row.source, row.entered_by) == (date(2026, 9, 1), 82.5, "manual", cast.consultant)

    bad_month = consultant.post(
        u("metric-add", scheduled),
        {"figure-metric": "forecast_submission_compliance", "figure-period": "2026-13", "figure-value": "1"},
    )
    assert bad_month.status_code == 400 and "Enter the month as YYYY-MM" in text_of(bad_month)
    assert 'id="id_figure-period_error"' in text_of(bad_month), "the error sits next to its field"

    csv = (
        "metric,key,period,value\n"
        "recording_coverage,,2026-08,93\n"
        "recording_coverage,,2026-09,91\n"
        "manager_dashboard_accesses_per_week,Dana,2026-09,1.5\n"
    )
    upload = SimpleUploadedFile("figures.csv", csv.encode(), content_type="text/csv")
    response = consultant.post(u("metrics-upload", scheduled), {"csv-file": upload})
    assert response.status_code == 302
    assert MetricValue.objects.filter(engagement=scheduled, source="csv").count() == 3
    assert ActivityEntry.objects.across_tenants("test").filter(verb="metrics.imported").count() == 1

    bad = "metric,key,period,value\nrecording_coverage,,2026-10,95\nrecording_coverage,,October,abc\n"
    response = consultant.post(
        u("metrics-upload", scheduled), {"csv-file": SimpleUploadedFile("bad.csv", bad.encode())}
    )
    assert response.status_code == 400
    assert "Nothing was imported. Line 3, column period: write the month as YYYY-MM" in text_of(response)
    assert not MetricValue.objects.across_tenants("test").filter(period=date(2026, 10, 1)).exists(), (
        "a bad line imports nothing"
    )

    future = "metric,key,period,value\nrecording_coverage,,2026-10,95\nrecording_coverage,,2031-01,95\n"
    response = consultant.post(
        u("metrics-upload", scheduled), {"csv-file": SimpleUploadedFile("future.csv", future.encode())}
    )
    assert response.status_code == 400
    assert "Line 3, column period: 2031-01 has not begun yet" in text_of(response)
    assert not MetricValue.objects.across_tenants("test").filter(period=date(2026, 10, 1)).exists()

    unknown = "metric,period,value\nrecording_coverage,2026-10,95\n\nrevenue_vibes,2026-10,3\n"
    response = consultant.post(
        u("metrics-upload", scheduled), {"csv-file": SimpleUploadedFile("bad.csv", unknown.encode())}
    )
    assert response.status_code == 400 and "Line 4: unknown metric &#x27;revenue_vibes&#x27;" in text_of(response)

    body = text_of(consultant.get(u("health", scheduled)))
    assert "Recording coverage" in body and 'class="sparkline"' in body, "history with a trend per metric"


def test_set_a_baseline_by_hand(consultant, cast, scheduled):
    response = consultant.post(
        u("baseline-set", scheduled), {"baseline-metric": "forecast_accuracy", "baseline-value": "62"}
    )
    assert response.status_code == 302
    baseline = Baseline.objects.get(engagement=scheduled, metric="forecast_accuracy")
    assert (baseline.value, baseline.source, baseline.established_on) == (62, "set by hand", timezone.localdate())
    body = text_of(consultant.get(u("health", scheduled)))
    assert "set by hand" in body and "Forecast accuracy" in body
    missing = consultant.post(u("baseline-set", scheduled), {"baseline-metric": "forecast_accuracy"})
    assert missing.status_code == 400 and 'id="id_baseline-value_error"' in text_of(missing)


# --------------------------------------------------------------------------------------------------
# A month's run, its flags, deliveries and report


def _figures_for_a_bad_month(engagement, period):
    for months_back, value in ((3, 91), (2, 89), (1, 86), (0, 78)):
        figures.record_metric(
            engagement=engagement,
            metric="forecast_submission_compliance",
            period=periods.add_months(period, -months_back),
            value=value,
        )
    figures.record_metric(engagement=engagement, metric="recording_coverage", period=period, value=80)


def test_run_now_flags_explain_board_deliveries_and_pdf(consultant, cast, scheduled, smtp):
    period = periods.due_period()
    _figures_for_a_bad_month(scheduled, period)

    response = consultant.post(u("run-now", scheduled))
    run = HealthCheckRun.objects.get(engagement=scheduled)
    assert run.period == period
    assert response.status_code == 302 and response["Location"] == u("run-detail", scheduled, run_uuid=run.uuid)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.red_count == 2, "the task ran on commit"
    assert ActivityEntry.objects.across_tenants("test").filter(verb="health.run_requested").count() == 1

    page = consultant.get(response["Location"])
    body = text_of(page)
    assert page.status_code == 200
    assert body.index("Red flags") < body.index("Not evaluable") < body.index("OK and informational")
    compliance = HealthResult.objects.get(run=run, task_key="forecast-submission-compliance")
    coverage = HealthResult.objects.get(run=run, task_key="recording-coverage-audit")
    assert compliance.status == coverage.status == "red"
    assert f'id="result-{compliance.uuid}"' in body and "78" in body
    trend = body.split(f'id="result-{compliance.uuid}"')[1].split("</li>")[0]
    assert "<svg" in trend and 'class="sparkline"' in trend, "a small trend of the last months"
    assert "91" in trend.split('aria-label="Trend:')[1].split('"')[0]
    assert "enter a figure for" in body and "comes from the revenue intelligence platform" in body, (
        "not evaluable says what to enter"
    )
    assert "Download the report (PDF)" in body

    # Deliveries: one email per recipient, shown per recipient.
    smtp.wait_for(2)
    assert set(ReportDelivery.objects.filter(run=run).values_list("status", flat=True)) == {"sent"}
    body = text_of(consultant.get(u("run-detail", scheduled, run_uuid=run.uuid)))
    deliveries = body.split('id="deliveries"')[1]
    assert "maya@acme.example" in deliveries and "carl@alpha.example" in deliveries and "Sent" in deliveries
    mail = next(m for m in smtp.messages if m["To"] == "maya@acme.example")
    assert "RED FLAGS" in body_text(mail)

    # The month's run exists: running again says so and links it.
    again = consultant.post(u("run-now", scheduled), follow=True)
    assert "already exists" in text_of(again) and HealthCheckRun.objects.across_tenants("test").count() == 1

    # Explain one flag: it leaves the red count, logged.
    response = consultant.post(
        u("result-action", scheduled, result_uuid=coverage.uuid),
        {"action": "explain", f"explain-{coverage.uuid.hex[:12]}-explanation": "Recorder outage, fixed on the 3rd."},
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#result-{coverage.uuid}")
    coverage.refresh_from_db()
    run.refresh_from_db()
    assert (coverage.status, coverage.explained_by, run.red_count) == ("explained", cast.consultant, 1)
    assert (
        ActivityEntry.objects.across_tenants("test")
        .get(verb="health.flag_explained")
        .data["explanation"]
        .startswith("Recorder outage")
    )
    twice = consultant.post(
        u("result-action", scheduled, result_uuid=coverage.uuid),
        {"action": "explain", f"explain-{coverage.uuid.hex[:12]}-explanation": "Again"},
    )
    assert twice.status_code == 302 and HealthCheckRun.objects.across_tenants("test").get(pk=run.pk).red_count == 1

    # Turn the other into a risk: internal by default, linking back; it shows on the board.
    prefix = f"board-{compliance.uuid.hex[:12]}"
    response = consultant.post(
        u("result-action", scheduled, result_uuid=compliance.uuid),
        {
            "action": "board",
            f"{prefix}-kind": "risk",
            f"{prefix}-title": "Reps skip forecast submissions",
            f"{prefix}-category": "reporting_definitions",
        },
    )
    assert response.status_code == 302
    risk = Risk.objects.get(engagement=scheduled)
    assert risk.title == "Reps skip forecast submissions" and risk.client_visible is False
    assert u("run-detail", scheduled, run_uuid=run.uuid) in risk.description and "78" in risk.description
    board = consultant.get(reverse("engagements:board", args=[cast.org.slug, scheduled.uuid]))
    assert "Reps skip forecast submissions" in text_of(board)
    body = text_of(consultant.get(u("run-detail", scheduled, run_uuid=run.uuid)))
    assert "On the board as a risk" in body

    # A decision needed and a work item work the same way; a missing title is an error next to its field.
    for kind, model in (("decision", DecisionLogEntry), ("work", WorkItem)):
        consultant.post(
            u("result-action", scheduled, result_uuid=compliance.uuid),
            {
                "action": "board",
                f"{prefix}-kind": kind,
                f"{prefix}-title": f"Flag as {kind}",
                f"{prefix}-category": "reporting_definitions",
                f"{prefix}-client_visible": "on",
            },
        )
        item = model.objects.get(engagement=scheduled, title=f"Flag as {kind}")
        assert item.client_visible is True
    invalid = consultant.post(
        u("result-action", scheduled, result_uuid=compliance.uuid),
        {"action": "board", f"{prefix}-kind": "risk", f"{prefix}-title": ""},
    )
    assert invalid.status_code == 400 and f'id="id_{prefix}-title_error"' in text_of(invalid)

    # The report downloads as a PDF.
    download = consultant.get(u("report-download", scheduled, run_uuid=run.uuid))
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert "attachment" in download["Content-Disposition"]
    data = b"".join(download.streaming_content)
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "Health-Check Report" in text and f"{period:%B %Y}" in text

    # The engagement's page lists the run with its counts.
    body = text_of(consultant.get(u("health", scheduled)))
    runs = body.split('id="runs"')[1].split("</section>")[0]
    assert f"{period:%B %Y}" in runs and "2 sent" in runs and "Succeeded" in runs


def test_a_closed_engagement_keeps_its_health_checks_but_not_its_board(consultant, cast, scheduled):
    """Completing the last phase closes the engagement; maintenance goes on, its board is read-only."""
    period = periods.due_period()
    _figures_for_a_bad_month(scheduled, period)
    run, _ = runs.create_run(scheduled, period)
    runs.execute_run(run.pk)
    Engagement.objects.across_tenants("test").filter(pk=scheduled.pk).update(status="closed")
    red = HealthResult.objects.filter(run=run, status="red").first()
    body = text_of(consultant.get(u("run-detail", scheduled, run_uuid=run.uuid)))
    assert "board is read-only" in body and "Add to the board" not in body and "Mark as explained" in body
    prefix = f"board-{red.uuid.hex[:12]}"
    response = consultant.post(
        u("result-action", scheduled, result_uuid=red.uuid),
        {"action": "board", f"{prefix}-kind": "risk", f"{prefix}-title": "Too late"},
        follow=True,
    )
    assert "its board is read-only" in text_of(response) and not Risk.objects.across_tenants("test").exists()
    response = consultant.post(
        u("result-action", scheduled, result_uuid=red.uuid),
        {"action": "explain", f"explain-{red.uuid.hex[:12]}-explanation": "Seasonal dip."},
    )
    assert (
        response.status_code == 302 and HealthResult.objects.across_tenants("test").get(pk=red.pk).status == "explained"
    )


def test_a_queued_run_is_polled_until_it_finishes(consultant, cast, scheduled):
    run, _ = runs.create_run(scheduled, periods.due_period())
    page = text_of(consultant.get(u("run-detail", scheduled, run_uuid=run.uuid)))
    assert 'hx-trigger="every 2s"' in page and "Waiting for a worker" in page
    poll = consultant.get(u("run-detail", scheduled, run_uuid=run.uuid), **HTMX)
    assert poll.status_code == 200 and "<html" not in text_of(poll) and "HX-Refresh" not in poll
    not_ready = consultant.get(u("report-download", scheduled, run_uuid=run.uuid))
    assert not_ready.status_code == 302, "no report yet: back to the run with a message"

    runs.execute_run(run.pk)
    HealthCheckRun.objects.across_tenants("test").filter(pk=run.pk).update(
        finished_at=timezone.now() - timedelta(hours=1)
    )
    poll = consultant.get(u("run-detail", scheduled, run_uuid=run.uuid), **HTMX)
    assert poll["HX-Refresh"] == "true"


def test_failed_delivery_shows_its_error(consultant, cast, scheduled):
    run, _ = runs.create_run(scheduled, periods.due_period())
    runs.execute_run(run.pk)
    ReportDelivery.objects.create(
        organization=cast.org,
        run=run,
        email="maya@acme.example",
        status="failed",
        attempts=6,
        last_error="Connection refused",
    )
    body = text_of(consultant.get(u("run-detail", scheduled, run_uuid=run.uuid)))
    deliveries = body.split('id="deliveries"')[1]
    assert "Failed" in deliveries and "Connection refused" in deliveries and ">6<" in deliveries
    assert "1 failed" in text_of(consultant.get(u("health", scheduled)))


# --------------------------------------------------------------------------------------------------
# Portfolio health


def _portfolio(cast, versions, n: int) -> None:
    """n engagements in maintenance, each with an architect and three monthly runs (built directly: fast)."""
    due = periods.due_period()
    version = versions["revenue-intelligence"]
    for i in range(n):
        engagement = Engagement.objects.create(
            organization=cast.org,
            client=cast.client,
            playbook_version=version,
            name=f"RI {i:02d}",
            start_date=date(2026, 1, 5),
            engagement_type="dedicated",
        )
        EngagementMember.objects.create(
            organization=cast.org, engagement=engagement, user=cast.consultant, role="architect"
        )
        MaintenanceSchedule.objects.create(
            organization=cast.org,
            engagement=engagement,
            owner="consultancy",
            started_by=cast.consultant,
            live_since=periods.add_months(due, -4),
        )
        for back, red in ((2, 0), (1, 1), (0, i % 3)):
            HealthCheckRun.objects.create(
                organization=cast.org,
                engagement=engagement,
                period=periods.add_months(due, -back),
                status="succeeded",
                red_count=red,
                not_evaluable_count=2,
            )


def _count_queries(client, path) -> int:
    client.get(path)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_portfolio_health_lists_engagements_with_constant_queries(consultant, cast, versions, scheduled):
    path = reverse("reporting:portfolio-health", args=[cast.org.slug])
    body = text_of(consultant.get(path))
    assert "Forecasting" in body and "Not run yet" in body and "due now" in body
    assert 'aria-current="page">Health</a>' in body, "the top navigation's Health link"

    _portfolio(cast, versions, 2)
    few = _count_queries(consultant, path)
    _portfolio(cast, versions, 18)
    many = _count_queries(consultant, path)
    assert few == many, f"{few} queries for 3 engagements, {many} for 21"

    response = consultant.get(path)
    rows = response.context["schedules"]
    assert len(rows) == 21
    row = next(s for s in rows if s.engagement.name == "RI 02")
    assert (row.last_red, row.last_not_evaluable, row.owner_name) == (2, 2, "Carl")
    assert row.last_period == periods.due_period() and not row.next.overdue
    assert 'class="sparkline"' in text_of(response) and "Red flags per month" in text_of(response)


def test_portfolio_health_empty_state(consultant, cast):
    body = text_of(consultant.get(reverse("reporting:portfolio-health", args=[cast.org.slug])))
    assert "No engagement is in maintenance yet" in body


# --------------------------------------------------------------------------------------------------
# The wall


def test_viewer_cannot_write_anything(client, cast, scheduled):
    period = periods.due_period()
    _figures_for_a_bad_month(scheduled, period)
    run, _ = runs.create_run(scheduled, period)
    runs.execute_run(run.pk)
    result = HealthResult.objects.filter(run=run, status="red").first()
    task = ScheduledTask.objects.filter(schedule__engagement=scheduled).first()
    client.force_login(cast.viewer)
    page = text_of(client.get(u("run-detail", scheduled, run_uuid=run.uuid)))
    assert "Mark as explained" not in page and "Add to the board" not in page
    health_page = text_of(client.get(u("health", scheduled)))
    assert "Run this month" not in health_page and "Set baseline" not in health_page
    before = (
        ActivityEntry.objects.across_tenants("test").count(),
        MetricValue.objects.across_tenants("test").count(),
        HealthCheckRun.objects.across_tenants("test").count(),
    )
    writes = [
        (u("schedule-start", scheduled), {"live_since": "2026-03-01"}),
        (u("task-adjust", scheduled, task_uuid=task.uuid), {f"task-{task.key}-cadence": "weekly"}),
        (u("baseline-set", scheduled), {"baseline-metric": "forecast_accuracy", "baseline-value": "1"}),
        (
            u("metric-add", scheduled),
            {"figure-metric": "recording_coverage", "figure-period": "2026-01", "figure-value": "1"},
        ),
        (u("metrics-upload", scheduled), {}),
        (u("run-now", scheduled), {}),
        (u("result-action", scheduled, result_uuid=result.uuid), {"action": "board"}),
    ]
    for url, data in writes:
        assert client.post(url, data).status_code == 403, url
    assert (
        ActivityEntry.objects.across_tenants("test").count(),
        MetricValue.objects.across_tenants("test").count(),
        HealthCheckRun.objects.across_tenants("test").count(),
    ) == before


def test_another_organizations_run_is_not_found(consultant, cast, versions, scheduled):
    theirs = progression.create_engagement(
        client=cast.other_client,
        playbook_version=versions["revenue-intelligence"],
        name="Globex RI",
        start_date=date(2026, 1, 5),
        actor=cast.outsider,
    )
    schedules.start_schedule(engagement=theirs, actor=cast.outsider, live_since=date(2026, 1, 1))
    their_run, _ = runs.create_run(theirs, periods.due_period())
    runs.execute_run(their_run.pk)
    their_result = HealthResult.objects.filter(run=their_run).first()
    their_task = ScheduledTask.objects.filter(schedule__engagement=theirs).first()
    ours = scheduled
    for url in (
        u("run-detail", ours, run_uuid=their_run.uuid),
        u("report-download", ours, run_uuid=their_run.uuid),
        reverse("reporting:run-detail", args=[cast.org.slug, theirs.uuid, their_run.uuid]),
        reverse("reporting:health", args=[cast.org.slug, theirs.uuid]),
        reverse("reporting:run-detail", args=[cast.other_org.slug, theirs.uuid, their_run.uuid]),
    ):
        assert consultant.get(url).status_code == 404, url
    for url in (
        u("result-action", ours, result_uuid=their_result.uuid),
        u("task-adjust", ours, task_uuid=their_task.uuid),
    ):
        assert consultant.post(url, {"action": "explain"}).status_code == 404, url
    assert HealthResult.objects.across_tenants("test").get(pk=their_result.pk).status == their_result.status
