"""Maintenance schedules and monthly health checks: rules, runs, the report and the exactly-once email."""

import subprocess
from datetime import date, timedelta

import pytest

from accounts.models import ActivityEntry, DomainError
from engagements import progression
from engagements.models import EngagementStakeholder
from playbooks.models import Playbook
from reporting import figures, flags, periods, runs, schedules
from reporting.models import HealthCheckRun, HealthResult, ReportDelivery, ScheduledTask
from reporting.tasks import queue_health_checks, run_health_check
from tests.conftest import body_text, ensure_library, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
OCTOBER = date(2026, 10, 1)


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
        schedules.start_schedule(engagement=engagement, actor=schedule.started_by)


def test_adjusting_a_threshold_is_logged_and_validated(cast, engagement):
    task = ScheduledTask.objects.get(schedule__engagement=engagement, key="forecast-submission-compliance")
    schedules.adjust_task(task=task, threshold=80, actor=cast.consultant)
    task.refresh_from_db()
    assert task.rules[0]["threshold"] == 80
    entry = ActivityEntry.objects.across_tenants("test").get(verb="maintenance.adjusted")
    assert entry.data["before"]["rules"][0]["threshold"] == 85


def test_a_month_end_run_flags_evaluates_reports_and_emails_once(cast, engagement, smtp):
    figures.record_metric(
        engagement=engagement, metric="forecast_submission_compliance", period=OCTOBER, value=78, actor=cast.consultant
    )
    run, created = runs.create_run(engagement, OCTOBER)
    assert created
    run_health_check(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.red_count >= 1
    flag = HealthResult.objects.get(run=run, task_key="forecast-submission-compliance")
    assert flag.status == "red" and "78" in flag.message
    unknown = HealthResult.objects.filter(run=run, status="not_evaluable")
    assert unknown.exists()
    assert all(r.message for r in unknown)  # never silent: each says why
    reasons = set(unknown.values_list("message", flat=True))
    # Figures from the RI platform are entered; one the CRM reading does not compute says so, never "connect".
    assert (
        "enter a figure for October 2026: recording coverage comes from the revenue intelligence platform "
        "(by hand or CSV)" in reasons
    )
    assert (
        "enter a figure for the weeks ending in October 2026 (YYYY-Www): recording coverage comes from the revenue "
        "intelligence platform (by hand or CSV)" in reasons
    )
    assert (
        "deal slippage rate is not computed from the CRM yet: enter a figure for October 2026 (by hand or CSV)"
        in reasons
    )

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
    assert runs.create_run(engagement, OCTOBER) == (run, False)
    assert len(smtp.messages) == 2
    assert set(ReportDelivery.objects.across_tenants("test").values_list("status", flat=True)) == {"sent"}


def test_duplicate_beat_ticks_create_one_run(engagement, smtp):
    queue_health_checks()
    queue_health_checks()
    assert HealthCheckRun.objects.filter(engagement=engagement).count() == 1


def test_unsubscribed_stakeholder_gets_no_email(cast, engagement, smtp, client):
    figures.record_metric(engagement=engagement, metric="forecast_submission_compliance", period=OCTOBER, value=90)
    run, _ = runs.create_run(engagement, OCTOBER)
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
    november, _ = runs.create_run(engagement, date(2026, 11, 1))
    run_health_check(november.pk)
    assert [d.email for d in ReportDelivery.objects.filter(run=november)] == ["carl@alpha.example"]


def test_smtp_outage_is_retried_and_reported(cast, engagement, celery_worker, smtp):
    """A real worker against a mail server that is down: five retries, then the delivery says why."""
    smtp.stop()
    EngagementStakeholder.objects.across_tenants("test").update(receives_updates=False)
    run, _ = runs.create_run(engagement, OCTOBER)
    run_health_check.delay(run.pk)
    wait_until(lambda: ReportDelivery.objects.filter(run=run, status="failed").exists(), what="the delivery failing")
    delivery = ReportDelivery.objects.get(run=run)
    assert delivery.attempts == 6  # the first try and five retries
    assert "refused" in delivery.last_error.lower()


def test_real_worker_sends_exactly_one_email_per_recipient(cast, engagement, celery_worker, smtp):
    figures.record_metric(engagement=engagement, metric="forecast_submission_compliance", period=OCTOBER, value=70)
    run, _ = runs.create_run(engagement, OCTOBER)
    run_health_check.delay(run.pk)
    run_health_check.delay(run.pk)  # a redelivered message
    smtp.wait_for(2, timeout=90)  # a worker starting and rendering a PDF on a busy machine
    wait_until(lambda: ReportDelivery.objects.filter(run=run, status="sent").count() == 2, what="two sends")
    queue_health_checks.delay()  # a beat tick after the fact finds the run already there
    run_health_check.delay(run.pk)
    wait_until(
        lambda: HealthCheckRun.objects.across_tenants("test").get(pk=run.pk).status == "succeeded", what="the run"
    )
    assert sorted(m["To"] for m in smtp.messages) == ["carl@alpha.example", "maya@acme.example"]


# --------------------------------------------------------------------------------------------------
# Windows as the seeds write them, every due task in its run, and small numbers


def start(cast, playbook: str, live_since: date, *, name: str = "Engagement", engagement_type: str = "dedicated"):
    """An engagement of a library playbook with its maintenance schedule live since `live_since`, no CRM."""
    ensure_library()
    e = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key=playbook).latest_version(),
        name=name,
        start_date=date(2026, 1, 5),
        actor=cast.consultant,
        engagement_type=engagement_type,
        team=[(cast.consultant, "architect")],
    )
    schedules.start_schedule(engagement=e, actor=cast.consultant, live_since=live_since)
    return e


