"""Benchmark: the Current State Audit's cost on a large CRM, against the naive full scan. Prints figures; not a test.

    .venv/bin/python bench/crm_audit.py                  # 1,000,000 leads/contacts, 200,000 deals, 50 ms per request
    .venv/bin/python bench/crm_audit.py --size 200000 --latency 0.02 --deep-size 10000

For Salesforce and HubSpot shapes: a sandbox org of `--size` leads (Salesforce) / contacts (both) and size/5
opportunities / deals, every request delayed by `--latency` seconds (the sandbox's `slow` fault on every path,
logins included), audited through the real simple-salesforce / hubspot-api-client connectors and the audit engine
(`crm_connectors.audit.engine.collect` + the rule catalogue). Prints API calls and wall time next to the naive
full-scan cost (reading every record page by page), then the call count for a 10,000-record org of the same
profile: the audit's cost must not depend on the record count. Targets: <= 60 Salesforce calls, <= 150 HubSpot
calls, each audit under 30 s. Then a deep audit of a `--deep-size` org (0 skips it): its extra calls by section
(duplicates, and the stage history behind LC-STAGE-SKIPS / LC-BACKWARD-MOVES, capped per field); not part of
the targets.

The connectors run with the app's own rate limiter (settings.CRM_RATE_LIMITS: Salesforce 25/s, HubSpot 150/10 s,
HubSpot search 4/s), in this process (no Redis needed). `--no-limiter` lifts it to see latency alone.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtm_ops.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from crm_connectors.audit import engine, rules  # noqa: E402
from crm_connectors.http import LocalStore  # noqa: E402
from crm_connectors.hubspot import LIST_PAGE, HubSpotConnector  # noqa: E402
from crm_connectors.salesforce import PAGE, SalesforceConnector  # noqa: E402
from crm_sandbox import HubSpotSandbox, SalesforceSandbox  # noqa: E402

TARGET_CALLS = {"salesforce": 60, "hubspot": 150}
TARGET_SECONDS = 30.0
HUBSPOT_WINDOW = (190, 10.0)  # HubSpot Pro: 190 requests per 10 s


def connector(sb, limiter: bool):
    options = {"store": LocalStore(), "key": uuid.uuid4().hex, "allow_http": True, "timeout": (5.0, 30.0)}
    if not limiter:
        options["rates"] = {"salesforce": "100000/1", "hubspot": "100000/1", "hubspot-search": "100000/1"}
    if sb.platform == "salesforce":
        return SalesforceConnector(
            base_url=sb.base_url,
            username=sb.username,
            password=sb.password,
            security_token=sb.security_token,
            **options,
        )
    return HubSpotConnector(base_url=sb.base_url, access_token=sb.access_token, **options)


def audit(platform: str, size: int, latency: float, limiter: bool, profile: str, deep: bool = False) -> dict:
    cls = SalesforceSandbox if platform == "salesforce" else HubSpotSandbox
    started = time.monotonic()
    with cls(profile=profile, seed=2026, size=size) as sb:
        built = time.monotonic() - started
        if latency:
            sb.inject("slow", delay=latency, count=None, path=r"^/")  # every request, logins included
        c = connector(sb, limiter)
        clock = time.monotonic()
        snapshot = engine.collect(c, deep=deep)
        wall = time.monotonic() - clock
        evaluation = rules.evaluate(snapshot)
        model = sb.model
        records = {k: model.sets[k].size for k in ("lead", "contact", "company", "deal", "ticket")}
        served = sb.stats["total"]
        waits = sum(s for reason, s in c.guard.waits if reason == "throttle")
    return {
        "platform": platform,
        "size": size,
        "records": records,
        "calls": snapshot["calls"],
        "served": served,
        "cost": snapshot["cost"],
        "wall": wall,
        "throttled": waits,
        "build": built,
        "findings": len(evaluation.hits),
        "history": {k: (e["records_read"], e["sampled"], e["calls"]) for k, e in snapshot["history"].items()},
        "history_hits": sum(1 for h in evaluation.hits if h.rule_id in ("LC-STAGE-SKIPS", "LC-BACKWARD-MOVES")),
        "errors": snapshot["errors"],
        "not_evaluated": evaluation.not_evaluated,
    }


def naive(platform: str, records: dict[str, int]) -> tuple[int, str]:
    """Calls to read every record once, page by page (what an audit without aggregates would cost)."""
    if platform == "salesforce":
        calls = sum(math.ceil(records[k] / PAGE) for k in ("lead", "contact", "company", "deal"))
        return calls, f"SOQL pages of {PAGE:,} records (leads, contacts, accounts, opportunities)"
    calls = sum(math.ceil(records[k] / LIST_PAGE) for k in ("contact", "company", "deal"))
    return calls, f"list pages of {LIST_PAGE} records (contacts, companies, deals; search stops at 10,000)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="leads / contacts in the org (deals: size/5)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    parser.add_argument("--small", type=int, default=10_000, help="size of the org that shows the cost is flat")
    parser.add_argument("--profile", default="messy", help="sandbox profile (messy: every gotcha)")
    parser.add_argument("--deep-size", type=int, default=10_000, help="size of the org audited in deep mode (0: none)")
    parser.add_argument("--no-limiter", action="store_true", help="lift GTM Ops' own rate limiter")
    parser.add_argument("--platform", choices=["salesforce", "hubspot"], action="append")
    args = parser.parse_args()
    limiter = not args.no_limiter
    platforms = args.platform or ["salesforce", "hubspot"]
    rates = settings.CRM_RATE_LIMITS if limiter else "none"

    print(
        f"CRM audit benchmark: profile {args.profile}, {args.latency * 1000:.0f} ms per request, rate limiter {rates}"
    )
    ok = True
    for platform in platforms:
        big = audit(platform, args.size, args.latency, limiter, args.profile)
        small = audit(platform, args.small, args.latency, limiter, args.profile)
        n, how = naive(platform, big["records"])
        r = big["records"]
        print(f"\n== {'Salesforce' if platform == 'salesforce' else 'HubSpot'}")
        leads = f"{r['lead']:,} leads, " if platform == "salesforce" else ""  # HubSpot has no lead object
        print(
            f"org:            {leads}{r['contact']:,} contacts, {r['company']:,} companies, "
            f"{r['deal']:,} deals, {r['ticket']:,} tickets (built in {big['build']:.1f} s)"
        )
        print(
            f"audit:          {big['calls']} API calls ({big['served']} served by the sandbox), "
            f"{big['wall']:.1f} s wall, {big['findings']} findings"
        )
        print(f"  by section:   {', '.join(f'{k} {v}' for k, v in big['cost'].items() if k != 'total')}")
        if big["throttled"]:
            print(f"  throttled:    {big['throttled']:.1f} s waiting for GTM Ops' own rate limiter")
        if big["errors"] or big["not_evaluated"]:
            print(f"  ERRORS:       {big['errors']} {big['not_evaluated']}")
            ok = False
        print(f"naive scan:     {n:,} calls ({how})")
        floor = n * args.latency
        if platform == "hubspot":
            window = n / HUBSPOT_WINDOW[0] * HUBSPOT_WINDOW[1]
            print(
                f"                >= {max(floor, window) / 60:.1f} min "
                f"(190 requests per 10 s, {args.latency * 1000:.0f} ms each)"
            )
        else:
            print(f"                >= {floor / 60:.1f} min at {args.latency * 1000:.0f} ms per request")
        print(
            f"{args.small:,}-record org: {small['calls']} API calls, {small['wall']:.1f} s "
            f"({'same cost' if small['calls'] == big['calls'] else 'DIFFERENT cost'})"
        )
        verdict = big["calls"] <= TARGET_CALLS[platform] and big["wall"] < TARGET_SECONDS
        verdict = verdict and small["calls"] == big["calls"]
        ok = ok and verdict
        print(
            f"target:         <= {TARGET_CALLS[platform]} calls and < {TARGET_SECONDS:.0f} s, flat in record count: "
            f"{'PASS' if verdict else 'FAIL'}"
        )
        if args.deep_size:
            deep = audit(platform, args.deep_size, args.latency, limiter, args.profile, deep=True)
            extra = deep["cost"].get("deep", 0) + deep["cost"].get("history", 0)
            print(
                f"deep audit:     {args.deep_size:,}-record org, {deep['calls']} API calls ({extra} for deep mode: "
                f"duplicates and rogue values {deep['cost'].get('deep', 0)}, stage history "
                f"{deep['cost'].get('history', 0)}), {deep['wall']:.1f} s, "
                f"{deep['history_hits']} skip/backward findings"
            )
            for name, (read, sampled, calls) in deep["history"].items():
                print(f"  history:      {name}: {read:,} records read{' (capped)' if sampled else ''}, {calls} calls")
            if deep["errors"] or deep["not_evaluated"]:
                print(f"  ERRORS:       {deep['errors']} {deep['not_evaluated']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
