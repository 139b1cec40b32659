"""`manage.py run_health_checks`: the month's health checks run in this process, against the CRM sandbox (over HTTP,
through simple-salesforce) or on figures entered by hand, with the same run, report and once-only email as beat's."""

import io
import json
from datetime import date

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import ActivityEntry
from crm_connectors.models import CrmConnection
from crm_sandbox import SalesforceSandbox
from engagements import progression
from playbooks.models import Playbook
from reporting import figures, periods, schedules
from reporting.flags import explain_result
from reporting.models import HealthCheckRun, HealthResult, ReportDelivery
from tests.conftest import ensure_library
from tests.reporting.conftest import lifecycle_engagement

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("crm_sandbox_settings")]
OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)
# The signed stages mapped to the Salesforce sandbox's lead lifecycle field and opportunity stages (API names).
STAGES = {
    ("lead", "Known Lead"): ("lead", "Lifecycle_Stage__c", ["Known Lead"]),
    ("lead", "MQL"): ("lead", "Lifecycle_Stage__c", ["MQL"]),
    ("lead", "SQL"): ("lead", "Lifecycle_Stage__c", ["SQL"]),
    ("sales", "SAO"): ("deal", "StageName", ["Discovery Completed"]),
    ("sales", "Closed Won"): ("deal", "StageName", ["Closed Won"]),
}
VOLUME = "production-by-stage-volume"


@pytest.fixture
def crm():
    with SalesforceSandbox(profile="healthy", seed=11, size=2000, as_of=date(2026, 12, 1)) as sandbox:
        yield sandbox


def revenue_engagement(client, actor, name="Forecasting"):
    """Revenue Intelligence, no CRM: its figures are entered by hand. Live for six months before the month just
    ended, so that month has its run."""
    ensure_library()
    engagement = progression.create_engagement(
        client=client,
        playbook_version=Playbook.objects.library().get(key="revenue-intelligence").latest_version(),
        name=name,
        start_date=date(2026, 1, 5),
        actor=actor,
        engagement_type="dedicated",
        team=[(actor, "architect")],
    )
    live = periods.add_months(periods.due_period(), -6)
    schedules.start_schedule(engagement=engagement, actor=actor, live_since=live)
    return engagement


def run(*args) -> str:
    out = io.StringIO()
    call_command("run_health_checks", *args, stdout=out)
    return out.getvalue()


def run_json(*args) -> list[dict]:
    return json.loads(run(*args, "--json"))


def reports(smtp) -> list:
    """The Health-Check Report emails received (sent inline: no broker in these tests)."""
    return [m for m in smtp.messages if "health check" in m["Subject"]]


def flags(entry, status="red") -> dict[str, dict]:
    return {r["key"]: r for r in entry["results"] if r["task_key"] == VOLUME and r["status"] == status}


