"""Explanations of red flags carried into later months: a flag explained in month M shows as explained when it is
red again in M+1 (naming the month and the person), and red again once the explanation expired or was withdrawn.
The pages, the email and the PDF show it. Real views, services and tasks (inline)."""

import subprocess
from datetime import date

import pytest
from django.urls import reverse

from accounts.models import ActivityEntry, DomainError
from reporting import figures, flags, runs
from reporting.models import FlagExplanation, HealthCheckRun, HealthResult
from tests.conftest import body_text

pytestmark = pytest.mark.django_db(transaction=True)
OCT, NOV, DEC, JAN = date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)
TASK = "forecast-submission-compliance"
WHY = "Two reps on leave during the quarter close."


@pytest.fixture
def consultant(client, cast):
    client.force_login(cast.consultant)
    return client


def month(engagement, period, compliance: float) -> HealthResult:
    """Run `period` with forecast submission compliance at `compliance` (red below 85); its compliance result."""
    from reporting.tasks import run_health_check

    figures.record_metric(
        engagement=engagement, metric="forecast_submission_compliance", period=period, value=compliance
    )
    run, created = runs.create_run(engagement, period)
    assert created
    run_health_check(run.pk)
    return HealthResult.objects.select_related("run", "carried_from", "explained_by").get(run=run, task_key=TASK)


def url(name, engagement, **kwargs) -> str:
    return reverse(
        f"reporting:{name}",
        kwargs={"org_slug": engagement.organization.slug, "engagement_uuid": engagement.uuid, **kwargs},
    )


def explain(client, result, text=WHY, months=None):
    prefix = f"explain-{result.uuid.hex[:12]}"
    data = {"action": "explain", f"{prefix}-explanation": text}
    if months is not None:
        data[f"{prefix}-months"] = str(months)
    return client.post(url("result-action", result.run.engagement, result_uuid=result.uuid), data)


