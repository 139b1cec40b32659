"""The monthly Health-Check Report is fit to email: read back from the real WeasyPrint PDF (pdftotext, and page
images from pdftoppm read with Pillow), from the email and from the run's page, as a consultant checks it before
sending it to a client.

The run's results are written as a health check writes them (one row per rule, or per stage / transition), with
six months of figures behind each trend, so the expected counts come from this file, not from the report code.
"""

import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image, ImageFilter

from engagements import progression
from playbooks.models import Playbook
from reporting import figures, monthly_report, runs, schedules
from reporting.models import HealthCheckRun, HealthResult, RunStatus
from tests.conftest import body_text, ensure_library

pytestmark = pytest.mark.django_db(transaction=True)
NOVEMBER = date(2026, 11, 1)
MONTHS = [date(2026, month, 1) for month in range(6, 12)]  # June to November: the report's six-month trends
LONG_STAGE = "Renewal" + "Q" * 293  # a 300-character stage name without a space to break at
LONG_KEY = "Proposal" + "N" * 112  # as long as a result's key can be (120)
A4_WIDTH = 595.28  # points
RIGHT_MARGIN = 18 / 25.4 * 72  # report.css: 18 mm
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# (task name, metric, key, status, value, baseline, message): what one month's check found. Messages never begin
# with a status word, so the status column is the only place the report prints one.
RESULTS = [
    ("Stage Conversion Rate Check", "stage_conversion_rate", "MQL→SQL", "red", 31.0, 42.0,
     "31% vs baseline 42%: down 11 pp (red when down more than 5 pp)"),
    ("Stage Conversion Rate Check", "stage_conversion_rate", "SQL→SAO", "ok", 64.0, 62.0,
     "64% vs baseline 62%: up 2 pp (red when down more than 5 pp)"),
    ("Stage Conversion Rate Check", "stage_conversion_rate", LONG_KEY, "watch", 20.0, 28.0,
     "20% vs baseline 28%: down 8 pp (red when down more than 5 pp); held for 1 of 2 months"),
    ("Production by Stage Volume", "stage_entry_volume", "MQL", "ok", 412.0, 400.0,
     "412 vs baseline 400: up 3% (red when down more than 20%)"),
    ("Production by Stage Volume", "stage_entry_volume", "SQL", "explained", 120.0, 170.0,
     "120 vs baseline 170: down 29.4% (red when down more than 20%)"),
    ("Rogue Stage Audit", "unapproved_stage_values", "", "red", 2.0, None,
     f"2 values not in the signed architecture: Verbal Commit, {LONG_STAGE}"),
    ("Drop-off Reason Review", "drop_off_reason_share", "", "not_evaluable", None, None,
     "no drop-off reason field on deals"),
    ("Cost to Enter Stage Review", "cost_to_enter_stage", "", "not_evaluable", None, None,
     "needs manual input"),
    ("Time in Stage Analysis", "time_in_stage_days", "SQL", "info", 12.5, None, "12.5 days (tracked, no threshold)"),
    # One reason per metric listing each distinct reason with its stages, as the CRM figures give it for every row.
    ("Conversion rate decline", "stage_conversion_rate", "Onboarding→Implementation", "not_evaluable", None, None,
     "Onboarding→Implementation: HubSpot keeps no 'date entered' property for hs_pipeline_stage.; MQL→SQL: more "
     "records entered SQL (151) than MQL (133) this month, a rate of 114%: not a conversion rate"),
    ("Conversion rate decline", "stage_conversion_rate", "MQL→SQL", "not_evaluable", None, None,
     "Onboarding→Implementation: HubSpot keeps no 'date entered' property for hs_pipeline_stage.; MQL→SQL: more "
     "records entered SQL (151) than MQL (133) this month, a rate of 114%: not a conversion rate"),
]
HISTORY = [58.0, 55.0, 47.0, 40.0, 35.0]  # May..October values behind each trend, then the month's own value
STATUS_WORDS = {"red": "Red", "watch": "Watch", "not_evaluable": "Not evaluable", "explained": "Explained",
                "ok": "OK", "info": "Info"}