def test_a_crossed_threshold_is_listed_and_a_second_invocation_sends_nothing(cast, crm, smtp):
    engagement = lifecycle_engagement(cast, crm, STAGES)
    for stage in ("SAO", "Closed Won"):  # far above the sandbox org's opportunities a month: a >20% drop
        figures.set_baseline(engagement=engagement, metric="stage_entry_volume", key=stage, value=100_000, actor=None)
    crm.reset_stats()

    [entry] = run_json("--period", "2026-10", "--email")  # a month before the one just ended: emailed when asked
    assert (entry["org"], entry["client"], entry["engagement"]) == ("alpha", "Acme Robotics", "Lifecycle rebuild")
    assert entry["period"] == "2026-10" and entry["status"] == "succeeded" and entry["checked_now"] is True
    assert entry["api_calls"] == crm.stats["total"] > 0, "the CRM figures came from the sandbox, over HTTP"
    red = flags(entry)
    assert set(red) == {"SAO", "Closed Won"}
    sao = red["SAO"]
    assert sao["task_name"] == "Production by Stage Volume" and sao["metric"] == "stage_entry_volume"
    assert sao["baseline"] == 100_000 and sao["threshold"] == 20 and 0 <= sao["value"] < 80_000 and sao["key"] == "SAO"
    assert "baseline 100000: down" in sao["message"]
    assert entry["counts"]["red"] == sum(r["status"] == "red" for r in entry["results"]) >= 2
    assert entry["counts"]["not_evaluable"] == sum(r["status"] == "not_evaluable" for r in entry["results"])
    run_row = HealthCheckRun.objects.get(engagement=engagement)
    assert str(run_row.uuid) == entry["run"] and run_row.report is not None, "the report was rendered"
    assert sorted(m["To"] for m in reports(smtp)) == ["carl@alpha.example", "maya@acme.example"]
    assert entry["emails"] == {"sent": 2, "waiting": 0, "failed": 0}
    assert (
        ActivityEntry.objects.across_tenants("test")
        .filter(verb="health.run_requested", actor_label__contains="run_health_checks")
        .exists()
    )

    # Again, as JSON and in words: the same run is reported, nothing runs, renders or sends a second time.
    calls = crm.stats["total"]
    [again] = run_json("--period", "2026-10")
    assert again["run"] == entry["run"] and again["checked_now"] is False and "already run" in again["note"]
    assert again["results"] == entry["results"]
    text = run("--period", "2026-10")
    assert "Acme Robotics · Lifecycle rebuild · October 2026" in text
    assert "already run on" in text and "not re-run" in text
    assert "RED  Production by Stage Volume (SAO):" in text and "CRM API calls:" in text
    assert HealthCheckRun.objects.filter(engagement=engagement).count() == 1
    assert ReportDelivery.objects.filter(run=run_row).count() == 2 and len(reports(smtp)) == 2
    assert crm.stats["total"] == calls, "a finished run reads nothing from the CRM again"


def test_an_explained_flag_shows_explained_the_next_month(cast, crm, smtp):
    engagement = lifecycle_engagement(cast, crm, STAGES)
    for stage in ("SAO", "Closed Won"):
        figures.set_baseline(engagement=engagement, metric="stage_entry_volume", key=stage, value=100_000, actor=None)
    run_json("--period", "2026-10")
    october = HealthResult.objects.across_tenants("test").get(run__period=OCT, task_key=VOLUME, key="SAO")
    explain_result(result=october, explanation="Sales team halved during the reorganisation.", actor=cast.consultant)

    [november] = run_json("--period", "2026-11", "--email")
    explained, red = flags(november, "explained"), flags(november)
    assert set(explained) == {"SAO"} and set(red) == {"Closed Won"}, "only the explained stage is carried"
    assert explained["SAO"]["explanation"] == "Sales team halved during the reorganisation."
    assert explained["SAO"]["explained_note"] == "explained in October 2026 by Carl"
    assert november["counts"]["explained"] >= 1
    text = run("--period", "2026-11")
    assert "explained  Production by Stage Volume (SAO): explained in October 2026 by Carl: Sales team" in text
    mail = next(m for m in reports(smtp) if m["To"] == "maya@acme.example" and "November 2026" in m["Subject"])
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "EXPLAINED FLAGS" in body and "Explained in October 2026 by Carl: Sales team halved" in body


def test_org_limits_the_engagements_and_the_default_is_the_month_just_ended(cast, smtp):
    ours = revenue_engagement(cast.client, cast.consultant)
    theirs = revenue_engagement(cast.other_client, cast.outsider, name="Pipeline reviews")
    figures.record_metric(
        engagement=theirs, metric="forecast_submission_compliance", period=periods.due_period(), value=70
    )

    [entry] = run_json("--org", "beta")
    assert (entry["org"], entry["client"], entry["engagement"]) == ("beta", "Globex", "Pipeline reviews")
    assert entry["period"] == f"{periods.previous_month(timezone.localdate()):%Y-%m}"
    assert entry["api_calls"] == 0 and entry["status"] == "succeeded"
    red = [r for r in entry["results"] if r["status"] == "red"]
    assert [r["task_key"] for r in red] == ["forecast-submission-compliance"] and red[0]["value"] == 70
    assert not HealthCheckRun.objects.filter(engagement=ours).exists(), "--org beta leaves alpha alone"

    # Without --org every organization's engagements run; beta's run is reported, not re-run.
    entries = {e["org"]: e for e in run_json()}
    assert set(entries) == {"alpha", "beta"}
    assert entries["alpha"]["checked_now"] is True and entries["beta"]["checked_now"] is False
    assert HealthCheckRun.objects.across_tenants("test").count() == 2

    assert run("--org", "alpha", "--period", "2020-01").startswith(
        "No engagement in Alpha Advisory has an active maintenance schedule live by January 2020."
    )


