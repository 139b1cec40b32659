"""The trend knob: from a month on, lifecycle conversion falls and new records arrive less often. The org
still pages and counts like its rows, and Salesforce and HubSpot answer the same monthly series."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest

from crm_sandbox import HubSpotSandbox, OrgModel, SalesforceSandbox, Trend, truth, variant
from crm_sandbox.dates import add_months, hs_datetime, sf_datetime
from crm_sandbox.query import DateRange, MatchSet

AS_OF = date(2027, 6, 1)
START = date(2026, 10, 1)
MONTHS = [add_months(START, n) for n in range(-3, 4)]  # July 2026 .. January 2027
DROP = 8.0
DECLINE = variant("healthy", "decline", trend=Trend(START, conversion_drop_pp=DROP))
BOTH = variant("healthy", "decline-and-fewer", trend=Trend(START, conversion_drop_pp=DROP, volume_drop_pct=30))


def test_a_trend_org_pages_and_counts_like_its_rows():
    model = OrgModel(BOTH, seed=21, size=2_000, as_of=AS_OF, period=64)
    leads = model.sets["lead"]
    assert leads.nslots == 2 * leads.width  # the trend's era doubles the slots, not the records
    rows = [leads.row_at(i) for i in range(leads.size)]
    assert [r["index"] for r in rows] == list(range(leads.size))
    created = [r["created"] for r in rows]
    assert created == sorted(created) and created[-1] < model.as_of
    every = MatchSet(leads)
    assert every.total == leads.size
    assert [rank % leads.width + k * leads.width for rank, k in every.take(0, every.total)] == list(range(leads.size))
    assert [leads.base(rank) + k * leads.width for rank, k in every.page(100, 40)] == list(range(100, 140))
    by_hand = Counter(r["lifecycle"].label if r["lifecycle"] else None for r in rows)
    assert truth.value_counts(model, kind="lead", attr="lifecycle") == dict(by_hand)
    window = truth.month_window(START)
    steps = [(opt.key, ms) for r in rows for opt, ms in r["paths"].get("lifecycle", [])]
    entered = sum(1 for key, ms in steps if key == "sql" and window[0] <= ms < window[1])
    assert truth.entries(model, kind="lead", path="lifecycle", value="sql", start=window[0], end=window[1]) == entered
    history = model.table("lead_history")
    changes = [history.row(rank, k)["created"] for rank, k in MatchSet(history).take(0, history.size)]
    recent = [[DateRange("created", window[0], window[1])]]
    assert model.count("lead_history", recent) == sum(window[0] <= c < window[1] for c in changes)


def test_conversion_falls_from_the_trend_month_and_not_before():
    steady = OrgModel("healthy", seed=11, size=60_000, as_of=AS_OF)
    decline = OrgModel(DECLINE, seed=11, size=60_000, as_of=AS_OF)
    for kind in ("lead", "contact"):
        for m in MONTHS:
            start, end = truth.month_window(m)
            for stage in ("mql", "sql"):
                a, b = (
                    truth.entries(x, kind=kind, path="lifecycle", value=stage, start=start, end=end)
                    for x in (steady, decline)
                )
                if m < START or stage == "mql":
                    assert a == b, (kind, m, stage)  # the past, and MQL entries, are untouched
                else:
                    assert b < a, (kind, m, stage)
        before = truth.conversion_series(steady, kind=kind, path="lifecycle", earlier="mql", later="sql", months=MONTHS)
        after = truth.conversion_series(decline, kind=kind, path="lifecycle", earlier="mql", later="sql", months=MONTHS)
        drops = [x - y for x, y in zip(before, after, strict=True)]
        assert drops[:3] == [0, 0, 0]
        assert all(DROP - 2 < d < DROP + 2 for d in drops[3:]), drops


def test_volume_falls_from_the_trend_month():
    model = OrgModel(BOTH, seed=11, size=60_000, as_of=AS_OF)
    for kind in ("lead", "deal"):
        per_month = [truth.created(model, kind=kind, start=a, end=b) for a, b in map(truth.month_window, MONTHS)]
        pace_before = sum(per_month[:3]) / 3
        for n in per_month[3:]:
            assert 0.66 < n / pace_before < 0.74, (kind, per_month)  # 30% fewer, within a day's rounding
    steady = OrgModel("healthy", seed=11, size=60_000, as_of=AS_OF)
    july = truth.month_window(MONTHS[0])
    assert truth.created(model, kind="lead", start=july[0], end=july[1]) == pytest.approx(
        truth.created(steady, kind="lead", start=july[0], end=july[1]), abs=2
    )  # the months before keep the untouched org's pace


def _sf_entries(sf, month: date) -> Counter:
    start, end = truth.month_window(month)
    rows = sf.query_all(
        "SELECT NewValue FROM ContactHistory WHERE Field = 'Lifecycle_Stage__c' "
        f"AND CreatedDate >= {sf_datetime(start)} AND CreatedDate < {sf_datetime(end)}"
    )["records"]
    return Counter(r["NewValue"] for r in rows)


def _hs_entries(client, month: date, value: str) -> int:
    start, end = truth.month_window(month)
    prop = f"hs_date_entered_{value}"
    request = PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(
                filters=[
                    Filter(property_name=prop, operator="GTE", value=hs_datetime(start)),
                    Filter(property_name=prop, operator="LT", value=hs_datetime(end)),
                ]
            )
        ],
        limit=1,
    )
    return client.crm.objects.search_api.do_search("contacts", public_object_search_request=request).total


def test_salesforce_and_hubspot_give_the_same_monthly_series():
    kwargs = {"profile": BOTH, "seed": 5, "size": 4_000, "as_of": AS_OF}
    with SalesforceSandbox(**kwargs) as sfs, HubSpotSandbox(**kwargs) as hss:
        sf, client = sfs.client(), hss.client()
        for m in MONTHS:
            expected = {
                stage: truth.entries(sfs.model, kind="contact", path="lifecycle", value=stage, start=w[0], end=w[1])
                for stage in ("mql", "sql")
                for w in [truth.month_window(m)]
            }
            salesforce = _sf_entries(sf, m)
            assert (salesforce["MQL"], salesforce["SQL"]) == (expected["mql"], expected["sql"]), m
            values = {"mql": "marketingqualifiedlead", "sql": "salesqualifiedlead"}
            hubspot = {stage: _hs_entries(client, m, value) for stage, value in values.items()}
            assert hubspot == expected, m
            rate = truth.conversion(sfs.model, kind="contact", path="lifecycle", earlier="mql", later="sql", month=m)
            assert rate == pytest.approx(expected["sql"] / expected["mql"] * 100)
