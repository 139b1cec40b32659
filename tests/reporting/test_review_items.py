"""Issue 16 items 4 and 5 on the screens: review items (tasks a person reviews and records) and each flag's rule,
window and response on the run page, in the PDF and in the email; weekly figures entered by hand."""

from datetime import timedelta

import pytest
import yaml
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from reporting.models import HealthCheckRun, HealthResult, MetricValue
from tests.conftest import body_text, wait_until
from tests.reporting.test_health_views import consultant, pdf_text, ri, text_of, u, versions  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def scheduled(cast, ri):  # noqa: F811
    """Live since five months before the month due: its sixth month, when the quarterly and the every-6-12-months
    tasks fall due (three quarterly rounds of months 0-2, 3-5; the first half-year)."""
    from reporting import periods, schedules

    schedules.start_schedule(
        engagement=ri, actor=cast.consultant, live_since=periods.add_months(periods.due_period(), -5)
    )
    return ri


def _ri_maintenance() -> dict:
    """The RI playbook's maintenance data, read from its YAML (not through the code under test)."""
    path = django_settings.BASE_DIR / "playbooks" / "library" / "revenue-intelligence.yaml"
    data = yaml.safe_load(path.read_text())
    return next(v for v in _walk(data) if isinstance(v, dict) and "refinement_triggers" in v)


def _walk(node):
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from _walk(child)


def _run_with_a_red_trigger(client, engagement, smtp) -> HealthCheckRun:
    """Managers' weekly dashboard access at 30%, under the seed's 50%: the dashboard-usage trigger fires."""
    from reporting import figures, periods

    figures.record_metric(
        engagement=engagement,
        metric="share_of_managers_accessing_weekly",
        period=periods.due_period(),
        value=30,
    )
    client.post(u("run-now", engagement))
    run = HealthCheckRun.objects.get(engagement=engagement)
    assert run.status in ("succeeded", "partial"), run.error
    smtp.wait_for(2)
    return run


def test_review_items_and_rule_window_response_on_page_pdf_and_email(consultant, cast, scheduled, smtp):  # noqa: F811
    run = _run_with_a_red_trigger(consultant, scheduled, smtp)
    maintenance = _ri_maintenance()
    trigger = next(t for t in maintenance["refinement_triggers"] if t["key"] == "dashboard-usage-decline")
    review_tasks = {t["name"] for t in maintenance["tasks"] if not t.get("rules")}

    red = HealthResult.objects.get(run=run, task_key="dashboard-usage-decline")
    assert red.status == "red" and red.value == 30
    assert red.rule_text and red.window, "the rule and its window are stored in words"
    items = list(HealthResult.objects.filter(run=run, kind="task", metric=""))
    assert items, "the sixth month after go-live has tasks without a machine rule due"
    assert {i.task_name for i in items} <= review_tasks
    item = items[0]
    assert item.status == "not_evaluable" and item.reviewed_at is None

    # The page: the red row says its rule, window and what to do; the review item waits, with a form.
    page = text_of(consultant.get(u("run-detail", scheduled, run_uuid=run.uuid)))
    row = page.split(f'id="result-{red.uuid}"')[1].split("</li>")[0]
    assert red.rule_text[:1].upper() + red.rule_text[1:] in row
    assert f"Judged over {red.window}" in row and trigger["response"] in row and "What to do:</strong>" in row
    review = page.split('id="review-items"')[1].split("</section>")[0]
    assert "To review" in page and item.task_name in review and "Not yet recorded" in review
    assert f'id="review-count" class="lane-count">{len(items)}<' in page
    needed = page.split('id="group-not_evaluable"')[1].split("</section>")[0] if "group-not_evaluable" in page else ""
    assert item.task_name not in needed, "a review item is not listed again as missing data"

    # The PDF and the email, rendered when the run finished: the item is not yet recorded; the flag says what to do.
    download = consultant.get(u("report-download", scheduled, run_uuid=run.uuid))
    text = " ".join(pdf_text(b"".join(download.streaming_content)).split())
    assert "To review" in text and item.task_name in text and "Not yet recorded" in text
    assert f"What to do: {trigger['response']}" in text and f"Judged over {red.window}" in text
    mail = body_text(next(m for m in smtp.messages if m["To"] == "maya@acme.example"))
    assert "TO REVIEW" in mail and f"- {item.task_name}: not yet recorded" in mail
    assert f"What to do: {trigger['response']}" in mail and f"Judged over {red.window}" in mail
    needs = mail.split("NEEDS A DECISION OR DATA")[1] if "NEEDS A DECISION OR DATA" in mail else ""
    assert item.task_name not in needs.split("NOT YET DUE")[0]

    # Recording it (htmx): the item reads done by whom, when, with the note; the counts drop by one.
    before = HealthCheckRun.objects.across_tenants("test").get(pk=run.pk).not_evaluable_count
    prefix = f"review-{item.uuid.hex[:12]}"
    empty = consultant.post(u("review-record", scheduled, result_uuid=item.uuid), {f"{prefix}-note": ""}, **HTMX)
    assert empty.status_code == 400 and f'id="id_{prefix}-note_error"' in text_of(empty)
    swap = consultant.post(
        u("review-record", scheduled, result_uuid=item.uuid), {f"{prefix}-note": "Benchmarks match Q3 winners."}, **HTMX
    )
    today = timezone.localdate()
    assert swap.status_code == 200
    body = text_of(swap)
    assert f"Done by {cast.consultant.get_full_name()} on {today:%-d %B %Y}: Benchmarks match Q3 winners." in body
    assert f'id="review-count" class="lane-count" hx-swap-oob="true">{len(items) - 1}<' in body
    assert 'id="run-status"' in body and 'hx-swap-oob="true"' in body
    assert f"<strong>{before - 1}</strong> not evaluable" in body
    item.refresh_from_db()
    assert (item.status, item.reviewed_by, item.review_note) == ("ok", cast.consultant, "Benchmarks match Q3 winners.")
    page = text_of(consultant.get(u("run-detail", scheduled, run_uuid=run.uuid)))
    assert f"Done by {cast.consultant.get_full_name()} on {today:%-d %B %Y}" in page
    # The PDF follows: the report's next version holds the review (rendered by the worker).
    wait_until(lambda: HealthCheckRun.objects.for_org(cast.org).get(pk=run.pk).report.status == "done")
    report = HealthCheckRun.objects.for_org(cast.org).get(pk=run.pk).report
    assert report.number == 2
    download = consultant.get(u("report-download", scheduled, run_uuid=run.uuid))
    text = " ".join(pdf_text(b"".join(download.streaming_content)).split())
    assert f"Done by {cast.consultant.get_full_name()} on {today:%-d %B %Y}: Benchmarks match Q3 winners." in text
    assert len([m for m in smtp.messages]) == 2, "the review re-renders the report; it sends no email"
    again = consultant.post(
        u("review-record", scheduled, result_uuid=item.uuid), {f"{prefix}-note": "Twice"}, follow=True
    )
    assert "already been recorded" in text_of(again)
    item.refresh_from_db()
    assert item.review_note == "Benchmarks match Q3 winners."
    assert HealthCheckRun.objects.across_tenants("test").get(pk=run.pk).not_evaluable_count == before - 1


