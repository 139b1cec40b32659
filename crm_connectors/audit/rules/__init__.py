"""The CRM audit rule catalogue (DOMAIN.md section 8), as pure functions over a snapshot.

A snapshot is the JSON the engine stores on the run (`engine.collect`): objects, fields with their
picklist values, pipelines with their stages, record counts per value, data-quality figures. Every
rule reads only the snapshot, so a rule means the same on Salesforce and HubSpot, can be re-run on an
old run's snapshot, and is tested by changing a snapshot.

Each rule has one stable id (the catalogue's), a domain, a default severity, the seed it comes from and
the seed's fix as its recommendation. A rule returns `Hit`s; the service stores them as findings.
Rules declare which snapshot sections they need: when a section could not be read the rule is
"not evaluated" (the run is partial), never silently clean. A field the connector could not read (missing, or
hidden by field-level security: snapshot["unreadable"]) stops only the rules that need it ("not evaluated:
Lead.Phone is missing or not readable by this user"); a rule reading several fields judges the readable ones and
names the others (`Evaluation.partial`). Counts that do not add up (a share above 100%) are not evaluated, with
the reason, never shown as a finding. Rules that need walking records run only in deep mode (`needs` has "deep").

Values are judged by meaning through the documented vocabulary (`crm_connectors.vocabulary`): Marketing Engaged
is a stage, Open Deal a status; a value only a word pattern recognises is at most advisory. Findings name values
by their labels, internal values in the evidence. Signed stages are placed by `crm_connectors.mapping`, the
placement the health checks use. Lexicons are DOMAIN.md 8.8 (seed words plus the proposed ones it lists).
Thresholds the seeds leave open are in THRESHOLDS and can be overridden with settings.CRM_AUDIT_THRESHOLDS.

Layout: `lexicon` (severities, domains, thresholds, word patterns), `snapshot` (what a rule reads: the snapshot
and its `Context`), `registry` (`@rule`, `Hit`, `evaluate`), and one module per domain of the method:
`lead_lifecycle`, `sales_pipelines`, `customer_lifecycle`, `company_lifecycle`, `data_quality`, `drift`.
"""

from __future__ import annotations

# Each domain module registers its rules when imported, so this order is the catalogue's (the order `evaluate`
# runs the rules and `catalogue_rows` lists them): DOMAIN.md 8's.
# isort: off
from . import lead_lifecycle  # noqa: F401
from . import sales_pipelines  # noqa: F401
from . import customer_lifecycle  # noqa: F401
from . import company_lifecycle  # noqa: F401
from . import data_quality  # noqa: F401
from . import drift  # noqa: F401

# isort: on
from .lexicon import DOMAIN_LABELS, DOMAINS, FORECAST_FIELD, OBJECT_LABELS, SEVERITIES, THRESHOLDS, norm
from .registry import CATALOGUE, Evaluation, Hit, Rule, catalogue_rows, evaluate
from .snapshot import (
    Context,
    Snapshot,
    forecast_field,
    object_kind,
    reason_field,
    segment_fields,
    segment_objects,
)

__all__ = [
    "CATALOGUE",
    "DOMAINS",
    "DOMAIN_LABELS",
    "FORECAST_FIELD",
    "OBJECT_LABELS",
    "SEVERITIES",
    "THRESHOLDS",
    "Context",
    "Evaluation",
    "Hit",
    "Rule",
    "Snapshot",
    "catalogue_rows",
    "evaluate",
    "forecast_field",
    "norm",
    "object_kind",
    "reason_field",
    "segment_fields",
    "segment_objects",
]
