"""The CRM sandbox, driven over HTTP by the real simple-salesforce and hubspot-api-client libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests
import urllib3
from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest
from hubspot.crm.objects.exceptions import ApiException
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)
from urllib3.util.retry import Retry

from crm_sandbox import (
    GOTCHAS,
    PROFILES,
    HubSpotSandbox,
    OrgModel,
    SalesforceSandbox,
    custom_profile,
    hubspot_client,
)
from crm_sandbox.dates import DAY_MS, to_ms
from crm_sandbox.profiles import MESSY_GOTCHAS, NEW_GOTCHAS
from crm_sandbox.query import DateRange, MatchSet, Static

# Each hubspot-api-client package has its own ApiException class; one except clause must name them all.
HUBSPOT_ERRORS = (ApiException, PipelinesApiException, PropertiesApiException)
AS_OF = date(2025, 6, 15)  # the org clock is frozen here so every answer is reproducible
AS_OF_MS = to_ms(AS_OF)
ROOT = Path(__file__).resolve().parents[2]


def sf_time(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


def hs_time(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def grouped(sf, soql: str) -> dict:
    records = sf.query(soql)["records"]
    return {r[next(k for k in r if k not in ("attributes", "expr0"))]: r["expr0"] for r in records}


def search(client, object_type: str, groups: list[list[dict]], **kwargs):
    request = PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(**f) for f in group]) for group in groups], **kwargs
    )
    return client.crm.objects.search_api.do_search(object_type, public_object_search_request=request)


def search_all_ids(
    client, object_type: str, groups: list[list[dict]], page: int = 200, **kwargs
) -> list[str]:
    ids, after = [], None
    while True:
        result = search(client, object_type, groups, limit=page, after=after, **kwargs)
        ids += [r.id for r in result.results]
        if not result.paging:
            return ids
        after = result.paging.next.after


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sf_messy():
    with SalesforceSandbox(profile="messy", seed=7, size=5_000, as_of=AS_OF) as sb:
        yield sb


@pytest.fixture(scope="module")
def sf_million():
    with SalesforceSandbox(profile="messy", seed=7, size=1_000_000, as_of=AS_OF) as sb:
        yield sb


@pytest.fixture
def sb():
    with SalesforceSandbox(profile="demo", seed=3, size=2_000, as_of=AS_OF) as sandbox:
        yield sandbox


@pytest.fixture
def hs():
    with HubSpotSandbox(profile="messy", seed=7, size=1_000, as_of=AS_OF) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def hs_scan():
    """A demo portal small enough to read entirely, to check search answers against a full scan."""
    with HubSpotSandbox(profile="demo", seed=5, size=600, as_of=AS_OF) as sandbox:
        client = sandbox.client()
        contacts, after = [], None
        while True:
            page = client.crm.objects.basic_api.get_page(
                "contacts",
                limit=100,
                after=after,
                properties=["lifecyclestage", "hs_lead_status", "createdate", "email", "hs_analytics_source"],
            )
            contacts += page.results
            if not page.paging:
                break
            after = page.paging.next.after
        yield sandbox, client, contacts


# ---------------------------------------------------------------- profiles and the org model


def test_profiles_name_their_gotchas():
    assert PROFILES["healthy"].gotchas == frozenset()
    assert PROFILES["messy"].gotchas == MESSY_GOTCHAS and MESSY_GOTCHAS | NEW_GOTCHAS == frozenset(GOTCHAS)
    assert PROFILES["tangled"].gotchas >= NEW_GOTCHAS
    assert PROFILES["demo"].gotchas < PROFILES["messy"].gotchas
    assert custom_profile("x", {"no_sal_stage"}).has("no_sal_stage")
    with pytest.raises(ValueError, match="unknown gotchas"):
        custom_profile("bad", {"not_a_gotcha"})


def test_same_seed_gives_the_same_org_and_another_seed_does_not():
    kwargs = {"profile": "demo", "size": 5_000, "as_of": AS_OF}
    with SalesforceSandbox(seed=11, **kwargs) as a, SalesforceSandbox(seed=11, **kwargs) as b:
        with SalesforceSandbox(seed=12, **kwargs) as c:
            soql = "SELECT Status, COUNT(Id) FROM Lead GROUP BY Status"
            page = "SELECT Id, Name, Email, Status, CreatedDate FROM Lead WHERE Status = 'Working' LIMIT 50"
            answers = [(grouped(x.client(), soql), x.client().query(page)["records"]) for x in (a, b, c)]
    assert answers[0] == answers[1]
    assert answers[0][0] != answers[2][0]
    assert a.model.summary() == b.model.summary()


def test_salesforce_and_hubspot_orgs_come_from_the_same_model():
    with SalesforceSandbox(profile="demo", seed=9, size=3_000, as_of=AS_OF) as sfs:
        with HubSpotSandbox(profile="demo", seed=9, size=3_000, as_of=AS_OF) as hss:
            sf_counts = grouped(
                sfs.client(), "SELECT Lifecycle_Stage__c, COUNT(Id) FROM Contact GROUP BY Lifecycle_Stage__c"
            )
            client = hss.client()
            for option in sfs.model.schema.lifecycle:
                total = search(
                    client,
                    "contacts",
                    [[{"property_name": "lifecyclestage", "operator": "EQ", "value": option.hs}]],
                    limit=1,
                ).total
                assert total == sf_counts.get(option.label, 0), option.key
            missing = search(
                client,
                "contacts",
                [[{"property_name": "lifecyclestage", "operator": "NOT_HAS_PROPERTY"}]],
                limit=1,
            ).total
            assert missing == sf_counts.get(None, 0)


def test_arithmetic_counts_and_pages_equal_the_generated_rows():
    model = OrgModel("messy", seed=21, size=1_500, as_of=AS_OF, period=64)
    deals = model.table("deal")
    rows = [deals.row_at(i) for i in range(deals.size)]
    lo, hi = AS_OF_MS - 300 * DAY_MS, AS_OF_MS - 30 * DAY_MS
    flt = [
        [Static("stage", lambda o: not o.closed), DateRange("created", lo, hi)],
        [DateRange("last_modified", None, lo), Static("amount", lambda a: a is not None and a > 50_000)],
    ]

    def wanted(r):
        return (not r["stage"].closed and lo <= r["created"] < hi) or (
            r["dates"]["last_modified"] < lo and r["amount"] is not None and r["amount"] > 50_000
        )

    expected = [r["index"] for r in rows if wanted(r)]
    matches = MatchSet(deals, flt)
    assert matches.total == len(expected) == model.count("deal", flt) > 0
    assert [rank + k * deals.nslots for rank, k in matches.take(0, matches.total)] == expected
    assert [rank + k * deals.nslots for rank, k in matches.page(10, 25)] == expected[10:35]
    newest = [rank + k * deals.nslots for rank, k in matches.page(0, 12, descending=True)]
    assert newest == expected[::-1][:12]
    history = model.table("lead_history")
    every = MatchSet(history)
    assert every.total == history.size
    created = [history.row(rank, k)["created"] for rank, k in every.take(0, every.total)]
    window = [[DateRange("created", AS_OF_MS - 60 * DAY_MS, None)]]
    assert model.count("lead_history", window) == sum(c >= AS_OF_MS - 60 * DAY_MS for c in created)


# ---------------------------------------------------------------- Salesforce: login and metadata


@pytest.mark.parametrize("auth", ["soap", "oauth", "client_credentials", "session"])
def test_every_login_flow_gives_a_working_session(sb, auth):
    sf = sb.client(auth)
    assert sf.sf_instance == f"127.0.0.1:{sb.port}"
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2_000
    expected = {"soap": "login_soap", "oauth": "oauth_token", "client_credentials": "oauth_token"}.get(auth)
    assert sb.stats["by_kind"].get(expected, 0) == (1 if expected else 0)
    assert all(url.startswith(sb.base_url) for url in sf.session.sent)


def test_wrong_credentials_fail_like_salesforce(sb):
    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        sb.client("soap", password="wrong")
    with pytest.raises(SalesforceAuthenticationFailed, match="invalid_grant"):
        sb.client("oauth", password="wrong")
    with pytest.raises(SalesforceAuthenticationFailed, match="invalid_client"):
        sb.client("client_credentials", consumer_secret="wrong")


def test_describe_shows_the_messy_picklists_but_not_the_rogue_values(sf_messy):
    sf = sf_messy.client()
    lead = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    statuses = [v["value"] for v in lead["Status"]["picklistValues"]]
    assert {"MQL", "SQL", "Closed Won", "Closed Lost"} <= set(statuses)
    assert "Lead_Stage__c" in lead and lead["Lifecycle_Stage__c"]["custom"] is True
    lifecycle = [v["value"] for v in lead["Lifecycle_Stage__c"]["picklistValues"]]
    assert "SAL" not in lifecycle and {"Working", "Nurture", "Closed Lost"} <= set(lifecycle)
    in_records = grouped(sf, "SELECT Status, COUNT(Id) FROM Lead GROUP BY Status")
    assert "Contacted (old)" in in_records and "Contacted (old)" not in statuses
    by_lifecycle = grouped(sf, "SELECT Lifecycle_Stage__c, COUNT(Id) FROM Lead GROUP BY Lifecycle_Stage__c")
    assert by_lifecycle[None] > 0 and "Recycled" in by_lifecycle
    contact = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert "Contact_Status__c" not in contact
    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    types = {v["value"] for v in account["Type"]["picklistValues"]}
    assert {"Prospect", "Partner", "Churned"} <= types and "Lifecycle_Stage__c" not in account
    assert [g["name"] for g in sf.describe()["sobjects"]][:5] == [
        "Lead",
        "Contact",
        "Account",
        "Opportunity",
        "Case",
    ]


def test_healthy_org_has_sal_a_status_field_and_only_listed_values():
    with SalesforceSandbox(profile="healthy", seed=1, size=3_000, as_of=AS_OF) as sb:
        sf = sb.client()
        lead = {f["name"]: f for f in sf.Lead.describe()["fields"]}
        lifecycle = {v["value"] for v in lead["Lifecycle_Stage__c"]["picklistValues"]}
        statuses = {v["value"] for v in lead["Status"]["picklistValues"]}
        assert "SAL" in lifecycle and "MQL" not in statuses
        for obj, field, values in (("Lead", "Status", statuses), ("Lead", "Lifecycle_Stage__c", lifecycle)):
            assert set(grouped(sf, f"SELECT {field}, COUNT(Id) FROM {obj} GROUP BY {field}")) <= values
        assert "Contact_Status__c" in {f["name"] for f in sf.Contact.describe()["fields"]}
        types = sf.query("SELECT Name FROM RecordType WHERE SobjectType = 'Opportunity'")["records"]
        assert [t["Name"] for t in types] == ["New Business", "Renewals", "Expansion"]
        stages = sf.query(
            "SELECT MasterLabel, DefaultProbability FROM OpportunityStage WHERE IsClosed = false"
        )
        assert {r["DefaultProbability"] for r in stages["records"]} == {25.0, 50.0, 75.0, 90.0}


def test_pipelines_stages_and_statuses_are_queryable(sf_messy):
    sf = sf_messy.client()
    types = sf.query("SELECT Id, Name FROM RecordType WHERE SobjectType = 'Opportunity' ORDER BY Name")[
        "records"
    ]
    assert len(types) == 5
    stages = sf.query(
        "SELECT MasterLabel, IsClosed, IsWon, SortOrder FROM OpportunityStage ORDER BY SortOrder"
    )
    labels = [r["MasterLabel"] for r in stages["records"]]
    assert labels[0] == "Prospecting" and {"Renewal due in 120 days", "Onboarding 50% complete"} <= set(
        labels
    )
    lead_status = sf.query("SELECT MasterLabel, IsConverted FROM LeadStatus WHERE IsConverted = true")
    assert [r["MasterLabel"] for r in lead_status["records"]] == ["Converted"]
    renewals = next(t for t in types if t["Name"] == "Renewals")
    picklist = sf.restful(f"ui-api/object-info/Opportunity/picklist-values/{renewals['Id']}/StageName")
    assert [v["value"] for v in picklist["values"]][:2] == [
        "Renewal due in 120 days",
        "Onboarding 50% complete",
    ]
    assert picklist["values"][0]["attributes"]["picklistAtrributesValueType"] == "OpportunityStage"


# ---------------------------------------------------------------- Salesforce: queries


def test_query_all_follows_next_records_url(sf_messy):
    sf = sf_messy.client()
    sf_messy.reset_stats()
    first = sf.query("SELECT Id, Name, Status, CreatedDate FROM Lead")
    assert first["done"] is False and first["totalSize"] == 5_000 and len(first["records"]) == 2_000
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    records = sf.query_all("SELECT Id, Name, Status, CreatedDate FROM Lead")["records"]
    assert len(records) == 5_000 and len({r["Id"] for r in records}) == 5_000
    assert [r["Id"] for r in records[:2000]] == [r["Id"] for r in first["records"]]
    created = [sf_time(r["CreatedDate"]) for r in records]
    assert created == sorted(created) and created[-1] <= AS_OF_MS
    again = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert again["records"] == records[2000:4000]
    assert sf_messy.stats["by_kind"] == {"query": 2, "query_more": 3}


def test_group_by_counts_match_a_full_scan(sf_messy):
    sf = sf_messy.client()
    rows = sf.query_all("SELECT Id, Status, Lifecycle_Stage__c, Email, CreatedDate FROM Lead")["records"]
    since = AS_OF_MS - 90 * DAY_MS
    assert grouped(sf, "SELECT Status, COUNT(Id) FROM Lead GROUP BY Status") == Counter(
        r["Status"] for r in rows
    )
    recent = grouped(
        sf,
        "SELECT Lifecycle_Stage__c, COUNT(Id) FROM Lead WHERE CreatedDate = LAST_N_DAYS:90 "
        "GROUP BY Lifecycle_Stage__c",
    )
    assert recent == Counter(r["Lifecycle_Stage__c"] for r in rows if sf_time(r["CreatedDate"]) >= since)
    no_email = sf.query("SELECT COUNT() FROM Lead WHERE Email = null")["totalSize"]
    assert (
        no_email == sum(r["Email"] is None for r in rows) == sf_messy.model.missing_count("lead", "has_email")
    )
    emails = Counter(r["Email"] for r in rows if r["Email"])
    assert sum(1 for n in emails.values() if n > 1) == sf_messy.model.duplicate_groups("lead") > 0
    websites = Counter(
        a["Website"] for a in sf.query_all("SELECT Website FROM Account")["records"] if a["Website"]
    )
    assert sum(1 for n in websites.values() if n > 1) == sf_messy.model.duplicate_groups("company") > 0
    either = sf.query(
        "SELECT COUNT() FROM Lead WHERE (Status = 'New' OR Status IN ('Working', 'MQL')) AND NOT Email = null"
    )["totalSize"]
    assert either == sum(r["Status"] in ("New", "Working", "MQL") and r["Email"] is not None for r in rows)


def test_group_by_on_a_million_records_is_arithmetic(sf_million):
    sf = sf_million.client()
    sf_million.reset_stats()
    model = sf_million.model
    started = time.perf_counter()
    stages = grouped(sf, "SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName")
    statuses = grouped(sf, "SELECT Status, COUNT(Id) FROM Lead GROUP BY Status")
    recent = grouped(
        sf, "SELECT Status, COUNT(Id) FROM Lead WHERE CreatedDate >= LAST_N_DAYS:90 GROUP BY Status"
    )
    total = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    elapsed = time.perf_counter() - started
    assert total == sum(statuses.values()) == 1_000_000
    assert sum(stages.values()) == 200_000
    by_label = Counter()
    for label, n in model.counts_by("deal", "stage", by="label").items():
        by_label[label] += n
    assert stages == by_label
    since = [[DateRange("created", AS_OF_MS - 90 * DAY_MS, None)]]
    assert recent == model.counts_by("lead", "status", since, by="label")
    assert elapsed < 3.0
    assert sf_million.stats["by_kind"] == {"query": 4}


def test_count_and_date_literals_agree_with_iso_ranges(sf_messy):
    sf = sf_messy.client()
    by_constant = sf.query("SELECT COUNT() FROM Lead WHERE CreatedDate = LAST_N_MONTHS:3")["totalSize"]
    start, end = iso(to_ms(date(2025, 3, 1))), iso(to_ms(date(2025, 6, 1)))
    by_iso = sf.query(f"SELECT COUNT() FROM Lead WHERE CreatedDate >= {start} AND CreatedDate < {end}")
    assert by_constant == by_iso["totalSize"] > 0
    by_close = sf.query("SELECT COUNT() FROM Opportunity WHERE CloseDate >= 2025-06-15 AND IsClosed = false")
    open_future = sf.query_all("SELECT CloseDate FROM Opportunity WHERE IsClosed = false")["records"]
    assert by_close["totalSize"] == sum(r["CloseDate"] >= "2025-06-15" for r in open_future)
    stale = sf.query(f"SELECT COUNT() FROM Lead WHERE LastModifiedDate < {iso(AS_OF_MS - 180 * DAY_MS)}")
    assert stale["totalSize"] == sf_messy.model.stale_count("lead")
    amount = sf.query("SELECT SUM(Amount) total, COUNT(Id) FROM Opportunity WHERE IsWon = true")["records"][0]
    assert amount["total"] > 0 and amount["expr0"] > 0


def test_history_aggregates_match_the_history_rows(sf_messy):
    sf = sf_messy.client()
    rows = sf.query_all("SELECT OpportunityId, StageName, CreatedDate FROM OpportunityHistory")["records"]
    start, end = AS_OF_MS - 120 * DAY_MS, AS_OF_MS - 30 * DAY_MS
    in_period = Counter(r["StageName"] for r in rows if start <= sf_time(r["CreatedDate"]) < end)
    answer = grouped(
        sf,
        f"SELECT StageName, COUNT(Id) FROM OpportunityHistory WHERE CreatedDate >= {iso(start)} "
        f"AND CreatedDate < {iso(end)} GROUP BY StageName",
    )
    assert answer == in_period
    sales = sf_messy.model.schema.deal_pipelines[0]
    won = next(o for o in sales.stages if o.won)
    sales_ids = {
        o["Id"]
        for o in sf.query_all(f"SELECT Id FROM Opportunity WHERE RecordTypeId = '{sales.sf_record_type_id}'")[
            "records"
        ]
    }
    assert sf_messy.model.transitions_into("deal", "stage", won.key, start, end) == sum(
        r["StageName"] == "Closed Won"
        and r["OpportunityId"] in sales_ids
        and start <= sf_time(r["CreatedDate"]) < end
        for r in rows
    )
    latest = {}
    for r in rows:
        if r["OpportunityId"] not in latest or sf_time(r["CreatedDate"]) >= sf_time(
            latest[r["OpportunityId"]][1]
        ):
            latest[r["OpportunityId"]] = (r["StageName"], r["CreatedDate"])
    current = {
        o["Id"]: o["StageName"] for o in sf.query_all("SELECT Id, StageName FROM Opportunity")["records"]
    }
    assert {k: v[0] for k, v in latest.items()} == current
    fields = grouped(
        sf, "SELECT Field, COUNT(Id) FROM LeadHistory WHERE CreatedDate = LAST_N_DAYS:30 GROUP BY Field"
    )
    assert set(fields) <= {"created", "Status", "Lifecycle_Stage__c"}
    status_rows = sf.query_all(
        "SELECT LeadId, OldValue, NewValue, CreatedDate FROM LeadHistory "
        "WHERE Field = 'Status' AND CreatedDate = LAST_N_DAYS:30"
    )["records"]
    assert len(status_rows) == fields.get("Status", 0) > 0
    assert all(r["NewValue"] and r["OldValue"] for r in status_rows)


def test_malformed_soql_gets_salesforce_errors(sf_messy):
    sf = sf_messy.client()
    cases = {
        "SELECT Foo FROM Lead": ("INVALID_FIELD", "No such column 'Foo' on entity 'Lead'"),
        "SELECT Id FROM": ("MALFORMED_QUERY", "unexpected token: <EOF>"),
        "SELECT Id FROM Foo": ("INVALID_TYPE", "sObject type 'Foo' is not supported"),
        "SELECT NewValue, COUNT(Id) FROM LeadHistory GROUP BY NewValue": (
            "INVALID_FIELD",
            "field 'NewValue' can not be grouped in a query call",
        ),
        "SELECT Id FROM LeadHistory WHERE NewValue = 'SQL'": (
            "INVALID_FIELD",
            "field 'NewValue' can not be filtered in query call",
        ),
        "SELECT Id FROM Lead WHERE CreatedDate > 2024-01-01": ("INVALID_FIELD", "must be of type dateTime"),
        "SELECT Name, COUNT(Id) FROM Lead GROUP BY Status": (
            "MALFORMED_QUERY",
            "must be grouped or aggregated",
        ),
        "SELECT Id FROM Lead WHERE Name LIKE 'A%'": ("MALFORMED_QUERY", "sandbox: LIKE is not supported"),
        "SELECT Id FROM Lead OFFSET 2001": (
            "NUMBER_OUTSIDE_VALID_RANGE",
            "Maximum SOQL offset allowed is 2000",
        ),
    }
    for soql, (code, text) in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.query(soql)
        assert caught.value.status == 400
        assert caught.value.content[0]["errorCode"] == code, soql
        assert text in caught.value.content[0]["message"], soql
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Lead WHERE")
    assert caught.value.content[0]["message"].endswith("ERROR at Row:1:Column:26\nunexpected token: <EOF>")


def test_limits_reflect_requests_served_and_run_out():
    with SalesforceSandbox(profile="demo", seed=3, size=500, as_of=AS_OF, daily_api_limit=30) as sb:
        sf = sb.client()
        for _ in range(5):
            sf.query("SELECT COUNT() FROM Lead")
        limits = sf.limits()
        assert limits["DailyApiRequests"] == {"Max": 30, "Remaining": 24}
        assert sf.api_usage["api-usage"].used == 6 and sf.api_usage["api-usage"].total == 30
        for _ in range(24):
            sf.query("SELECT COUNT() FROM Lead")
        with pytest.raises(SalesforceRefusedRequest) as caught:
            sf.query("SELECT COUNT() FROM Lead")
        assert caught.value.status == 403
        assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert sb.stats["by_kind"] == {"login_soap": 1, "query": 30, "limits": 1}
        assert sb.stats["by_status"] == {"200": 31, "403": 1}


# ---------------------------------------------------------------- Salesforce: faults


def test_expired_session_makes_simple_salesforce_log_in_again(sb):
    sf = sb.client()
    sb.inject("expired_session")
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2_000
    assert sb.stats["by_kind"]["login_soap"] == 2 and sb.stats["by_status"]["401"] == 1
    sb.expire_sessions()  # a real expiry: the old token stops working
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 2_000
    assert sb.stats["by_kind"]["login_soap"] == 3
    direct = sb.client("session", session_id=sf.session_id)
    sb.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as caught:
        direct.query("SELECT COUNT() FROM Lead")
    assert caught.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_persistent_401_is_bounded_on_restful_but_not_on_sobject_describe(sb):
    sf = sb.client()
    sb.inject("expired_session", count=None, path=r"/limits/?$")
    with pytest.raises(SalesforceExpiredSession):
        sf.limits()
    assert sb.stats["by_kind"]["limits"] == 4 and sb.stats["by_kind"]["login_soap"] == 5
    sb.faults.clear()
    sb.reset_stats()
    # SFType drops its retry counter when it recurses: it re-logs in for as long as the 401s last
    sb.inject("expired_session", count=6, path=r"/sobjects/Lead/describe")
    assert sf.Lead.describe()["name"] == "Lead"
    assert sb.stats["by_kind"] == {"describe": 7, "login_soap": 6}


def test_request_limit_and_server_errors(sb):
    sf = sb.client()
    sb.inject("request_limit")
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT COUNT() FROM Lead")
    assert caught.value.status == 403
    assert caught.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    sb.inject("concurrent_limit")
    with pytest.raises(SalesforceRefusedRequest, match="ConcurrentPerOrgLongTxn"):
        sf.query("SELECT COUNT() FROM Lead")
    sb.inject("server_error")
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT COUNT() FROM Lead")
    assert caught.value.status == 500 and caught.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    sb.inject("server_error", status=503)
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT COUNT() FROM Lead")
    assert caught.value.status == 503 and "Service Unavailable" in caught.value.content
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2_000
    assert sb.stats["faults_injected"] == {"request_limit": 1, "concurrent_limit": 1, "server_error": 2}


def test_slow_truncated_malformed_and_dropped_answers(sb):
    sf = sb.client(timeout=0.3)
    sb.inject("slow", delay=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.query("SELECT COUNT() FROM Lead")
    sb.inject("slow", delay=0.05)
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2_000
    for kind in ("truncated_json", "malformed_json"):
        sb.inject(kind)
        with pytest.raises(requests.exceptions.JSONDecodeError):
            sf.query("SELECT Id FROM Lead LIMIT 5")
    sb.inject("disconnect")
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT COUNT() FROM Lead")
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2_000


def test_faults_by_path_and_skip_set_over_http_from_another_process(sf_messy):
    sf = sf_messy.client()
    control = f"{sf_messy.base_url}/__sandbox__"
    answer = requests.post(
        f"{control}/faults", json={"kind": "server_error", "path": r"/query/01g", "skip": 1}, timeout=5
    )
    assert answer.status_code == 200 and answer.json()["faults"][0]["kind"] == "server_error"
    requests.delete(f"{control}/stats", timeout=5)
    with pytest.raises(SalesforceGeneralError):
        sf.query_all("SELECT Id FROM Lead")  # page 2 is let through, page 3 fails
    stats = requests.get(f"{control}/stats", timeout=5).json()
    assert stats == sf_messy.stats
    assert stats["by_kind"] == {"query": 1, "query_more": 2} and stats["faults_injected"] == {
        "server_error": 1
    }
    assert requests.post(f"{control}/faults", json={"kind": "nope"}, timeout=5).status_code == 400
    requests.delete(f"{control}/faults", timeout=5)
    assert requests.get(f"{control}/faults", timeout=5).json() == {"faults": []}
    org = requests.get(f"{control}/org", timeout=5).json()
    assert org["org"]["profile"] == "messy" and org["credentials"]["username"] == sf_messy.username
    assert "rogue_picklist_values" in org["org"]["gotchas"]


# ---------------------------------------------------------------- HubSpot: metadata


def test_hubspot_properties_reflect_the_profile(hs):
    client = hs.client()
    props = {p.name: p for p in client.crm.properties.core_api.get_all("contacts").results}
    stages = [o.value for o in props["lifecyclestage"].options]
    assert {"working", "nurture", "closedlost"} <= set(stages) and "salesacceptedlead" not in stages
    assert "recycled" not in stages
    rogue = search(
        client,
        "contacts",
        [[{"property_name": "lifecyclestage", "operator": "EQ", "value": "recycled"}]],
        limit=1,
    )
    assert rogue.total > 0
    entered = props["hs_date_entered_marketingqualifiedlead"]
    assert entered.calculated is True and entered.field_type == "calculation_read_time"
    assert {o.value for o in props["hs_lead_status"].options} >= {"MQL", "SQL", "NEW"}
    assert "lead_stage" in props
    company_types = {o.value for o in client.crm.properties.core_api.get_all("companies").results[2].options}
    assert {"PROSPECT", "PARTNER", "CHURNED"} <= company_types
    with HubSpotSandbox(profile="healthy", seed=1, size=100, as_of=AS_OF) as healthy:
        props = {p.name: p for p in healthy.client().crm.properties.core_api.get_all("contacts").results}
        assert "salesacceptedlead" in [o.value for o in props["lifecyclestage"].options]
        assert "lead_stage" not in props


def test_hubspot_pipelines(hs):
    client = hs.client()
    deals = client.crm.pipelines.pipelines_api.get_all("deals").results
    assert [p.label for p in deals] == [
        "Sales Pipeline",
        "Renewals",
        "Expansion",
        "Partner Deals",
        "Enterprise (2019)",
    ]
    assert deals[0].stages[0].id == "appointmentscheduled"
    assert deals[0].stages[0].metadata == {"isClosed": "false", "probability": "0.2"}
    renewal_labels = [s.label for s in deals[1].stages]
    assert "Renewal due in 120 days" in renewal_labels and "Onboarding 50% complete" in renewal_labels
    assert {"Onboarding", "Implementation", "Go-Live"} <= {s.label for s in deals[0].stages}
    tickets = client.crm.pipelines.pipelines_api.get_all("tickets").results
    assert [p.label for p in tickets] == ["Support Pipeline"]
    assert tickets[0].stages[-1].metadata == {"ticketState": "CLOSED"}
    lifecycle = client.crm.pipelines.pipelines_api.get_all("contacts").results
    assert lifecycle[0].id == "contacts-lifecycle-pipeline"


# ---------------------------------------------------------------- HubSpot: search and paging


def test_search_total_with_limit_one_on_a_million_contacts():
    with HubSpotSandbox(profile="messy", seed=7, size=1_000_000, as_of=AS_OF) as big:
        client = big.client()
        expected = big.model.counts_by("contact", "lifecycle", by="hs")
        started = time.perf_counter()
        for value, count in expected.items():
            if value is None:
                continue
            result = search(
                client,
                "contacts",
                [[{"property_name": "lifecyclestage", "operator": "EQ", "value": value}]],
                limit=1,
            )
            assert result.total == count and len(result.results) == 1
        assert time.perf_counter() - started < 5.0
        assert big.stats["by_kind"] == {"search": len(expected) - 1}
        since = AS_OF_MS - 30 * DAY_MS
        recent = search(
            client,
            "deals",
            [
                [
                    {"property_name": "createdate", "operator": "GTE", "value": iso(since)},
                    {"property_name": "pipeline", "operator": "EQ", "value": "default"},
                ]
            ],
            limit=1,
        )
        expected = big.model.count(
            "deal", [[DateRange("created", since, None), Static("pipeline", lambda p: p.hs_id == "default")]]
        )
        assert recent.total == expected > 0


def test_search_filters_match_a_full_scan(hs_scan):
    _, client, contacts = hs_scan
    ids = {c.id: c.properties for c in contacts}
    assert len(ids) == 600
    cutoff = AS_OF_MS - 200 * DAY_MS
    low, high = AS_OF_MS - 400 * DAY_MS, AS_OF_MS - 100 * DAY_MS

    def scan(pred):
        return sorted((i for i, p in ids.items() if pred(p)), key=int)

    cases = [
        (
            [[{"property_name": "lifecyclestage", "operator": "EQ", "value": "CUSTOMER"}]],
            lambda p: p["lifecyclestage"] == "customer",
        ),
        (
            [[{"property_name": "lifecyclestage", "operator": "NEQ", "value": "customer"}]],
            lambda p: p["lifecyclestage"] != "customer",
        ),
        (
            [[{"property_name": "hs_lead_status", "operator": "IN", "values": ["NEW", "OPEN"]}]],
            lambda p: p["hs_lead_status"] in ("NEW", "OPEN"),
        ),
        (
            [[{"property_name": "hs_lead_status", "operator": "NOT_IN", "values": ["NEW", "OPEN"]}]],
            lambda p: p["hs_lead_status"] not in ("NEW", "OPEN"),
        ),
        (
            [[{"property_name": "lifecyclestage", "operator": "NOT_HAS_PROPERTY"}]],
            lambda p: p["lifecyclestage"] is None,
        ),
        ([[{"property_name": "email", "operator": "HAS_PROPERTY"}]], lambda p: p["email"] is not None),
        (
            [[{"property_name": "createdate", "operator": "GTE", "value": str(cutoff)}]],
            lambda p: hs_time(p["createdate"]) >= cutoff,
        ),
        (
            [[{"property_name": "createdate", "operator": "LTE", "value": iso(cutoff)}]],
            lambda p: hs_time(p["createdate"]) <= cutoff,
        ),
        (
            [
                [
                    {
                        "property_name": "createdate",
                        "operator": "BETWEEN",
                        "value": str(low),
                        "high_value": str(high),
                    }
                ]
            ],
            lambda p: low <= hs_time(p["createdate"]) <= high,
        ),
        (
            [
                [
                    {"property_name": "lifecyclestage", "operator": "EQ", "value": "lead"},
                    {"property_name": "hs_analytics_source", "operator": "HAS_PROPERTY"},
                ],
                [{"property_name": "lifecyclestage", "operator": "EQ", "value": "customer"}],
            ],
            lambda p: (
                (p["lifecyclestage"] == "lead" and p["hs_analytics_source"])
                or p["lifecyclestage"] == "customer"
            ),
        ),
        (
            [[{"property_name": "hs_object_id", "operator": "GT", "value": "450"}]],
            lambda p: int(p["hs_object_id"]) > 450,
        ),
    ]
    for groups, pred in cases:
        expected = scan(pred)
        assert search(client, "contacts", groups, limit=1).total == len(expected), groups
        assert search_all_ids(client, "contacts", groups) == expected, groups


def test_search_paging_with_after_and_sorting(hs_scan):
    sandbox, client, _ = hs_scan
    groups = [[{"property_name": "email", "operator": "HAS_PROPERTY"}]]
    everything = search_all_ids(client, "contacts", groups, page=200)
    in_pages = search_all_ids(client, "contacts", groups, page=37)
    assert in_pages == everything and len(everything) > 400
    newest_first = search_all_ids(
        client, "contacts", groups, page=50, sorts=[{"propertyName": "createdate", "direction": "DESCENDING"}]
    )
    assert newest_first == everything[::-1]
    first = search(client, "contacts", groups, limit=10, after="20")
    assert [r.id for r in first.results] == everything[20:30] and first.paging.next.after == "30"
    with pytest.raises(HUBSPOT_ERRORS) as caught:
        search(client, "contacts", groups, limit=100, after="9950")
    assert caught.value.status == 400 and json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"
    with pytest.raises(HUBSPOT_ERRORS) as caught:
        search(client, "contacts", groups, limit=201)
    assert caught.value.status == 400


def test_object_pages_with_after_and_property_history(hs):
    client = hs.client()
    seen, after = [], None
    while True:
        page = client.crm.objects.basic_api.get_page(
            "contacts",
            limit=100,
            after=after,
            properties=["lifecyclestage"],
            properties_with_history=["lifecyclestage"],
        )
        assert len(page.results) <= 50  # HubSpot caps pages that ask for history at 50
        seen += page.results
        if not page.paging:
            break
        after = page.paging.next.after
    assert [int(c.id) for c in seen] == list(range(1, 1001))
    with_history = [c for c in seen if c.properties_with_history["lifecyclestage"]]
    assert len(with_history) > 800
    for contact in with_history[:100]:
        history = contact.properties_with_history["lifecyclestage"]
        assert history[0].value == contact.properties["lifecyclestage"]
        assert [h.timestamp for h in history] == sorted((h.timestamp for h in history), reverse=True)
    one = with_history[0]
    value = one.properties["lifecyclestage"]
    if value in {"subscriber", "lead", "marketingqualifiedlead", "customer", "opportunity"}:
        detail = client.crm.contacts.basic_api.get_by_id(one.id, properties=[f"hs_date_entered_{value}"])
        entered = detail.properties[f"hs_date_entered_{value}"]
        assert hs_time(entered) == int(
            one.properties_with_history["lifecyclestage"][0].timestamp.timestamp() * 1000
        )
    deals = client.crm.deals.basic_api.get_page(limit=5, properties=["dealstage", "pipeline", "amount"])
    assert all(d.properties["pipeline"] for d in deals.results)


# ---------------------------------------------------------------- HubSpot: faults, limits, counting


def test_hubspot_429_with_and_without_retry_after(hs):
    client = hs.client()
    groups = [[{"property_name": "lifecyclestage", "operator": "HAS_PROPERTY"}]]
    hs.inject("rate_limit", retry_after=3)
    with pytest.raises(HUBSPOT_ERRORS) as caught:
        search(client, "contacts", groups, limit=1)
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "3"
    assert json.loads(caught.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
    hs.inject("rate_limit", policy="SECONDLY", path=r"/search$")
    with pytest.raises(HUBSPOT_ERRORS) as caught:
        search(client, "contacts", groups, limit=1)
    assert "Retry-After" not in caught.value.headers
    assert json.loads(caught.value.body)["message"] == "You have reached your secondly limit."
    hs.inject("rate_limit", policy="DAILY")
    with pytest.raises(HUBSPOT_ERRORS) as caught:
        client.crm.properties.core_api.get_all("contacts")
    assert json.loads(caught.value.body)["policyName"] == "DAILY"
    assert caught.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_urllib3_retry_covers_get_but_not_post_search(hs):
    client = hs.client(retry=Retry(total=3, status_forcelist=[429], backoff_factor=0))
    hs.inject("rate_limit", retry_after=0)
    assert client.crm.properties.core_api.get_all("deals").results
    assert hs.stats["by_kind"] == {"properties": 2} and hs.stats["by_status"] == {"429": 1, "200": 1}
    hs.inject("rate_limit", retry_after=0)
    with pytest.raises(HUBSPOT_ERRORS) as caught:
        search(client, "deals", [[{"property_name": "amount", "operator": "HAS_PROPERTY"}]], limit=1)
    assert caught.value.status == 429 and hs.stats["by_kind"]["search"] == 1


def test_hubspot_auth_errors_and_server_faults(hs):
    with pytest.raises(HUBSPOT_ERRORS) as caught:
        hs.client(access_token="pat-na1-wrong").crm.properties.core_api.get_all("contacts")
    assert (
        caught.value.status == 401 and json.loads(caught.value.body)["category"] == "INVALID_AUTHENTICATION"
    )
    client = hs.client(timeout=0.3)
    hs.inject("expired_session")
    with pytest.raises(HUBSPOT_ERRORS) as caught:
        client.crm.properties.core_api.get_all("contacts")
    assert json.loads(caught.value.body)["category"] == "EXPIRED_AUTHENTICATION"
    hs.inject("server_error", status=502)
    with pytest.raises(HUBSPOT_ERRORS) as caught:
        client.crm.pipelines.pipelines_api.get_all("deals")
    assert caught.value.status == 502
    # urllib3's default Retry(total=3) silently retries a timed-out GET: one slow answer goes unnoticed
    hs.inject("slow", delay=1.0, count=4)
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        client.crm.pipelines.pipelines_api.get_all("deals")
    assert hs.faults.list()[-1]["fired"] == 4
    # hubspot-api-client does not raise on a body that is not JSON: the model just comes back empty
    for kind in ("malformed_json", "truncated_json"):
        hs.inject(kind)
        assert client.crm.properties.core_api.get_all("contacts").results is None
    assert len(client.crm.properties.core_api.get_all("contacts").results) > 10


def test_rate_limit_headers_and_enforced_windows():
    with HubSpotSandbox(
        profile="demo",
        seed=2,
        size=200,
        as_of=AS_OF,
        rate_limit=(4, 60.0),
        search_rate_limit=(2, 60.0),
        enforce_rate_limits=True,
    ) as hs:
        client = hs.client()
        _, status, headers = client.crm.properties.core_api.get_all_with_http_info("contacts")
        assert status == 200 and headers["X-HubSpot-RateLimit-Max"] == "4"
        assert headers["X-HubSpot-RateLimit-Remaining"] == "3"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
        request = PublicObjectSearchRequest(limit=1)
        _, _, search_headers = client.crm.objects.search_api.do_search_with_http_info(
            "contacts", public_object_search_request=request
        )
        assert not any(name.lower().startswith("x-hubspot-ratelimit") for name in search_headers)
        client.crm.objects.search_api.do_search("contacts", public_object_search_request=request)
        with pytest.raises(HUBSPOT_ERRORS) as caught:
            client.crm.objects.search_api.do_search("contacts", public_object_search_request=request)
        assert json.loads(caught.value.body)["message"] == "You have reached your secondly limit."
        for _ in range(3):
            client.crm.pipelines.pipelines_api.get_all("deals")
        with pytest.raises(HUBSPOT_ERRORS) as caught:
            client.crm.pipelines.pipelines_api.get_all("deals")
        assert json.loads(caught.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
        assert hs.stats["by_status"] == {"200": 6, "429": 2}


def test_hubspot_request_counts(hs):
    client = hs.client()
    client.crm.properties.core_api.get_all("contacts")
    client.crm.pipelines.pipelines_api.get_all("deals")
    client.crm.objects.basic_api.get_page("contacts", limit=5)
    client.crm.contacts.basic_api.get_by_id("7")
    search(client, "contacts", [], limit=1)
    assert hs.stats == {
        "total": 5,
        "by_kind": {"properties": 1, "pipelines": 1, "objects_list": 1, "object_get": 1, "search": 1},
        "by_status": {"200": 5},
        "faults_injected": {},
    }
    assert requests.get(f"{hs.base_url}/__sandbox__/stats", timeout=5).json() == hs.stats
    requests.delete(f"{hs.base_url}/__sandbox__/stats", timeout=5)
    assert hs.stats["total"] == 0


# ---------------------------------------------------------------- the management command


def test_management_command_serves_until_stopped(tmp_path):
    script = (
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['crm_sandbox'], USE_TZ=True)\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('crm_sandbox', kind='hubspot', port=0, profile='demo', seed=4, size=300)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info, lines = None, []
        deadline = time.monotonic() + 30
        while info is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("SANDBOX_JSON "):
                info = json.loads(line[len("SANDBOX_JSON ") :])
        assert info is not None, "".join(lines)
        assert any(line.startswith("base_url: http://127.0.0.1:") for line in lines)
        assert any(line.startswith("access_token: pat-na1-") for line in lines)
        client = hubspot_client(info["base_url"], info["credentials"]["access_token"])
        assert len(client.crm.pipelines.pipelines_api.get_all("deals").results) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
