"""Hypercare KPI readings through the API (under the engagement) and as CSV on the enablement page."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ActivityEntry
from engagements import enablement, progression
from engagements.models import CheckpointStatus, KpiReading

START = date(2026, 11, 2)  # engagement start and hypercare start
# Seed 002 §3c, RI: call recording coverage, target 95%+ within 14 days of hypercare, red flag below 80%.
COVERAGE = "call-recording-coverage"


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def in_hypercare(cast, version):
    """An engagement driven to its enablement gate (checkpoints ticked, or waived where they tick themselves),
    with hypercare running from START."""
    e = progression.create_engagement(
        client=cast.client, playbook_version=version, name="Forecasting", start_date=START, actor=cast.consultant
    )
    for phase in e.phases.order_by("order"):
        if phase.key == "enablement":
            break
        gate = phase.gate
        for checkpoint in gate.checkpoints.all():
            action = "waive" if checkpoint.auto else "check"
            progression.resolve_checkpoint(
                checkpoint=checkpoint, action=action, actor=cast.consultant, reason="Signed on paper."
            )
        option = next(o for o in progression.gate_options(gate) if o.effect == "proceed")
        progression.decide_gate(gate=gate, option_key=option.key, actor=cast.consultant)
    enablement.set_hypercare(engagement=e, start=START, actor=cast.consultant)
    e.refresh_from_db()
    return e


@pytest.fixture
def ri(cast, library):
    return in_hypercare(cast, library["revenue-intelligence"])


def coverage_checkpoint(engagement):
    return engagement.phases.get(key="enablement").gate.checkpoints.get(kpi=COVERAGE)


def api_url(engagement, org="alpha", reading=None) -> str:
    base = f"/api/v1/o/{org}/engagements/{engagement.uuid}/kpi-readings/"
    return f"{base}{reading}/" if reading else base


# --------------------------------------------------------------------------------------------------
# API


def test_recording_a_reading_through_the_api_judges_it_and_the_checkpoint_follows(cast, ri):
    api = api_as(cast.consultant)
    response = api.post(
        api_url(ri), {"kpi": COVERAGE, "measured_on": "2026-11-16", "value": "94.9", "note": "Week 2"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kpi"], body["measured_on"], body["value"], body["recorded_by"]) == (
        COVERAGE,
        "2026-11-16",
        "94.90",
        "carl@alpha.example",
    )
    assert coverage_checkpoint(ri).status == CheckpointStatus.OPEN  # 94.9 is short of 95

    verdicts = {v["kpi"]: v for v in api.get(api_url(ri) + "verdicts/").json()}
    assert set(verdicts) == {k.key for k in ri.spec.hypercare.kpis}
    coverage = verdicts[COVERAGE]
    assert coverage["status"] == "below_target"  # day 14 of hypercare: the window has ended
    assert coverage["due_on"] == "2026-11-16" and coverage["latest"]["value"] == "94.90"
    assert all(v["status"] == "not_recorded" and v["latest"] is None for k, v in verdicts.items() if k != COVERAGE)

    response = api.post(api_url(ri), {"kpi": COVERAGE, "measured_on": "2026-11-17", "value": 95}, format="json")
    assert response.status_code == 201
    assert coverage_checkpoint(ri).status == CheckpointStatus.CHECKED
    listed = api.get(api_url(ri)).json()
    assert [(r["measured_on"], r["value"]) for r in listed["results"]] == [
        ("2026-11-16", "94.90"),
        ("2026-11-17", "95.00"),
    ]
    one = api.get(api_url(ri, reading=listed["results"][0]["uuid"]))
    assert one.status_code == 200 and one.json()["note"] == "Week 2"


@pytest.mark.parametrize(
    ("payload", "where", "message"),
    [
        (
            {"kpi": "partner-adoption", "measured_on": "2026-11-16", "value": 50},
            "kpi",
            "no hypercare KPI 'partner-adoption'",
        ),
        ({"kpi": COVERAGE, "measured_on": "2026-11-16", "value": "100.1"}, "detail", "more than 100%"),
        ({"kpi": COVERAGE, "measured_on": "2026-11-16", "value": -1}, "detail", "cannot be negative"),
        ({"kpi": COVERAGE, "measured_on": "2031-01-01", "value": 90}, "detail", "in the future"),
        ({"kpi": COVERAGE, "measured_on": "16/11/2026", "value": 90}, "measured_on", "Date has wrong format"),
        ({"kpi": COVERAGE, "measured_on": "2026-11-16", "value": "lots"}, "value", "A valid number is required"),
    ],
)
def test_a_reading_the_api_refuses_says_why_and_writes_nothing(cast, ri, payload, where, message):
    before = ActivityEntry.objects.across_tenants("test").count()
    response = api_as(cast.consultant).post(api_url(ri), payload, format="json")
    assert response.status_code == 400
    found = response.json()[where]
    assert message in (found if isinstance(found, str) else " ".join(found))
    assert not KpiReading.objects.across_tenants("test").exists()
    assert ActivityEntry.objects.across_tenants("test").count() == before


def test_kpi_readings_stay_behind_the_tenant_wall(cast, ri):
    reading = enablement.record_kpi_reading(
        engagement=ri, kpi=COVERAGE, measured_on=date(2026, 11, 9), value=Decimal(90), actor=cast.consultant
    )
    outsider = api_as(cast.outsider)
    assert outsider.get(api_url(ri)).status_code == 404  # not their organization
    assert outsider.get(api_url(ri, org="beta")).status_code == 404  # their organization, not their engagement
    response = outsider.post(api_url(ri, org="beta"), {"kpi": COVERAGE, "measured_on": "2026-11-10", "value": 1})
    assert response.status_code == 404
    assert api_as(cast.consultant).get(api_url(ri, reading="not-a-uuid")).status_code == 404
    viewer = api_as(cast.viewer)
    assert viewer.get(api_url(ri, reading=reading.uuid)).json()["value"] == "90.00"
    response = viewer.post(api_url(ri), {"kpi": COVERAGE, "measured_on": "2026-11-10", "value": 96}, format="json")
    assert response.status_code == 403
    assert KpiReading.objects.across_tenants("test").count() == 1


def test_the_schema_lists_the_kpi_paths(client):
    text = client.get("/api/v1/schema/").content.decode()
    assert "/api/v1/o/{org_slug}/engagements/{engagement_uuid}/kpi-readings/" in text
    assert "/api/v1/o/{org_slug}/engagements/{engagement_uuid}/kpi-readings/verdicts/" in text


# --------------------------------------------------------------------------------------------------
# CSV on the enablement page


@pytest.fixture
def consultant(client, cast):
    client.force_login(cast.consultant)
    return client


def upload(client, engagement, content: bytes | str):
    data = content.encode() if isinstance(content, str) else content
    url = reverse("engagements:kpi-upload", args=[engagement.organization.slug, engagement.uuid])
    return client.post(url, {"kpi-csv-file": SimpleUploadedFile("kpis.csv", data, content_type="text/csv")})


def readings(engagement) -> list[tuple]:
    return list(
        KpiReading.objects.filter(engagement=engagement)
        .order_by("measured_on", "kpi")
        .values_list("kpi", "measured_on", "value", "note")
    )


def test_a_csv_of_readings_is_imported_and_the_checkpoint_follows(cast, ri, consultant):
    text = (
        "kpi,measured_on,value,note\n"
        f"{COVERAGE},2026-11-09,88,first week\n"
        f"{COVERAGE},2026-11-16,96.5,\n"
        "manager-dashboard-access,2026-11-16,4,\n"
    )
    response = upload(consultant, ri, text)
    assert response.status_code == 302
    assert readings(ri) == [
        (COVERAGE, date(2026, 11, 9), Decimal("88.00"), "first week"),
        (COVERAGE, date(2026, 11, 16), Decimal("96.50"), ""),
        ("manager-dashboard-access", date(2026, 11, 16), Decimal("4.00"), ""),
    ]
    assert coverage_checkpoint(ri).status == CheckpointStatus.CHECKED  # latest 96.5 >= 95
    page = consultant.get(response["Location"]).content.decode()
    assert "3 KPI readings imported from the CSV." in page
    entry = ActivityEntry.objects.for_org(cast.org).get(verb="hypercare.kpis_imported")
    assert entry.data == {"readings": 3, "replaced": 0, "checkpoints": ["recording-coverage"]}


def test_a_corrected_file_replaces_the_readings_of_the_same_kpi_and_day(cast, ri, consultant):
    enablement.record_kpi_reading(
        engagement=ri, kpi=COVERAGE, measured_on=date(2026, 11, 16), value=Decimal(96), actor=cast.consultant
    )
    assert coverage_checkpoint(ri).status == CheckpointStatus.CHECKED
    assert upload(consultant, ri, f"kpi,measured_on,value\n{COVERAGE},2026-11-16,91\n").status_code == 302
    assert readings(ri) == [(COVERAGE, date(2026, 11, 16), Decimal("91.00"), "")]
    assert coverage_checkpoint(ri).status == CheckpointStatus.OPEN


LATER = (timezone.localdate() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            f"kpi,measured_on,value\n{COVERAGE},2026-11-09,90\n{COVERAGE},2026-11-10,ninety\n",
            "Line 3, column value: a number is needed (got &#x27;ninety&#x27;).",
        ),
        (
            f"kpi,measured_on,value\n{COVERAGE},2026-11-09,90\npartner-adoption,2026-11-10,50\n",
            "Line 3, column kpi: unknown KPI &#x27;partner-adoption&#x27;",
        ),
        (
            f"kpi,measured_on,value\n{COVERAGE},9 Nov 2026,90\n",
            "Line 2, column measured_on: write the day as YYYY-MM-DD",
        ),
        (f"kpi,measured_on,value\n{COVERAGE},{LATER},90\n", f"Line 2, column measured_on: {LATER} is in the future"),
        (f"kpi,measured_on,value\n{COVERAGE},2026-10-30,90\n", "is before the engagement started (2 Nov 2026)"),
        (f"kpi,measured_on,value\n{COVERAGE},2026-11-09,100.5\n", "Line 2, column value: Call recording coverage"),
        (f"kpi,measured_on,value\n{COVERAGE},2026-11-09,NaN\n", "Line 2, column value: a finite number"),
        (
            f"kpi,measured_on,value\n{COVERAGE},2026-11-09,90,extra\n",
            "Line 2: expected the columns kpi, measured_on, value",
        ),
        (
            f"kpi,day,value\n{COVERAGE},2026-11-09,90\n",
            "Line 1: the columns are kpi, measured_on, value, note (note is optional); "
            "missing measured_on; unknown day.",
        ),
        (
            f"kpi,measured_on,value\n{COVERAGE},2026-11-09,90\n\n{COVERAGE},2026-11-09,91\n",
            "Line 4: call-recording-coverage on 2026-11-09 is already on line 2",
        ),
        ("kpi,measured_on,value\n", "Line 2: the file has a header but no readings."),
        ("", "The submitted file is empty."),
        (
            f"kpi,measured_on,value\n{COVERAGE},2026-11-09,90\n{COVERAGE},2026-11-10,9\x000\n",
            "Line 3: the file contains a NUL byte",
        ),
        (
            f"kpi,measured_on,value\n{COVERAGE},2026-11-09,90\n".encode() + b"\xff\xfe,2026-11-10,90\n",
            "Line 3: the file has bytes that are not UTF-8 text",
        ),
    ],
    ids=[
        "bad-number",
        "unknown-kpi",
        "bad-day",
        "future-day",
        "before-start",
        "over-100-percent",
        "nan",
        "extra-cell",
        "bad-header",
        "duplicate-day",
        "header-only",
        "empty",
        "nul-byte",
        "not-utf8",
    ],
)
def test_a_bad_csv_answers_400_naming_the_line_and_imports_nothing(cast, ri, consultant, content, message):
    before = ActivityEntry.objects.across_tenants("test").count()
    response = upload(consultant, ri, content)
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body, body[body.find("errorlist") - 200 : body.find("errorlist") + 600]
    assert readings(ri) == [] and ActivityEntry.objects.across_tenants("test").count() == before
    assert coverage_checkpoint(ri).status == CheckpointStatus.OPEN


def test_the_download_lists_every_reading_and_uploads_again_unchanged(cast, ri, consultant):
    record = enablement.record_kpi_reading
    record(engagement=ri, kpi=COVERAGE, measured_on=date(2026, 11, 16), value=Decimal("96.5"), actor=cast.consultant)
    record(
        engagement=ri,
        kpi="manager-dashboard-access",
        measured_on=date(2026, 11, 9),
        value=Decimal(3),
        note='=HYPERLINK("http://evil.example")',
        actor=cast.consultant,
    )
    url = reverse("engagements:kpi-download", args=[ri.organization.slug, ri.uuid])
    response = consultant.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="hypercare-kpis-forecasting.csv"'
    text = response.content.decode()
    assert text == (
        "kpi,measured_on,value,note\n"
        'manager-dashboard-access,2026-11-09,3.00,"\'=HYPERLINK(""http://evil.example"")"\n'
        f"{COVERAGE},2026-11-16,96.50,\n"
    )
    stored = readings(ri)
    assert upload(consultant, ri, text).status_code == 302
    assert readings(ri) == stored  # the same readings, the formula-looking note read back as written


def test_the_enablement_page_offers_the_upload_and_a_viewer_cannot_use_it(cast, ri, consultant, client):
    url = reverse("engagements:enablement", args=[ri.organization.slug, ri.uuid])
    page = consultant.get(url).content.decode()
    assert "Upload readings as CSV" in page and reverse("engagements:kpi-upload", args=["alpha", ri.uuid]) in page
    assert "Download every reading (CSV)" not in page  # nothing recorded yet
    client.force_login(cast.viewer)
    assert upload(client, ri, f"kpi,measured_on,value\n{COVERAGE},2026-11-09,90\n").status_code == 403
    assert readings(ri) == []
