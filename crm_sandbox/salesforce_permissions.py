"""Field-level security on the Salesforce sandbox: the permission sets that make a custom field readable, in the
REST wire format simple-salesforce's sObject calls speak.

A real org gives a field created through the Tooling or Metadata API no field-level security: no profile or
permission set grants it, so every user, the integration user included, finds it missing from describe and SOQL
answers INVALID_FIELD. Here such a field (salesforce_tooling's `created`) is shown to the connected user once a
FieldPermissions row with PermissionsRead names it on a PermissionSet assigned to that user.

  POST   /services/data/vXX.X/sobjects/PermissionSet            {"Name", "Label", "Description"}
  POST   /services/data/vXX.X/sobjects/PermissionSetAssignment  {"PermissionSetId", "AssigneeId"}
  POST   /services/data/vXX.X/sobjects/FieldPermissions         {"ParentId", "SobjectType", "Field",
                                                                  "PermissionsRead", "PermissionsEdit"}
  DELETE /services/data/vXX.X/sobjects/<one of the three>/<Id>  204 (a permission set takes its rows with it)
A create answers 201 {"id", "success": true, "errors": []}; the three are read with SOQL (query?q=) like any sObject.
Writing them needs Manage Profiles and Permission Sets (an assignment: Assign Permission Sets); a profile's
`withheld_permissions` takes those away, and the org answers 400 INSUFFICIENT_ACCESS_OR_READONLY.
"""

from __future__ import annotations

import itertools
import re
import threading
from typing import TYPE_CHECKING, Any

from .server import Request, Response, SandboxError
from .sfschema import SfField, SfObject, sf_id

if TYPE_CHECKING:
    from .salesforce import SalesforceSandbox

COLUMNS = {
    "PermissionSet": {"Id": "id", "Name": "string", "Label": "string", "Description": "string", "IsCustom": "boolean"},
    "PermissionSetAssignment": {"Id": "id", "PermissionSetId": "reference", "AssigneeId": "reference"},
    "FieldPermissions": {
        "Id": "id",
        "ParentId": "reference",
        "SobjectType": "string",
        "Field": "string",
        "PermissionsRead": "boolean",
        "PermissionsEdit": "boolean",
    },
}
PREFIXES = {"PermissionSet": "0PS", "PermissionSetAssignment": "0Pa", "FieldPermissions": "01k"}
NEEDS = {  # the user permission each object's writes need
    "PermissionSet": "PermissionsManageProfilesPermissionsets",
    "FieldPermissions": "PermissionsManageProfilesPermissionsets",
    "PermissionSetAssignment": "PermissionsAssignPermissionSets",
}
_PATH = re.compile(
    r"^/services/data/v\d+\.\d/sobjects/(PermissionSet|PermissionSetAssignment|FieldPermissions)/?"
    r"(?:([A-Za-z0-9]{15}|[A-Za-z0-9]{18})/?)?$"
)
_DEVELOPER_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*$")


def _error(code: str, message: str, fields: tuple[str, ...] = (), status: int = 400) -> SandboxError:
    return SandboxError(Response.json([{"message": message, "errorCode": code, "fields": list(fields)}], status))


