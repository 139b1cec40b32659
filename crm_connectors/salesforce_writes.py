"""Salesforce configuration writes for the engineering phase's apply and undo, through the Tooling API REST.

What an operation of a change plan (engineering/plan.py) targets, and where Salesforce keeps it:
  - a standard picklist (Lead Status, Opportunity Stage, Case Status, Account Type, Lead Source, Industry): its
    StandardValueSet, read with `SELECT Id, Metadata FROM StandardValueSet WHERE MasterLabel = '<name>'` and
    written whole with PATCH tooling/sobjects/StandardValueSet/<Id>;
  - a custom picklist (Lifecycle_Stage__c): its CustomField, found by DeveloperName and TableEnumOrId, its
    Metadata.valueSet.valueSetDefinition.value[] written with PATCH tooling/sobjects/CustomField/<Id>;
  - a stage of one pipeline (a record type): the value in OpportunityStage / CaseStatus *and* in the record type's
    business process (sales or support process), which decides whether the record type offers it;
  - a field to create: POST tooling/sobjects/CustomField {"FullName": "Lead.X__c", "Metadata": ...}; undo DELETEs it.
    Salesforce gives a field created through the Tooling or Metadata API no field-level security: until a profile
    or permission set grants it, nobody can read it, this user included (describe leaves it out, SOQL answers
    INVALID_FIELD). So each created field is granted read and edit on the permission set GTM_Ops_Lifecycle_Fields,
    created once and assigned to the connected user; the client's admin assigns it to whoever else needs the fields.
The state shapes are those of CrmConnector.config_state: a value {"label", "active", "probability" 0-100 | None},
a field {"type", "values": [label, ...]}. Salesforce keeps one probability per stage value for every record type.

Writes need the Customize Application permission (Modify All Data alone does not allow metadata changes); the
permission is read from UserPermissionAccess, never assumed. Every request goes through the connector's guarded
session: budget, rate limit, retries and counting (calls_spent) apply to writes as to reads.
"""

# SOQL is built from names checked by `ident` and values quoted by `soql_string`: S608 does not apply.
# ruff: noqa: S608

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .base import CrmError, CrmMalformedResponse, CrmQueryError, CrmUnsupported, WriteAccess, check_kind

if TYPE_CHECKING:
    from simple_salesforce import Salesforce

    from .base import Unreadable

# (object, field) -> the standard value set behind it
STANDARD_SETS = {
    ("Lead", "Status"): "LeadStatus",
    ("Opportunity", "StageName"): "OpportunityStage",
    ("Case", "Status"): "CaseStatus",
    ("Account", "Type"): "AccountType",
    ("Lead", "LeadSource"): "LeadSource",
    ("Contact", "LeadSource"): "LeadSource",
    ("Opportunity", "LeadSource"): "LeadSource",
    ("Lead", "Industry"): "Industry",
    ("Account", "Industry"): "Industry",
}
STAGE_SETS = {"OpportunityStage", "CaseStatus"}  # standard value sets a business process picks values from
PICKLIST_TYPES = {"Picklist": "picklist", "MultiselectPicklist": "picklist"}
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
PERMISSIONS = "SELECT PermissionsCustomizeApplication, PermissionsModifyAllData FROM UserPermissionAccess"
PERMISSION_SET = "GTM_Ops_Lifecycle_Fields"
PERMISSION_SET_LABEL = "GTM Ops lifecycle fields"
_USER_ID = re.compile(r"^005[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")