def check(engagement, period: date) -> dict[str, list[HealthResult]]:
    """Evaluate the month (no report, no email): {task key: its results}."""
    run, _ = runs.create_run(engagement, period)
    runs.execute_run(run.pk)
    found: dict[str, list[HealthResult]] = {}
    for result in HealthResult.objects.filter(run=run).order_by("id"):
        found.setdefault(result.task_key, []).append(result)
    return found


def enter(engagement, metric: str, values: dict, key: str = "") -> None:
    for period, value in values.items():
        figures.record_metric(engagement=engagement, metric=metric, key=key, period=period, value=value)


AUG, SEP, NOV = date(2026, 8, 1), date(2026, 9, 1), date(2026, 11, 1)


@pytest.mark.parametrize(
    ("churn", "attribution"),
    [((4, 4, 4), (89, 91, 92.1)), ((2, 3, 4), (88, 89, 92)), ((9, 9, 12), (90, 90, 90))],
)
def test_quarter_rules_read_the_quarter_at_its_end(cast, churn, attribution):
    """PRM: ">10% partner churn in a quarter" adds the quarter's months up; "attribution below 90% for any quarter"
    is the quarter's mean. Both are judged in the run of the quarter's third month, not before."""
    e = start(cast, "partnership-success", AUG)
    enter(e, "partner_churn_rate", dict(zip((AUG, SEP, OCTOBER), churn, strict=True)))
    enter(e, "attribution_accuracy", dict(zip((AUG, SEP, OCTOBER), attribution, strict=True)))
    september = check(e, SEP)
    assert "partner-churn-increasing" not in september and "attribution-degrading" not in september
    october = check(e, OCTOBER)
    [churned] = october["partner-churn-increasing"]
    [attributed] = october["attribution-degrading"]
    assert churned.status == ("red" if sum(churn) > 10 else "ok"), churned.message
    assert churned.value == pytest.approx(sum(churn))
    mean = sum(attribution) / 3
    assert attributed.status == ("red" if mean < 90 else "ok"), attributed.message
    assert attributed.value == pytest.approx(mean, abs=0.01)
    assert churned.window == attributed.window == "the quarter Aug 2026 to Oct 2026"
    assert churned.response == "Scope partner experience improvement project"
    assert "partner churn rate is above 10%" in churned.rule_text


def test_a_quarter_with_a_month_missing_asks_for_it(cast):
    e = start(cast, "partnership-success", AUG)
    enter(e, "partner_churn_rate", {AUG: 4, OCTOBER: 4})
    [churned] = check(e, OCTOBER)["partner-churn-increasing"]
    assert churned.status == "not_evaluable"
    assert churned.message == (
        "enter the figure of September 2026: the quarter's figure is their sum over its three months"
    )


