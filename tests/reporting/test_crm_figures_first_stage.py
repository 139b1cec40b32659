"""Salesforce entries into a domain's first stage count the records created in it, as HubSpot's 'date entered'
does: field history has no row for a record's first value, so the connector reads the records created in the month
and takes each one's first value from its earliest change (in the month or after it), else its value now.

Through the Salesforce sandbox over HTTP and simple-salesforce. Expected figures come from the sandbox generator's
own model (`entered_in_month`: the records whose lifecycle path, creation included, entered a value in the month).
"""

from datetime import date

import pytest

from crm_sandbox import SalesforceSandbox
from reporting import runs
from reporting.models import MetricValue
from reporting.tasks import run_health_check
from tests.reporting.conftest import entered_in_month, lifecycle_engagement
from tests.reporting.test_crm_health import STAGES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("crm_sandbox_settings")]
JUN, OCT = date(2026, 6, 1), date(2026, 10, 1)
LEAD_STAGES = {"Known Lead": "lead", "MQL": "mql", "SQL": "sql"}  # signed stage -> the generator's lifecycle key


def entries(engagement, period):
    run, _ = runs.create_run(engagement, period)
    run_health_check(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    stored = MetricValue.objects.filter(engagement=engagement, metric="stage_entry_volume", period=period)
    return run, {m.key: m.value for m in stored}


def test_first_stage_entries_count_the_records_created_in_it(cast, smtp):
    # Read on 3 November: October's run on time (two days of later changes), June's a catch-up months later.
    with SalesforceSandbox(profile="healthy", seed=5, size=20_000, as_of=date(2026, 11, 3)) as crm:
        engagement = lifecycle_engagement(cast, crm, STAGES["salesforce"])
        _, october = entries(engagement, OCT)
        _, june = entries(engagement, JUN)
        truth = {p: {s: entered_in_month(crm.model, "lead", k, p) for s, k in LEAD_STAGES.items()} for p in (OCT, JUN)}

    assert truth[OCT]["Known Lead"] > 0  # records are created in the first stage every month
    for stage in LEAD_STAGES:
        assert october[stage] == truth[OCT][stage], stage
    # A month long past: when its later changes are more than a few pages, the first values are not read (today's
    # values would be wrong) and the changes alone count: a figure is never more than the records that entered.
    for stage in LEAD_STAGES:
        assert june[stage] is not None and june[stage] <= truth[JUN][stage], stage
