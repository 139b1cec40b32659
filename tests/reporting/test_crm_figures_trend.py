"""Salesforce and HubSpot health checks month after month on the same generated org whose funnel declines from
November: both compute the MQL→SQL series the generator's own model gives, and the conversion, volume and
sustained triggers fire where that model says so and nowhere else.

The org (profile "healthy" with the sandbox's trend knob) holds the same contacts on both platforms. From November
on, 25 points fewer contacts go on from MQL to SQL and new contacts arrive 30% less often. Salesforce reads the
contacts' lifecycle entries from ContactHistory rows, HubSpot from its date-entered properties, each through its
real client library over HTTP. Expected figures come from `entered_in_month` (each record's path and entry times in
the generator), and expected flags from those figures and the playbook's thresholds, written out below.
"""

from datetime import date

import pytest

from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from crm_sandbox.profiles import Trend, variant
from reporting import runs
from reporting.models import HealthResult, MetricValue
from reporting.tasks import run_health_check
from tests.reporting.conftest import average_stay_days, entered_in_month, lifecycle_engagement

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("crm_sandbox_settings")]
AS_OF = date(2027, 6, 1)
SEP, OCT, NOV, DEC = date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)
DECLINING = variant("healthy", "declining", trend=Trend(start=NOV, conversion_drop_pp=25, volume_drop_pct=30))
SANDBOXES = {"salesforce": SalesforceSandbox, "hubspot": HubSpotSandbox}
STAGES = {
    "salesforce": {
        ("lead", "MQL"): ("Contact", "Lifecycle_Stage__c", ["MQL"]),
        ("lead", "SQL"): ("Contact", "Lifecycle Stage", ["SQL"]),
    },
    "hubspot": {
        ("lead", "MQL"): ("Contacts", "Lifecycle Stage", ["Marketing Qualified Lead"]),
        ("lead", "SQL"): ("Contacts", "lifecyclestage", ["salesqualifiedlead"]),
    },
}
KEY = "MQL→SQL"
# The playbook's thresholds (gtm-lifecycle.yaml), as a consultant reads them.
RATE_DROP_PP = 5  # Stage Conversion Rate Check: red when down more than 5 points from baseline
VOLUME_DROP_PCT = 20  # Production by Stage Volume: red when down more than 20% from baseline
DECLINE_PCT, DECLINE_MONTHS = 10, 2  # Conversion rate decline: down more than 10% for 2 months running


def expected_flags(truth: dict[date, dict[str, int]]) -> dict[date, set[tuple[str, str, str]]]:
    """(task, key, status) of every red or watch the model's figures call for, per month after September (the
    first business cycle, whose figures are the baselines)."""
    rate = {m: t["SQL"] / t["MQL"] * 100 for m, t in truth.items()}
    base_rate, base = rate[SEP], truth[SEP]
    declined = {m: (base_rate - r) / base_rate * 100 > DECLINE_PCT for m, r in rate.items()}
    flags = {}
    months = sorted(truth)
    for i, m in enumerate(months[1:], start=1):
        found = set()
        if base_rate - rate[m] > RATE_DROP_PP:
            found.add(("stage-conversion-rate-check", KEY, "red"))
        for stage in ("MQL", "SQL"):
            if (base[stage] - truth[m][stage]) / base[stage] * 100 > VOLUME_DROP_PCT:
                found.add(("production-by-stage-volume", stage, "red"))
        if declined[m]:
            held = 0
            for earlier in reversed(months[: i + 1]):
                if not declined[earlier]:
                    break
                held += 1
            found.add(("conversion-rate-decline", KEY, "red" if held >= DECLINE_MONTHS else "watch"))
        flags[m] = found
    return flags


def raised(run) -> set[tuple[str, str, str]]:
    tasks = ("stage-conversion-rate-check", "production-by-stage-volume", "conversion-rate-decline")
    return {
        (r.task_key, r.key, r.status)
        for r in HealthResult.objects.filter(run=run, task_key__in=tasks, status__in=("red", "watch"))
    }


@pytest.mark.parametrize("platform", ["salesforce", "hubspot"])
def test_the_mql_to_sql_series_and_its_triggers_follow_the_data_on_both_platforms(cast, smtp, platform):
    months = [SEP, OCT, NOV, DEC]
    with SANDBOXES[platform](profile=DECLINING, seed=3, size=100_000, as_of=AS_OF) as crm:
        truth = {m: {s: entered_in_month(crm.model, "contact", s.lower(), m) for s in ("MQL", "SQL")} for m in months}
        mql_stay = average_stay_days(crm.model, "contact", "mql", OCT)
        mql_stay_inside = average_stay_days(crm.model, "contact", "mql", OCT, began_in_month=True)
        engagement = lifecycle_engagement(cast, crm, STAGES[platform])
        by_month = {}
        for month in months:
            run, _ = runs.create_run(engagement, month)
            run_health_check(run.pk)
            run.refresh_from_db()
            assert run.status == "succeeded", run.error
            by_month[month] = run

    series = {
        m.period: m.value
        for m in MetricValue.objects.filter(engagement=engagement, metric="stage_conversion_rate", key=KEY)
    }
    assert series == pytest.approx({m: round(t["SQL"] / t["MQL"] * 100, 1) for m, t in truth.items()}, abs=0.05)
    rows = MetricValue.objects.filter(engagement=engagement, metric="stage_entry_volume")
    volumes = {(m.period, m.key): m.value for m in rows}
    assert volumes == {(m, s): float(n) for m, t in truth.items() for s, n in t.items()}

    # Time in stage (quarterly, due in October): Salesforce from the month's ContactHistory rows, so the stays that
    # began and ended in the month (the connector says so in its note); HubSpot from its date-entered/exited
    # properties of a first page of stays, a sample.
    stay = MetricValue.objects.get(engagement=engagement, metric="time_in_stage_days", key="MQL", period=OCT).value
    if platform == "salesforce":
        assert stay == pytest.approx(mql_stay_inside, abs=0.05)
    else:
        assert 0.5 * mql_stay < stay < 1.5 * mql_stay

    expected = expected_flags(truth)
    assert expected[OCT] == set()  # the months before the decline are steady: nothing fires
    assert ("stage-conversion-rate-check", KEY, "red") in expected[NOV]  # the knob does what the test relies on
    assert ("conversion-rate-decline", KEY, "watch") in expected[NOV]
    assert ("conversion-rate-decline", KEY, "red") in expected[DEC]
    assert ("production-by-stage-volume", "SQL", "red") in expected[NOV]
    for month in (OCT, NOV, DEC):
        assert raised(by_month[month]) == expected[month], month