class FieldSecurity:
    """PermissionSet, PermissionSetAssignment and FieldPermissions rows of one SalesforceSandbox, and which fields
    they let the connected user read."""

    def __init__(self, server: SalesforceSandbox) -> None:
        self.server = server
        self.objects = {name: _table(name, columns) for name, columns in COLUMNS.items()}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def rows(self, name: str) -> list[dict[str, Any]]:
        return self.objects[name].rows  # type: ignore[return-value]

    def readable(self, full_name: str) -> bool:
        """Whether a FieldPermissions row lets the connected user read `<Object>.<Field>`."""
        from .salesforce import USER_ID

        with self._lock:
            mine = {a["PermissionSetId"] for a in self.rows("PermissionSetAssignment") if a["AssigneeId"] == USER_ID}
            return any(
                p["ParentId"] in mine and p["PermissionsRead"] and p["Field"].lower() == full_name.lower()
                for p in self.rows("FieldPermissions")
            )

    # ---- routes (an extension: server._extensions)

    def answer(self, req: Request) -> Response | None:
        m = _PATH.match(req.path)
        if m is None or req.method not in ("POST", "DELETE") or not self.server._session_ok(req):
            return None  # the org answers: reads through SOQL, 401 INVALID_SESSION_ID, 405
        name, record_id = m.group(1), m.group(2)
        with self.server._lock:  # a write like any other: counted by method and against the daily limit
            self.server.by_method[req.method] += 1
            self.server.api_used += 1
        withheld = {p.lower() for p in self.server.model.profile.withheld_permissions}
        if NEEDS[name].lower() in withheld:
            raise _error("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
        if req.method == "POST" and record_id is None:
            with self._lock:
                row = self._create(name, _body(req))
            response = Response.json({"id": row["Id"], "success": True, "errors": []}, 201)
        elif req.method == "DELETE" and record_id is not None:
            with self._lock:
                self._delete(name, record_id)
            response = Response(204)
        else:
            raise _error("METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed here.", status=405)
        self.server.tooling.show_readable()  # after the lock: the tooling takes its own, then asks readable()
        return response

    def _create(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        columns = COLUMNS[name]
        unknown = next((k for k in body if k not in columns or k == "Id"), None)
        if unknown is not None:
            raise _error("INVALID_FIELD", f"No such column '{unknown}' on sobject of type {name}")
        row = {column: body.get(column, False if kind == "boolean" else None) for column, kind in columns.items()}
        if name == "PermissionSet":
            self._check_permission_set(row)
        elif name == "PermissionSetAssignment":
            self._check_assignment(row)
        else:
            self._check_field_permissions(row)
        row["Id"] = sf_id(PREFIXES[name], next(self._ids))
        self.rows(name).append(row)
        return row

    def _check_permission_set(self, row: dict[str, Any]) -> None:
        missing = [k for k in ("Name", "Label") if not row[k]]
        if missing:
            raise _error(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", tuple(missing)
            )
        if not isinstance(row["Name"], str) or not _DEVELOPER_NAME.match(row["Name"]) or row["Name"].endswith("_"):
            raise _error(
                "FIELD_INTEGRITY_EXCEPTION",
                "The API Name can only contain underscores and alphanumeric characters, must begin with a letter, "
                "not include spaces, not end with an underscore, and not contain two consecutive underscores.",
                ("Name",),
            )
        taken = next((p for p in self.rows("PermissionSet") if p["Name"].lower() == row["Name"].lower()), None)
        if taken is not None:
            raise _error(
                "DUPLICATE_VALUE",
                f"duplicate value found: Name duplicates value on record with id: {taken['Id']}",
                ("Name",),
            )
        row["IsCustom"] = True

    def _check_assignment(self, row: dict[str, Any]) -> None:
        from .salesforce import USER_ID

        self._permission_set(row["PermissionSetId"], "PermissionSetId")
        if row["AssigneeId"] not in (USER_ID, USER_ID[:15]):
            raise _error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ("AssigneeId",))
        row["AssigneeId"] = USER_ID
        if any(
            (a["PermissionSetId"], a["AssigneeId"]) == (row["PermissionSetId"], USER_ID)
            for a in self.rows("PermissionSetAssignment")
        ):
            raise _error(
                "DUPLICATE_VALUE", "duplicate value found: <unknown> duplicates value on record with id: <unknown>"
            )

    def _check_field_permissions(self, row: dict[str, Any]) -> None:
        self._permission_set(row["ParentId"], "ParentId")
        field = row["Field"] if isinstance(row["Field"], str) else ""
        obj_name, _, field_name = field.partition(".")
        if not self.server.tooling.has_field(obj_name, field_name):
            raise _error(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Field Name: bad value for restricted picklist field: {row['Field']}",
                ("Field",),
            )
        if row["SobjectType"] != obj_name:
            raise _error(
                "FIELD_INTEGRITY_EXCEPTION",
                f"SobjectType {row['SobjectType']!r} is not the object of {field}",
                ("SobjectType",),
            )
        if not all(isinstance(row[k], bool) for k in ("PermissionsRead", "PermissionsEdit")):
            raise _error("JSON_PARSER_ERROR", "PermissionsRead and PermissionsEdit are true or false")
        if row["PermissionsEdit"] and not row["PermissionsRead"]:
            raise _error("FIELD_INTEGRITY_EXCEPTION", "Permission Edit depends on permission(s): Read")
        if any(
            (p["ParentId"], p["Field"].lower()) == (row["ParentId"], field.lower())
            for p in self.rows("FieldPermissions")
        ):
            raise _error(
                "DUPLICATE_VALUE", "duplicate value found: <unknown> duplicates value on record with id: <unknown>"
            )

    def _permission_set(self, record_id: Any, column: str) -> None:
        if not any(p["Id"] == record_id for p in self.rows("PermissionSet")):
            raise _error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (column,))

    def _delete(self, name: str, record_id: str) -> None:
        rows = self.rows(name)
        found = next((r for r in rows if r["Id"][:15] == record_id[:15]), None)  # a 15- or 18-character id
        if found is None:
            raise _error("NOT_FOUND", "The requested resource does not exist", status=404)
        rows.remove(found)
        if name == "PermissionSet":  # its grants and assignments go with it
            for child, column in (("FieldPermissions", "ParentId"), ("PermissionSetAssignment", "PermissionSetId")):
                self.objects[child].rows = [r for r in self.rows(child) if r[column] != found["Id"]]


def _table(name: str, columns: dict[str, str]) -> SfObject:
    obj = SfObject(name, PREFIXES[name], name, name, None, rows=[])
    for column, kind in columns.items():
        obj.fields[column] = SfField(column, kind, column, lambda r, k=column: r.get(k), static=column)
    return obj


def _body(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        raise _error("JSON_PARSER_ERROR", "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _error("JSON_PARSER_ERROR", "Expected a JSON object for the record")
    return body