@pytest.mark.parametrize(
    ("weeks", "status"),
    [((90, 84, 83, 90), "red"), ((84, 90, 84, 90), "ok"), ((90, 90, 90, 84), "watch")],
)
def test_recording_coverage_below_85_for_two_consecutive_weeks_reads_weekly_figures(cast, weeks, status):
    """RI: "falls below 85% for 2+ consecutive weeks" on weekly figures uploaded as YYYY-Www (the weeks ending in
    October 2026 start on Mondays 28 September, 5, 12 and 19 October: ISO weeks 40 to 43)."""
    e = start(cast, "revenue-intelligence", AUG)
    lines = [f"recording_coverage,,2026-W{40 + n},{v}" for n, v in enumerate(weeks)]
    figures.import_figures(
        engagement=e,
        text="metric,key,period,value\n" + "\n".join(lines),
        actor=cast.consultant,
        metrics={"recording_coverage"},
    )
    [trigger] = check(e, OCTOBER)["recording-coverage-dropping"]
    assert trigger.status == status, trigger.message
    assert trigger.window == "the weeks ending in October 2026 (28 Sep to 25 Oct)"
    if status == "red":
        assert trigger.message == "red for 2 consecutive weeks: week of 5 Oct: 84%, week of 12 Oct: 83%"
    if status == "watch":
        assert "held for 1 of 2 weeks" in trigger.message


def test_two_weeks_below_85_across_a_month_end_are_flagged_alike_on_time_and_caught_up(cast, settings, tmp_path):
    """The week of Monday 30 March 2026 ends on 5 April: it is April's, judged by the run of 1 May, when its figure
    exists. Below 85% on 23 and 30 March is one red flag, from the run on time and from a catch-up alike."""
    settings.MEDIA_ROOT = tmp_path
    march, april = date(2026, 3, 1), date(2026, 4, 1)
    weeks = {
        date(2026, 3, 2): 90, date(2026, 3, 9): 90, date(2026, 3, 16): 90, date(2026, 3, 23): 84,
        date(2026, 3, 30): 84, date(2026, 4, 6): 90, date(2026, 4, 13): 90, date(2026, 4, 20): 90,
    }  # fmt: skip

    def flags(e):
        results = HealthResult.objects.filter(run__engagement=e, task_key="recording-coverage-dropping")
        return {r.run.period: (r.status, r.message) for r in results}

    def enter_weeks(e, until):
        for monday, value in weeks.items():
            if monday + timedelta(days=6) < until:
                figures.record_metric(engagement=e, metric="recording_coverage", period=monday, value=value,
                                     granularity="week")  # fmt: skip

    on_time = start(cast, "revenue-intelligence", march, name="On time")
    for month, run_day in ((march, april), (april, date(2026, 5, 1))):
        enter_weeks(on_time, run_day)  # what exists on the day the month's run starts
        run, _ = runs.create_run(on_time, month)
        runs.execute_run(run.pk)
    caught_up = start(cast, "revenue-intelligence", march, name="Caught up")
    enter_weeks(caught_up, date(2026, 5, 1))
    runs.catch_up(caught_up.maintenance_schedule.pk, today=date(2026, 6, 1))  # March and April: May is beat's
    assert flags(on_time) == flags(caught_up)
    statuses = {period: status for period, (status, _) in flags(on_time).items()}
    assert statuses[april] == "red" and statuses[march] != "red"


def test_a_weekly_rule_without_weekly_figures_asks_for_them(cast):
    e = start(cast, "revenue-intelligence", AUG)
    enter(e, "recording_coverage", {OCTOBER: 80})  # a monthly figure says nothing about consecutive weeks
    results = check(e, OCTOBER)
    [trigger] = results["recording-coverage-dropping"]
    assert trigger.status == "not_evaluable"
    assert trigger.message.startswith("enter a figure for the weeks ending in October 2026 (YYYY-Www)")
    assert results["recording-coverage-audit"][0].status == "red"  # the monthly audit reads the month


