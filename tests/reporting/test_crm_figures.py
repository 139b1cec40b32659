"""Health-check figures a consultant can defend: conversions join consecutive stages of one domain in one place
only, and a number that cannot be a rate is reported as not evaluable with its reason, never as a flag.

Through the HubSpot sandbox over HTTP and hubspot-api-client. Expected figures come from the sandbox generator's
own model (`entered_in_month`: the records whose lifecycle path entered a value in the month), never
from the code under test.
"""

from datetime import date

import pytest

from crm_sandbox import HubSpotSandbox
from reporting import figures, runs
from reporting.models import HealthResult, MetricValue
from reporting.tasks import run_health_check
from tests.reporting.conftest import entered_in_month, lifecycle_engagement

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("crm_sandbox_settings")]
AS_OF = date(2027, 6, 1)
OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)

# Lead-domain and customer-domain stages signed on the same field, contacts' lifecycle stage: the demo's November
# report chained them into one sequence ("Mature Adoption→Anonymous Visitor").
TWO_DOMAINS = {
    ("lead", "Anonymous Visitor"): ("Contacts", "Lifecycle Stage", ["Subscriber"]),
    ("lead", "Known Lead"): ("Contacts", "Lifecycle Stage", ["lead"]),
    ("lead", "MQL"): ("Contacts", "lifecyclestage", ["marketingqualifiedlead"]),
    ("lead", "SAL"): ("Contacts", "lifecyclestage", ["Sales Accepted Lead"]),
    ("lead", "SQL"): ("Contacts", "lifecyclestage", ["salesqualifiedlead"]),
    ("customer", "Early Adoption"): ("Contacts", "lifecyclestage", ["customer"]),
    ("customer", "Mature Adoption"): ("Contacts", "lifecyclestage", ["evangelist"]),
}
# The lead domain's order, as the GTM Lifecycle playbook signs it (Anonymous Visitor 1 ... SQL 6), and the
# customer domain's (Early Adoption 4, Mature Adoption 5): written out by hand.
WITHIN_DOMAINS = {
    "Anonymous Visitor→Known Lead": ("subscriber", "lead"),
    "Known Lead→MQL": ("lead", "mql"),
    "MQL→SAL": ("mql", "sal"),
    "SAL→SQL": ("sal", "sql"),
    "Early Adoption→Mature Adoption": ("customer", "evangelist"),
}


def entered(crm, value_key: str, period: date) -> int:
    return entered_in_month(crm.model, "contact", value_key, period)


def run_month(engagement, period):
    run, created = runs.create_run(engagement, period)
    assert created
    run_health_check(run.pk)
    run.refresh_from_db()
    return run, list(HealthResult.objects.filter(run=run))


def test_signed_stages_spanning_two_domains_convert_only_within_each_domain(cast, smtp):
    with HubSpotSandbox(profile="healthy", seed=11, size=100_000, as_of=AS_OF) as crm:
        engagement = lifecycle_engagement(cast, crm, TWO_DOMAINS)
        run, results = run_month(engagement, OCT)
        truth = {key: (entered(crm, a, OCT), entered(crm, b, OCT)) for key, (a, b) in WITHIN_DOMAINS.items()}
    assert run.status == "succeeded", run.error

    stored = {
        m.key: m.value
        for m in MetricValue.objects.filter(engagement=engagement, metric="stage_conversion_rate", period=OCT)
    }
    assert set(stored) == set(WITHIN_DOMAINS)  # nothing joins SQL to Early Adoption, or Mature Adoption to anything
    for key, (a, b) in truth.items():
        if a and b <= a:
            assert stored[key] == pytest.approx(b / a * 100, abs=0.05), key
        else:
            assert stored[key] is None, key
    assert all(v is None or 0 <= v <= 100 for v in stored.values())
    assert sum(v is not None for v in stored.values()) >= 3  # most of them are measured, not all skipped
    shown = {r.key for r in results if r.metric == "stage_conversion_rate"}
    assert not any(k.startswith(("SQL→", "Mature Adoption→")) for k in shown)


# The team signed MQL on the customer value by mistake: more contacts reach SQL in a month than "MQL".
MISMAPPED = {
    ("lead", "MQL"): ("Contacts", "Lifecycle Stage", ["customer"]),
    ("lead", "SQL"): ("Contacts", "Lifecycle Stage", ["salesqualifiedlead"]),
    ("sales", "SAO"): ("Deals", "New Business", ["Discovery Completed"]),
    ("sales", "Evaluation/Use Case"): ("Deals", "New Business", ["Solution Validated"]),
}


def test_a_conversion_above_100_percent_is_not_evaluable_with_its_reason_and_never_flags(cast, smtp):
    with HubSpotSandbox(profile="healthy", seed=11, size=100_000, as_of=AS_OF) as crm:
        engagement = lifecycle_engagement(cast, crm, MISMAPPED)
        mql, sql = entered(crm, "customer", OCT), entered(crm, "sql", OCT)
        assert sql > mql > 0  # the premise, from the generator
        # A baseline the month would fall far below, if the impossible rate were read as a rate.
        figures.set_baseline(
            engagement=engagement, metric="stage_conversion_rate", key="MQL→SQL", value=500, actor=cast.consultant
        )
        run, results = run_month(engagement, OCT)

    assert run.status == "succeeded", run.error
    row = MetricValue.objects.get(engagement=engagement, metric="stage_conversion_rate", key="MQL→SQL", period=OCT)
    assert row.value is None
    for task in ("stage-conversion-rate-check", "conversion-rate-decline"):
        [result] = [r for r in results if r.task_key == task and r.key == "MQL→SQL"]
        assert result.status == "not_evaluable"
        assert f"more records entered SQL ({sql:,}) than MQL ({mql:,})" in result.message
        assert f"a rate of {sql / mql * 100:.0f}%" in result.message and "not a conversion rate" in result.message
    # The sales pipeline's conversion is measured as usual.
    sao = next(r for r in results if r.task_key == "stage-conversion-rate-check" and r.key == "SAO→Evaluation/Use Case")
    assert sao.value is not None and 0 < sao.value <= 100
    assert not [r for r in results if r.metric == "stage_conversion_rate" and r.status == "red"]
