"""Large CSV uploads run in a Celery worker with their progress on the page; bad bytes answer 400 naming where.

The worker is a real process on Redis and the test database. A file of more than SYNC_MAX_LINES lines is queued:
the page polls a progress fragment until the worker has checked every line and written every figure in one
transaction, or failed and written nothing.
"""

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from engagements import imports, progression
from engagements.models import CsvImport, ImportStatus
from gtm_ops.celery import app as celery_app
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks
from reporting import periods, schedules
from reporting.models import MetricValue
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
PEOPLE = 1_200  # data lines of the large file: well above SYNC_MAX_LINES


@pytest.fixture
def scheduled(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    load_library_playbooks()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="revenue-intelligence").latest_version(),
        name="Forecasting",
        start_date=date(2026, 1, 5),
        actor=cast.consultant,
        engagement_type="dedicated",
        team=[(cast.consultant, "architect")],
    )
    live = periods.add_months(periods.due_period(), -6)
    schedules.start_schedule(engagement=engagement, actor=cast.consultant, live_since=live)
    return engagement


@pytest.fixture
def consultant(client, cast):
    client.force_login(cast.consultant)
    return client


def upload(client, engagement, data: bytes):
    url = reverse("reporting:metrics-upload", args=[engagement.organization.slug, engagement.uuid])
    return client.post(url, {"csv-file": SimpleUploadedFile("figures.csv", data, content_type="text/csv")})


def figures_csv(people: int, *, bad_line: int | None = None) -> str:
    """One weekly-dashboard figure per person for September 2026; line `bad_line` (1 is the header) gets a word for
    its value. The last person is entered twice: the later line wins."""
    lines = ["metric,key,period,value"]
    for n in range(1, people + 1):
        lines.append(f"manager_dashboard_accesses_per_week,rep-{n:04d},2026-09,{n % 7}")
    lines.append(f"manager_dashboard_accesses_per_week,rep-{people:04d},2026-09,6.5")
    if bad_line:
        lines[bad_line - 1] = lines[bad_line - 1].rsplit(",", 1)[0] + ",lots"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"metric,key,period,value\nrecording_coverage,,2026-09,9\x001\n",
         "Line 2: the file contains a NUL byte (column 30)"),
        (b"metric,key,period,value\nrecording_coverage,,2026-09,91\nrecording_\xff,,2026-09,90\n",
         "Line 3: the file has bytes that are not UTF-8 text (column 11)"),
    ],
    ids=["nul-byte", "not-utf8"],
)  # fmt: skip
def test_bytes_that_are_not_csv_text_answer_400_naming_line_and_column(consultant, scheduled, data, message):
    response = upload(consultant, scheduled, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not MetricValue.objects.filter(engagement=scheduled).exists()


def test_a_large_file_is_imported_by_the_worker_with_its_progress_shown(consultant, scheduled, request):
    celery_app.conf.task_always_eager = False  # queued on Redis; the worker starts below
    text = figures_csv(PEOPLE)
    lines = PEOPLE + 1  # the repeated last person is a line of its own
    assert lines > imports.SYNC_MAX_LINES

    response = upload(consultant, scheduled, text.encode())
    assert response.status_code == 302
    job = CsvImport.objects.for_org(scheduled.organization).get(engagement=scheduled)
    assert (job.status, job.lines, job.checked) == (ImportStatus.QUEUED, lines, 0)
    page = consultant.get(response["Location"]).content.decode()
    fragment = reverse("engagements:csv-import", args=[scheduled.organization.slug, scheduled.uuid, job.uuid])
    assert f'hx-get="{fragment}" hx-trigger="every 1s"' in page
    assert f"Waiting for a worker to import figures.csv: 0 of {lines} lines checked." in page
    assert not MetricValue.objects.filter(engagement=scheduled).exists(), "nothing is imported in the request"

    request.getfixturevalue("celery_worker")
    seen = []

    def finished() -> bool:
        job.refresh_from_db()
        seen.append(job.checked)
        return job.done

    wait_until(finished, timeout=60, what="the import")
    assert job.status == ImportStatus.SUCCEEDED, job.error
    assert seen == sorted(seen) and all(0 <= n <= lines for n in seen), f"progress went {seen}"
    done = consultant.get(fragment).content.decode()
    assert "hx-get" not in done, "the fragment stops polling once the import is done"
    assert f"{lines} health-check figures imported" in done and "figures.csv" in done
    figures = MetricValue.objects.filter(engagement=scheduled, source="csv")
    assert figures.count() == PEOPLE  # one per person: the repeated line replaced the earlier one
    assert figures.get(key=f"rep-{PEOPLE:04d}").value == 6.5
    assert figures.get(key="rep-0003").value == 3


def test_a_large_file_with_a_bad_line_imports_nothing_and_says_which_line(consultant, scheduled, request):
    request.getfixturevalue("celery_worker")
    response = upload(consultant, scheduled, figures_csv(PEOPLE, bad_line=901).encode())
    assert response.status_code == 302
    job = CsvImport.objects.for_org(scheduled.organization).get(engagement=scheduled)
    wait_until(lambda: (job.refresh_from_db(), job.done)[1], timeout=60, what="the import")
    assert job.status == ImportStatus.FAILED
    assert job.error == "Nothing was imported. Line 901, column value: a finite number is needed (got 'lots')."
    assert "Line 901, column value" in consultant.get(response["Location"]).content.decode()
    assert not MetricValue.objects.filter(engagement=scheduled).exists()