def test_a_viewer_cannot_record_and_another_organization_finds_nothing(client, cast, versions, scheduled, smtp):  # noqa: F811
    client.force_login(cast.consultant)
    run = _run_with_a_red_trigger(client, scheduled, smtp)
    item = HealthResult.objects.filter(run=run, kind="task", metric="").first()
    url = u("review-record", scheduled, result_uuid=item.uuid)
    data = {f"review-{item.uuid.hex[:12]}-note": "Looked at it."}

    client.force_login(cast.viewer)
    assert "Record the review" not in text_of(client.get(u("run-detail", scheduled, run_uuid=run.uuid)))
    assert client.post(url, data).status_code == 403
    client.force_login(cast.outsider)
    assert client.post(url, data).status_code == 404
    theirs = reverse(
        "reporting:review-record",
        kwargs={"org_slug": cast.other_org.slug, "engagement_uuid": scheduled.uuid, "result_uuid": item.uuid},
    )
    assert client.post(theirs, data).status_code == 404
    item.refresh_from_db()
    assert item.reviewed_at is None and item.status == "not_evaluable"


def test_a_weekly_figure_entered_by_hand_is_stored_as_a_week(consultant, scheduled):  # noqa: F811
    monday = timezone.localdate() - timedelta(days=14)
    monday -= timedelta(days=monday.weekday())
    year, week, _ = monday.isocalendar()
    response = consultant.post(
        u("metric-add", scheduled),
        {"figure-metric": "recording_coverage", "figure-period": f"{year}-W{week:02d}", "figure-value": "82"},
    )
    assert response.status_code == 302
    row = MetricValue.objects.get(engagement=scheduled, metric="recording_coverage")
    assert (row.granularity, row.period, row.value) == ("week", monday, 82)
    page = text_of(consultant.get(response["Location"]))
    assert f"the week of {monday:%-d %B %Y} recorded: 82" in page

    bad = consultant.post(
        u("metric-add", scheduled),
        {"figure-metric": "recording_coverage", "figure-period": f"{year}-W60", "figure-value": "82"},
    )
    assert bad.status_code == 400 and "YYYY-Www (e.g. 2026-W41)" in text_of(bad)
    assert MetricValue.objects.filter(engagement=scheduled).count() == 1