class ValueSet:
    """The values of one standard value set or custom picklist as the Tooling API returned them, to change and
    write back whole (Salesforce replaces the list it is given)."""

    def __init__(self, sobject: str, record_id: str, name: str, metadata: dict[str, Any], values_key: str) -> None:
        self.sobject, self.id, self.name = sobject, record_id, name
        self.metadata = metadata
        self.original = copy.deepcopy(metadata)
        self._key = values_key

    @property
    def values(self) -> list[dict[str, Any]]:
        if self.sobject != "CustomField":
            return self.metadata.setdefault(self._key, [])
        value_set = self.metadata.get("valueSet")
        if not value_set:
            raise CrmUnsupported(f"Salesforce {self.name} is not a picklist.", platform="salesforce")
        definition = value_set.get("valueSetDefinition")
        if definition is None:
            raise CrmUnsupported(
                f"Salesforce {self.name} takes its values from the global value set {value_set.get('valueSetName')}: "
                "change them there.",
                platform="salesforce",
            )
        return definition.setdefault("value", [])

    def find(self, api_value: str) -> dict[str, Any] | None:
        wanted = api_value.lower()
        return next((v for v in self.values if str(v.get("valueName", "")).lower() == wanted), None)

    @property
    def changed(self) -> bool:
        return self.metadata != self.original