def test_bad_arguments_are_refused_with_the_expected_format(cast):
    for period in ("2026-13", "October 2026", "2026-1", "26-10"):
        with pytest.raises(CommandError, match=r"--period must be a month as YYYY-MM, e.g. 2026-10"):
            run("--period", period)
    this_month = f"{timezone.localdate():%Y-%m}"
    with pytest.raises(CommandError, match=f"--period {this_month} has not ended yet"):
        run("--period", this_month)
    with pytest.raises(CommandError, match="No organization with slug 'gamma'"):
        run("--org", "gamma")
    assert not HealthCheckRun.objects.across_tenants("test").exists()


def test_a_failed_run_is_printed_then_exits_non_zero(cast, smtp):
    engagement = revenue_engagement(cast.client, cast.consultant)
    # A connection whose secrets were never stored: the run cannot read the CRM and fails, saying why.
    CrmConnection.objects.create(
        organization=cast.org,
        client=cast.client,
        kind="salesforce",
        auth_method="password",
        base_url="https://login.salesforce.com",
        username="carl@acme.example",
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"1 health check\(s\) failed: Acme Robotics · Forecasting: "):
        call_command("run_health_checks", stdout=out)
    assert "status: failed (run now)" in out.getvalue()
    run_row = HealthCheckRun.objects.get(engagement=engagement)
    assert run_row.status == "failed" and run_row.report is None and not reports(smtp)
    # Reported again, not re-run: the failure is on the run for the consultants to see; exit status 0.
    assert "status: failed (already run on" in run()


def test_json_is_alone_on_stdout_while_the_console_backend_prints_the_emails(cast, settings, capsys):
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    revenue_engagement(cast.client, cast.consultant)
    call_command("run_health_checks", "--json")  # the month just ended: its report is emailed
    printed = capsys.readouterr()
    [entry] = json.loads(printed.out)
    assert entry["emails"]["sent"] >= 1
    assert "Subject: " in printed.err, "the emails went to stderr"
    red = [r for r in entry["results"] if r["status"] != "ok"]
    assert all(r["window"] and "rule" in r and "response" in r for r in red)


def test_a_back_filled_month_is_not_emailed_unless_asked(cast, smtp):
    engagement = revenue_engagement(cast.client, cast.consultant)
    just_ended = periods.due_period()
    back = [periods.add_months(just_ended, -n) for n in (2, 1)]
    [entry] = run_json("--period", f"{back[0]:%Y-%m}")
    assert entry["status"] == "succeeded" and entry["emails"] == {"sent": 0, "waiting": 0, "failed": 0}
    run_row = HealthCheckRun.objects.get(engagement=engagement, period=back[0])
    assert run_row.report is not None and not ReportDelivery.objects.filter(run=run_row).exists()
    assert not reports(smtp)
    [asked] = run_json("--period", f"{back[1]:%Y-%m}", "--email")
    assert asked["emails"]["sent"] == 1 and [m["To"] for m in reports(smtp)] == ["carl@alpha.example"]
    # RI's monthly tasks all have rules; its quarterly top-performer benchmark refresh has none: a review item.
    quarter_end = next(p for p in back if periods.months_live(engagement.maintenance_schedule, p) % 3 == 2)
    text = run("--period", f"{quarter_end:%Y-%m}")
    assert "review  Top performer benchmark refresh: A person reviews this and records it:" in text