def test_deal_registration_flat_is_not_due_before_sixty_days_live(cast):
    """PRM: "No increase after 60 days live". Live 1 October: day 60 is 29 November."""
    e = start(cast, "partnership-success", OCTOBER)
    figures.set_baseline(engagement=e, metric="deal_registration_volume", value=10, actor=cast.consultant)
    enter(e, "deal_registration_volume", {OCTOBER: 10, NOV: 10})
    [launch] = check(e, OCTOBER)["deal-registration-flat"]
    assert launch.status == "info"
    deadline = OCTOBER + timedelta(days=59)
    assert launch.message == f"not yet due: judged from 60 days after go-live ({deadline:%-d %B %Y})"
    [november] = check(e, NOV)["deal-registration-flat"]
    assert november.status == "red"
    assert november.response == "Audit registration flow friction, simplify process"


def test_a_target_within_two_quarters_is_judged_at_its_deadline(cast):
    """RI: forecast accuracy +15 pp within 2 quarters of go-live. Live 1 May 2026: the June report is not red; the
    two quarters end on 31 October 2026, whose run judges it; the months between do not list it."""
    may = date(2026, 5, 1)
    e = start(cast, "revenue-intelligence", may)
    figures.set_baseline(engagement=e, metric="forecast_accuracy", value=60, actor=cast.consultant)
    enter(e, "forecast_accuracy", {date(2026, 6, 1): 62, OCTOBER: 70})
    [june] = check(e, date(2026, 6, 1))["forecast-accuracy-vs-baseline"]
    assert june.status == "info" and june.message.startswith("not yet due: judged at 2 quarters after go-live")
    assert june.window == "by 31 October 2026 (2 quarters after go-live)"
    assert "forecast-accuracy-vs-baseline" not in check(e, SEP)
    [october] = check(e, OCTOBER)["forecast-accuracy-vs-baseline"]
    assert october.status == "red"  # +10 pp of the +15 asked
    assert "+10" in october.message