class SalesforceWrites:
    """CrmConnector's configuration writes for SalesforceConnector (mixed in before CrmConnector)."""

    if TYPE_CHECKING:  # what SalesforceConnector provides
        _describes: dict[str, Any]
        _fields: dict[str, Any]
        _pipelines: dict[str, Any]
        _stage_attrs: dict[str, Any]

        def _client(self) -> Salesforce: ...
        def _translate(self) -> AbstractContextManager[None]: ...
        def _query(self, soql: str) -> dict[str, Any]: ...
        def _rest(self, path: str) -> Any: ...
        def _readable(self, kind: str, names: Sequence[str]) -> tuple[list[str], list[Unreadable]]: ...

    # ---- the interface

    def write_access(self) -> WriteAccess:
        try:
            rows = self._query(PERMISSIONS)["records"]
        except CrmQueryError as exc:
            return WriteAccess(False, f"Salesforce did not say whether this user may change configuration ({exc}).")
        row = rows[0] if rows else {}
        if row.get("PermissionsCustomizeApplication"):
            return WriteAccess(True)
        also = " (Modify All Data alone does not allow it)" if row.get("PermissionsModifyAllData") else ""
        return WriteAccess(
            False,
            "This Salesforce user lacks the Customize Application permission, which changing picklist values, "
            f"stages and fields needs{also}: ask the client's Salesforce admin to grant it with a permission set, "
            "or connect as a user who has it.",
        )

    def config_state(self, op: dict[str, Any]) -> dict[str, Any] | None:
        sobject, field_name = _target(op)
        if op.get("kind") == "create_field":
            found = self._custom_field(sobject, field_name)
            if found is None:
                return None
            if not self._readable(str(op["object"]), [field_name])[0]:
                # there, but no grant lets this user read it yet: none of its values is seen, so apply (re)grants
                # it and undo still deletes it
                return {"type": "picklist", "values": []}
            field_type = str(found.metadata.get("type") or "")
            if field_type not in PICKLIST_TYPES:
                return {"type": field_type.lower(), "values": []}
            return {
                "type": "picklist",
                "values": [v.get("label") or v["valueName"] for v in found.values if _active(v)],
            }
        value_set = self._value_set(sobject, field_name)
        value = value_set.find(_api_value(op))
        if value is None:
            return None
        active = _active(value)
        process = self._process(op, value_set)
        if process is not None:
            active = active and process.find(value["valueName"]) is not None
        return _state(value, value_set.name == "OpportunityStage", active)

    def write_config(self, op: dict[str, Any], state: dict[str, Any] | None) -> None:
        sobject, field_name = _target(op)
        try:
            if op.get("kind") == "create_field":
                self._write_field(op, sobject, field_name, _field_state(op, state))
            else:
                self._write_value(op, sobject, field_name, _value_state(op, state))
        finally:
            self._forget_metadata()

    # ---- reading

    def _tooling(self, action: str, method: str = "GET", data: dict[str, Any] | None = None, **kw: Any) -> Any:
        with self._translate():
            return self._client().toolingexecute(action, method=method, data=data, **kw)

    def _tooling_one(self, soql: str) -> dict[str, Any] | None:
        records = self._tooling("query/", params={"q": soql}).get("records") or []
        return records[0] if records else None

    def _value_set(self, sobject: str, field_name: str) -> ValueSet:
        if field_name.lower().endswith("__c"):
            found = self._custom_field(sobject, field_name)
            if found is None:
                raise CrmQueryError(f"Salesforce {sobject} has no custom field {field_name}.", platform="salesforce")
            return found
        name = STANDARD_SETS.get((sobject, field_name))
        if name is None:
            raise CrmUnsupported(
                f"Salesforce {sobject}.{field_name} is not a picklist GTM Ops can change (a standard value set or a "
                "custom picklist): change it in Setup.",
                platform="salesforce",
            )
        row = self._tooling_one(f"SELECT Id, Metadata FROM StandardValueSet WHERE MasterLabel = {_quote(name)}")
        if row is None:
            raise CrmQueryError(f"Salesforce has no standard value set {name}.", platform="salesforce")
        return ValueSet("StandardValueSet", row["Id"], name, row["Metadata"], "standardValue")

    def _custom_field(self, sobject: str, field_name: str) -> ValueSet | None:
        developer_name = field_name.removesuffix("__c")
        row = self._tooling_one(
            "SELECT Id, Metadata FROM CustomField "
            f"WHERE DeveloperName = {_quote(developer_name)} AND TableEnumOrId = {_quote(sobject)}"
        )
        if row is None:
            return None
        return ValueSet("CustomField", row["Id"], f"{sobject}.{field_name}", row["Metadata"], "value")

    def _process(self, op: dict[str, Any], value_set: ValueSet) -> ValueSet | None:
        """The business process of the operation's record type; None for a field or the master pipeline."""
        record_type = op.get("pipeline")
        if not record_type or record_type == "master" or value_set.name not in STAGE_SETS:
            return None
        cache = self.__dict__.setdefault("_processes_of_record_types", {})
        if record_type not in cache:
            if not _RECORD_ID.match(str(record_type)):
                raise CrmQueryError(f"Pipeline {record_type!r} is not a Salesforce record type id.")
            row = self._query(f"SELECT BusinessProcessId FROM RecordType WHERE Id = {_quote(record_type)}")
            records = row.get("records") or []
            if not records:
                raise CrmQueryError(f"Salesforce has no record type {record_type}.", platform="salesforce")
            cache[record_type] = records[0].get("BusinessProcessId")
        process_id = cache[record_type]
        if not process_id:
            return None  # a record type without a process offers every active value
        found = self._tooling_one(f"SELECT Id, Metadata FROM BusinessProcess WHERE Id = {_quote(process_id)}")
        if found is None:
            raise CrmQueryError(f"Salesforce has no business process {process_id}.", platform="salesforce")
        return ValueSet("BusinessProcess", found["Id"], f"business process {process_id}", found["Metadata"], "values")

    def _other_processes_list(self, sobject: str, process: ValueSet, api_value: str) -> bool:
        ids = self._tooling(
            "query/", params={"q": f"SELECT Id FROM BusinessProcess WHERE TableEnumOrId = {_quote(sobject)}"}
        )
        for row in ids.get("records") or []:
            if row["Id"] == process.id:
                continue
            other = self._tooling_one(f"SELECT Id, Metadata FROM BusinessProcess WHERE Id = {_quote(row['Id'])}")
            if other is not None and _process_values(other["Metadata"], api_value):
                return True
        return False

    # ---- writing

    def _write_value(self, op: dict[str, Any], sobject: str, field_name: str, state: dict[str, Any] | None) -> None:
        value_set = self._value_set(sobject, field_name)
        process = self._process(op, value_set)
        api_value = _api_value(op)
        value = value_set.find(api_value)
        if state is None:  # undo of an add: the value leaves the pipeline, and the set unless another pipeline uses it
            if process is not None:
                _drop(_listed(process), api_value)
                self._save(process)
                if self._other_processes_list(sobject, process, api_value):
                    return
            _drop(value_set.values, api_value)
            self._save(value_set)
            return
        if value is None:
            value = _new_value(op, api_value, state, value_set.name == "OpportunityStage")
            values = value_set.values
            # a new open stage goes before the closed ones, as stages are ordered in a pipeline
            closed = [i for i, v in enumerate(values) if v.get("closed")] if not value.get("closed") else []
            values.insert(closed[0] if value_set.name in STAGE_SETS and closed else len(values), value)
        value["label"] = state["label"]
        if process is None or state["active"]:
            value["isActive"] = None if state["active"] else False  # null is how Salesforce says active
        if value_set.name == "OpportunityStage":
            value["probability"] = state["probability"]
        self._save(value_set)
        if process is not None:
            listed = _listed(process)
            if state["active"] and process.find(api_value) is None:
                # back where the value set puts it: before the first value that follows it there
                order = {str(v["valueName"]).lower(): i for i, v in enumerate(value_set.values)}
                mine = order[api_value.lower()]
                later = [i for i, v in enumerate(listed) if order.get(str(v["valueName"]).lower(), -1) > mine]
                listed.insert(later[0] if later else len(listed), {"valueName": value["valueName"], "default": False})
            elif not state["active"]:
                _drop(listed, api_value)  # retired from this record type only: other pipelines keep the stage
            self._save(process)

    def _write_field(self, op: dict[str, Any], sobject: str, field_name: str, state: dict[str, Any] | None) -> None:
        found = self._custom_field(sobject, field_name)
        full_name = f"{sobject}.{field_name}"
        if state is None:
            if found is not None:
                self._revoke(full_name)
                self._tooling(f"sobjects/CustomField/{found.id}", method="DELETE")
            return
        # first, so that a user who may not grant fields is refused before the field exists unreadable
        permission_set = self._permission_set()
        values = [{"valueName": label, "label": label, "default": False, "isActive": None} for label in state["values"]]
        if found is None:
            found = self._create_field(op, sobject, field_name, values)
        if found is not None:
            found.values[:] = values
            self._save(found)
        self._grant(permission_set, sobject, full_name)

    def _create_field(
        self, op: dict[str, Any], sobject: str, field_name: str, values: list[dict[str, Any]]
    ) -> ValueSet | None:
        """POST the field; None once created. A create that went through but whose answer was lost (a 5xx, a cut
        body) is retried by the guard into DUPLICATE_DEVELOPER_NAME: the field is there, so the field as it now
        reads is returned for its values to be set, and any other refusal stands."""
        metadata = {
            "label": op.get("label") or field_name,
            "type": "Picklist",
            "valueSet": {"restricted": True, "valueSetDefinition": {"sorted": False, "value": values}},
        }
        try:
            self._tooling(
                "sobjects/CustomField",
                method="POST",
                data={"FullName": f"{sobject}.{field_name}", "Metadata": metadata},
            )
        except CrmQueryError as exc:
            found = self._custom_field(sobject, field_name) if "DUPLICATE_DEVELOPER_NAME" in str(exc) else None
            if found is None:
                raise
            return found
        return None

    # ---- field-level security of the fields created here

    def _permission_set(self) -> str:
        """The Id of GTM Ops' permission set, created and assigned to the connected user when it is not yet."""
        found = self._query(f"SELECT Id FROM PermissionSet WHERE Name = {_quote(PERMISSION_SET)}")["records"]
        permission_set = found[0]["Id"] if found else None
        if permission_set is None:
            permission_set = self._insert(
                "PermissionSet",
                {
                    "Name": PERMISSION_SET,
                    "Label": PERMISSION_SET_LABEL,
                    "Description": "Read and edit on the lifecycle fields GTM Ops created.",
                },
                "create the permission set",
            )
        user = self._user_id()
        assigned = self._query(
            "SELECT Id FROM PermissionSetAssignment "
            f"WHERE PermissionSetId = {_quote(permission_set)} AND AssigneeId = {_quote(user)}"
        )["records"]
        if not assigned:
            self._insert(
                "PermissionSetAssignment",
                {"PermissionSetId": permission_set, "AssigneeId": user},
                "assign the permission set to this user",
            )
        return permission_set

    def _grant(self, permission_set: str, sobject: str, full_name: str) -> None:
        if self._grants(full_name, permission_set):
            return  # applied before: one grant per field
        self._insert(
            "FieldPermissions",
            {
                "ParentId": permission_set,
                "SobjectType": sobject,
                "Field": full_name,
                "PermissionsRead": True,
                "PermissionsEdit": True,
            },
            f"grant read and edit on {full_name}",
        )

    def _revoke(self, full_name: str) -> None:
        """The field's grant goes with it; the permission set stays: it may grant other fields, and the client's
        admin may have assigned it to people, who would lose it."""
        found = self._query(f"SELECT Id FROM PermissionSet WHERE Name = {_quote(PERMISSION_SET)}")["records"]
        for grant in self._grants(full_name, found[0]["Id"]) if found else []:
            with self._translate():
                self._client().restful(f"sobjects/FieldPermissions/{grant}", method="DELETE")

    def _grants(self, full_name: str, permission_set: str) -> list[str]:
        rows = self._query(
            f"SELECT Id FROM FieldPermissions WHERE ParentId = {_quote(permission_set)} AND Field = {_quote(full_name)}"
        )["records"]
        return [r["Id"] for r in rows]

    def _user_id(self) -> str:
        """The connected user, from the identity URL the versions resource names (/id/<org Id>/<user Id>)."""
        identity = str((self._rest("") or {}).get("identity") or "")
        user = identity.rstrip("/").rsplit("/", 1)[-1]
        if not _USER_ID.match(user):
            raise CrmMalformedResponse(
                f"Salesforce did not say which user is connected (identity {identity!r}): the fields created cannot "
                "be granted to it.",
                platform="salesforce",
            )
        return user

    def _insert(self, sobject: str, record: dict[str, Any], what: str) -> str:
        try:
            with self._translate():
                created = self._client().restful(f"sobjects/{sobject}/", method="POST", json=record) or {}
        except CrmError as exc:
            if "INSUFFICIENT_ACCESS" not in str(exc):
                raise
            raise CrmQueryError(
                f"Salesforce did not let this user {what} ({exc}). A field created through the API is readable by "
                f"nobody until a permission set grants it, and GTM Ops grants its fields through the permission set "
                f"“{PERMISSION_SET_LABEL}” ({PERMISSION_SET}): ask the client's Salesforce admin to give this user "
                "the Manage Profiles and Permission Sets and Assign Permission Sets permissions, then apply again.",
                platform="salesforce",
            ) from None
        if not created.get("id"):
            raise CrmMalformedResponse(f"Salesforce answered a {sobject} create without its Id.", platform="salesforce")
        return str(created["id"])

    def _save(self, value_set: ValueSet) -> None:
        if not value_set.changed:
            return
        body: dict[str, Any] = {"Metadata": value_set.metadata}
        if value_set.sobject == "CustomField":
            body["FullName"] = value_set.name
        self._tooling(f"sobjects/{value_set.sobject}/{value_set.id}", method="PATCH", data=body)
        value_set.original = copy.deepcopy(value_set.metadata)

    def _forget_metadata(self) -> None:
        """Describe and stages read before a write are stale after it: the next read asks Salesforce again."""
        for cache in (self._describes, self._fields, self._pipelines, self._stage_attrs):
            cache.clear()
        self.__dict__.pop("_counted_aggregates", None)


