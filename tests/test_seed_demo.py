import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Membership, Organization, Role
from crm_sandbox import HubSpotSandbox
from crm_sandbox.connection import sandbox_connection
from engagements import definitions
from engagements.models import ClientAccount, Engagement, PortalLink, Stakeholder
from reporting import periods, runs, schedules
from reporting.models import HealthCheckRun, HealthResult, MetricValue

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"  # gitignored: page images for reviewers


def run_seed() -> str:
    from io import StringIO

    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_is_idempotent_and_prints_working_logins(db, client):
    run_seed()
    output = run_seed()
    assert Organization.objects.count() == 1
    org = Organization.objects.get()
    assert Membership.objects.for_org(org).count() == 3
    assert ClientAccount.objects.for_org(org).count() == 2
    assert Stakeholder.objects.for_org(org).count() == 5
    # The second run superseded the first link: one usable link, the one printed last.
    assert PortalLink.objects.for_org(org).usable().count() == 1

    email, password = re.search(r"Owner\s+(\S+) / (\S+)", output).groups()
    assert client.login(username=email, password=password)
    assert "Northwind Advisory" in client.get(f"/o/{org.slug}/").content.decode()
    client.logout()

    link = re.search(r"http://127\.0\.0\.1:8000(/portal/auth/\S+/)", output).group(1)
    assert client.post(link).status_code == 302
    assert "Welcome, Maya Patel" in client.get("/portal/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_globex_health_report_reads_each_domain_on_its_own_and_is_saved_for_review(crm_sandbox_settings, smtp):
    """`make run`'s Globex: its HubSpot sandbox (demo profile), its maintenance schedule started with go-live four
    months back. Conversions are read between consecutive signed stages of one domain only, never across."""
    run_seed()
    globex = ClientAccount.objects.across_tenants("test").get(name="Globex Software")
    engagement = Engagement.objects.get(client=globex)
    consultant = Membership.objects.for_org(globex.organization).get(role=Role.CONSULTANT).user
    today = timezone.localdate()
    live_since = periods.month_start(periods.month_start(today) - timedelta(days=100))
    with HubSpotSandbox(profile="demo") as crm:  # as scripts/run-dev.sh starts it: seed 0, today's org
        sandbox_connection(client=globex, sandbox=crm)
        schedules.start_schedule(engagement=engagement, actor=consultant, live_since=live_since, catch_up=True)
        run, _ = runs.check_now(engagement, periods.previous_month(today), actor=consultant)
    assert run.status == "succeeded", run.error
    assert HealthCheckRun.objects.filter(engagement=engagement).count() == 4

    # The signed version says where each stage lives; each domain on one field or pipeline, and each of those
    # holds one domain.
    signed = [s for s in definitions.latest_version(engagement).content["stages"] if s["crm_values"]]
    places: dict[tuple[str, str], set[str]] = {}
    for stage in signed:
        places.setdefault((stage["crm_object"], stage["crm_field"]), set()).add(stage["domain"])
    assert all(len(domains) == 1 for domains in places.values()), places
    consecutive = set()
    for domain in {s["domain"] for s in signed}:
        chain = [s["name"] for s in sorted(signed, key=lambda s: s["order"]) if s["domain"] == domain]
        consecutive |= {f"{a}→{b}" for a, b in zip(chain, chain[1:], strict=False)}
    rates = MetricValue.objects.filter(engagement=engagement, metric="stage_conversion_rate")
    assert rates.exists()
    assert {r.key for r in rates} <= consecutive, "a conversion across domains or skipping a signed stage"
    pairs = HealthResult.objects.filter(run__engagement=engagement, metric="stage_conversion_rate")
    assert {r.key for r in pairs} <= consecutive
    # A rate above 100% is a defect of the figure, never a finding: not evaluable, with the reason.
    assert all(0 <= r.value <= 100 for r in rates if r.value is not None), [(r.key, r.value) for r in rates]
    shown = [r for r in pairs if r.value is not None or r.baseline is not None]
    assert all(0 <= v <= 100 for r in shown for v in (r.value, r.baseline) if v is not None)
    flags = HealthResult.objects.filter(run__engagement=engagement, status__in=["red", "watch"])
    assert not [r for r in flags if r.metric == "stage_conversion_rate" and not 0 <= (r.value or 0) <= 100]

    pdf = run.report.file.read()
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    assert "Health-Check Report" in text.decode() and "Globex Software" in text.decode()
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("globex-health-check-*.png"):
        old.unlink()
    (ARTIFACTS / "globex-health-check.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-", str(ARTIFACTS / "globex-health-check")], input=pdf, check=True)


def test_seed_demo_lives_above_the_apps_it_seeds():
    """The command keeps its name; it moved out of accounts (the bottom) into demo (the top of the layers)."""
    from django.core.management import get_commands

    from tests.test_layers import LAYERS

    assert get_commands()["seed_demo"] == "demo"
    assert LAYERS[-1] == "demo"
