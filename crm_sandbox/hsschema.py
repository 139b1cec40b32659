"""The HubSpot face of an OrgModel: CRM v3 properties, pipelines and object bodies.

Property values are strings, as HubSpot sends them. `HsProp` says how to read a value from a
generated row and how the query engine can filter on it (see `sfschema.SfField`, same idea).

Retired values are options with `hidden: true`; the customer_stages_on_custom_object gotcha adds the
custom object `customer_health` (objectTypeId 2-7654321) with a `stage` enumeration, served by
`custom_schema` at /crm/v3/schemas and like any object type under /crm/v3/objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .dates import hs_datetime
from .orgmodel import OrgModel, company_name
from .orgschema import Option, Pipeline

OBJECT_TYPES = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "tickets": "ticket",
    "0-1": "contact",
    "0-2": "company",
    "0-3": "deal",
    "0-5": "ticket",
}
CANONICAL = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets"}
DEFAULT_PROPERTIES = {
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "deals": [
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ],
    "customer_health": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id", "name"],
    "tickets": [
        "content",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_category",
        "hs_ticket_priority",
        "subject",
    ],
}
SCHEMA_CREATED = "2019-08-06T02:41:08.029Z"


@dataclass
class HsProp:
    name: str
    label: str
    type: str  # string, enumeration, datetime, number, bool
    field_type: str
    group: str
    get: Callable[[Mapping[str, Any]], str | None]
    static: str | None = None
    to_hs: Callable[[Any], str | None] = lambda v: None if v is None else str(v)
    date: str | None = None
    nullness: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    hidden_options: frozenset[str] = frozenset()  # retired values: listed with hidden: true
    calculated: bool = False
    custom: bool = False
    history: str | None = None  # the row path behind propertiesWithHistory
    description: str = ""

    def definition(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "updatedAt": "2024-01-10T09:00:00.000Z",
            "createdAt": SCHEMA_CREATED,
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": [
                {
                    "label": label,
                    "value": value,
                    "displayOrder": i,
                    "hidden": value in self.hidden_options,
                    "description": "",
                }
                for i, (value, label) in enumerate(self.options)
            ],
            "displayOrder": -1,
            "calculated": self.calculated,
            "externalOptions": False,
            "archived": False,
            "hasUniqueValue": self.name == "hs_object_id",
            "hidden": False,
            "formField": not self.calculated,
            "modificationMetadata": {
                "archivable": self.custom,
                "readOnlyDefinition": not self.custom,
                "readOnlyValue": self.calculated or self.name == "hs_object_id",
            },
        }
        if not self.custom:
            body["hubspotDefined"] = True
        return body


def _hs(o: Option | None) -> str | None:
    return o.hs if o is not None else None


def _opts(options: tuple[Option, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((o.hs, o.hs_text) for o in options if o.listed and not o.sf_only)


def _ms(value: int | None) -> str | None:
    return hs_datetime(value)


def enum(name: str, label: str, attr: str, options: tuple[Option, ...], group: str, **kw: Any) -> HsProp:
    return HsProp(
        name,
        label,
        "enumeration",
        kw.pop("field_type", "select"),
        group,
        lambda r, a=attr: _hs(r.get(a)),
        static=attr,
        to_hs=_hs,
        options=_opts(options),
        hidden_options=frozenset(o.hs for o in options if not o.active),
        **kw,
    )


def when(name: str, label: str, date_name: str, group: str, **kw: Any) -> HsProp:
    def get(r: Mapping[str, Any]) -> str | None:
        return _ms(r["created"] if date_name == "created" else r["dates"].get(date_name))

    return HsProp(name, label, "datetime", kw.pop("field_type", "date"), group, get, date=date_name, **kw)


def text(name: str, label: str, key: str, group: str, nullness: str | None = None) -> HsProp:
    return HsProp(name, label, "string", "text", group, lambda r: r.get(key), nullness=nullness)


def build_properties(model: OrgModel) -> dict[str, dict[str, HsProp]]:
    s = model.schema
    owners = {i: str(1_000_001 + i) for i in range(len(s.owners))}
    owner_opts = tuple((owners[i], name) for i, (_, name) in enumerate(s.owners))

    def owner(group: str) -> HsProp:
        return HsProp(
            "hubspot_owner_id",
            "Contact owner" if group == "contactinformation" else "Owner",
            "enumeration",
            "select",
            group,
            lambda r: owners[r["owner"]],
            static="owner",
            to_hs=lambda v: owners.get(v),
            options=owner_opts,
        )

    def object_id() -> HsProp:
        return HsProp(
            "hs_object_id",
            "Record ID",
            "number",
            "number",
            "default",
            lambda r: str(r["index"] + 1),
            date="index",
            calculated=True,
        )

    contacts: list[HsProp] = [
        text("email", "Email", "email", "contactinformation", "has_email"),
        text("firstname", "First Name", "first", "contactinformation"),
        text("lastname", "Last Name", "last", "contactinformation"),
        text("phone", "Phone Number", "phone", "contactinformation", "has_phone"),
        text("jobtitle", "Job Title", "title", "contactinformation", "has_title"),
        HsProp(
            "company",
            "Company Name",
            "string",
            "text",
            "contactinformation",
            lambda r: company_name(model, r["company_index"]) if r.get("company_index") is not None else None,
        ),
        HsProp(
            "associatedcompanyid",
            "Primary Associated Company ID",
            "number",
            "number",
            "contactinformation",
            lambda r: str(r["company_index"] + 1) if r.get("company_index") is not None else None,
        ),
        enum(
            "lifecyclestage",
            "Lifecycle Stage",
            "lifecycle",
            s.lifecycle,
            "contactinformation",
            field_type="radio",
            history="lifecycle",
            description="The qualification of contacts to sales readiness.",
        ),
        enum(
            "hs_lead_status",
            "Lead Status",
            "status",
            s.contact_status,
            "sales_properties",
            field_type="radio",
            history="status",
            description="The contact's sales, prospecting or outreach status",
        ),
        enum(
            "hs_analytics_source",
            "Original Source",
            "source",
            s.lead_source,
            "analyticsinformation",
            calculated=True,
        ),
        owner("contactinformation"),
        enum("industry", "Industry", "industry", s.industry, "contactinformation"),
        when("createdate", "Create Date", "created", "contactinformation"),
        when("lastmodifieddate", "Last Modified Date", "last_modified", "contactinformation"),
        object_id(),
    ]
    if s.regions:
        contacts.append(enum("region", "Region", "region", s.regions, "contactinformation", custom=True))
    if s.lead_stage:
        contacts.append(
            enum("lead_stage", "Lead Stage", "lead_stage", s.lead_stage, "contactinformation", custom=True)
        )
    contacts += _stage_dates(s.lifecycle, "contactinformation", "Lifecycle Stage Pipeline")
    if model.has("retired_date_properties"):  # the date properties of a deleted custom lifecycle stage
        for verb, prefix in (("entered", "hs_date_entered_"), ("exited", "hs_date_exited_")):
            contacts.append(
                HsProp(
                    f"{prefix}1000431",
                    f"Date {verb} 'Recycled Lead (Lifecycle Stage Pipeline)'",
                    "datetime",
                    "calculation_read_time",
                    "contactinformation",
                    lambda r: None,
                    nullness="__never__",
                    calculated=True,
                )
            )

    companies = [
        HsProp("name", "Company name", "string", "text", "companyinformation", lambda r: r["name"]),
        text("domain", "Company Domain Name", "domain", "companyinformation", "has_domain"),
        enum("type", "Type", "type", s.company_type, "companyinformation"),
        enum(
            "lifecyclestage",
            "Lifecycle Stage",
            "lifecycle",
            s.lifecycle,
            "companyinformation",
            field_type="radio",
        ),
        enum("industry", "Industry", "industry", s.industry, "companyinformation"),
        HsProp(
            "numberofemployees",
            "Number of Employees",
            "number",
            "number",
            "companyinformation",
            lambda r: str(r["employees"]),
            static="employees",
        ),
        owner("companyinformation"),
        when("createdate", "Create Date", "created", "companyinformation"),
        when("hs_lastmodifieddate", "Last Modified Date", "last_modified", "companyinformation"),
        object_id(),
    ]

    all_stages = tuple(st for pl in s.deal_pipelines for st in pl.stages)
    deals = [
        HsProp("dealname", "Deal Name", "string", "text", "dealinformation", lambda r: r["name"]),
        HsProp(
            "amount",
            "Amount",
            "number",
            "number",
            "dealinformation",
            lambda r: None if r["amount"] is None else str(r["amount"]),
            static="amount",
        ),
        when("closedate", "Close Date", "close_date", "dealinformation"),
        HsProp(
            "pipeline",
            "Pipeline",
            "enumeration",
            "select",
            "dealinformation",
            lambda r: r["pipeline"].hs_id,
            static="pipeline",
            to_hs=lambda p: p.hs_id if p else None,
            options=tuple((p.hs_id, p.label) for p in s.deal_pipelines),
        ),
        enum(
            "dealstage",
            "Deal Stage",
            "stage",
            all_stages,
            "dealinformation",
            field_type="radio",
            history="stage",
        ),
        HsProp(
            "hs_next_step",
            "Next step",
            "string",
            "textarea",
            "dealinformation",
            lambda r: r.get("next_step"),
            nullness="has_next_step",
        ),
        HsProp(
            "closed_lost_reason",
            "Closed Lost Reason",
            "string",
            "textarea",
            "dealinformation",
            lambda r: r["loss_reason"].label if r.get("loss_reason") else None,
            static="loss_reason",
            to_hs=lambda o: o.label if o else None,
        ),
        HsProp(
            "hs_is_closed",
            "Is Deal Closed?",
            "bool",
            "booleancheckbox",
            "dealinformation",
            lambda r: str(bool(r["stage"].closed)).lower(),
            static="stage",
            to_hs=lambda o: str(bool(o and o.closed)).lower(),
            calculated=True,
        ),
        HsProp(
            "hs_is_closed_won",
            "Is Closed Won",
            "bool",
            "booleancheckbox",
            "dealinformation",
            lambda r: str(bool(r["stage"].won)).lower(),
            static="stage",
            to_hs=lambda o: str(bool(o and o.won)).lower(),
            calculated=True,
        ),
        HsProp(
            "hs_deal_stage_probability",
            "Deal probability",
            "number",
            "number",
            "dealinformation",
            lambda r: _prob(r["stage"]),
            static="stage",
            to_hs=_prob,
            calculated=True,
        ),
        enum(
            "hs_analytics_source",
            "Original Source Type",
            "source",
            s.lead_source,
            "analyticsinformation",
            calculated=True,
        ),
        owner("dealinformation"),
        when("createdate", "Create Date", "created", "dealinformation"),
        when("hs_lastmodifieddate", "Last Modified Date", "last_modified", "dealinformation"),
        object_id(),
    ]
    if s.regions:
        deals += [
            enum("region", "Region", "region", s.regions, "dealinformation", custom=True),
            enum("segment", "Segment", "segment", s.segments, "dealinformation", custom=True),
        ]
    deals += _stage_dates(all_stages, "dealinformation", "Deal Stage")

    ticket_stages = tuple(st for pl in s.ticket_pipelines for st in pl.stages)
    tickets = [
        HsProp("subject", "Ticket name", "string", "text", "ticketinformation", lambda r: r["subject"]),
        HsProp("content", "Ticket description", "string", "textarea", "ticketinformation", lambda r: None),
        HsProp(
            "hs_pipeline",
            "Pipeline",
            "enumeration",
            "select",
            "ticketinformation",
            lambda r: r["pipeline"].hs_id,
            static="pipeline",
            to_hs=lambda p: p.hs_id if p else None,
            options=tuple((p.hs_id, p.label) for p in s.ticket_pipelines),
        ),
        enum(
            "hs_pipeline_stage", "Ticket status", "stage", ticket_stages, "ticketinformation", history="stage"
        ),
        HsProp(
            "hs_ticket_priority",
            "Priority",
            "enumeration",
            "select",
            "ticketinformation",
            lambda r: r["priority"],
            static="priority",
            options=(("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High")),
        ),
        HsProp(
            "hs_ticket_category", "Category", "enumeration", "checkbox", "ticketinformation", lambda r: None
        ),
        owner("ticketinformation"),
        when("createdate", "Create date", "created", "ticketinformation"),
        when("hs_lastmodifieddate", "Last modified date", "last_modified", "ticketinformation"),
        object_id(),
    ]
    # ticket pipelines carry the newer naming (hs_v2_date_entered_<stage id>), as portals created since 2024 do
    tickets += _stage_dates(ticket_stages, "ticketinformation", "Ticket Pipeline", v2=True)
    out = {
        name: {p.name: p for p in props}
        for name, props in (
            ("contacts", contacts),
            ("companies", companies),
            ("deals", deals),
            ("tickets", tickets),
        )
    }
    if s.customer_stages:
        health = [
            HsProp("name", "Name", "string", "text", "customer_health_information", lambda r: r["name"]),
            enum(
                "stage",
                "Customer Stage",
                "stage",
                s.customer_stages,
                "customer_health_information",
                custom=True,
                history="stage",
            ),
            HsProp(
                "company_id",
                "Company ID",
                "number",
                "number",
                "customer_health_information",
                lambda r: str(r["company_index"] + 1) if r.get("company_index") is not None else None,
                custom=True,
            ),
            owner("customer_health_information"),
            when("hs_createdate", "Object create date/time", "created", "customer_health_information"),
            when("hs_lastmodifieddate", "Object last modified", "last_modified", "customer_health_information"),
            object_id(),
        ]
        out[CUSTOM_OBJECT] = {p.name: p for p in health}
    return out


CUSTOM_OBJECT = "customer_health"  # the customer_stages_on_custom_object object's name
CUSTOM_OBJECT_TYPE_ID = "2-7654321"


def custom_schema(props: dict[str, HsProp], portal: int) -> dict[str, Any]:
    """GET /crm/v3/schemas entry of the custom object, in HubSpot's ObjectSchema shape."""
    return {
        "id": CUSTOM_OBJECT_TYPE_ID.split("-")[1],
        "createdAt": SCHEMA_CREATED,
        "updatedAt": SCHEMA_CREATED,
        "archived": False,
        "labels": {"singular": "Customer Health", "plural": "Customer Health"},
        "requiredProperties": ["name"],
        "searchableProperties": ["name"],
        "primaryDisplayPropertyName": "name",
        "secondaryDisplayPropertyNames": ["stage"],
        "description": "Where each customer is after the sale",
        "allowsSensitiveProperties": False,
        "objectTypeId": CUSTOM_OBJECT_TYPE_ID,
        "fullyQualifiedName": f"p{portal}_{CUSTOM_OBJECT}",
        "name": CUSTOM_OBJECT,
        "properties": [p.definition() for p in props.values()],
        "associations": [],
    }


