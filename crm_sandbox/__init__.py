"""CRM sandbox: local Salesforce REST and HubSpot CRM v3 servers over a synthetic org.

A development and test tool, not product: the servers are plain Python (no Django); only `connection`
(point a client's CrmConnection at a sandbox) and the management commands (`crm_sandbox`, `connect_demo_crm`)
touch the app. Tests, the demo and the benchmarks run the real simple-salesforce and hubspot-api-client
libraries against these servers; nothing talks to a real CRM. crm_connectors never imports this app.

    from crm_sandbox import SalesforceSandbox, HubSpotSandbox

    with SalesforceSandbox(profile="messy", seed=7, size=100_000) as sb:
        sf = sb.client()                              # real simple_salesforce.Salesforce, SOAP login
        sf.query("SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName")
        sb.inject("request_limit", count=2)           # next 2 data requests: 403 REQUEST_LIMIT_EXCEEDED
        sb.stats                                       # {"total": ..., "by_kind": {...}, ...}

    with HubSpotSandbox(profile="demo", seed=1) as hs:
        client = hs.client()                           # real hubspot.HubSpot
        client.crm.pipelines.pipelines_api.get_all("deals")

HTTPS: simple-salesforce always builds https:// URLs. The sandbox serves plain HTTP on loopback and
the Salesforce client helper passes simple-salesforce a `clients.LoopbackSession`, a requests.Session
that rewrites every URL's scheme and host to the sandbox (so login.salesforce.com never resolves)
and ignores proxy environment variables. hubspot-api-client takes its base URL from `host=`, so it
needs no trick. We chose this over a self-signed TLS server: no certificates to generate or trust,
and every URL the library builds is forced onto loopback, so no mistake can reach a real org.

Modules: profiles (gotchas and shape knobs per profile), orgschema (picklists and pipelines), orgmodel
(the deterministic generator), query (counting and paging without rows), soql / sfquery / sfschema /
salesforce / salesforce_tooling (Salesforce; the Tooling API's configuration writes), hsschema /
hubspot (HubSpot), faults, server (HTTP plumbing and control endpoints), clients (real client
builders), truth (expected figures computed from the model alone), connection (a client connected to a sandbox).

Orgs unlike the demo (see `profiles`): profiles "healthy", "wellbuilt", "wellbuilt-relabelled" (should
audit clean), "demo", "messy" (every classic gotcha), "tangled" (the shapes real orgs have: customer
stages on a custom object, relabelled default stages, retired values on records, same-instant history,
free-text loss reasons...). Knobs on any profile, via `profiles.variant(...)`:

    variant("healthy", "fls", hidden_fields={"lead.Phone", "contact.hs_analytics_source"})  # INVALID_FIELD
    variant("healthy", "no-meta", refused_objects={"CaseStatus", "tickets"})   # INVALID_TYPE, MISSING_SCOPES
    variant("healthy", "decline", trend=Trend(date(2026, 10, 1), conversion_drop_pp=8, volume_drop_pct=20))
    variant("demo", "no-customize", withheld_permissions=frozenset({"PermissionsCustomizeApplication"}))  # no writes

`truth` gives what a test should expect: truth.value_counts(model, kind="lead", attr="status"),
truth.conversion(model, kind="contact", path="lifecycle", earlier="mql", later="sql", month=...).
"""

from __future__ import annotations

from . import truth
from .clients import LoopbackSession, hubspot_client, salesforce_client
from .faults import KINDS as FAULT_KINDS
from .faults import Fault
from .hubspot import HubSpotSandbox
from .orgmodel import OrgModel
from .profiles import GOTCHAS, PROFILES, Profile, Trend, custom_profile, get_profile, variant
from .salesforce import SalesforceSandbox

__all__ = [
    "FAULT_KINDS",
    "GOTCHAS",
    "PROFILES",
    "Fault",
    "HubSpotSandbox",
    "LoopbackSession",
    "OrgModel",
    "Profile",
    "SalesforceSandbox",
    "Trend",
    "custom_profile",
    "get_profile",
    "hubspot_client",
    "salesforce_client",
    "truth",
    "variant",
]