# ---- the operation and state shapes


def _target(op: dict[str, Any]) -> tuple[str, str]:
    from .salesforce import OBJECTS  # the connector imports this module

    if not isinstance(op, dict):
        raise CrmQueryError("A configuration operation must be an object.")
    kind = check_kind(str(op.get("object")))
    return OBJECTS[kind], _ident(str(op.get("field") or ""))


def _ident(name: str) -> str:
    from .salesforce import ident

    return ident(name)


def _quote(value: str) -> str:
    from .salesforce import soql_string

    return soql_string(value)


def _api_value(op: dict[str, Any]) -> str:
    value = op.get("value")
    if not isinstance(value, str) or not value.strip():
        raise CrmQueryError(f"Operation {op.get('id', '?')} ({op.get('kind')}) names no picklist value.")
    return value


def _active(value: dict[str, Any]) -> bool:
    return value.get("isActive") is not False


def _state(value: dict[str, Any], stage: bool, active: bool) -> dict[str, Any]:
    probability = value.get("probability") if stage else None
    if probability is not None and not 0 <= float(probability) <= 100:
        raise CrmMalformedResponse(
            f"Salesforce gives stage {value['valueName']!r} a probability of {probability}: a probability is 0 to "
            "100, so this reading is not used.",
            platform="salesforce",
        )
    return {
        "label": value.get("label") or value["valueName"],
        "active": active,
        "probability": None if probability is None else round(float(probability)),
    }


