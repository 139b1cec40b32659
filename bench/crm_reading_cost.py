"""Benchmark: what one standard audit and one monthly health check cost in CRM requests. Prints figures; not a test.

    .venv/bin/python bench/crm_reading_cost.py                       # 5,000 and 200,000 leads, demo profile
    .venv/bin/python bench/crm_reading_cost.py --sizes 5000 --profile wellbuilt

For each platform and size, a sandbox org (Salesforce REST / HubSpot CRM v3 over HTTP, the real simple-salesforce
and hubspot-api-client) is read twice by fresh connectors, each request counted by the sandbox itself:
  - the standard audit: `crm_connectors.audit.engine.collect` (fields, pipelines, custom objects, counts, data
    quality; no deep mode);
  - one engagement's monthly health check: the connector calls `reporting/crm_metrics.py` makes for a signed
    architecture on the person lifecycle field (every active value), the main deal pipeline's stages and, on
    Salesforce, the lead status (describe, pipelines, entries into each signed value in the month, the counts of
    unsigned and retired values, records without a value, time in stage, the loss-reason counts), for the last
    whole month before the org's date. On Salesforce the entries and time in stage read the month's <Object>History
    rows and the records created in it, every page (nextRecordsUrl), so those pages are in the figure.
Issue targets: audit Salesforce <= 40 and HubSpot <= 100 calls (kept under 80, for margin), flat in record count;
health check Salesforce <= 40 requests (history pages included) at 200,000 leads, HubSpot <= 80.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtm_ops.settings")

import django  # noqa: E402

django.setup()

from crm_connectors.audit import engine  # noqa: E402
from crm_connectors.http import LocalStore  # noqa: E402
from crm_connectors.hubspot import HubSpotConnector  # noqa: E402
from crm_connectors.salesforce import SalesforceConnector  # noqa: E402
from crm_sandbox import HubSpotSandbox, SalesforceSandbox  # noqa: E402
from crm_sandbox.truth import month_window  # noqa: E402

AS_OF = datetime(2025, 6, 15, tzinfo=UTC)
MONTH = date(2025, 5, 1)
UNLIMITED = {"salesforce": "1000000/1", "hubspot": "1000000/1", "hubspot-search": "1000000/1"}
TARGETS = {"salesforce": (40, 40), "hubspot": (80, 80)}  # (audit, health check)
# the signed fields a GTM Lifecycle engagement measures: (kind, field)
SIGNED = {
    "salesforce": [("lead", "Status"), ("contact", "Lifecycle_Stage__c"), ("deal", "StageName")],
    "hubspot": [("contact", "lifecyclestage"), ("deal", "dealstage")],
}
REASON_WORDS = ("loss_reason", "lost_reason", "closed_lost_reason", "drop_off_reason", "reason_lost")


def connector(sb):
    options = {"store": LocalStore(), "key": uuid.uuid4().hex, "allow_http": True, "rates": UNLIMITED}
    if sb.platform == "salesforce":
        return SalesforceConnector(
            base_url=sb.base_url,
            username=sb.username,
            password=sb.password,
            security_token=sb.security_token,
            **options,
        )
    return HubSpotConnector(base_url=sb.base_url, access_token=sb.access_token, **options)


def health_month(c, platform: str) -> dict[str, object]:
    """The connector calls of one engagement's monthly health check (as reporting/crm_metrics.py makes them)."""
    start_ms, end_ms = month_window(MONTH)
    start, end = (datetime.fromtimestamp(ms / 1000, UTC) for ms in (start_ms, end_ms))
    notes = []
    for kind, name in SIGNED[platform]:
        f = next(f for f in c.fields(kind) if f.api_name == name)
        values = [v.api_value for v in f.values if v.active]
        if kind in ("deal", "ticket"):
            values = [st.id for st in c.pipelines(kind)[0].stages]  # the signed (main) pipeline's stages
        moves = c.stage_transitions(kind, name, start, end, values=values)
        if c.counts_per_value:  # the rogue and retired checks: unsigned and retired options, values no option lists
            c.held_counts(kind, name, [v.api_value for v in f.values if v.api_value not in values])
            if kind not in ("deal", "ticket"):
                c.count_unlisted(kind, name)
        elif kind in ("deal", "ticket"):  # a stage field: its pipelines' counts
            c.stage_counts(kind)
        else:
            c.value_counts(kind, name)
        c.count_without_value(kind, name)
        stays = c.time_in_stage(kind, name, start, end, values=values)
        if not moves.available or not stays.available:
            notes.append(f"{kind}.{name}: {moves.note or stays.note}")
    reason = next((f for f in c.fields("deal") if any(w in f.api_name.lower() for w in REASON_WORDS)), None)
    if reason is not None:
        c.value_counts("deal", reason.api_name)
    return {"notes": notes}


def run(platform: str, size: int, profile: str) -> dict[str, object]:
    cls = SalesforceSandbox if platform == "salesforce" else HubSpotSandbox
    with cls(profile=profile, seed=7, size=size, as_of=AS_OF) as sb:
        sb.model.table("lead_history" if platform == "salesforce" else "contact")  # build before timing
        sb.reset_stats()
        clock = time.monotonic()
        snapshot = engine.collect(connector(sb), as_of=AS_OF)
        audit = sb.stats["total"]
        audit_s = time.monotonic() - clock
        sb.reset_stats()
        clock = time.monotonic()
        health = health_month(connector(sb), platform)
        return {
            "audit": audit,
            "audit_s": audit_s,
            "audit_errors": [e["message"] for e in snapshot["errors"]],
            "health": sb.stats["total"],
            "health_s": time.monotonic() - clock,
            "health_notes": health["notes"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,200000", help="leads per org, comma-separated")
    parser.add_argument("--profile", default="demo")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"profile {args.profile}, month {MONTH:%B %Y}; requests counted by the sandbox (logins included)")
    print(
        f"{'platform':<11}{'leads':>9}{'audit':>8}{'target':>8}{'health':>8}{'target':>8}{'audit s':>9}{'health s':>9}"
    )
    for platform in ("salesforce", "hubspot"):
        for size in sizes:
            r = run(platform, size, args.profile)
            audit_target, health_target = TARGETS[platform]
            print(
                f"{platform:<11}{size:>9,}{r['audit']:>8}{audit_target:>8}{r['health']:>8}{health_target:>8}"
                f"{r['audit_s']:>9.1f}{r['health_s']:>9.1f}"
            )
            for message in r["audit_errors"]:
                print(f"    audit note: {message}")
            for message in r["health_notes"]:
                print(f"    health note: {message}")


if __name__ == "__main__":
    main()
