"""The connectors against the CRM sandbox, through the real simple-salesforce and hubspot-api-client over HTTP.

Every expected figure comes from the sandbox's OrgModel (arithmetic over the generated org), never
from the connector itself. Backoff and throttle waits go to a fake clock, so no test sleeps.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import subprocess
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from crm_connectors.base import (
    AuthMethod,
    CrmApiLimitExceeded,
    CrmAuthError,
    CrmBudgetExhausted,
    CrmConfigurationError,
    CrmMalformedResponse,
    CrmRateLimited,
    CrmTimeout,
    CrmUnavailable,
    CrmUnsupported,
)
from crm_connectors.http import LocalStore, RedisStore, RetryPolicy, shared_store
from crm_connectors.hubspot import HubSpotConnector
from crm_connectors.salesforce import PAGE, GuardedSession, SalesforceConnector
from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from crm_sandbox.dates import DAY_MS, to_ms
from crm_sandbox.query import DateRange, MatchSet, Static

AS_OF = datetime(2025, 6, 15, tzinfo=UTC)
AS_OF_MS = to_ms(AS_OF)
QUARTER = (AS_OF - timedelta(days=90), AS_OF)
YEAR = (AS_OF - timedelta(days=365), AS_OF)
UNLIMITED = {"salesforce": "1000000/1", "hubspot": "1000000/1", "hubspot-search": "1000000/1"}


class FakeClock:
    """Stands in for time: `sleep` records the wait and moves the clock on, instantly."""

    def __init__(self) -> None:
        self.now_value = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.now_value

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_value += seconds


@pytest.fixture(autouse=True)
def _crm_settings(settings):
    settings.CRM_ALLOW_HTTP = True  # the sandboxes serve http on loopback
    settings.CRM_RATE_LIMITS = UNLIMITED
    settings.CRM_DAILY_BUDGET_SHARE = 0.05


@pytest.fixture
def clock():
    return FakeClock()


def salesforce(sb, clock=None, auth=AuthMethod.SF_PASSWORD, key=None, **options):
    options.setdefault("store", LocalStore())
    options.setdefault("sleep", (clock or FakeClock()).sleep)
    creds = {
        AuthMethod.SF_PASSWORD: {"username": sb.username, "password": sb.password, "security_token": sb.security_token},
        AuthMethod.SF_CLIENT_CREDENTIALS: {"consumer_key": sb.consumer_key, "consumer_secret": sb.consumer_secret},
        AuthMethod.SF_SESSION: {"access_token": sb.session_id},
    }[auth]
    return SalesforceConnector(base_url=sb.base_url, auth_method=auth, key=key or uuid.uuid4().hex, **creds, **options)


def hubspot(hs, clock=None, **options):
    options.setdefault("store", LocalStore())
    options.setdefault("sleep", (clock or FakeClock()).sleep)
    return HubSpotConnector(base_url=hs.base_url, access_token=hs.access_token, key=uuid.uuid4().hex, **options)


@pytest.fixture(scope="module")
def sf_org():
    with SalesforceSandbox(profile="messy", seed=7, size=5_000, as_of=AS_OF) as sb:
        yield sb


@pytest.fixture(scope="module")
def hs_org():
    with HubSpotSandbox(profile="messy", seed=7, size=2_000, as_of=AS_OF) as hs:
        yield hs


@pytest.fixture
def sb():
    with SalesforceSandbox(profile="demo", seed=3, size=2_000, as_of=AS_OF) as sandbox:
        yield sandbox


@pytest.fixture
def hs():
    with HubSpotSandbox(profile="demo", seed=3, size=1_000, as_of=AS_OF) as sandbox:
        yield sandbox


def ms(value: datetime) -> int:
    return to_ms(value)


# ---------------------------------------------------------------- metadata


def test_salesforce_objects_fields_and_pipelines_match_the_org(sf_org):
    model, c = sf_org.model, salesforce(sf_org)
    objects = {o.kind: o for o in c.objects()}
    sizes = {"lead": "lead", "contact": "contact", "company": "company", "deal": "deal", "ticket": "ticket"}
    assert {k: o.record_count for k, o in objects.items()} == {k: model.sets[t].size for k, t in sizes.items()}
    assert objects["company"].api_name == "Account" and objects["deal"].label == "Opportunities"

    fields = {(f.object, f.api_name): f for f in c.lifecycle_fields()}
    assert {k: f.role for k, f in fields.items()} == {
        ("lead", "Lifecycle_Stage__c"): "lifecycle",
        ("lead", "Lead_Stage__c"): "lifecycle",
        ("lead", "Status"): "status",
        ("contact", "Lifecycle_Stage__c"): "lifecycle",
        ("contact", "Lead_Stage__c"): "lifecycle",
        ("company", "Type"): "type",
        ("deal", "StageName"): "stage",
        ("ticket", "Status"): "stage",
    }
    status = fields[("lead", "Status")]
    assert [v.api_value for v in status.values] == [o.label for o in model.schema.lead_status if o.listed]
    assert [v.order for v in status.values] == list(range(len(status.values)))
    lifecycle = [v.api_value for v in fields[("lead", "Lifecycle_Stage__c")].values]
    assert lifecycle == [o.label for o in model.schema.lifecycle if o.listed]
    assert "Recycled" not in lifecycle  # a rogue value lives in records, not in the picklist
    won = fields[("deal", "StageName")].value("Closed Won")
    assert (won.is_closed, won.is_won, won.probability) == (True, True, 1.0)

    pipelines = c.pipelines("deal")
    assert [p.label for p in pipelines] == [pl.label for pl in model.schema.deal_pipelines]
    for got, pl in zip(pipelines, model.schema.deal_pipelines, strict=True):
        listed = [st for st in pl.stages if st.listed]
        assert got.id == pl.sf_record_type_id
        assert [s.id for s in got.stages] == [st.label for st in listed]
        assert [s.probability for s in got.stages] == [st.probability for st in listed]
        assert [(s.is_closed, s.is_won) for s in got.stages] == [(st.closed, st.won) for st in listed]
        assert [s.order for s in got.stages] == list(range(len(listed)))
    tickets = c.pipelines("ticket")
    assert [p.label for p in tickets] == [pl.label for pl in model.schema.ticket_pipelines]
    assert [s.is_closed for s in tickets[0].stages] == [st.closed for st in model.schema.ticket_pipelines[0].stages]
    contact_fields = {f.api_name for f in c.fields("contact")}
    assert "Contact_Status__c" not in contact_fields and "Email" in contact_fields  # no_contact_status gotcha


def test_hubspot_objects_fields_and_pipelines_match_the_portal(hs_org):
    model, c = hs_org.model, hubspot(hs_org)
    objects = {o.kind: o for o in c.objects()}
    assert objects["lead"].available is False and objects["lead"].record_count is None
    assert {k: o.record_count for k, o in objects.items() if o.available} == {
        "contact": model.sets["contact"].size,
        "company": model.sets["company"].size,
        "deal": model.sets["deal"].size,
        "ticket": model.sets["ticket"].size,
    }
    fields = {(f.object, f.api_name): f for f in c.lifecycle_fields()}
    assert {k: f.role for k, f in fields.items()} == {
        ("contact", "lifecyclestage"): "lifecycle",
        ("contact", "hs_lead_status"): "status",
        ("contact", "lead_stage"): "lifecycle",
        ("company", "type"): "type",
        ("company", "lifecyclestage"): "lifecycle",
        ("deal", "dealstage"): "stage",
        ("ticket", "hs_pipeline_stage"): "stage",
    }
    lifecycle = fields[("contact", "lifecyclestage")]
    assert [(v.api_value, v.label) for v in lifecycle.values] == [
        (o.hs, o.hs_text) for o in model.schema.lifecycle if o.listed and not o.sf_only
    ]
    pipelines = c.pipelines("deal")
    assert [(p.id, p.label) for p in pipelines] == [(pl.hs_id, pl.label) for pl in model.schema.deal_pipelines]
    for got, pl in zip(pipelines, model.schema.deal_pipelines, strict=True):
        listed = [st for st in pl.stages if st.listed and not st.sf_only]
        assert [(s.id, s.label) for s in got.stages] == [(st.hs, st.hs_text) for st in listed]
        assert [s.probability for s in got.stages] == [st.hs_prob or 0.0 for st in listed]
        assert [(s.is_closed, s.is_won) for s in got.stages] == [(st.closed, st.won) for st in listed]
    stage = fields[("deal", "dealstage")].value("closedwon")
    assert (stage.is_closed, stage.is_won, stage.probability) == (True, True, 1.0)
    with pytest.raises(CrmUnsupported, match="no separate lead object"):
        c.value_counts("lead", "lifecyclestage")


# ---------------------------------------------------------------- counts


def test_stage_counts_match_the_org(sf_org, hs_org):
    model = sf_org.model
    deals = model.table("deal")
    expected = MatchSet(deals).group_counts(lambda v: (v["pipeline"].sf_record_type_id, v["stage"].label))
    rogue = MatchSet(deals).group_counts(lambda v: not v["stage"].listed).get(True, 0)
    counts = salesforce(sf_org).stage_counts("deal")
    assert {(s.pipeline_id, s.value): s.count for s in counts.stages} == expected
    assert counts.unknown_total == rogue > 0 and counts.without_stage == 0
    assert {s.value for s in counts.stages if not s.known} == {"Verbal Commit"}
    # login, global describe (is OpportunityStage readable?), describe, OpportunityStage, pipelines, the aggregate
    assert counts.total == deals.size and counts.calls <= len(model.schema.deal_pipelines) + 5

    hs_model = hs_org.model
    by_stage = hs_model.counts_by("deal", "stage", by="hs")
    listed = {st.hs for pl in hs_model.schema.deal_pipelines for st in pl.stages if st.listed and not st.sf_only}
    counts = hubspot(hs_org).stage_counts("deal")
    assert {s.value: s.count for s in counts.stages} == {k: by_stage.get(k, 0) for k in listed}
    assert counts.unknown_total == sum(n for k, n in by_stage.items() if k not in listed) > 0
    assert counts.without_stage == 0 and counts.total == hs_model.sets["deal"].size
    assert counts.count("closedwon") == by_stage["closedwon"]
    # pipelines, one search per stage, no-stage, all deals (other stages are what is left of them)
    assert counts.calls == 1 + len(listed) + 2


def test_values_in_records_include_rogue_ones(sf_org, hs_org):
    model = sf_org.model
    c = salesforce(sf_org)
    status = c.value_counts("lead", "Status")
    expected = model.counts_by("lead", "status", by="label")
    assert {v.value: v.count for v in status.values} == expected
    assert [v.value for v in status.unknown] == ["Contacted (old)"] and status.unknown_named
    assert status.unknown_total == expected["Contacted (old)"]
    lifecycle = c.value_counts("lead", "Lifecycle_Stage__c")
    expected = model.counts_by("lead", "lifecycle", by="label")
    assert lifecycle.empty == expected.pop(None) > 0
    assert {v.value: v.count for v in lifecycle.values} == expected
    assert {v.value for v in lifecycle.unknown} == {"Recycled", "MQL - Legacy"}
    assert c.count_without_value("lead", "Lifecycle_Stage__c") == lifecycle.empty

    hs_model = hs_org.model
    expected = hs_model.counts_by("contact", "lifecycle", by="hs")
    options = [o.hs for o in hs_model.schema.lifecycle if o.listed]
    h = hubspot(hs_org)
    counts = h.value_counts("contact", "lifecyclestage")
    assert {v.value: v.count for v in counts.values} == {k: expected.get(k, 0) for k in options}
    assert counts.empty == expected[None] == h.count_without_value("contact", "lifecyclestage")
    assert counts.unknown_total == expected["recycled"] + expected["mql_legacy"] > 0
    assert not counts.unknown_named and "deep=True" in counts.note
    deep = hubspot(hs_org).value_counts("contact", "lifecyclestage", deep=True)
    assert {v.value: v.count for v in deep.unknown} == {
        "recycled": expected["recycled"],
        "mql_legacy": expected["mql_legacy"],
    }
    assert deep.unknown_named and deep.calls == counts.calls + 1 and deep.total == hs_model.sets["contact"].size


def test_transitions_into_each_stage_in_a_period(sf_org, hs_org):
    model, c = sf_org.model, salesforce(sf_org)
    start, end = QUARTER
    deals = c.stage_transitions("deal", "StageName", start, end)
    expected = defaultdict(int)
    for pl in model.schema.deal_pipelines:
        for st in pl.stages:
            expected[st.label] += model.transitions_into("deal", "stage", st.key, ms(start), ms(end))
    assert deals.available and deals.calls <= 5  # login, global describe, describe, OpportunityStage, the aggregate
    assert {label: deals.count(label) for label in expected} == dict(expected)
    assert deals.total_changes == sum(expected.values()) > 0

    leads = c.stage_transitions("lead", "Status", start, end)
    expected = {
        o.label: model.transitions_into("lead", "status", o.key, ms(start), ms(end)) for o in model.schema.lead_status
    }
    # without deep mode too: the quarter's LeadHistory rows, every page, counted by new value
    assert leads.available and {label: leads.count(label) for label in expected} == expected
    assert leads.total_changes == sum(expected.values()) > 0
    # + the Lead describe, the records created, the changes since (their first values)
    assert leads.calls <= math.ceil(leads.total_changes / PAGE) + 3
    deep = c.stage_transitions("lead", "Status", start, end, deep=True)
    assert deep.available and {label: deep.count(label) for label in expected} == expected

    hs_model, h = hs_org.model, hubspot(hs_org)
    got = h.stage_transitions("contact", "lifecyclestage", start, end)
    expected = {
        o.hs: hs_model.count("contact", [[DateRange(f"entered:{o.key}", ms(start), ms(end))]])
        for o in hs_model.schema.lifecycle
        if o.listed
    }
    assert got.available and {t.value: t.count for t in got.into} == expected
    assert sum(expected.values()) > 0
    assert h.stage_transitions("contact", "hs_lead_status", start, end).available is False


def test_time_in_stage_where_the_crm_exposes_it(sf_org, hs_org):
    model, c = sf_org.model, salesforce(sf_org)
    start, end = YEAR
    got = c.time_in_stage("deal", "StageName", start, end, deep=True)
    spans, inside = defaultdict(list), defaultdict(list)
    deals = model.sets["deal"]
    for i in range(deals.size):
        path = deals.row_at(i)["paths"]["stage"]
        for (a, ta), (_, tb) in zip(path, path[1:], strict=False):
            if ms(start) <= tb < ms(end):
                spans[a.label].append((tb - ta) / DAY_MS)
                if ta >= ms(start):
                    inside[a.label].append((tb - ta) / DAY_MS)
    # without deep mode: the stays that began and ended inside the period, from its OpportunityHistory rows only
    window = c.time_in_stage("deal", "StageName", start, end)
    assert window.available and window.sampled and window.note
    assert {s.value: s.sample_size for s in window.stages if s.sample_size} == {k: len(v) for k, v in inside.items()}
    for label, values in inside.items():
        assert window.stage(label).average_days == pytest.approx(sum(values) / len(values), abs=1e-6)
    assert got.available and {s.value for s in got.stages} == set(spans)
    for label, values in spans.items():
        stage = got.stage(label)
        assert stage.sample_size == len(values)
        assert stage.average_days == pytest.approx(sum(values) / len(values), abs=1e-6)

    hs_model, h = hs_org.model, hubspot(hs_org)
    sample = h.time_in_stage("contact", "lifecyclestage", start, end)
    full = h.time_in_stage("contact", "lifecyclestage", start, end, deep=True)
    contacts = hs_model.sets["contact"]
    rows = [contacts.row_at(i) for i in range(contacts.size)]
    for option in (o for o in hs_model.schema.lifecycle if o.listed):
        stays = [
            (r["dates"][f"exited:{option.key}"] - r["dates"][f"entered:{option.key}"]) / DAY_MS
            for r in rows
            if f"entered:{option.key}" in r["dates"]
            and ms(start) <= r["dates"].get(f"exited:{option.key}", -1) < ms(end)
        ]
        kept = [s for s in stays if s >= 0]
        stage = full.stage(option.hs)
        assert stage.population == len(stays) and stage.sample_size == len(kept), option.key
        if kept:
            assert stage.average_days == pytest.approx(sum(kept) / len(kept), abs=1e-6)
        assert sample.stage(option.hs).sample_size <= 200
    assert sample.sampled and sample.calls < full.calls


def test_data_quality_figures(sf_org, hs_org):
    model, c = sf_org.model, salesforce(sf_org)

    def missing(name, attr):
        return model.count(name, [[Static(attr, lambda v: not v)]])

    def none(name, attr):
        return model.count(name, [[Static(attr, lambda v: v is None)]])

    quality = c.data_quality(as_of=AS_OF)
    got = {(m.object, m.field): m.missing for m in quality.missing}
    assert got == {
        ("lead", "Email"): missing("lead", "has_email"),
        ("lead", "Phone"): missing("lead", "has_phone"),
        ("lead", "Company"): missing("lead", "has_company"),
        ("lead", "LeadSource"): none("lead", "source"),
        ("contact", "Email"): missing("contact", "has_email"),
        ("contact", "Phone"): missing("contact", "has_phone"),
        ("contact", "Title"): missing("contact", "has_title"),
        ("contact", "LeadSource"): none("contact", "source"),
        ("company", "Website"): missing("company", "has_domain"),
        ("company", "Industry"): 0,
        ("deal", "Amount"): none("deal", "amount"),
        ("deal", "LeadSource"): none("deal", "source"),
        ("deal", "CloseDate"): 0,
    }
    assert {s.object: s.stale for s in quality.stale} == {
        k: model.stale_count(k) for k in ("lead", "contact", "company", "deal")
    }
    assert quality.open_deals_without_next_step == model.summary()["deal"]["open_without_next_step"] > 0
    # fill aggregates + stale counts + next step + login + global describe + a describe per object (describe-first)
    assert quality.duplicates is None and quality.calls == 4 + 4 + 1 + 1 + 1 + 4 and quality.unreadable == ()
    deep = c.data_quality(as_of=AS_OF, deep=True)
    assert {(d.object, d.key): d.groups for d in deep.duplicates} == {
        ("lead", "email"): model.duplicate_groups("lead"),
        ("contact", "email"): model.duplicate_groups("contact"),
        ("company", "domain"): model.duplicate_groups("company"),
    }
    assert all(d.records == 2 * d.groups for d in deep.duplicates) and deep.calls > quality.calls

    hs_model, h = hs_org.model, hubspot(hs_org)
    quality = h.data_quality(as_of=AS_OF, deep=True)
    got = {(m.object, m.field): m.missing for m in quality.missing}
    assert got == {
        ("contact", "email"): hs_model.missing_count("contact", "has_email"),
        ("contact", "phone"): hs_model.missing_count("contact", "has_phone"),
        ("contact", "jobtitle"): hs_model.missing_count("contact", "has_title"),
        ("contact", "hs_analytics_source"): hs_model.count("contact", [[Static("source", lambda v: v is None)]]),
        ("company", "domain"): hs_model.missing_count("company", "has_domain"),
        ("company", "industry"): 0,
        ("deal", "amount"): hs_model.count("deal", [[Static("amount", lambda v: v is None)]]),
        ("deal", "hs_analytics_source"): hs_model.count("deal", [[Static("source", lambda v: v is None)]]),
        ("deal", "closedate"): 0,
    }
    assert {s.object: s.stale for s in quality.stale} == {
        k: hs_model.stale_count(k) for k in ("contact", "company", "deal")
    }
    assert quality.open_deals_without_next_step == hs_model.summary()["deal"]["open_without_next_step"]
    assert {(d.object, d.key): d.groups for d in quality.duplicates} == {
        ("contact", "email"): hs_model.duplicate_groups("contact"),
        ("company", "domain"): hs_model.duplicate_groups("company"),
    }


def test_api_budget_reads_limits_and_headers(sb, hs):
    c = salesforce(sb)
    budget = c.api_budget()
    assert budget.daily_limit == sb.daily_api_limit == 100_000
    assert budget.daily_remaining == sb.daily_api_limit - sb.api_used
    assert budget.budget_limit == 5_000 and budget.budget_used == c.calls_spent == 2  # login + /limits
    h = hubspot(hs)
    budget = h.api_budget()
    assert (budget.daily_limit, budget.window_limit, budget.window_seconds) == (hs.daily_limit, 190, 10.0)
    assert budget.budget_limit == int(0.05 * hs.daily_limit) and budget.calls_spent == 1


# ---------------------------------------------------------------- cost does not grow with the org


def _battery(c, kind_people, status_field, lifecycle_field):
    start, end = QUARTER
    c.objects()
    c.lifecycle_fields()
    c.pipelines("deal")
    c.stage_counts("deal")
    c.value_counts(kind_people, status_field)
    c.value_counts(kind_people, lifecycle_field)
    c.count_without_value(kind_people, lifecycle_field)
    c.stage_transitions("deal", "dealstage" if isinstance(c, HubSpotConnector) else "StageName", start, end)
    c.data_quality(as_of=AS_OF)
    c.api_budget()
    return c.calls_spent


@pytest.mark.parametrize("platform", ["salesforce", "hubspot"])
def test_calls_spent_stay_flat_from_ten_thousand_to_a_million_records(platform):
    spent = []
    for size in (10_000, 1_000_000):
        if platform == "salesforce":
            with SalesforceSandbox(profile="messy", seed=11, size=size, as_of=AS_OF) as sandbox:
                calls = _battery(salesforce(sandbox), "lead", "Status", "Lifecycle_Stage__c")
                assert sandbox.stats["total"] == calls
        else:
            with HubSpotSandbox(profile="messy", seed=11, size=size, as_of=AS_OF) as sandbox:
                calls = _battery(hubspot(sandbox), "contact", "hs_lead_status", "lifecyclestage")
                assert sandbox.stats["total"] == calls
        spent.append(calls)
    assert spent[0] == spent[1]


# ---------------------------------------------------------------- logins and URLs


@pytest.mark.parametrize("auth", [AuthMethod.SF_PASSWORD, AuthMethod.SF_CLIENT_CREDENTIALS, AuthMethod.SF_SESSION])
def test_every_salesforce_login_method_reads_the_org(sb, auth):
    c = salesforce(sb, auth=auth)
    assert {o.kind: o.record_count for o in c.objects()}["lead"] == 2_000
    logins = sb.stats["by_kind"].get("login_soap", 0) + sb.stats["by_kind"].get("oauth_token", 0)
    assert logins == (0 if auth == AuthMethod.SF_SESSION else 1)


def test_plain_http_is_refused_unless_allowed(settings, sb, hs):
    settings.CRM_ALLOW_HTTP = False
    with pytest.raises(CrmConfigurationError, match=r"http:// is refused for Salesforce.*CRM_ALLOW_HTTP"):
        salesforce(sb)
    with pytest.raises(CrmConfigurationError, match=r"http:// is refused for HubSpot.*CRM_ALLOW_HTTP"):
        hubspot(hs)
    assert sb.stats["total"] == hs.stats["total"] == 0
    # https is fine at construction (no request is sent until a method is called)
    SalesforceConnector(base_url="https://acme.my.salesforce.com", username="u", password="p", store=LocalStore())
    with pytest.raises(CrmConfigurationError, match="My Domain"):
        SalesforceConnector(
            base_url="https://login.salesforce.com",
            auth_method=AuthMethod.SF_CLIENT_CREDENTIALS,
            consumer_key="k",
            consumer_secret="s",
        )
    with pytest.raises(CrmConfigurationError, match="not a full URL"):
        HubSpotConnector(base_url="api.hubapi.com", access_token="t")


def test_any_base_url_my_domain_or_proxy_routes_logins_there(settings):
    options = {"store": LocalStore()}
    my_domain = SalesforceConnector(base_url="https://acme.my.salesforce.com/", username="u", password="p", **options)
    assert my_domain._domain() == "acme.my" and my_domain.base_url == "https://acme.my.salesforce.com"
    session = GuardedSession(my_domain.guard, my_domain.base_url)
    login = "https://acme.my.salesforce.com/services/Soap/u/59.0"
    assert session.rewrite(login) == login
    assert session.rewrite("https://na1.salesforce.com/services/data/") == "https://na1.salesforce.com/services/data/"
    proxied = SalesforceConnector(base_url="https://crm-gateway.internal:8443", username="u", password="p", **options)
    session = GuardedSession(proxied.guard, proxied.base_url)
    assert session.rewrite("https://login.salesforce.com/services/Soap/u/59.0?x=1") == (
        "https://crm-gateway.internal:8443/services/Soap/u/59.0?x=1"
    )


# ---------------------------------------------------------------- Salesforce faults


def _sf_probe(sb, clock, **options):
    """A logged-in connector whose next `value_counts('lead', 'Status')` is exactly one GET /query."""
    c = salesforce(sb, clock, **options)
    c.fields("lead")
    sb.reset_stats()
    return c


def test_salesforce_request_limit_and_rate_limit_give_up_at_once(sb, clock):
    c = _sf_probe(sb, clock)
    sb.inject("request_limit")
    with pytest.raises(CrmApiLimitExceeded, match="daily API request limit is used up") as caught:
        c.value_counts("lead", "Status")
    assert caught.value.attempts == 1 and sb.stats["by_kind"] == {"query": 1}
    sb.inject("rate_limit", retry_after=3)  # Salesforce has no 429: the sandbox answers REQUEST_LIMIT_EXCEEDED
    with pytest.raises(CrmApiLimitExceeded):
        c.value_counts("lead", "Status")
    assert sb.stats["by_kind"] == {"query": 2} and clock.slept == []


def test_salesforce_concurrent_limit_is_retried_with_backoff_then_given_up(sb, clock):
    c = _sf_probe(sb, clock)
    sb.inject("concurrent_limit", count=2, retry_after=2)
    assert c.value_counts("lead", "Status").total == 2_000
    assert sb.stats["by_kind"] == {"query": 3} and [w for w, _ in c.guard.waits] == ["retry", "retry"]
    assert all(2.0 <= s <= 2.2 for s in clock.slept)  # Retry-After honoured, a little jitter on top
    sb.reset_stats()
    sb.inject("concurrent_limit", count=None)
    with pytest.raises(CrmRateLimited) as caught:
        c.value_counts("lead", "Status")
    assert str(caught.value) == "Salesforce rate limit hit 4 times on /query; gave up after 3 retries."
    assert sb.stats["by_kind"] == {"query": 4}
    backoff = clock.slept[2:]
    assert len(backoff) == 3 and all(b >= 1.0 for b in backoff) and backoff[2] <= 30.0


def test_salesforce_expired_session_logs_in_once_and_never_loops(sb, clock):
    c = _sf_probe(sb, clock)
    sb.inject("expired_session")  # one-off: log in again, carry on
    assert c.value_counts("lead", "Status").total == 2_000
    assert sb.stats["by_kind"] == {"query": 2, "login_soap": 1} and sb.stats["by_status"]["401"] == 1
    sb.reset_stats()
    sb.inject("expired_session", count=None)  # persistent: one re-login, then a clear error
    with pytest.raises(CrmAuthError, match="session expired and logging in again did not help"):
        c.value_counts("lead", "Status")
    assert sb.stats["by_kind"] == {"query": 2, "login_soap": 1}
    sb.faults.clear()
    sb.reset_stats()
    # simple-salesforce's SFType.describe re-logs-in forever on a persistent 401; our describe is bounded too
    fresh = salesforce(sb, clock)
    sb.inject("expired_session", count=None, path=r"/sobjects/Contact/describe")
    with pytest.raises(CrmAuthError):
        fresh.fields("contact")
    assert sb.stats["by_kind"] == {"login_soap": 2, "describe": 2}


def test_salesforce_access_token_that_expired_is_a_clear_error(sb, clock):
    c = salesforce(sb, clock, auth=AuthMethod.SF_SESSION)
    sb.expire_sessions()
    with pytest.raises(CrmAuthError, match="Paste a fresh access token"):
        c.objects()
    assert sb.stats["total"] == 1


def test_salesforce_wrong_password_is_not_retried(sb, clock):
    c = SalesforceConnector(
        base_url=sb.base_url,
        username=sb.username,
        password="wrong",
        security_token="x",
        sleep=clock.sleep,
        store=LocalStore(),
    )
    with pytest.raises(CrmAuthError, match=r"rejected the credentials \(INVALID_LOGIN"):
        c.objects()
    assert sb.stats["by_kind"] == {"login_soap": 1} and c.calls_spent == 1


def test_salesforce_server_errors_are_retried_a_bounded_number_of_times(sb, clock):
    c = _sf_probe(sb, clock)
    sb.inject("server_error", status=500)
    assert c.value_counts("lead", "Status").total == 2_000
    assert sb.stats["by_status"] == {"500": 1, "200": 1}
    sb.reset_stats()
    sb.inject("server_error", status=503, count=None)
    with pytest.raises(CrmUnavailable) as caught:
        c.value_counts("lead", "Status")
    assert (
        str(caught.value) == "Salesforce answered 503 Service Unavailable 4 times on /query; gave up after 3 retries."
    )
    assert sb.stats["by_status"] == {"503": 4}
    sb.faults.clear()
    sb.reset_stats()
    sb.inject("disconnect", count=None)
    with pytest.raises(CrmUnavailable, match="dropped or refused the connection 4 times on /query"):
        c.value_counts("lead", "Status")
    assert sb.faults.list()[-1]["fired"] == 4


def test_salesforce_slow_answer_within_the_timeout_passes_and_beyond_it_times_out(sb, clock):
    c = _sf_probe(sb, clock, timeout=(2.0, 0.4))
    sb.inject("slow", delay=0.05)
    assert c.value_counts("lead", "Status").total == 2_000
    sb.inject("slow", delay=1.5, count=None)
    with pytest.raises(CrmTimeout, match=r"did not answer /query within 0.4 seconds \(2 attempts\)"):
        c.value_counts("lead", "Status")
    assert sb.faults.list()[-1]["fired"] == 2  # one retry, then give up


@pytest.mark.parametrize("kind", ["truncated_json", "malformed_json"])
def test_salesforce_broken_json_is_retried_once_then_reported(sb, clock, kind):
    c = _sf_probe(sb, clock)
    sb.inject(kind)
    assert c.value_counts("lead", "Status").total == 2_000
    assert sb.stats["by_kind"] == {"query": 2}
    sb.inject(kind, count=None)
    with pytest.raises(CrmMalformedResponse) as caught:
        c.value_counts("lead", "Status")
    assert str(caught.value).startswith("Salesforce returned malformed JSON for /query (2 times)")
    assert sb.stats["by_kind"] == {"query": 4}


# ---------------------------------------------------------------- HubSpot faults


def _hs_probe(hs, clock, **options):
    """A connector whose next `count_without_value('contact', 'lifecyclestage')` is exactly one search."""
    c = hubspot(hs, clock, **options)
    c.fields("contact")
    hs.reset_stats()
    return c


def test_hubspot_429_with_retry_after_is_honoured_and_post_search_retried(hs, clock):
    c = _hs_probe(hs, clock)
    hs.inject("rate_limit", retry_after=3, path=r"/search$")
    assert c.count_without_value("contact", "lifecyclestage") == hs.model.counts_by("contact", "lifecycle")[None]
    assert hs.stats["by_kind"] == {"search": 2} and hs.stats["by_status"] == {"429": 1, "200": 1}
    assert 3.0 <= clock.slept[0] <= 3.3


@pytest.mark.parametrize("policy", ["TEN_SECONDLY_ROLLING", "SECONDLY"])
def test_hubspot_429_without_retry_after_backs_off_then_gives_up(hs, clock, policy):
    c = _hs_probe(hs, clock)
    hs.inject("rate_limit", policy=policy, count=None)
    with pytest.raises(CrmRateLimited) as caught:
        c.count_without_value("contact", "lifecyclestage")
    assert str(caught.value) == (
        "HubSpot rate limit hit 4 times on /crm/v3/objects/contacts/search; gave up after 3 retries."
    )
    assert hs.stats["by_kind"] == {"search": 4}
    assert len(clock.slept) == 3 and all(s >= 1.0 for s in clock.slept)


def test_hubspot_daily_limit_is_not_retried(hs, clock):
    c = _hs_probe(hs, clock)
    hs.inject("rate_limit", policy="DAILY")
    with pytest.raises(CrmApiLimitExceeded, match="daily API limit is used up"):
        c.count_without_value("contact", "lifecyclestage")
    hs.inject("request_limit")
    with pytest.raises(CrmApiLimitExceeded):
        c.pipelines("deal")
    assert hs.stats["by_kind"] == {"search": 1, "pipelines": 1} and clock.slept == []


def test_hubspot_expired_token_one_off_and_persistent(hs, clock):
    c = _hs_probe(hs, clock)
    hs.inject("expired_session")
    assert c.count_without_value("contact", "lifecyclestage") >= 0
    assert hs.stats["by_status"] == {"401": 1, "200": 1}
    hs.inject("expired_session", count=None)
    with pytest.raises(CrmAuthError, match="HubSpot rejected the credentials .* 2 times .*EXPIRED_AUTHENTICATION"):
        c.count_without_value("contact", "lifecyclestage")
    assert hs.stats["by_status"] == {"401": 3, "200": 1}
    hs.faults.clear()
    wrong = HubSpotConnector(base_url=hs.base_url, access_token="pat-na1-wrong", sleep=clock.sleep, store=LocalStore())
    with pytest.raises(CrmAuthError, match="INVALID_AUTHENTICATION"):
        wrong.pipelines("deal")
    assert wrong.calls_spent == 2


def test_hubspot_server_errors_timeouts_and_broken_json(hs, clock):
    c = _hs_probe(hs, clock, timeout=(2.0, 0.4))
    hs.inject("server_error", status=502)
    assert c.pipelines("deal")
    hs.inject("server_error", count=None)
    with pytest.raises(CrmUnavailable, match=r"answered 500 .* 4 times on /crm/v3/pipelines/tickets"):
        c.pipelines("ticket")
    hs.faults.clear()
    hs.inject("slow", delay=1.5, count=None)
    with pytest.raises(CrmTimeout, match=r"did not answer /crm/v3/objects/contacts/search within 0.4 seconds"):
        c.count_without_value("contact", "lifecyclestage")
    assert hs.faults.list()[-1]["fired"] == 2
    hs.faults.clear()
    hs.inject("slow", delay=0.05)
    assert c.count_without_value("contact", "lifecyclestage") >= 0
    # hubspot-api-client would hand back results=None for these; we retry once, then say so
    for kind in ("malformed_json", "truncated_json"):
        fresh = hubspot(hs, clock)
        hs.inject(kind)
        assert len(fresh.fields("company")) > 5
        hs.inject(kind, count=None)
        with pytest.raises(CrmMalformedResponse, match="HubSpot returned malformed JSON for /crm/v3/properties/deals"):
            fresh.fields("deal")
        hs.faults.clear()


def test_hubspot_slows_down_when_the_window_is_nearly_used():
    clock = FakeClock()
    # 20 requests per 600 s (2 per second): the sandbox's X-HubSpot-RateLimit-Secondly-Remaining reaches 0
    # once fewer than 10 are left, and only 2 are left after 18 requests
    with HubSpotSandbox(profile="demo", seed=2, size=200, as_of=AS_OF, rate_limit=(20, 600.0)) as hs:
        connectors = [hubspot(hs, clock) for _ in range(18)]
        for c in connectors:
            c.pipelines("deal")  # a fresh connector each time: the window belongs to the portal
    waits = [c.guard.waits for c in connectors]
    assert [c.guard.window_remaining for c in connectors] == list(range(19, 1, -1))
    assert waits[:10] == [[]] * 10
    assert waits[10:17] == [[("slowdown", 1.0)]] * 7  # the secondly window is used up: wait a second
    assert waits[17] == [("slowdown", 300.0)]  # 2 left of 20 per 600 s: spread them over the window
    assert sum(clock.slept) == 307.0


# ---------------------------------------------------------------- rate limiting and budget


def test_local_rate_limiter_spaces_searches_without_sleeping():
    clock = FakeClock()
    with HubSpotSandbox(profile="demo", seed=2, size=200, as_of=AS_OF) as hs:
        c = hubspot(hs, clock, store=LocalStore(clock=clock.now), rates={"hubspot-search": "2/1"})
        c.value_counts("contact", "lifecyclestage")  # one search per option, plus two
        searches = hs.stats["by_kind"]["search"]
    throttled = [s for reason, s in c.guard.waits if reason == "throttle"]
    assert searches >= 8 and len(throttled) >= searches // 2 - 1
    assert clock.now_value - 1000.0 >= (searches - 2) / 2 * 0.99  # never more than 2 searches a second


def test_budget_exhaustion_refuses_further_calls(clock):
    with SalesforceSandbox(profile="demo", seed=3, size=500, as_of=AS_OF, daily_api_limit=200) as sb:
        c = salesforce(sb, clock)
        c.objects()  # login, describe, 5 counts: 7 calls; the 200/day allocation is now known: budget 10
        c.fields("lead")
        c.fields("contact")
        c.value_counts("lead", "Status")
        with pytest.raises(CrmBudgetExhausted) as caught:
            c.value_counts("contact", "Lifecycle_Stage__c")
        assert "API budget for today is spent: 10 calls, 5% of the daily allocation of 200" in str(caught.value)
        assert "CRM_DAILY_BUDGET_SHARE" in str(caught.value)
        assert sb.stats["total"] == 10 and c.calls_spent == 10
        with pytest.raises(CrmBudgetExhausted):
            c.api_budget()
        assert sb.stats["total"] == 10
        # another connector for the same connection (another worker) shares the day's count
        other = salesforce(sb, clock, store=c.options.store, key=c.guard.budget.key)
        with pytest.raises(CrmBudgetExhausted):
            other.objects()
        assert sb.stats["total"] == 10


def test_deep_walks_check_the_budget_before_reading(clock):
    with SalesforceSandbox(profile="messy", seed=3, size=60_000, as_of=AS_OF, daily_api_limit=1_000) as sb:
        c = salesforce(sb, clock)
        c.data_quality(as_of=AS_OF)
        sb.reset_stats()
        with pytest.raises(CrmBudgetExhausted, match=r"Finding duplicates reads .* records and would take about"):
            c.data_quality(as_of=AS_OF, deep=True)
        assert "query_more" not in sb.stats["by_kind"]


def test_org_nearly_out_of_api_calls_is_left_alone(clock):
    with SalesforceSandbox(
        profile="demo", seed=3, size=500, as_of=AS_OF, daily_api_limit=1_000, daily_api_used=960
    ) as sb:
        c = salesforce(sb, clock)
        with pytest.raises(CrmApiLimitExceeded, match="only 39 of 1,000 daily API calls left"):
            c.objects()
        assert sb.stats["by_kind"] == {"login_soap": 1, "describe_global": 1}


def test_retry_policy_backoff_is_exponential_with_jitter_and_bounded():
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, max_retry_after=60.0)
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0]):
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1
    assert policy.delay(0, retry_after=120) is None  # too long to hold a worker: give up instead
    assert 5.0 <= policy.delay(0, retry_after=5) <= 5.5


def _redis_url():
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    binary = shutil.which("redis-server")
    if not binary:
        return None, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return f"redis://127.0.0.1:{port}/0", process


@pytest.fixture
def redis_url():
    url, process = _redis_url()
    if url is None:
        pytest.fail("no Redis: set REDIS_URL or install redis-server (make test does both)")
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    # the throwaway server takes a moment to listen: let redis-py's own retry wait for it
    client = redis.Redis.from_url(
        url, retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), 60), retry_on_error=[redis.exceptions.ConnectionError]
    )
    client.ping()
    try:
        yield url
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)


def test_redis_limiter_and_budget_are_shared_by_every_worker(redis_url, settings):
    worker_a, worker_b = RedisStore(redis_url), RedisStore(redis_url)
    key = f"crm:rate:test:{uuid.uuid4().hex}"
    granted = [worker_a.acquire(key, 3, 10.0), worker_b.acquire(key, 3, 10.0), worker_a.acquire(key, 3, 10.0)]
    assert granted == [0.0, 0.0, 0.0]
    wait = worker_b.acquire(key, 3, 10.0)
    assert 9.0 < wait <= 10.0
    counter = f"crm:budget:test:{uuid.uuid4().hex}"
    assert [worker_a.incr(counter), worker_b.incr(counter), worker_a.incr(counter)] == [1, 2, 3]
    assert worker_b.get(counter) == 3
    settings.CELERY_BROKER_URL = redis_url
    assert isinstance(shared_store(), RedisStore)
    settings.CELERY_BROKER_URL = ""
    settings.REDIS_URL = ""
    if not os.environ.get("REDIS_URL"):
        assert isinstance(shared_store(), LocalStore)


def test_connectors_use_the_shared_store_by_default(redis_url, settings, sb):
    settings.CELERY_BROKER_URL = redis_url
    first = SalesforceConnector(
        base_url=sb.base_url,
        username=sb.username,
        password=sb.password,
        security_token=sb.security_token,
        key="connection:shared-test-" + uuid.uuid4().hex,
    )
    first.objects()
    second = SalesforceConnector(
        base_url=sb.base_url,
        username=sb.username,
        password=sb.password,
        security_token=sb.security_token,
        key=first.guard.budget.key,
    )
    assert isinstance(first.options.store, RedisStore)
    assert second.guard.budget.used == first.calls_spent


# ---------------------------------------------------------------- secrets stay out of errors and logs


def test_no_secret_in_errors_or_logs(caplog, sb, hs, clock):
    caplog.set_level(logging.DEBUG)
    secrets = [sb.password, sb.security_token, sb.consumer_secret, hs.access_token]
    errors = []
    c = salesforce(sb, clock)
    c.objects()
    secrets.append(c._sf.session_id)
    sb.inject("server_error", count=None)
    for attempt in (
        lambda: c.value_counts("lead", "Status"),
        lambda: SalesforceConnector(
            base_url=sb.base_url,
            username=sb.username,
            password=sb.password + "x",
            security_token=sb.security_token,
            sleep=clock.sleep,
            store=LocalStore(),
        ).objects(),
        lambda: SalesforceConnector(
            base_url=sb.base_url,
            auth_method=AuthMethod.SF_CLIENT_CREDENTIALS,
            consumer_key=sb.consumer_key,
            consumer_secret=sb.consumer_secret + "x",
            sleep=clock.sleep,
            store=LocalStore(),
        ).objects(),
    ):
        with pytest.raises(Exception) as caught:  # noqa: B017 - each raises its own CrmError
            attempt()
        errors.append(str(caught.value))
    h = hubspot(hs, clock)
    h.objects()
    hs.inject("expired_session", count=None)
    with pytest.raises(CrmAuthError) as caught:
        h.pipelines("deal")
    errors.append(str(caught.value))
    assert len(errors) == 4 and all(errors)
    assert "Salesforce rejected the credentials" in errors[1] and "invalid_client" in errors[2]
    for secret in secrets:
        assert secret not in caplog.text
        assert all(secret not in e for e in errors)
    assert secrets[0] not in repr(c) and hs.access_token not in repr(h)