def test_catch_up_gives_what_the_runs_on_time_gave(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    entered = {
        "recording_coverage": {AUG: 92, SEP: 84, OCTOBER: 83, NOV: 95},
        "sync_failures": {AUG: 0, SEP: 2, OCTOBER: 3, NOV: 0},
        "forecast_submission_compliance": {AUG: 85, SEP: 84.9, OCTOBER: 90, NOV: 70},
    }
    on_time = start(cast, "revenue-intelligence", AUG, name="On time")
    later = start(cast, "revenue-intelligence", AUG, name="Caught up")
    for engagement in (on_time, later):
        for metric, values in entered.items():
            enter(engagement, metric, values)
    months = [AUG, SEP, OCTOBER, NOV]
    for month in months:
        check(on_time, month)
    caught = runs.catch_up(later.maintenance_schedule.pk, today=date(2027, 1, 15))
    assert [r.period for r in caught] == months

    def verdicts(engagement):
        return [
            (r.run.period, r.task_key, r.metric, r.key, r.status, r.message, r.window)
            for r in HealthResult.objects.filter(run__engagement=engagement).order_by("run__period", "id")
        ]

    assert verdicts(on_time) == verdicts(later)
    sync = {r.run.period: r.status for r in HealthResult.objects.filter(run__engagement=later, metric="sync_failures")}
    assert sync == {AUG: "ok", SEP: "watch", OCTOBER: "red", NOV: "ok"}  # "sustained": two months in a row


def test_every_6_12_month_task_comes_back_every_six_months(cast):
    e = start(cast, "revenue-intelligence", AUG)
    schedule = e.maintenance_schedule
    task = schedule.tasks.get(key="full-scoring-recalibration")
    due = [n for n in range(36) if periods.is_due(task, schedule, periods.add_months(AUG, n))]
    assert due == [5, 11, 17, 23, 29, 35]  # the 6th month since go-live, then every 6 months, year after year


def test_a_task_without_a_machine_rule_is_a_review_item_recorded_by_a_person(cast):
    e = start(cast, "revenue-intelligence", AUG)
    month_18 = periods.add_months(AUG, 17)
    results = check(e, month_18)
    keys = {
        "full-scoring-recalibration",
        "platform-feature-review",
        "benchmark-refresh",
        "consolidation-expansion-review",
    }
    assert keys <= results.keys()
    [review] = results["benchmark-refresh"]
    assert review.is_review_item and review.status == "not_evaluable"
    assert review.message == (
        "A person reviews this and records it: Benchmark refresh using updated top performer analysis"
    )
    assert review.window == "every 6-12 months: month 18 since go-live (January 2028)"
    run = review.run
    before = run.not_evaluable_count
    flags.record_review(result=review, actor=cast.consultant, note="Benchmarks refreshed from Q4 winners.")
    review.refresh_from_db()
    run.refresh_from_db()
    assert review.status == "ok" and review.reviewed_by == cast.consultant and review.reviewed_at is not None
    assert review.message.endswith("Benchmarks refreshed from Q4 winners.")
    assert run.not_evaluable_count == before - 1
    with pytest.raises(DomainError, match="already been recorded"):
        flags.record_review(result=review, actor=cast.consultant, note="again")
    # RI's quarterly top-performer benchmark refresh has no rule either: it is in each quarter's run.
    assert check(e, OCTOBER)["top-performer-benchmark-refresh"][0].is_review_item


def test_the_delivery_models_operate_phase_has_its_maintenance_schedule(cast):
    e = start(cast, "delivery-model", AUG, engagement_type="")
    schedule = e.maintenance_schedule
    assert schedule.owner == "consultancy"  # prospr monitors while embedded support remains active
    assert set(schedule.tasks.values_list("key", flat=True)) == {
        "system-health-reporting",
        "data-quality-review",
        "adoption-review",
    }
    assert set(check(e, SEP)) == {"system-health-reporting", "data-quality-review"}
    october = check(e, OCTOBER)
    assert set(october) == {"system-health-reporting", "data-quality-review", "adoption-review"}
    assert all(r.is_review_item for results in october.values() for r in results)


def test_small_volumes_and_small_denominators_are_not_judged(cast):
    """GTM Lifecycle: a stage volume or a conversion rate resting on fewer than 20 records is "too few records to
    judge", not a red flag; the same drop on enough records is."""
    e = start(cast, "gtm-lifecycle", AUG)
    for stage, base, now in (("MQL", 7, 5), ("SQL", 100, 70)):
        figures.set_baseline(engagement=e, metric="stage_entry_volume", key=stage, value=base, actor=cast.consultant)
        enter(e, "stage_entry_volume", {OCTOBER: now}, key=stage)
    for transition, base, now in (("MQL→SQL", 50, 20), ("SQL→SAO", 50, 20)):
        figures.set_baseline(
            engagement=e, metric="stage_conversion_rate", key=transition, value=base, actor=cast.consultant
        )
        enter(e, "stage_conversion_rate", {OCTOBER: now}, key=transition)
    results = check(e, OCTOBER)
    volume = {r.key: r for r in results["production-by-stage-volume"]}
    assert volume["MQL"].status == "info"  # 5 vs 7
    assert volume["MQL"].message.startswith("too few records to judge: 5 vs baseline 7")
    assert volume["SQL"].status == "red"  # 70 vs 100: down 30%
    conversion = {r.key: r for r in results["stage-conversion-rate-check"]}
    assert conversion["MQL→SQL"].status == "info"  # 5 MQLs entered this month
    assert conversion["MQL→SQL"].message == (
        "too few records to judge: 20 vs baseline 50, from 5 records (a change is judged from 20 records)"
    )
    assert conversion["SQL→SAO"].status == "red"  # 70 SQLs entered: 30 pp down is a flag


def test_a_figure_for_a_month_that_has_not_begun_is_refused(cast):
    e = start(cast, "revenue-intelligence", AUG)
    text = "metric,key,period,value\nforecast_submission_compliance,,2026-10,90\nrecording_coverage,,2031-01,95\n"
    with pytest.raises(DomainError, match=r"^Line 3, column period: 2031-01 has not begun yet"):
        figures.import_figures(
            engagement=e,
            text=text,
            actor=cast.consultant,
            metrics={"forecast_submission_compliance", "recording_coverage"},
        )
    with pytest.raises(DomainError, match="has not begun yet"):
        figures.record_metric(engagement=e, metric="recording_coverage", period=date(2031, 1, 1), value=95)
