"""Rogue and retired values, judged per field over every lifecycle and status field of a signed object.

A value is rogue on a signed field when records hold it and the signed architecture does not allow it there (so
contacts in "SQL" are rogue when SQL is signed on leads only), and anywhere when no option lists it. A retired
value (Salesforce inactive, HubSpot hidden) still on records is counted as "records in deprecated stages", and
only those: unsigned active values are the rogue audit's business. Expected values and counts come from the sandbox
generator (`sandbox.truth`), the rogue audit's message is rebuilt from them.
"""

from datetime import date

import pytest

from crm_sandbox import HubSpotSandbox, SalesforceSandbox, truth
from crm_sandbox.profiles import custom_profile
from reporting import runs
from reporting.models import HealthResult, MetricValue
from reporting.tasks import run_health_check
from tests.reporting.conftest import lifecycle_engagement

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("crm_sandbox_settings")]
SEP = date(2026, 9, 1)
# A healthy org whose retired status value "Contacted" is still held by some leads and contacts.
RETIRED = custom_profile("retired-status", {"inactive_values_on_records"})
SANDBOXES = {"salesforce": SalesforceSandbox, "hubspot": HubSpotSandbox}
# Salesforce: MQL and SQL signed on leads, only Customer on contacts' lifecycle field.
# HubSpot: MQL and SQL on contacts (HubSpot has no lead object).
STAGES = {
    "salesforce": {
        ("lead", "MQL"): ("Lead", "Lifecycle Stage", ["MQL"]),
        ("lead", "SQL"): ("Lead", "Lifecycle Stage", ["SQL"]),
        ("customer", "Early Adoption"): ("Contact", "Lifecycle Stage", ["Customer"]),
    },
    "hubspot": {
        ("lead", "MQL"): ("Contacts", "Lifecycle Stage", ["marketingqualifiedlead"]),
        ("lead", "SQL"): ("Contacts", "Lifecycle Stage", ["salesqualifiedlead"]),
    },
}
# (kind, label as the platform shows it) -> the signed labels allowed on that object's lifecycle field
ALLOWED = {
    "salesforce": {"lead": {"MQL", "SQL"}, "contact": {"Customer"}},
    "hubspot": {"contact": {"Marketing Qualified Lead", "Sales Qualified Lead"}},
}
LABELS = {"salesforce": "label", "hubspot": "hs_text"}
PLURAL = {"lead": "leads", "contact": "contacts"}


@pytest.mark.parametrize("platform", ["salesforce", "hubspot"])
def test_values_are_judged_per_field_and_only_retired_ones_count_as_deprecated(cast, smtp, platform):
    with SANDBOXES[platform](profile=RETIRED, seed=9, size=20_000, as_of=date(2027, 6, 1)) as crm:
        engagement = lifecycle_engagement(cast, crm, STAGES[platform])
        run, _ = runs.create_run(engagement, SEP)  # the first business cycle: the stage adoption check is due
        run_health_check(run.pk)
        model = crm.model
    run.refresh_from_db()
    assert run.status == "succeeded", run.error

    by = LABELS[platform]
    rogue = set()
    for kind, allowed in ALLOWED[platform].items():
        held = truth.value_counts(model, kind=kind, attr="lifecycle", by=by)
        rogue |= {f"{label} (Lifecycle Stage, {PLURAL[kind]})" for label, n in held.items() if label and n}
        rogue -= {f"{label} (Lifecycle Stage, {PLURAL[kind]})" for label in allowed}
    [audit] = HealthResult.objects.filter(run=run, task_key="rogue-stage-audit")
    assert audit.status == "red"
    assert audit.message == f"{len(rogue)} value(s) not in the signed architecture: {', '.join(sorted(rogue))}"
    if platform == "salesforce":  # signed on leads is not allowed on contacts
        assert "SQL (Lifecycle Stage, contacts)" in rogue and "SQL (Lifecycle Stage, leads)" not in rogue
    assert "Contacted" not in audit.message  # retired, not rogue

    retired = sum(
        n for kind in ALLOWED[platform] for n in truth.retired_counts(model, kind=kind, attr="status").values()
    )
    assert retired > 0
    deprecated = MetricValue.objects.get(engagement=engagement, metric="records_in_deprecated_stages", period=SEP)
    assert deprecated.value == retired
    [result] = HealthResult.objects.filter(run=run, metric="records_in_deprecated_stages")
    assert result.status == "red" and result.value == retired
