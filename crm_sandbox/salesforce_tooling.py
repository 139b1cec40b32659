"""The sandbox org's configuration as Salesforce's Tooling API reads and writes it.

Routes under /services/data/vNN.N/tooling/:
  query?q=                                 SOQL on StandardValueSet, CustomField, BusinessProcess (Metadata and
                                           FullName only when the query names at most one row, as Salesforce asks)
  sobjects/<Type>/<Id>           GET        one row with its Metadata
  sobjects/<Type>/<Id>           PATCH      {"Metadata": {...}}: the whole value list replaces the old one (204)
  sobjects/CustomField           POST       {"FullName": "Contact.X__c", "Metadata": {...}}: a picklist field (201)
  sobjects/CustomField/<Id>      DELETE     the field leaves describe (204)
A field created here has no field-level security, as in a real org: describe leaves it out and SOQL naming it answers
INVALID_FIELD until a permission set assigned to the connected user grants it read (salesforce_permissions).
A write changes what the org describes, for the life of the process: sobjects/<Obj>/describe picklists, the
OpportunityStage / LeadStatus / CaseStatus rows SOQL reads, and ui-api picklist values per record type (a stage
shows in a record type when its business process lists it and its value is active).

Values are in the Tooling API's JSON shape: `valueName` (the API name), `label`, `default`, `isActive` (null is
active), and on OpportunityStage `probability` (0-100), `closed`, `won`, `forecastCategory`.

`UserPermissionAccess` answers what this user may do; a profile's `withheld_permissions` (e.g.
{"PermissionsCustomizeApplication"}) takes permissions away, and writes then answer 400 INSUFFICIENT_ACCESS as an
org does for a user without Customize Application.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from .salesforce_permissions import FieldSecurity
from .server import Request, Response, SandboxError
from .sfquery import SoqlEngine
from .sfschema import SfField, SfObject, sf_id
from .soql import SoqlError

if TYPE_CHECKING:
    from .salesforce import SalesforceSandbox

# standard value set -> the (object, field) picklists it feeds
STANDARD_SETS = {
    "LeadStatus": (("Lead", "Status"),),
    "OpportunityStage": (("Opportunity", "StageName"),),
    "CaseStatus": (("Case", "Status"),),
    "AccountType": (("Account", "Type"),),
    "LeadSource": (("Lead", "LeadSource"), ("Contact", "LeadSource"), ("Opportunity", "LeadSource")),
    "Industry": (("Lead", "Industry"), ("Account", "Industry")),
}
TOOLING_TYPES = ("StandardValueSet", "CustomField", "BusinessProcess")
PROCESS_SETS = {"Opportunity": "OpportunityStage", "Case": "CaseStatus"}
FORECAST_NAMES = {"BestCase": "Best Case"}
PERMISSIONS = ("PermissionsCustomizeApplication", "PermissionsModifyAllData", "PermissionsViewSetup")
_TYPES = {"picklist": "Picklist", "multipicklist": "MultiselectPicklist", "string": "Text", "date": "Date"}


def _error(code: str, message: str, status: int = 400) -> SandboxError:
    return SandboxError(Response.json([{"errorCode": code, "message": message, "fields": []}], status))


def _active(value: dict[str, Any]) -> bool:
    return value.get("isActive") is not False


class Tooling:
    """The writable metadata of one SalesforceSandbox: standard value sets, custom fields, business processes."""

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sandbox = sandbox
        self.objects = sandbox.objects
        self._lock = threading.Lock()
        self.value_sets: dict[str, dict[str, Any]] = {}  # name -> {"Id", "Metadata"}
        self.fields: dict[str, dict[str, Any]] = {}  # "Contact.Lifecycle_Stage__c" -> {"Id", "Metadata"}
        self.processes: dict[str, dict[str, Any]] = {}  # id -> {"Name", "TableEnumOrId", "Metadata"}
        self.written: set[str] = set()  # objects whose picklists now come from here
        # fields created here: in their object's describe only while field-level security lets this user read them
        self.created: dict[str, SfField] = {}
        self._stage_rows_seen: dict[str, dict[str, dict[str, Any]]] = {}
        self._ids = iter(range(10_000, 10**9))
        self._load()
        self._install_permissions()
        self.security = next(e for e in sandbox.extensions if isinstance(e, FieldSecurity))
        sandbox.engine.objects.update({name.lower(): obj for name, obj in self.security.objects.items()})
        self.engine = SoqlEngine(sandbox.model, self._tooling_objects())

    # ---- the org as generated, in metadata form

    def _load(self) -> None:
        rows = {name: {r["ApiName"]: r for r in (self.objects[name].rows or [])} for name in PROCESS_SETS.values()}
        lead_status = {r["ApiName"]: r for r in (self.objects["LeadStatus"].rows or [])}
        for n, (name, places) in enumerate(STANDARD_SETS.items()):
            obj_name, field_name = places[0]
            f = self.objects[obj_name].field(field_name)
            if f is None:
                continue
            values = []
            for v in f.picklist_values():
                value = {
                    "valueName": v["value"],
                    "label": v["label"],
                    "default": bool(v["defaultValue"]),
                    "isActive": None if v["active"] else False,
                }
                if name == "OpportunityStage":
                    row = rows[name].get(v["value"], {})
                    value.update(
                        probability=row.get("DefaultProbability"),
                        closed=bool(row.get("IsClosed")),
                        won=bool(row.get("IsWon")),
                        forecastCategory=row.get("ForecastCategory") or "Pipeline",
                    )
                elif name == "CaseStatus":
                    value["closed"] = bool(rows[name].get(v["value"], {}).get("IsClosed"))
                elif name == "LeadStatus":
                    value["converted"] = bool(lead_status.get(v["value"], {}).get("IsConverted"))
                values.append(value)
            self.value_sets[name] = {
                "Id": sf_id("0Gv", n),
                "Metadata": {"sorted": False, "groupingStringEnum": None, "standardValue": values, "urls": None},
            }
        for obj in list(self.objects.values()):
            if obj.parent or obj.table is None:
                continue
            for f in obj.fields.values():
                if f.custom:
                    self.fields[f"{obj.name}.{f.name}"] = {"Id": self._next_id("00N"), "Metadata": _field_metadata(f)}
        schema = self.sandbox.model.schema
        for obj_name, pipelines in (("Opportunity", schema.deal_pipelines), ("Case", schema.ticket_pipelines)):
            for pl in pipelines:
                self.processes[pl.sf_process_id] = {
                    "Name": pl.label,
                    "TableEnumOrId": obj_name,
                    "Metadata": {
                        "description": None,
                        "isActive": True,
                        "values": [
                            {"valueName": st.label, "default": i == 0}
                            for i, st in enumerate(s for s in pl.stages if s.listed)
                        ],
                    },
                }

    def _next_id(self, prefix: str) -> str:
        return sf_id(prefix, next(self._ids))

    def _install_permissions(self) -> None:
        withheld = {p.lower() for p in self.sandbox.model.profile.withheld_permissions}
        row = {"Id": "000000000000000AAA", **{p: p.lower() not in withheld for p in PERMISSIONS}}
        obj = SfObject("UserPermissionAccess", "000", "User Permission Access", "User Permission Access", None)
        obj.rows = [row]
        obj.fields["Id"] = SfField("Id", "id", "Id", lambda r: r["Id"], static="Id", nillable=False)
        for p in PERMISSIONS:
            obj.fields[p] = SfField(p, "boolean", p, lambda r, k=p: r[k], static=p, nillable=False)
        self.sandbox.engine.objects[obj.name.lower()] = obj  # queried, never described

    def has_field(self, obj_name: str, field_name: str) -> bool:
        """Whether the org has this field, whether or not this user may read it."""
        obj = self.objects.get(obj_name)
        return obj is not None and self._field(obj, field_name) is not None

    def _field(self, obj: SfObject, field_name: str) -> SfField | None:
        created = next((f for k, f in self.created.items() if k.lower() == f"{obj.name}.{field_name}".lower()), None)
        return obj.field(field_name) or created

    def show_readable(self) -> None:
        with self._lock:
            self._show_readable()

    def _show_readable(self) -> None:
        for full_name, f in self.created.items():
            obj = self.objects[full_name.split(".", 1)[0]]
            if self.security.readable(full_name):
                obj.fields[f.name] = f
            else:
                obj.fields.pop(f.name, None)
            obj.__dict__.pop("_lower_cache", None)  # SfObject.field() caches its lookup by lower-case name

    def may_write(self) -> bool:
        return "permissionscustomizeapplication" not in {
            p.lower() for p in self.sandbox.model.profile.withheld_permissions
        }

    # ---- the Tooling objects SOQL reads

    def _tooling_objects(self) -> dict[str, SfObject]:
        def table(name: str, prefix: str, columns: dict[str, str]) -> SfObject:
            obj = SfObject(name, prefix, name, name, None, rows=[])
            for column, kind in columns.items():
                static = None if kind == "anyType" else column
                obj.fields[column] = SfField(column, kind, column, lambda r, k=column: r.get(k), static=static)
            return obj

        common = {"Id": "id", "Metadata": "anyType", "FullName": "string"}
        return {
            "StandardValueSet": table("StandardValueSet", "0Gv", {**common, "MasterLabel": "string"}),
            "CustomField": table(
                "CustomField", "00N", {**common, "DeveloperName": "string", "TableEnumOrId": "string"}
            ),
            "BusinessProcess": table("BusinessProcess", "019", {**common, "Name": "string", "TableEnumOrId": "string"}),
        }

    def _rows(self, name: str) -> list[dict[str, Any]]:
        if name == "StandardValueSet":
            return [{"MasterLabel": k, "FullName": k, **v} for k, v in self.value_sets.items()]
        if name == "CustomField":
            return [
                {
                    "DeveloperName": full.split(".", 1)[1].removesuffix("__c"),
                    "TableEnumOrId": full.split(".", 1)[0],
                    "FullName": full,
                    **v,
                }
                for full, v in self.fields.items()
            ]
        return [
            {
                "Name": p["Name"],
                "TableEnumOrId": p["TableEnumOrId"],
                "FullName": f"{p['TableEnumOrId']}.{p['Name']}",
                "Id": pid,
                "Metadata": p["Metadata"],
            }
            for pid, p in self.processes.items()
        ]

    # ---- routes

    def handle(self, req: Request, version: str, parts: list[str]) -> Response:
        if parts[:1] == ["query"] and req.method == "GET":
            return self._query(req, version)
        if parts[:1] != ["sobjects"] or len(parts) not in (2, 3) or parts[1] not in TOOLING_TYPES:
            raise _error("NOT_FOUND", "The requested resource does not exist", 404)
        kind, record_id = parts[1], parts[2] if len(parts) == 3 else None
        if req.method == "GET" and record_id:
            return Response.json(self._record(kind, self._find(kind, record_id)[1], version))
        if req.method not in ("PATCH", "POST", "DELETE"):
            raise _error("METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed.", 405)
        if not self.may_write():
            raise _error(
                "INSUFFICIENT_ACCESS",
                "You do not have the level of access necessary to perform the operation you requested. "
                "Please contact the owner of the record or your administrator if access is necessary.",
            )
        with self._lock:
            if req.method == "POST" and record_id is None and kind == "CustomField":
                return self._create_field(req)
            if record_id is None:
                raise _error("METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed here.", 405)
            key, _ = self._find(kind, record_id)
            if req.method == "DELETE" and kind == "CustomField":
                self._delete_field(key)
                return Response(204)
            if req.method == "PATCH":
                metadata = _body_metadata(req)
                {"StandardValueSet": self._write_value_set, "CustomField": self._write_field}.get(
                    kind, self._write_process
                )(key, metadata)
                return Response(204)
        raise _error("METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed on {kind}.", 405)

    def _query(self, req: Request, version: str) -> Response:
        text = req.arg("q")
        if not text:
            raise _error("MALFORMED_QUERY", "A query string has to be specified")
        with self._lock:  # the rows are rebuilt from the metadata a concurrent write may be changing
            for obj in self.engine.objects.values():
                obj.rows = self._rows(obj.name)
            try:
                body = json.loads(json.dumps(self.engine.query(text, version)))  # a copy, answered unlocked
            except SoqlError as exc:
                raise _error(exc.code, exc.message) from None
        wide = any(k in ("Metadata", "FullName") for r in body["records"] for k in r)
        if wide and body["totalSize"] > 1:
            raise _error(
                "MALFORMED_QUERY",
                "When retrieving results with Metadata or FullName fields, the query qualifications must specify "
                "no more than one row for retrieval. Result size: " + str(body["totalSize"]),
            )
        for r in body["records"]:
            r["attributes"]["url"] = r["attributes"]["url"].replace("/sobjects/", "/tooling/sobjects/", 1)
        entity = body["records"][0]["attributes"]["type"] if body["records"] else None
        return Response.json(
            {
                "size": body["totalSize"],
                "totalSize": body["totalSize"],
                "done": body["done"],
                "queryLocator": None,
                "entityTypeName": entity,
                "records": body["records"],
            }
        )

    def _find(self, kind: str, record_id: str) -> tuple[str, dict[str, Any]]:
        found = next((r for r in self._rows(kind) if r["Id"] in (record_id, record_id[:15])), None)
        if found is None:
            raise _error("NOT_FOUND", "The requested resource does not exist", 404)
        return found["FullName"] if kind != "BusinessProcess" else found["Id"], found

    def _record(self, kind: str, row: dict[str, Any], version: str) -> dict[str, Any]:
        url = f"/services/data/v{version}/tooling/sobjects/{kind}/{row['Id']}"
        return {"attributes": {"type": kind, "url": url}, **row}

    # ---- writes

    def _write_value_set(self, name: str, metadata: dict[str, Any]) -> None:
        values = _values(metadata, "standardValue", f"StandardValueSet {name}")
        if name == "OpportunityStage":
            for v in values:
                p = v.get("probability")
                if p is not None and (not isinstance(p, int | float) or not 0 <= p <= 100):
                    raise _error("FIELD_INTEGRITY_EXCEPTION", f"Probability of {v['valueName']}: must be 0 to 100")
        self.value_sets[name]["Metadata"] = {**self.value_sets[name]["Metadata"], **metadata}
        for obj_name, field_name in STANDARD_SETS[name]:
            self._configure(obj_name, field_name, values)
        if name in ("OpportunityStage", "LeadStatus", "CaseStatus"):
            self._stage_rows(name, values)

    def _write_field(self, full_name: str, metadata: dict[str, Any]) -> None:
        merged = {**self.fields[full_name]["Metadata"], **metadata}
        values = _values(merged.get("valueSet", {}).get("valueSetDefinition") or {}, "value", full_name)
        self.fields[full_name]["Metadata"] = merged
        obj_name, field_name = full_name.split(".", 1)
        f = self._field(self.objects[obj_name], field_name)
        if f is not None:
            f.label = merged.get("label") or f.label
        self._configure(obj_name, field_name, values)

    def _write_process(self, process_id: str, metadata: dict[str, Any]) -> None:
        values = metadata.get("values")
        if not isinstance(values, list) or not all(isinstance(v, dict) and v.get("valueName") for v in values):
            raise _error("FIELD_INTEGRITY_EXCEPTION", "Metadata.values: a list of {valueName, default} is required")
        process = self.processes[process_id]
        known = {
            v["valueName"].lower()
            for v in self.value_sets[PROCESS_SETS[process["TableEnumOrId"]]]["Metadata"]["standardValue"]
        }
        unknown = [v["valueName"] for v in values if v["valueName"].lower() not in known]
        if unknown:
            raise _error("FIELD_INTEGRITY_EXCEPTION", f"Picklist value(s) {', '.join(unknown)} not in the value set")
        process["Metadata"] = {**process["Metadata"], **metadata}
        self.written.add(process["TableEnumOrId"])

    def _create_field(self, req: Request) -> Response:
        body = req.json()
        full_name = body.get("FullName") if isinstance(body, dict) else None
        metadata = _body_metadata(req)
        obj_name, _, field_name = (full_name or "").partition(".")
        obj = self.objects.get(obj_name)
        if obj is None or obj.table is None or not field_name.endswith("__c"):
            raise _error("FIELD_INTEGRITY_EXCEPTION", f"FullName {full_name!r}: expected <Object>.<Name>__c")
        if self._field(obj, field_name) is not None:
            raise _error("DUPLICATE_DEVELOPER_NAME", f"A field named {field_name} already exists on {obj_name}")
        if metadata.get("type") != "Picklist":
            raise _error("FIELD_INTEGRITY_EXCEPTION", "sandbox: only Picklist fields can be created")
        values = _values(metadata.get("valueSet", {}).get("valueSetDefinition") or {}, "value", full_name)
        f = SfField(
            field_name,
            "picklist",
            metadata.get("label") or field_name,
            lambda r: None,  # a new field: no record holds a value yet
            static="__never__",
            to_sf=lambda v: None,
            custom=True,
        )
        self.created[full_name] = f
        record_id = self._next_id("00N")
        self.fields[full_name] = {"Id": record_id, "Metadata": metadata}
        self._configure(obj_name, field_name, values)
        self._show_readable()
        return Response.json({"id": record_id, "success": True, "errors": [], "warnings": [], "infos": []}, 201)

    def _delete_field(self, full_name: str) -> None:
        obj_name, field_name = full_name.split(".", 1)
        obj = self.objects[obj_name]
        obj.fields.pop(next((n for n in obj.fields if n.lower() == field_name.lower()), ""), None)
        obj.__dict__.pop("_lower_cache", None)
        self.created.pop(full_name, None)
        del self.fields[full_name]

    # ---- what the org describes after a write

    def _configure(self, obj_name: str, field_name: str, values: list[dict[str, Any]]) -> None:
        f = self._field(self.objects[obj_name], field_name)
        if f is None:
            return
        f.configured = [
            {
                "active": _active(v),
                "defaultValue": bool(v.get("default")),
                "label": v.get("label") or v["valueName"],
                "validFor": None,
                "value": v["valueName"],
            }
            for v in values
        ]
        self.written.add(obj_name)

    def _stage_rows(self, name: str, values: list[dict[str, Any]]) -> None:
        table = self.objects[name]
        # a value left out (an inactive lead status) keeps its row, and so its Id, for when it comes back
        old = self._stage_rows_seen.setdefault(name, {r["ApiName"]: r for r in table.rows or []})
        rows = []
        for i, v in enumerate(values):
            if name == "LeadStatus" and not _active(v):
                continue  # LeadStatus lists the values a lead may take
            row = dict(old.get(v["valueName"]) or {"Id": self._next_id("01J"), "CreatedDate": None})
            row.update(ApiName=v["valueName"], MasterLabel=v.get("label") or v["valueName"], SortOrder=i + 1)
            if name == "OpportunityStage":
                forecast = v.get("forecastCategory") or "Pipeline"
                row.update(
                    IsActive=_active(v),
                    IsClosed=bool(v.get("closed")),
                    IsWon=bool(v.get("won")),
                    DefaultProbability=v.get("probability"),
                    ForecastCategory=forecast,
                    ForecastCategoryName=FORECAST_NAMES.get(forecast, forecast),
                )
            elif name == "CaseStatus":
                row.update(IsClosed=bool(v.get("closed")), IsDefault=bool(v.get("default")))
            else:
                row.update(IsConverted=bool(v.get("converted")), IsDefault=bool(v.get("default")))
            old[row["ApiName"]] = row
            rows.append(row)
        table.rows = rows

    def record_type_values(self, obj_name: str, process_id: str) -> list[dict[str, Any]] | None:
        """ui-api picklist values of the stage field for one record type, once this object was written; None before
        (the generated pipelines answer)."""
        if obj_name not in self.written or process_id not in self.processes:
            return None
        known = {
            v["valueName"].lower(): v for v in self.value_sets[PROCESS_SETS[obj_name]]["Metadata"]["standardValue"]
        }
        out = []
        for listed in self.processes[process_id]["Metadata"]["values"]:
            v = known.get(listed["valueName"].lower())
            if v is None or not _active(v):
                continue
            attrs = None
            if obj_name == "Opportunity":
                forecast = v.get("forecastCategory") or "Pipeline"
                attrs = {
                    "closed": bool(v.get("closed")),
                    "defaultProbability": v.get("probability"),
                    "forecastCategoryName": FORECAST_NAMES.get(forecast, forecast),
                    "picklistAtrributesValueType": "OpportunityStage",
                    "won": bool(v.get("won")),
                }
            out.append(
                {
                    "attributes": attrs,
                    "label": v.get("label") or v["valueName"],
                    "validFor": [],
                    "value": v["valueName"],
                }
            )
        return out


def _body_metadata(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        raise _error("JSON_PARSER_ERROR", "The request body is not valid JSON") from None
    metadata = body.get("Metadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict):
        raise _error("FIELD_INTEGRITY_EXCEPTION", "Metadata: required field missing or not an object")
    return metadata


def _values(container: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    values = container.get(key)
    if not isinstance(values, list) or not all(isinstance(v, dict) and v.get("valueName") for v in values):
        raise _error("FIELD_INTEGRITY_EXCEPTION", f"{where}: {key} must be a list of values, each with a valueName")
    names = [v["valueName"].lower() for v in values]
    duplicate = next((v for v in values if names.count(v["valueName"].lower()) > 1), None)
    if duplicate is not None:
        raise _error("DUPLICATE_VALUE", f"{where}: duplicate value {duplicate['valueName']!r}")
    return values


def _field_metadata(f: SfField) -> dict[str, Any]:
    metadata: dict[str, Any] = {"label": f.label, "type": _TYPES.get(f.type, "Text"), "required": not f.nillable}
    if f.type in ("picklist", "multipicklist"):
        metadata["valueSet"] = {
            "controllingField": None,
            "restricted": f.restricted or None,
            "valueSetDefinition": {
                "sorted": False,
                "value": [
                    {
                        "valueName": v["value"],
                        "label": v["label"],
                        "default": bool(v["defaultValue"]),
                        "isActive": None if v["active"] else False,
                        "color": None,
                        "description": None,
                        "urls": None,
                    }
                    for v in f.picklist_values()
                ],
            },
            "valueSetName": None,
            "valueSettings": [],
        }
    return metadata