@pytest.fixture
def report(cast, settings, tmp_path, smtp):
    """A November run of a GTM Lifecycle engagement with the results above, reported and emailed."""
    settings.MEDIA_ROOT = tmp_path
    ensure_library()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle governance",
        start_date=date(2026, 3, 1),
        actor=cast.consultant,
        engagement_type="dedicated",
        team=[(cast.consultant, "architect")],
        stakeholders=[(cast.stakeholder, "Approver")],
    )
    schedules.start_schedule(engagement=engagement, actor=cast.consultant, live_since=date(2026, 5, 1))
    run, _ = runs.create_run(engagement, NOVEMBER)
    for name, metric, key, status, value, baseline, message in RESULTS:
        HealthResult.objects.create(
            organization=cast.org, run=run, task_key=name.lower().replace(" ", "-"), task_name=name, kind="task",
            metric=metric, key=key, status=status, message=message, value=value, baseline=baseline,
            explanation="Two reps on leave in November." if status == "explained" else "",
            explained_by=cast.consultant if status == "explained" else None,
        )
        if value is not None:
            for period, past in zip(MONTHS, [*HISTORY, value], strict=True):
                figures.record_metric(engagement=engagement, metric=metric, key=key, period=period, value=past)
    HealthCheckRun.objects.across_tenants("test").filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED,
        red_count=sum(r[3] == "red" for r in RESULTS),
        not_evaluable_count=sum(r[3] == "not_evaluable" for r in RESULTS),
        api_calls=17,
    )
    run.refresh_from_db()
    monthly_report.complete_run(run)
    run.refresh_from_db()
    pdf = run.report.file.read()
    ARTIFACTS.mkdir(exist_ok=True)
    pages = rasterise(pdf, ARTIFACTS / "health-report-sample")
    return run, pdf, pages