def _value_state(op: dict[str, Any], state: Any) -> dict[str, Any] | None:
    where = f"operation {op.get('id', '?')} ({op.get('kind')})"
    if state is None:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("label"), str) or not state["label"].strip():
        raise CrmQueryError(f"The state for {where} needs a label.")
    if not isinstance(state.get("active"), bool):
        raise CrmQueryError(f"The state for {where} needs active true or false.")
    probability = state.get("probability")
    if probability is not None and (
        isinstance(probability, bool) or not isinstance(probability, int | float) or not 0 <= probability <= 100
    ):
        raise CrmQueryError(f"The probability for {where} is {probability!r}: a probability is 0 to 100.")
    return {
        "label": state["label"],
        "active": state["active"],
        "probability": None if probability is None else round(probability),
    }


def _field_state(op: dict[str, Any], state: Any) -> dict[str, Any] | None:
    where = f"operation {op.get('id', '?')} (create_field {op.get('field')})"
    if state is None:
        return None
    if not isinstance(state, dict) or state.get("type") != "picklist":
        raise CrmUnsupported(f"Salesforce fields are created here as picklists only ({where}).", platform="salesforce")
    values = state.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise CrmQueryError(f"The state for {where} needs a list of value labels.")
    return state


def _new_value(op: dict[str, Any], api_value: str, state: dict[str, Any], stage: bool) -> dict[str, Any]:
    value: dict[str, Any] = {"valueName": api_value, "label": state["label"], "default": False, "isActive": None}
    if stage:
        # the plan carries no closed/won flags for a new stage: a 100% stage is the won one, others are open
        probability = state["probability"]
        won = bool(op.get("won", probability == 100))
        closed = bool(op.get("closed", won))
        value.update(
            probability=probability,
            closed=closed,
            won=won,
            forecastCategory="Closed" if won else "Omitted" if closed else _forecast(probability),
        )
    return value


def _forecast(probability: int | None) -> str:
    p = probability or 0
    return "Commit" if p >= 90 else "BestCase" if p >= 60 else "Pipeline"


def _listed(process: ValueSet) -> list[dict[str, Any]]:
    return process.values


def _process_values(metadata: dict[str, Any], api_value: str) -> bool:
    return any(str(v.get("valueName", "")).lower() == api_value.lower() for v in metadata.get("values") or [])


def _drop(values: list[dict[str, Any]], api_value: str) -> None:
    values[:] = [v for v in values if str(v.get("valueName", "")).lower() != api_value.lower()]