def pdf_text(data: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def test_an_explanation_holds_for_the_months_chosen_then_the_flag_is_red_again(cast, engagement, consultant, smtp):
    october = month(engagement, OCT, 78)
    assert october.status == "red"
    form = consultant.get(url("run-detail", engagement, run_uuid=october.run.uuid)).content.decode()
    assert "Also covers this flag in later health checks" in form
    assert "For 3 more months (until the January 2027 check)" in form, "three months unless chosen otherwise"

    response = explain(consultant, october, months=1)
    assert response.status_code == 302
    explanation = FlagExplanation.objects.get(engagement=engagement)
    assert (explanation.from_period, explanation.until_period) == (OCT, NOV)
    assert (explanation.task_key, explanation.metric, explanation.key) == (TASK, "forecast_submission_compliance", "")
    assert ActivityEntry.objects.across_tenants("test").get(verb="health.flag_explained").data["until"] == "2026-11"

    november = month(engagement, NOV, 75)
    assert november.status == "explained" and november.carried_from == explanation
    assert november.explanation == WHY and november.explained_by == cast.consultant
    assert november.explained_note == "explained in October 2026 by Carl"
    assert "75" in november.message, "the month's own finding is kept"
    assert HealthCheckRun.objects.across_tenants("test").get(period=NOV).red_count == 0, (
        "an explained flag is not counted as red"
    )

    page = consultant.get(url("run-detail", engagement, run_uuid=november.run.uuid)).content.decode()
    card = page.split(f'id="result-{november.uuid}"')[1].split("</li>")[0]
    assert "Explained in October 2026 by Carl (covers the checks until November 2026)" in card and WHY in card
    assert "Mark as explained" not in card, "nothing left to explain"

    # The email and the PDF say it is explained, by whom and when.
    mail = next(m for m in smtp.messages if m["To"] == "maya@acme.example" and "November 2026" in m["Subject"])
    text = body_text(mail)
    assert "no red flags" in mail["Subject"]
    assert "EXPLAINED FLAGS (not counted as red)" in text and "RED FLAGS" not in text
    assert f"Explained in October 2026 by Carl: {WHY}" in text
    [attachment] = list(mail.iter_attachments())
    report = " ".join(pdf_text(attachment.get_content()).split())
    assert (
        "Explained flags" in report and "Explained in October 2026 by Carl" in report and "Two reps on leave" in report
    )

    december = month(engagement, DEC, 70)
    assert december.status == "red" and december.carried_from is None, "the explanation expired with November"
    body = consultant.get(url("health", engagement)).content.decode().split('id="explanations"')[1]
    body = body.split("</section>")[0]
    assert "No explanation is carried into the coming checks." in body
    assert "expired after the November 2026 check" in body


def test_a_withdrawn_explanation_stops_covering_later_months(cast, engagement, consultant, smtp):
    october = month(engagement, OCT, 78)
    explain(consultant, october)  # the default: three more months
    explanation = FlagExplanation.objects.get(engagement=engagement)
    assert explanation.until_period == JAN
    november = month(engagement, NOV, 80)
    assert november.status == "explained"

    page = consultant.get(url("health", engagement)).content.decode()
    section = page.split('id="explanations"')[1].split("</section>")[0]
    assert "Forecast Submission Compliance" in section or november.task_name in section
    assert WHY in section and "October 2026 by Carl" in section and "January 2027" in section
    withdraw = url("explanation-withdraw", engagement, explanation_uuid=explanation.uuid)
    assert withdraw in section

    response = consultant.post(withdraw)
    assert response.status_code == 302 and response["Location"].endswith("#explanations")
    explanation.refresh_from_db()
    assert explanation.withdrawn_at is not None and explanation.withdrawn_by == cast.consultant
    entry = ActivityEntry.objects.across_tenants("test").get(verb="health.explanation_withdrawn")
    assert entry.actor == cast.consultant and entry.data["until"] == "2027-01"
    again = consultant.post(withdraw, follow=True).content.decode()
    assert "already been withdrawn" in again
    assert ActivityEntry.objects.across_tenants("test").filter(verb="health.explanation_withdrawn").count() == 1

    december = month(engagement, DEC, 79)
    assert december.status == "red", "withdrawn: the next month's flag counts again"
    assert HealthResult.objects.across_tenants("test").get(pk=november.pk).status == "explained", (
        "a run already evaluated keeps its verdict"
    )
    section = consultant.get(url("health", engagement)).content.decode().split('id="explanations"')[1]
    assert "withdrawn" in section.split("</section>")[0] and "No explanation is carried" in section


def test_this_month_only_and_a_different_flag_are_not_carried(cast, engagement, consultant):
    october = month(engagement, OCT, 78)
    explain(consultant, october, months=0)
    october.refresh_from_db()
    assert october.status == "explained" and not FlagExplanation.objects.across_tenants("test").exists()
    assert month(engagement, NOV, 78).status == "red"

    # An explanation covers its own flag only: another task's flag in the same months stays red.
    november = HealthResult.objects.across_tenants("test").get(run__period=NOV, task_key=TASK)
    flags.explain_result(result=november, explanation=WHY, actor=cast.consultant, months=2)
    figures.record_metric(engagement=engagement, metric="recording_coverage", period=DEC, value=50)
    december_runs = month(engagement, DEC, 60).run
    statuses = dict(HealthResult.objects.filter(run=december_runs).values_list("task_key", "status"))
    assert statuses[TASK] == "explained" and statuses["recording-coverage-audit"] == "red"

    with pytest.raises(DomainError, match="at most 12 later months"):
        result = HealthResult.objects.get(run=december_runs, task_key="recording-coverage-audit")
        flags.explain_result(result=result, explanation="x", actor=cast.consultant, months=13)


def test_a_viewer_cannot_withdraw(cast, engagement, client):
    october = month(engagement, OCT, 78)
    flags.explain_result(result=october, explanation=WHY, actor=cast.consultant)
    explanation = FlagExplanation.objects.across_tenants("test").get()
    client.force_login(cast.viewer)
    page = client.get(url("health", engagement)).content.decode()
    assert WHY in page and "explanation-withdraw" not in page and "/withdraw/" not in page
    assert client.post(url("explanation-withdraw", engagement, explanation_uuid=explanation.uuid)).status_code == 403
    explanation.refresh_from_db()
    assert explanation.withdrawn_at is None
