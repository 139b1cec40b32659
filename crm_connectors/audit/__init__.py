"""The Current State Audit: read a client's CRM once (metadata and aggregates), judge it against the rule
catalogue of DOMAIN.md section 8 and, when the engagement has a signed stage architecture, against that.

- `rules`: the catalogue. Pure functions over a JSON snapshot; no Django, no network.
- `engine`: reads the snapshot through a `CrmConnector` (cost flat in record count; deep mode opt-in).
- `services`: runs, findings, their states, the stuck-run sweep and the PDF, with the activity log.
"""
