"""A large CSV of hypercare KPI readings is imported by a real Celery worker, and the gate checkpoint follows."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from engagements import imports
from engagements.models import CheckpointStatus, CsvImport, ImportStatus, KpiReading
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks
from tests.conftest import wait_until
from tests.engagements.test_kpi_readings import COVERAGE, START, coverage_checkpoint, in_hypercare

pytestmark = pytest.mark.django_db(transaction=True)
DAYS = 30


def test_a_large_kpi_csv_is_imported_by_the_worker(cast, client, celery_worker, monkeypatch):
    # The threshold is the web side's: 30 lines stand for a large file without making the test slow.
    monkeypatch.setattr(imports, "SYNC_MAX_LINES", 10)
    load_library_playbooks()
    ri = in_hypercare(cast, Playbook.objects.library().get(key="revenue-intelligence").latest_version())
    rows = [f"{COVERAGE},{START + timedelta(days=n)},{70 + n}," for n in range(DAYS)]  # 70% rising to 99%
    text = "kpi,measured_on,value,note\n" + "\n".join(rows) + "\n"
    client.force_login(cast.consultant)
    url = reverse("engagements:kpi-upload", args=[cast.org.slug, ri.uuid])
    response = client.post(url, {"kpi-csv-file": SimpleUploadedFile("kpis.csv", text.encode(), "text/csv")})
    assert response.status_code == 302

    job = CsvImport.objects.for_org(cast.org).get(engagement=ri)
    assert job.lines == DAYS
    wait_until(lambda: (job.refresh_from_db(), job.done)[1], timeout=60, what="the import")
    assert (job.status, job.imported, job.checked) == (ImportStatus.SUCCEEDED, DAYS, DAYS), job.error
    readings = KpiReading.objects.for_org(cast.org).filter(engagement=ri).order_by("measured_on")
    assert readings.count() == DAYS
    assert readings.last().value == Decimal(99)
    assert coverage_checkpoint(ri).status == CheckpointStatus.CHECKED  # the latest reading, 99, is at least 95
    page = client.get(response["Location"]).content.decode()
    assert f"{DAYS} hypercare KPI readings imported" in page and "kpis.csv" in page
