"""The Salesforce face of an OrgModel: sObjects, their fields, ids and describe bodies.

Each `SfField` says how to read its value from a generated row and, when the value is the same for a
whole slot (picklists, flags) or is a monotone date, how the query engine can filter on it.

Profile shapes seen here: retired picklist values are described with `active: false`; the
customer_stages_on_custom_object gotcha adds the custom object Customer_Health__c (Stage__c picklist,
Account__c) with its Customer_Health__History; free_text_loss_reasons makes Opportunity.Loss_Reason__c a
text field; `hidden_fields` removes fields (and their field-history rows) as field-level security does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .dates import iso_date, sf_datetime
from .orgmodel import OrgModel, company_name
from .orgschema import Option, Pipeline, slug

MASTER_RECORD_TYPE = "012000000000000AAA"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_id(prefix: str, n: int) -> str:
    # Called for every Id of every record answered (a history page holds thousands): the nine base-62 digits are
    # read two at a time from tables, and the checksum letters from the digits' values (10-35 are upper case).
    if not 0 <= n < 62**9:
        return _any_sf_id(prefix, n)
    n, x4 = divmod(n, 3844)
    n, x3 = divmod(n, 3844)
    n, x2 = divmod(n, 3844)
    d0, x1 = divmod(n, 3844)
    second = _UP[d0] << 1 | _UP_A[x1] << 2 | _UP_B[x1] << 3 | _UP_A[x2] << 4
    third = _UP_B[x2] | _UP_A[x3] << 1 | _UP_B[x3] << 2 | _UP_A[x4] << 3 | _UP_B[x4] << 4
    return (
        f"{prefix}5g0{_B62[d0]}{_PAIRS[x1]}{_PAIRS[x2]}{_PAIRS[x3]}{_PAIRS[x4]}"
        f"{_prefix_letter(prefix)}{_SUFFIX[second]}{_SUFFIX[third]}"
    )


_UP = [int(ch.isupper()) for ch in _B62]
_PAIRS = [a + b for a in _B62 for b in _B62]
_UP_A = [_UP[x // 62] for x in range(62 * 62)]  # the pair's first digit is upper case
_UP_B = [_UP[x % 62] for x in range(62 * 62)]


@functools.cache
def _prefix_letter(prefix: str) -> str:
    return _SUFFIX[sum(1 << i for i, ch in enumerate(f"{prefix}5g") if ch.isupper())]


def _any_sf_id(prefix: str, n: int) -> str:
    digits = ""
    while True:
        n, r = divmod(n, 62)
        digits = _B62[r] + digits
        if n == 0:
            break
    body = f"{prefix}5g0{digits.rjust(9, '0')}"
    suffix = ""
    for chunk in (body[0:5], body[5:10], body[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += _SUFFIX[bits]
    return body + suffix


def parse_sf_id(prefix: str, value: str) -> int | None:
    if len(value) not in (15, 18) or value[:3] != prefix or value[3:6] != "5g0":
        return None
    n = 0
    for ch in value[6:15]:
        if ch not in _B62:
            return None
        n = n * 62 + _B62.index(ch)
    return n


SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "boolean": "xsd:boolean",
    "anyType": "xsd:anyType",
}
NOT_GROUPABLE = {"datetime", "currency", "double", "percent", "anyType", "textarea"}


@dataclass
class SfField:
    name: str
    type: str
    label: str
    get: Callable[[Mapping[str, Any]], Any]
    static: str | None = None  # slot attribute the engine can filter/group on
    to_sf: Callable[[Any], Any] = lambda v: v  # slot attribute value -> Salesforce value
    date: str | None = None  # engine date field name
    nullness: str | None = None  # slot attribute that is truthy when the value is present
    options: tuple[Option, ...] = ()
    labels: tuple[str, ...] = ()  # picklist values when they are not Options
    custom: bool = False
    nillable: bool = True
    reference_to: tuple[str, ...] = ()
    restricted: bool = False
    length: int = 0
    # the picklist as the Tooling API last wrote it (salesforce_tooling.py), in describe's shape; None: as generated
    configured: list[dict[str, Any]] | None = None

    @property
    def filterable(self) -> bool:
        return self.type != "anyType"

    @property
    def groupable(self) -> bool:
        return self.type not in NOT_GROUPABLE

    def picklist_values(self) -> list[dict[str, Any]]:
        if self.configured is not None:
            return [dict(v) for v in self.configured]
        if self.labels:
            values = [(v, True) for v in self.labels]
        else:
            values = [(o.label, o.active) for o in self.options if o.listed]
        return [
            {
                "active": active,
                "defaultValue": i == 0 and self.name in ("Status", "StageName"),
                "label": v,
                "validFor": None,
                "value": v,
            }
            for i, (v, active) in enumerate(values)
        ]

    def describe(self) -> dict[str, Any]:
        t = self.type
        length = self.length or (
            18
            if t in ("id", "reference")
            else 255
            if t in ("string", "picklist", "url", "textarea")
            else 80
            if t in ("email", "phone")
            else 0
        )
        return {
            "length": length,
            "name": self.name,
            "type": t,
            "defaultValue": None,
            "label": self.label,
            "updateable": t not in ("id",) and self.name not in ("CreatedDate", "LastModifiedDate"),
            "calculated": False,
            "controllerName": None,
            "nillable": self.nillable,
            "unique": False,
            "precision": 18 if t in ("currency", "double", "percent") else 0,
            "scale": 2 if t in ("currency", "double", "percent") else 0,
            "caseSensitive": False,
            "byteLength": length * 3,
            "inlineHelpText": None,
            "nameField": self.name == "Name",
            "externalId": False,
            "idLookup": t == "id" or self.name in ("Name", "Email"),
            "filterable": self.filterable,
            "soapType": SOAP_TYPES.get(t, "xsd:string"),
            "createable": t != "id",
            "deprecatedAndHidden": False,
            "autoNumber": self.name == "CaseNumber",
            "calculatedFormula": None,
            "defaultValueFormula": None,
            "defaultedOnCreate": t in ("id", "boolean"),
            "digits": 9 if t == "int" else 0,
            "groupable": self.groupable,
            "picklistValues": self.picklist_values() if t in ("picklist", "multipicklist") else [],
            "referenceTo": list(self.reference_to),
            "relationshipName": self.name[:-2] if t == "reference" and self.name.endswith("Id") else None,
            "relationshipOrder": None,
            "restrictedPicklist": self.restricted,
            "namePointing": False,
            "custom": self.custom,
            "htmlFormatted": False,
            "dependentPicklist": False,
            "writeRequiresMasterRead": False,
            "sortable": t not in ("anyType", "textarea"),
        }


@dataclass
class SfObject:
    name: str
    prefix: str
    label: str
    plural: str
    table: str | None  # OrgModel table name; None for the small static tables
    fields: dict[str, SfField] = field(default_factory=dict)
    rows: list[dict[str, Any]] | None = None  # static tables only
    custom: bool = False
    parent: str = ""  # field history objects: the sObject whose changes they hold
    hidden_history: frozenset[str] = frozenset()  # history rows of fields this user cannot see

    def field(self, name: str) -> SfField | None:
        return self._lower().get(name.lower())

    def _lower(self) -> dict[str, SfField]:
        cache = self.__dict__.get("_lower_cache")
        if cache is None:
            cache = {k.lower(): v for k, v in self.fields.items()}
            self.__dict__["_lower_cache"] = cache
        return cache


def _label(o: Option | None) -> str | None:
    return o.label if o is not None else None


def _add(obj: SfObject, *fields: SfField) -> None:
    for f in fields:
        obj.fields[f.name] = f


def pick(name: str, label: str, attr: str, options: tuple[Option, ...], **kw: Any) -> SfField:
    return SfField(
        name,
        "picklist",
        label,
        lambda r, a=attr: _label(r.get(a)),
        static=attr,
        to_sf=_label,
        options=options,
        custom=name.endswith("__c"),
        **kw,
    )


def dt(name: str, label: str, date_name: str, kind: str = "datetime", nillable: bool = False) -> SfField:
    fmt = sf_datetime if kind == "datetime" else iso_date

    def get(r: Mapping[str, Any]) -> Any:
        return fmt(r["created"] if date_name == "created" else r["dates"].get(date_name))

    return SfField(name, kind, label, get, date=date_name, nillable=nillable)


def text(name: str, label: str, key: str, kind: str = "string", nullness: str | None = None) -> SfField:
    return SfField(name, kind, label, lambda r: r.get(key), nullness=nullness)


def flag(name: str, label: str, attr: str, fn: Callable[[Any], bool] = bool) -> SfField:
    return SfField(name, "boolean", label, lambda r: fn(r.get(attr)), static=attr, to_sf=fn, nillable=False)


def build_objects(model: OrgModel) -> dict[str, SfObject]:
    s = model.schema
    owners = [oid for oid, _ in s.owners]
    owner = SfField(
        "OwnerId",
        "reference",
        "Owner ID",
        lambda r: owners[r["owner"]],
        static="owner",
        to_sf=lambda v: owners[v],
        reference_to=("User",),
        nillable=False,
    )

    def account_id(r: Mapping[str, Any]) -> str | None:
        i = r.get("company_index")
        return sf_id("001", i) if i is not None else None

    def audit(obj: SfObject) -> None:
        _add(
            obj,
            flag("IsDeleted", "Deleted", "__never__", lambda v: False),
            dt("CreatedDate", "Created Date", "created"),
            dt("LastModifiedDate", "Last Modified Date", "last_modified"),
            dt("SystemModstamp", "System Modstamp", "last_modified"),
            owner,
        )

    def person(obj: SfObject) -> None:
        _add(
            obj,
            SfField("Id", "id", f"{obj.label} ID", lambda r, p=obj.prefix: sf_id(p, r["index"]), nillable=False),
            text("FirstName", "First Name", "first"),
            text("LastName", "Last Name", "last"),
            SfField("Name", "string", "Full Name", lambda r: f"{r['first']} {r['last']}", nillable=False),
            text("Email", "Email", "email", "email", nullness="has_email"),
            text("Phone", "Phone", "phone", "phone", nullness="has_phone"),
            text("Title", "Title", "title", nullness="has_title"),
            pick("LeadSource", "Lead Source", "source", s.lead_source),
            pick("Lifecycle_Stage__c", "Lifecycle Stage", "lifecycle", s.lifecycle),
        )
        if s.lead_stage:
            _add(obj, pick("Lead_Stage__c", "Lead Stage", "lead_stage", s.lead_stage))

    lead = SfObject("Lead", "00Q", "Lead", "Leads", "lead")
    person(lead)
    _add(
        lead,
        SfField("Company", "string", "Company", lambda r: r.get("company_name"), nullness="has_company"),
        pick("Status", "Lead Status", "status", s.lead_status, nillable=model.has("blank_lead_status")),
        pick("Industry", "Industry", "industry", s.industry),
        flag("IsConverted", "Converted", "converted"),
    )
    if s.regions:
        _add(lead, pick("Region__c", "Region", "region", s.regions))
    if model.has("retired_date_properties"):  # left over from an earlier lifecycle: nobody fills it any more
        _add(lead, SfField("SAO_Date__c", "date", "SAO Date", lambda r: None, nullness="__never__", custom=True))
    audit(lead)

    contact = SfObject("Contact", "003", "Contact", "Contacts", "contact")
    person(contact)
    _add(contact, SfField("AccountId", "reference", "Account ID", account_id, reference_to=("Account",)))
    if s.has_contact_status:
        _add(contact, pick("Contact_Status__c", "Contact Status", "status", s.contact_status))
    audit(contact)

    account = SfObject("Account", "001", "Account", "Accounts", "company")
    _add(
        account,
        SfField("Id", "id", "Account ID", lambda r: sf_id("001", r["index"]), nillable=False),
        SfField("Name", "string", "Account Name", lambda r: r["name"], nillable=False),
        SfField(
            "Website",
            "url",
            "Website",
            lambda r: f"https://www.{r['domain']}" if r.get("domain") else None,
            nullness="has_domain",
        ),
        pick("Type", "Account Type", "type", s.company_type),
        pick("Industry", "Industry", "industry", s.industry),
        SfField("NumberOfEmployees", "int", "Employees", lambda r: r["employees"], static="employees"),
    )
    if s.has_company_lifecycle:
        _add(account, pick("Lifecycle_Stage__c", "Lifecycle Stage", "lifecycle", s.lifecycle))
    audit(account)

    stage_labels = _unique_labels(s.deal_pipelines)
    opp = SfObject("Opportunity", "006", "Opportunity", "Opportunities", "deal")
    _add(
        opp,
        SfField("Id", "id", "Opportunity ID", lambda r: sf_id("006", r["index"]), nillable=False),
        SfField("Name", "string", "Name", lambda r: r["name"], nillable=False),
        SfField("AccountId", "reference", "Account ID", account_id, reference_to=("Account",)),
        SfField(
            "StageName",
            "picklist",
            "Stage",
            lambda r: r["stage"].label,
            static="stage",
            to_sf=_label,
            labels=stage_labels,
            nillable=False,
        ),
        SfField("Amount", "currency", "Amount", lambda r: r["amount"], static="amount"),
        SfField(
            "Probability",
            "percent",
            "Probability (%)",
            lambda r: _pct(r["stage"]),
            static="stage",
            to_sf=_pct,
        ),
        dt("CloseDate", "Close Date", "close_date", "date"),
        flag("IsClosed", "Closed", "stage", lambda o: bool(o and o.closed)),
        flag("IsWon", "Won", "stage", lambda o: bool(o and o.won)),
        SfField(
            "ForecastCategoryName",
            "picklist",
            "Forecast Category",
            lambda r: r["stage"].forecast,
            static="stage",
            to_sf=lambda o: o.forecast if o else None,
            labels=("Omitted", "Pipeline", "Best Case", "Commit", "Closed"),
        ),
        SfField(
            "RecordTypeId",
            "reference",
            "Record Type ID",
            lambda r: r["pipeline"].sf_record_type_id,
            static="pipeline",
            to_sf=lambda p: p.sf_record_type_id,
            reference_to=("RecordType",),
        ),
        SfField("NextStep", "string", "Next Step", lambda r: r.get("next_step"), nullness="has_next_step"),
        pick("LeadSource", "Lead Source", "source", s.lead_source),
    )
    if s.regions:
        _add(opp, pick("Region__c", "Region", "region", s.regions))
        _add(opp, pick("Segment__c", "Segment", "segment", s.segments))
    if s.loss_reasons and s.loss_reason_text:  # free text: what people typed, grouped as typed
        _add(
            opp,
            SfField(
                "Loss_Reason__c",
                "string",
                "Loss Reason",
                lambda r: _label(r.get("loss_reason")),
                static="loss_reason",
                to_sf=_label,
                custom=True,
            ),
        )
    elif s.loss_reasons:
        _add(opp, pick("Loss_Reason__c", "Loss Reason", "loss_reason", s.loss_reasons))
    audit(opp)

    case = SfObject("Case", "500", "Case", "Cases", "ticket")
    _add(
        case,
        SfField("Id", "id", "Case ID", lambda r: sf_id("500", r["index"]), nillable=False),
        SfField("CaseNumber", "string", "Case Number", lambda r: f"{r['index'] + 1:08d}", nillable=False),
        SfField("Subject", "string", "Subject", lambda r: r["subject"]),
        SfField(
            "Status",
            "picklist",
            "Status",
            lambda r: r["stage"].label,
            static="stage",
            to_sf=_label,
            labels=_unique_labels(s.ticket_pipelines),
        ),
        SfField(
            "Priority",
            "picklist",
            "Priority",
            lambda r: r["priority"].title(),
            static="priority",
            to_sf=lambda v: v.title() if v else None,
            labels=("High", "Medium", "Low"),
        ),
        flag("IsClosed", "Closed", "stage", lambda o: bool(o and o.closed)),
        SfField(
            "RecordTypeId",
            "reference",
            "Record Type ID",
            lambda r: r["pipeline"].sf_record_type_id,
            static="pipeline",
            to_sf=lambda p: p.sf_record_type_id,
            reference_to=("RecordType",),
        ),
        SfField("AccountId", "reference", "Account ID", account_id, reference_to=("Account",)),
    )
    audit(case)

    objects = {o.name: o for o in (lead, contact, account, opp, case)}
    if s.customer_stages:  # customer_stages_on_custom_object
        health = SfObject("Customer_Health__c", "a0X", "Customer Health", "Customer Health", "customer_health")
        health.custom = True
        _add(
            health,
            SfField("Id", "id", "Record ID", lambda r: sf_id("a0X", r["index"]), nillable=False),
            SfField("Name", "string", "Customer Health Name", lambda r: r["name"], nillable=False),
            pick("Stage__c", "Customer Stage", "stage", s.customer_stages),
            SfField("Account__c", "reference", "Account", account_id, reference_to=("Account",), custom=True),
        )
        audit(health)
        objects[health.name] = health
    for name, table, parent, parent_field in [
        ("LeadHistory", "lead_history", lead, "LeadId"),
        ("ContactHistory", "contact_history", contact, "ContactId"),
        ("OpportunityFieldHistory", "deal_field_history", opp, "OpportunityId"),
        ("CaseHistory", "ticket_history", case, "CaseId"),
        *(
            [("Customer_Health__History", "customer_health_history", objects["Customer_Health__c"], "ParentId")]
            if "Customer_Health__c" in objects
            else []
        ),
    ]:
        objects[name] = _field_history(name, table, parent, parent_field, owners)
        objects[name].parent = parent.name
    objects["OpportunityHistory"] = _opportunity_history(opp)
    for static in _static_tables(model, stage_labels):
        objects[static.name] = static
    _hide_fields(model, objects)
    return objects


# the kinds a profile's hidden_fields may name an sObject by, besides its own name
KINDS = {
    "Lead": "lead",
    "Contact": "contact",
    "Account": "company",
    "Opportunity": "deal",
    "Case": "ticket",
    "Customer_Health__c": "customer_health",
}


def _hide_fields(model: OrgModel, objects: dict[str, SfObject]) -> None:
    """Field-level security: a hidden field is gone from describe and unknown to SOQL (INVALID_FIELD)."""
    if not model.profile.hidden_fields:
        return
    for obj in objects.values():
        kinds = (obj.name, KINDS.get(obj.name, obj.name))
        for name in [n for n in obj.fields if model.profile.hides(kinds, n)]:
            del obj.fields[name]
    for obj in objects.values():  # field history follows field-level security: a hidden field's changes are hidden
        if obj.parent:
            kinds = (obj.parent, KINDS.get(obj.parent, obj.parent))
            tracked = ("Status", "StageName", "Lifecycle_Stage__c", "Stage__c")
            obj.hidden_history = frozenset(n for n in tracked if model.profile.hides(kinds, n))


def _pct(o: Option | None) -> float | None:
    return None if o is None or o.probability is None else round(o.probability * 100, 1)


def _unique_labels(pipelines: tuple[Pipeline, ...]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for pl in pipelines:
        for st in pl.stages:
            if st.listed:
                seen.setdefault(st.label, None)
    return tuple(seen)


def _history_id(r: Mapping[str, Any]) -> str:
    return sf_id("017", r["index"])


def _field_history(name: str, table: str, parent: SfObject, parent_field: str, owners: list[str]) -> SfObject:
    obj = SfObject(name, "017", name, name, table)
    _add(
        obj,
        SfField("Id", "id", "History ID", _history_id, nillable=False),
        SfField(
            parent_field,
            "reference",
            f"{parent.label} ID",
            lambda r, p=parent.prefix: sf_id(p, r["parent_index"]),
            reference_to=(parent.name,),
            nillable=False,
        ),
        SfField(
            "Field",
            "picklist",
            "Changed Field",
            lambda r: r["field"],
            static="field",
            nillable=False,
            labels=tuple(sorted({"created", "Status", "StageName", "Lifecycle_Stage__c"} | _extra_history(name))),
        ),
        SfField("OldValue", "anyType", "Old Value", lambda r: _label(r["old"])),
        SfField("NewValue", "anyType", "New Value", lambda r: _label(r["new"])),
        SfField("DataType", "picklist", "Data Type", lambda r: "DynamicEnum" if r["new"] else None),
        dt("CreatedDate", "Created Date", "created"),
        SfField(
            "CreatedById",
            "reference",
            "Created By ID",
            lambda r: owners[r["parent_index"] % len(owners)],
            reference_to=("User",),
        ),
        flag("IsDeleted", "Deleted", "__never__", lambda v: False),
    )
    return obj


def _extra_history(name: str) -> set[str]:
    return {"Stage__c"} if name == "Customer_Health__History" else set()


def _opportunity_history(opp: SfObject) -> SfObject:
    obj = SfObject("OpportunityHistory", "008", "Opportunity History", "Opportunity History", "deal_history")
    stage = opp.fields["StageName"]
    _add(
        obj,
        SfField("Id", "id", "Opportunity History ID", lambda r: sf_id("008", r["index"]), nillable=False),
        SfField(
            "OpportunityId",
            "reference",
            "Opportunity ID",
            lambda r: sf_id("006", r["parent_index"]),
            reference_to=("Opportunity",),
            nillable=False,
        ),
        SfField(
            "StageName",
            "picklist",
            "Stage",
            lambda r: r["new"].label,
            static="new",
            to_sf=_label,
            labels=stage.labels,
            nillable=False,
        ),
        SfField("Amount", "currency", "Amount", lambda r: r.get("amount"), static="amount"),
        SfField("Probability", "percent", "Probability (%)", lambda r: _pct(r["new"]), static="new", to_sf=_pct),
        SfField(
            "ForecastCategory",
            "picklist",
            "Forecast Category",
            lambda r: r["new"].forecast,
            static="new",
            to_sf=lambda o: o.forecast if o else None,
        ),
        dt("CreatedDate", "Created Date", "created"),
        flag("IsDeleted", "Deleted", "__never__", lambda v: False),
    )
    return obj


def _table(name: str, prefix: str, label: str, rows: list[dict[str, Any]], types: dict[str, str]) -> SfObject:
    obj = SfObject(name, prefix, label, label, None, rows=rows)
    for key, kind in types.items():
        if kind in ("datetime", "date"):
            fmt = sf_datetime if kind == "datetime" else iso_date
            obj.fields[key] = SfField(key, kind, key, lambda r, k=key, f=fmt: f(r.get(k)), date=key)
        else:
            obj.fields[key] = SfField(key, kind, key, lambda r, k=key: r.get(k), static=key)
    return obj


def _static_tables(model: OrgModel, stage_labels: tuple[str, ...]) -> list[SfObject]:
    s = model.schema
    created = model.as_of - 2 * 365 * 86_400_000
    first: dict[str, Option] = {}
    for pl in s.deal_pipelines:
        for st in pl.stages:
            if st.listed:
                first.setdefault(st.label, st)
    stages = [
        {
            "Id": sf_id("01J", i),
            "MasterLabel": lbl,
            "ApiName": lbl,
            "IsActive": True,
            "IsClosed": first[lbl].closed,
            "IsWon": first[lbl].won,
            "DefaultProbability": _pct(first[lbl]),
            "ForecastCategory": first[lbl].forecast.replace(" ", ""),
            "ForecastCategoryName": first[lbl].forecast,
            "SortOrder": i + 1,
            "Description": None,
            "CreatedDate": created,
        }
        for i, lbl in enumerate(stage_labels)
    ]
    lead_status = [
        {
            "Id": sf_id("01J", 100 + i),
            "MasterLabel": o.label,
            "ApiName": o.label,
            "SortOrder": i + 1,
            "IsConverted": o.key == "converted",
            "IsDefault": i == 0,
            "CreatedDate": created,
        }
        for i, o in enumerate(x for x in s.lead_status if x.listed and x.active)
    ]
    case_status = [
        {
            "Id": sf_id("01J", 200 + i),
            "MasterLabel": lbl,
            "ApiName": lbl,
            "SortOrder": i + 1,
            "IsClosed": any(st.closed for pl in s.ticket_pipelines for st in pl.stages if st.label == lbl),
            "IsDefault": i == 0,
            "CreatedDate": created,
        }
        for i, lbl in enumerate(_unique_labels(s.ticket_pipelines))
    ]
    record_types, processes = [], []
    for sobject, pipelines in (("Opportunity", s.deal_pipelines), ("Case", s.ticket_pipelines)):
        for pl in pipelines:
            record_types.append(
                {
                    "Id": pl.sf_record_type_id,
                    "Name": pl.label,
                    "DeveloperName": slug(pl.label).title(),
                    "SobjectType": sobject,
                    "BusinessProcessId": pl.sf_process_id,
                    "IsActive": True,
                    "Description": None,
                    "CreatedDate": created,
                }
            )
            processes.append(
                {
                    "Id": pl.sf_process_id,
                    "Name": pl.label,
                    "TableEnumOrId": sobject,
                    "IsActive": True,
                    "Description": None,
                    "CreatedDate": created,
                }
            )
    users = [
        {
            "Id": oid,
            "Name": name,
            "Email": f"{slug(name).replace('_', '.')}@client.example",
            "Username": f"{slug(name).replace('_', '.')}@client.example",
            "IsActive": True,
            "CreatedDate": created,
        }
        for oid, name in s.owners
    ]
    org = [
        {
            "Id": "00D5g000000SandAAA",
            "Name": company_name(model, 0),
            "OrganizationType": "Enterprise Edition",
            "IsSandbox": False,
            "InstanceName": "LOCAL1",
            "CreatedDate": created,
        }
    ]
    common = {"Id": "id", "CreatedDate": "datetime"}
    return [
        _table(
            "OpportunityStage",
            "01J",
            "Opportunity Stage",
            stages,
            {
                **common,
                "MasterLabel": "string",
                "ApiName": "string",
                "IsActive": "boolean",
                "IsClosed": "boolean",
                "IsWon": "boolean",
                "DefaultProbability": "percent",
                "ForecastCategory": "picklist",
                "ForecastCategoryName": "picklist",
                "SortOrder": "int",
                "Description": "string",
            },
        ),
        _table(
            "LeadStatus",
            "01J",
            "Lead Status Value",
            lead_status,
            {
                **common,
                "MasterLabel": "string",
                "ApiName": "string",
                "SortOrder": "int",
                "IsConverted": "boolean",
                "IsDefault": "boolean",
            },
        ),
        _table(
            "CaseStatus",
            "01J",
            "Case Status Value",
            case_status,
            {
                **common,
                "MasterLabel": "string",
                "ApiName": "string",
                "SortOrder": "int",
                "IsClosed": "boolean",
                "IsDefault": "boolean",
            },
        ),
        _table(
            "RecordType",
            "012",
            "Record Type",
            record_types,
            {
                **common,
                "Name": "string",
                "DeveloperName": "string",
                "SobjectType": "picklist",
                "BusinessProcessId": "reference",
                "IsActive": "boolean",
                "Description": "string",
            },
        ),
        _table(
            "BusinessProcess",
            "019",
            "Business Process",
            processes,
            {
                **common,
                "Name": "string",
                "TableEnumOrId": "picklist",
                "IsActive": "boolean",
                "Description": "string",
            },
        ),
        _table(
            "User",
            "005",
            "User",
            users,
            {**common, "Name": "string", "Email": "email", "Username": "string", "IsActive": "boolean"},
        ),
        _table(
            "Organization",
            "00D",
            "Organization",
            org,
            {
                **common,
                "Name": "string",
                "OrganizationType": "picklist",
                "IsSandbox": "boolean",
                "InstanceName": "string",
            },
        ),
    ]


def global_entry(obj: SfObject, version: str, refused: bool = False) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "activateable": False,
        "createable": obj.table is not None,
        "custom": obj.custom,
        "customSetting": False,
        "deletable": obj.table is not None,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "hasSubtypes": False,
        "isSubtype": False,
        "keyPrefix": obj.prefix,
        "label": obj.label,
        "labelPlural": obj.plural,
        "layoutable": True,
        "mergeable": obj.name in ("Lead", "Contact", "Account"),
        "mruEnabled": True,
        "name": obj.name,
        "queryable": not refused,
        "replicateable": not refused,
        "retrieveable": not refused,
        "searchable": not refused,
        "triggerable": True,
        "undeletable": True,
        "updateable": obj.table is not None,
        "urls": {"rowTemplate": f"{base}/{{ID}}", "describe": f"{base}/describe", "sobject": base},
    }


def describe(obj: SfObject, model: OrgModel, version: str) -> dict[str, Any]:
    body = global_entry(obj, version)
    pipelines: tuple[Pipeline, ...] = ()
    if obj.name == "Opportunity":
        pipelines = model.schema.deal_pipelines
    elif obj.name == "Case":
        pipelines = model.schema.ticket_pipelines
    infos = [
        {
            "active": True,
            "available": True,
            "defaultRecordTypeMapping": i == 0,
            "developerName": slug(pl.label).title(),
            "master": False,
            "name": pl.label,
            "recordTypeId": pl.sf_record_type_id,
            "urls": {
                "layout": f"/services/data/v{version}/sobjects/{obj.name}/describe/layouts/{pl.sf_record_type_id}"
            },
        }
        for i, pl in enumerate(pipelines)
    ]
    infos.append(
        {
            "active": True,
            "available": True,
            "defaultRecordTypeMapping": not pipelines,
            "developerName": "Master",
            "master": True,
            "name": "Master",
            "recordTypeId": MASTER_RECORD_TYPE,
            "urls": {"layout": f"/services/data/v{version}/sobjects/{obj.name}/describe/layouts/{MASTER_RECORD_TYPE}"},
        }
    )
    body.update(
        {
            "fields": [f.describe() for f in obj.fields.values()],
            "childRelationships": [],
            "recordTypeInfos": infos,
            "listviewable": None,
            "lookupLayoutable": None,
            "searchLayoutable": None,
            "namedLayoutInfos": [],
            "supportedScopes": [{"label": "All", "name": "everything"}],
        }
    )
    return body
