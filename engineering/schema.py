"""The JSON schemas of the two documents this app stores: the CRM Configuration Spec and the CRM Field Mapping Sheet.

`schema_version` 1. A change that a reader of version 1 could misread (a renamed key, a new meaning) is version 2;
readers check the version first. Keys:

CRM Configuration Spec (`kind` "crm_configuration_spec"):
  source            {definition_version, definition_hash, metadata_hash}: what it was generated from
  fields[]          one per field (or per pipeline of a stage field): id, section (lifecycle, status, pipeline,
                    customer, company, drop_off), object (lead, contact, company, deal, ticket), object_label, field
                    (API name), field_label, pipeline + pipeline_label (null for a whole field), action (update:
                    the field exists; create), type, values[]
  values[]          id, value (API value), label, stage (the signed stage it holds, or null), order, action (keep,
                    add, relabel, retire; unlisted: held by records, listed by no option), current_label (the CRM's
                    label today, null when new), probability (0-100, stages only), closed, won, maps_to (for a
                    retired or unlisted value: the value its records move to)
  unplaced[]        signed stages with no home: stage, domain, reason
  validation_rules[] id, stage, domain, kind, text (entry criteria as rule text)
  automation[]      id, tool, source (seed, signed transition), text
  reports[]         id, name, measures (the 6-metric measurement framework)
  warnings[]        words to read before building (HubSpot: native lifecycle automation off first)
  build_order[]     seed 001's 2b build order

CRM Field Mapping Sheet (`kind` "crm_field_mapping_sheet"): source, rows[] (id, prm_field, object, object_label,
  crm_field, field_label, type, values[], action (map, create), sync_direction, frequency, source_of_truth, term),
  build_order[].
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_VERSION = 1

_text = {"type": "string"}
_hash = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_nullable_text = {"type": ["string", "null"]}
_source = {
    "type": "object",
    "required": ["definition_version", "definition_hash", "metadata_hash"],
    "properties": {
        "definition_version": {"type": "integer", "minimum": 1},
        "definition_hash": _hash,
        "metadata_hash": _hash,
    },
    "additionalProperties": False,
}


def _objects(required: dict[str, Any]) -> dict:
    return {
        "type": "array",
        "items": {"type": "object", "required": list(required), "properties": required, "additionalProperties": False},
    }


VALUE = {
    "id": _text,
    "value": _text,
    "label": _text,
    "stage": _nullable_text,
    "order": {"type": "integer", "minimum": 1},
    "action": {"enum": ["keep", "add", "relabel", "retire", "unlisted"]},
    "current_label": _nullable_text,
    "probability": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
    "closed": {"type": "boolean"},
    "won": {"type": "boolean"},
    "maps_to": _nullable_text,
}
FIELD = {
    "id": _text,
    "section": {"enum": ["lifecycle", "status", "pipeline", "customer", "company", "drop_off"]},
    "object": {"enum": ["lead", "contact", "company", "deal", "ticket"]},
    "object_label": _text,
    "field": _text,
    "field_label": _text,
    "pipeline": _nullable_text,
    "pipeline_label": _nullable_text,
    "action": {"enum": ["update", "create"]},
    "type": {"const": "picklist"},
    "values": _objects(VALUE),
}
SPEC_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CRM Configuration Spec",
    "type": "object",
    "required": [
        "schema_version",
        "kind",
        "platform",
        "source",
        "fields",
        "unplaced",
        "validation_rules",
        "automation",
        "reports",
        "warnings",
        "build_order",
    ],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "kind": {"const": "crm_configuration_spec"},
        "platform": {"enum": ["salesforce", "hubspot"]},
        "source": _source,
        "fields": _objects(FIELD),
        "unplaced": _objects({"stage": _text, "domain": _text, "reason": _text}),
        "validation_rules": _objects({"id": _text, "stage": _text, "domain": _text, "kind": _text, "text": _text}),
        "automation": _objects(
            {"id": _text, "tool": _text, "source": {"enum": ["seed", "signed transition"]}, "text": _text}
        ),
        "reports": _objects({"id": _text, "name": _text, "measures": _text}),
        "warnings": {"type": "array", "items": _text},
        "build_order": {"type": "array", "items": _text, "minItems": 1},
    },
}
ROW = {
    "id": _text,
    "prm_field": _text,
    "object": {"enum": ["lead", "contact", "company", "deal", "ticket"]},
    "object_label": _text,
    "crm_field": _text,
    "field_label": _text,
    "type": {"enum": ["picklist", "string", "number", "reference", "email", "other"]},
    "values": {"type": "array", "items": _text},
    "action": {"enum": ["map", "create"]},
    "sync_direction": {"enum": ["bidirectional", "prm_to_crm", "crm_to_prm"]},
    "frequency": {"enum": ["real-time", "batch"]},
    "source_of_truth": {"enum": ["PRM", "CRM"]},
    "term": _nullable_text,
}
MAPPING_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CRM Field Mapping Sheet",
    "type": "object",
    "required": ["schema_version", "kind", "platform", "source", "rows", "build_order"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "kind": {"const": "crm_field_mapping_sheet"},
        "platform": {"enum": ["salesforce", "hubspot"]},
        "source": _source,
        "rows": {**_objects(ROW), "minItems": 1},
        "build_order": {"type": "array", "items": _text, "minItems": 1},
    },
}
SCHEMAS = {"crm_configuration_spec": SPEC_SCHEMA, "crm_field_mapping_sheet": MAPPING_SCHEMA}


class InvalidDocument(ValueError):
    """A document that does not follow its schema; the message names the first offending place."""


def validate(document: dict) -> None:
    schema = SCHEMAS.get(str(document.get("kind")))
    if schema is None:
        raise InvalidDocument(f"Unknown document kind {document.get('kind')!r} (known: {', '.join(SCHEMAS)}).")
    errors = sorted(Draft202012Validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise InvalidDocument(f"The {schema['title']} is invalid at {where}: {first.message}")
