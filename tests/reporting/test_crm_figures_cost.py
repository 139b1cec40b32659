"""What one engagement's monthly health check costs the client's CRM (issue 10's budget): at most 40 requests on
Salesforce, history pages included, and 80 on HubSpot, for an org of 200,000 leads, in a month when the monthly,
quarterly and 6-12-monthly tasks are all due. Counted by the sandbox, at the HTTP door."""

from datetime import date

import pytest

from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from reporting import runs
from reporting.tasks import run_health_check
from tests.reporting.conftest import lifecycle_engagement
from tests.reporting.test_crm_health import STAGES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("crm_sandbox_settings")]
JAN = date(2027, 1, 1)  # five months after go-live (August 2026): every cadence but the first cycle is due
BUDGET = {"salesforce": 40, "hubspot": 80}


@pytest.mark.parametrize("platform", ["salesforce", "hubspot"])
def test_a_monthly_check_of_a_large_org_stays_within_its_request_budget(cast, smtp, platform):
    sandbox = {"salesforce": SalesforceSandbox, "hubspot": HubSpotSandbox}[platform]
    with sandbox(profile="healthy", seed=4, size=200_000, as_of=date(2027, 6, 1)) as crm:
        engagement = lifecycle_engagement(cast, crm, STAGES[platform])
        crm.reset_stats()
        run, _ = runs.create_run(engagement, JAN)
        run_health_check(run.pk)
        served = crm.stats["total"]
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.api_calls == served  # what the run records is what the CRM saw
    assert served <= BUDGET[platform], served