def rasterise(pdf: bytes, prefix: Path) -> list[Image.Image]:
    """The PDF's pages as 50 dpi images (kept under test-artifacts/ for reviewers)."""
    for old in prefix.parent.glob(f"{prefix.name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-", str(prefix)], input=pdf, check=True)
    files = sorted(prefix.parent.glob(f"{prefix.name}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [Image.open(f).convert("L") for f in files]


def pdf_text(data: bytes, *extra: str) -> str:
    return subprocess.run(
        ["pdftotext", *extra, "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def words(data: bytes) -> list[tuple[int, float, float, float, float, str]]:
    """(page, xMin, yMin, xMax, yMax, word) of every word pdftotext finds, in points."""
    html, found, page = pdf_text(data, "-bbox"), [], 0
    for line in html.splitlines():
        if "<page " in line:
            page += 1
        m = re.search(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*)</word>', line)
        if m:
            found.append((page, *(float(v) for v in m.groups()[:4]), m[5]))
    return found


def section(layout: str, heading: str, following: str) -> str:
    """The text between two headings of the report (headings stand alone on their line), on one line."""
    lines = layout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == heading)
    end = next((i for i, line in enumerate(lines) if i > start and following and line.strip() == following), len(lines))
    return " ".join(" ".join(lines[start + 1 : end]).split())


def dark_share(image: Image.Image) -> float:
    pixels = image.histogram()
    return sum(pixels[:80]) / max(1, sum(pixels))


def test_trend_charts_are_drawn_lines_not_black_boxes(report):
    run, pdf, pages = report
    headers = [w for w in words(pdf) if w[5] == "LAST"]
    assert len(headers) >= 2, "the red flags and every-check tables each have a trend column"
    charts_seen = 0
    for page, x_min, _, _, y_max, _ in headers:
        image = pages[page - 1]
        scale = image.width / A4_WIDTH
        # The trend column, from its header to the page's bottom margin.
        box = (int(x_min * scale), int(y_max * scale) + 2, int((A4_WIDTH - RIGHT_MARGIN) * scale), image.height - 60)
        column = image.crop(box)
        assert dark_share(column) < 0.05, f"page {page}: the trend column is mostly dark"
        # A solid box of at least 7x7 pixels (about 10 pt square) is what a chart painted black looks like.
        assert column.filter(ImageFilter.MaxFilter(7)).getextrema()[0] > 80, f"page {page}: a solid dark box"
        inked = sum(column.histogram()[:200])
        charts_seen += inked > 0
    assert charts_seen == len(headers), "each trend column draws its lines"


def test_every_table_fits_a4_portrait_even_with_a_300_character_stage_name(report):
    run, pdf, pages = report
    right_edge = A4_WIDTH - RIGHT_MARGIN
    beyond = [(page, word, x_max) for page, _, _, x_max, _, word in words(pdf) if x_max > right_edge + 1]
    assert beyond == [], "text runs off the page"
    for n, image in enumerate(pages, start=1):
        scale = image.width / A4_WIDTH
        strip = image.crop((int((right_edge + 2) * scale), 0, image.width, image.height))
        assert strip.getextrema()[0] > 230, f"page {n}: something is drawn in the right margin"
    flat = "".join(pdf_text(pdf).split())
    assert LONG_STAGE in flat and LONG_KEY in flat, "long names wrap inside their cells, whole"


def test_statuses_read_as_words_in_the_pdf_the_email_and_the_page(report, smtp, client, cast):
    run, pdf, _ = report
    text = pdf_text(pdf, "-layout")
    for code in ("NOTEVALUABLE", "not_evaluable", "NOT EVALUABLE", "Notevaluable"):
        assert code not in text
    every_check = section(text, "Every check", "")
    for status, word in STATUS_WORDS.items():
        expected = sum(r[3] == status for r in RESULTS)
        assert len(re.findall(rf"(?<![\w-]){word}(?![\w-])", every_check)) == expected, word

    mail = next(m for m in smtp.messages if m["To"] == "maya@acme.example")
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_content()
    for body in (body_text(mail), re.sub(r"<[^>]+>", " ", html)):
        assert "not_evaluable" not in body and "NOTEVALUABLE" not in body

    client.force_login(cast.consultant)
    page = client.get(
        reverse("reporting:run-detail", args=[cast.org.slug, run.engagement.uuid, run.uuid])
    ).content.decode()
    visible = re.sub(r"<[^>]+>", " ", page)
    assert "Not evaluable" in visible and "not_evaluable" not in visible


def test_the_summary_counts_the_rows_its_tables_list(report, smtp):
    run, pdf, _ = report
    layout = pdf_text(pdf, "-layout")
    text = " ".join(layout.split())
    # Counted here from the results written above: 2 red, 1 watch, 4 not evaluable, 1 explained, 3 within range.
    sentence = (
        "found 2 red flags, 1 trend to watch, 4 results that could not be evaluated, 1 explained flag and "
        "3 results within range."
    )
    assert sentence in text
    boxes = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", layout, re.M)
    assert boxes.groups() == ("2", "1", "4", "1", "11"), "red, to watch, not evaluable, explained, all results"
    assert "results in 7 checks" in text
    red = section(layout, "Red flags", "Trends to watch")
    assert "MQL→SQL" in red and "Verbal Commit" in red and "SQL→SAO" not in red
    watch = section(layout, "Trends to watch", "Explained flags")
    assert "20% vs baseline 28%" in watch and "MQL→SQL" not in watch
    explained = section(layout, "Explained flags", "Not evaluable")
    assert "Two reps on leave in November." in explained and "Explained by Carl" in explained
    not_evaluable = section(layout, "Not evaluable", "Every check")
    assert "No drop-off reason field on deals" in not_evaluable and "Needs manual input" in not_evaluable
    # Each stage's own reason, once: not the metric's whole list on every row.
    assert not_evaluable.count("HubSpot keeps no 'date entered' property") == 1
    assert not_evaluable.count("ore records entered SQL (151)") == 1
    every_check = section(layout, "Every check", "")
    for _, _, _, status, _, _, message in RESULTS:
        composite = status == "not_evaluable" and "; " in message
        own = message.split("; ")[0].partition(": ")[2] if composite else message
        assert own[0].upper() + own[1:15] in every_check

    mail = next(m for m in smtp.messages if m["To"] == "maya@acme.example")
    assert sentence in " ".join(body_text(mail).split())