def _decimal(value: float) -> str:
    text = f"{value:g}"
    return text if "." in text else text + ".0"


def _prob(o: Option | None) -> str | None:
    return None if o is None or o.hs_prob is None else _decimal(o.hs_prob)


def _stage_dates(options: tuple[Option, ...], group: str, pipeline_label: str, *, v2: bool = False) -> list[HsProp]:
    out = []
    head = "hs_v2_date" if v2 else "hs_date"
    for o in options:
        if not o.listed or o.sf_only:
            continue
        for verb, prefix in (("entered", f"{head}_entered_"), ("exited", f"{head}_exited_")):
            out.append(
                when(
                    f"{prefix}{o.hs}",
                    f"Date {verb} '{o.hs_text} ({pipeline_label})'",
                    f"{verb}:{o.key}",
                    group,
                    field_type="calculation_read_time",
                    calculated=True,
                )
            )
    return out


def pipeline_body(pl: Pipeline, object_type: str, order: int) -> dict[str, Any]:
    stages = []
    for i, st in enumerate(s for s in pl.stages if s.listed and not s.sf_only):
        if object_type == "deals":
            metadata = {"isClosed": str(st.closed).lower(), "probability": _decimal(st.hs_prob or 0.0)}
        elif object_type == "tickets":
            metadata = {"ticketState": "CLOSED" if st.closed else "OPEN"}
        else:
            metadata = {}
        stages.append(
            {
                "id": st.hs,
                "label": st.hs_text,
                "displayOrder": i,
                "metadata": metadata,
                "createdAt": SCHEMA_CREATED,
                "updatedAt": SCHEMA_CREATED,
                "archived": False,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            }
        )
    return {
        "id": pl.hs_id,
        "label": pl.label,
        "displayOrder": order,
        "archived": False,
        "createdAt": SCHEMA_CREATED,
        "updatedAt": SCHEMA_CREATED,
        "stages": stages,
    }


def lifecycle_pipeline(model: OrgModel, object_type: str) -> Pipeline:
    return Pipeline(
        f"{object_type}-lifecycle-pipeline",
        "Lifecycle Stage Pipeline",
        f"{object_type}-lifecycle-pipeline",
        model.schema.lifecycle,
        1.0,
    )
