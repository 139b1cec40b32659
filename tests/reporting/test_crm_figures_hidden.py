"""A field the integration user cannot read (field-level security: Salesforce leaves it out of describe and answers
INVALID_FIELD, HubSpot leaves it out of properties and answers VALIDATION_ERROR) makes only the figures that need it
not evaluable, with the field named; every other figure is exactly what the same org gives with the field visible.

Each case runs the same month twice on the same generated org, once with the field visible and once hidden, over
HTTP through the real client libraries.
"""

from datetime import date

import pytest

from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from crm_sandbox.connection import sandbox_connection
from crm_sandbox.profiles import variant
from reporting import runs
from reporting.models import HealthCheckRun, HealthResult, MetricValue
from reporting.tasks import run_health_check
from tests.reporting.conftest import lifecycle_engagement

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("crm_sandbox_settings")]
AS_OF = date(2027, 6, 1)
OCT = date(2026, 10, 1)
SANDBOXES = {"salesforce": SalesforceSandbox, "hubspot": HubSpotSandbox}
STAGES = {
    "salesforce": {
        ("lead", "MQL"): ("Lead", "Lifecycle Stage", ["MQL"]),
        ("lead", "SQL"): ("Lead", "Lifecycle Stage", ["SQL"]),
        ("sales", "SAO"): ("Opportunity", "StageName", ["Discovery Completed"]),
        ("sales", "Evaluation/Use Case"): ("Opportunity", "StageName", ["Solution Validated"]),
        ("sales", "Closed Won"): ("Opportunity", "StageName", ["Closed Won"]),
    },
    "hubspot": {
        ("lead", "MQL"): ("Contact", "Lifecycle Stage", ["marketingqualifiedlead"]),
        ("lead", "SQL"): ("Contact", "Lifecycle Stage", ["salesqualifiedlead"]),
        ("sales", "SAO"): ("Deal", "New Business", ["Discovery Completed"]),
        ("sales", "Evaluation/Use Case"): ("Deal", "New Business", ["Solution Validated"]),
        ("sales", "Closed Won"): ("Deal", "New Business", ["Closed Won"]),
    },
}
LIFECYCLE_KEYS = ("MQL", "SQL")  # the figures of stages signed on the lifecycle field


def results_of(engagement, sandbox) -> dict[tuple[str, str, str], HealthResult]:
    """October's check against `sandbox`, from scratch (an earlier October run and its figures are removed)."""
    sandbox_connection(client=engagement.client, sandbox=sandbox)
    HealthCheckRun.objects.filter(engagement=engagement, period=OCT).delete()
    MetricValue.objects.filter(engagement=engagement, period=OCT).delete()
    run, _ = runs.create_run(engagement, OCT)
    run_health_check(run.pk)
    run.refresh_from_db()
    assert run.status in ("succeeded", "partial"), run.error
    return {(r.task_key, r.metric, r.key): r for r in HealthResult.objects.filter(run=run)}


@pytest.mark.parametrize(
    "platform, hidden, signed_as, depends",
    [
        (
            "hubspot",
            "contact.lifecyclestage",
            "Contact.Lifecycle Stage",
            lambda task, metric, key: any(k in key for k in LIFECYCLE_KEYS) or task == "rogue-stage-audit",
        ),
        (
            "salesforce",
            "lead.Lifecycle_Stage__c",
            "Lead.Lifecycle Stage",
            lambda task, metric, key: any(k in key for k in LIFECYCLE_KEYS) or task == "rogue-stage-audit",
        ),
        ("salesforce", "deal.Loss_Reason__c", None, lambda task, metric, key: metric == "drop_off_reason_share"),
        ("hubspot", "deal.closed_lost_reason", None, lambda task, metric, key: metric == "drop_off_reason_share"),
    ],
)
def test_a_hidden_field_makes_only_its_own_figures_not_evaluable(cast, smtp, platform, hidden, signed_as, depends):
    kind = SANDBOXES[platform]
    with kind(profile="healthy", seed=5, size=20_000, as_of=AS_OF) as visible:
        engagement = lifecycle_engagement(cast, visible, STAGES[platform])
        seen = results_of(engagement, visible)
    profile = variant("healthy", "fls", hidden_fields={hidden})
    with kind(profile=profile, seed=5, size=20_000, as_of=AS_OF) as crm:
        blind = results_of(engagement, crm)

    assert set(blind) == set(seen)
    dependent = [k for k in seen if depends(*k)]
    assert dependent
    for key, result in seen.items():
        if key in dependent:
            continue
        assert (blind[key].status, blind[key].value) == (result.status, result.value), key
    for key in dependent:
        if key[0] == "rogue-stage-audit":
            continue  # still judged, over the fields this user can read
        assert blind[key].status == "not_evaluable", key
        if signed_as:
            assert f"not evaluated: {signed_as} is missing or not readable by this user" in blind[key].message, key
        else:
            assert blind[key].message == "no drop-off reason field on deals that this user can read"
