"""Configuration writes on the HubSpot sandbox, in the wire format hubspot-api-client speaks, and token introspection.

Answered before the read-only portal (see `server.SandboxServer.extensions`):
  GET    /oauth/v1/access-tokens/{token}                      the token's hub, app and scopes (no bearer needed)
  POST   /crm/v3/properties/{objectType}                      create a property (options included)
  PATCH  /crm/v3/properties/{objectType}/{name}               label and/or options (the list replaces the old one)
  DELETE /crm/v3/properties/{objectType}/{name}               archive a custom property
  POST   /crm/v3/pipelines/{objectType}/{pipelineId}/stages   create a stage: metadata.probability as "0.25"
  PATCH  /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}   label, metadata, archived
  DELETE /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}   archive a stage
and, once a pipeline of an object was written, GET /crm/v3/pipelines/{objectType}[...] from the written state.

Scopes are HubSpot's: properties need `crm.schemas.{object}.write`, deal pipelines `crm.objects.deals.write`,
ticket pipelines `tickets`. A profile with `read_only=True` grants the read scopes only, and every write answers
403 MISSING_SCOPES. State lives for the life of the process (the sandbox org is in memory); records are never
touched: a new option or stage holds no record, a relabelled one keeps its records. `by_method` counts every API
request the portal was sent (faults aside) by HTTP method, so a test proves a dry run sent no write.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from .hsschema import HsProp, lifecycle_pipeline, pipeline_body
from .server import Request, Response

if TYPE_CHECKING:
    from .hubspot import HubSpotSandbox

WRITES = ("POST", "PATCH", "PUT", "DELETE")
READ_SCOPES = (
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.companies.read",
    "crm.objects.deals.read",
    "tickets",
    "crm.schemas.contacts.read",
    "crm.schemas.companies.read",
    "crm.schemas.deals.read",
    "crm.schemas.custom.read",
)
PROPERTY_SCOPES = {
    "contacts": "crm.schemas.contacts.write",
    "companies": "crm.schemas.companies.write",
    "deals": "crm.schemas.deals.write",
    "tickets": "crm.schemas.tickets.write",
}
PIPELINE_SCOPES = {"deals": "crm.objects.deals.write", "tickets": "tickets"}
WRITE_SCOPES = (*PROPERTY_SCOPES.values(), "crm.objects.deals.write")


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    return Response.json(
        {"status": "error", "message": message, "correlationId": "sandbox", "category": category, **extra}, status
    )


def _missing(scope: str) -> Response:
    return _error(
        403,
        "This app hasn't been granted all required scopes to make this call.",
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
    )


def _bad(message: str) -> Response:
    return _error(400, message, "VALIDATION_ERROR")


class HubSpotWrites:
    def __init__(self, server: HubSpotSandbox) -> None:
        self.server = server
        self.pipelines: dict[str, list[dict[str, Any]]] = {}  # object type -> pipeline bodies, once written
        self.by_method: Counter[str] = Counter()
        self._ids = itertools.count(90_000_001)
        self._lock = threading.Lock()

    @property
    def scopes(self) -> list[str]:
        return list(READ_SCOPES) + ([] if self.server.model.profile.read_only else list(WRITE_SCOPES))

    def answer(self, req: Request) -> Response | None:
        """The response for a request this module serves, or None to leave it to the portal."""
        self.by_method[req.method] += 1
        parts = req.path.strip("/").split("/")
        if parts[:3] == ["oauth", "v1", "access-tokens"] and len(parts) == 4 and req.method == "GET":
            return self._introspect(parts[3])
        if parts[:2] != ["crm", "v3"] or len(parts) < 4 or parts[2] not in ("properties", "pipelines"):
            return None
        if req.headers.get("authorization", "") != f"Bearer {self.server.access_token}":
            return None  # the portal answers 401
        object_type = self.server.canonical.get(parts[3], parts[3])
        if object_type not in self.server.props:
            return None
        if req.method not in WRITES:
            if parts[2] == "pipelines" and req.method == "GET" and object_type in self.pipelines:
                return self._read_pipelines(object_type, parts[4:])
            return None
        try:
            body = req.json() if req.body else {}
        except json.JSONDecodeError:
            return _bad("Invalid input JSON on line 1")
        if not isinstance(body, dict):
            return _bad("Invalid input JSON: expected an object")
        with self._lock:
            if parts[2] == "properties":
                if self.server.model.profile.read_only:
                    return _missing(PROPERTY_SCOPES.get(object_type, "crm.schemas.custom.write"))
                return self._property(req.method, object_type, parts[4:], body)
            if self.server.model.profile.read_only:
                return _missing(PIPELINE_SCOPES.get(object_type, "crm.objects.custom.write"))
            return self._stage(req.method, object_type, parts[4:], body)

    # ---- token introspection

    def _introspect(self, token: str) -> Response:
        if token != self.server.access_token:
            return _error(404, "Token not found", "NOT_FOUND")
        return Response.json(
            {
                "token": token,
                "user": "integration@sandbox.example",
                "hub_domain": "sandbox.hubspot.example",
                "scopes": self.scopes,
                "hub_id": self.server.credentials()["portal_id"],
                "app_id": 1_234_567,
                "expires_in": 1800,
                "user_id": 1_000_001,
                "token_type": "access",
            }
        )

    # ---- properties

    def _property(self, method: str, object_type: str, rest: list[str], body: dict[str, Any]) -> Response:
        props = self.server.props[object_type]
        if method == "POST" and not rest:
            name = str(body.get("name") or "")
            missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
            if missing:
                return _bad(f"Property is missing required fields: {', '.join(missing)}")
            if name in props:
                return _error(409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
            prop = HsProp(
                name,
                str(body["label"]),
                str(body["type"]),
                str(body["fieldType"]),
                str(body["groupName"]),
                lambda r: None,  # a new property: no record holds a value
                custom=True,
                description=str(body.get("description") or ""),
            )
            bad = self._set_options(prop, body.get("options"))
            if bad is not None:
                return bad
            props[name] = prop
            return Response.json(prop.definition(), 201)
        if len(rest) != 1 or rest[0] not in props:
            return _error(404, f"Unable to find property with name {rest[0] if rest else ''}", "OBJECT_NOT_FOUND")
        prop = props[rest[0]]
        if method == "DELETE":
            if not prop.custom:
                return _bad(f"Property {prop.name} is a HubSpot-defined property and can't be archived")
            del props[prop.name]
            return Response(204)
        if method != "PATCH":
            return _error(405, f"{method} is not supported here", "VALIDATION_ERROR")
        if "label" in body and body["label"]:
            prop.label = str(body["label"])
        if "options" in body:
            bad = self._set_options(prop, body["options"])
            if bad is not None:
                return bad
        return Response.json(prop.definition())

    @staticmethod
    def _set_options(prop: HsProp, options: Any) -> Response | None:
        """HubSpot replaces the whole option list with the one sent, ordered by displayOrder."""
        if options is None:
            return None
        if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
            return _bad("options must be a list of objects")
        seen: set[str] = set()
        for o in options:
            if not o.get("label") or o.get("value") in (None, ""):
                return _bad("Each option needs a label and a value")
            if str(o["value"]) in seen:
                return _bad(f"Duplicate option value {o['value']!r}")
            seen.add(str(o["value"]))
        ordered = sorted(enumerate(options), key=lambda p: (p[1].get("displayOrder", p[0]), p[0]))
        prop.options = tuple((str(o["value"]), str(o["label"])) for _, o in ordered)
        prop.hidden_options = frozenset(str(o["value"]) for _, o in ordered if o.get("hidden"))
        return None

    # ---- pipeline stages

    def _bodies(self, object_type: str) -> list[dict[str, Any]]:
        if object_type not in self.pipelines:
            schema = self.server.model.schema
            pipelines = {"deals": schema.deal_pipelines, "tickets": schema.ticket_pipelines}.get(object_type) or (
                lifecycle_pipeline(self.server.model, object_type),
            )
            self.pipelines[object_type] = [
                copy.deepcopy(pipeline_body(pl, object_type, i)) for i, pl in enumerate(pipelines)
            ]
        return self.pipelines[object_type]

    def _read_pipelines(self, object_type: str, rest: list[str]) -> Response:
        def listed(body: dict[str, Any]) -> dict[str, Any]:
            return {**body, "stages": [s for s in body["stages"] if not s["archived"]]}

        bodies = [listed(b) for b in self._bodies(object_type)]
        if not rest:
            return Response.json({"results": bodies})
        match = [b for b in bodies if b["id"] == rest[0]]
        if not match or len(rest) > 2 or (len(rest) == 2 and rest[1] != "stages"):
            return _error(404, f"Unable to find pipeline {rest[0]}", "OBJECT_NOT_FOUND")
        return Response.json({"results": match[0]["stages"]} if len(rest) == 2 else match[0])

    def _stage(self, method: str, object_type: str, rest: list[str], body: dict[str, Any]) -> Response:
        pipeline = next((p for p in self._bodies(object_type) if rest and p["id"] == rest[0]), None)
        if pipeline is None or len(rest) < 2 or rest[1] != "stages" or len(rest) > 3:
            return _error(404, f"Unable to find pipeline {rest[0] if rest else ''}", "OBJECT_NOT_FOUND")
        stages = pipeline["stages"]
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            return _bad("metadata must be an object")
        if object_type == "deals" and metadata and "probability" in metadata:
            try:
                probability = float(metadata["probability"])
            except (TypeError, ValueError):
                return _bad(f"Invalid probability {metadata['probability']!r}: a number between 0.0 and 1.0")
            if not 0.0 <= probability <= 1.0:
                return _bad(f"Invalid probability {metadata['probability']!r}: a number between 0.0 and 1.0")
        if method == "POST" and len(rest) == 2:
            if not body.get("label") or body.get("displayOrder") is None:
                return _bad("A stage needs a label and a displayOrder")
            if object_type == "deals" and "probability" not in (metadata or {}):
                return _bad("Deal stages require metadata.probability")
            if any(s["label"].lower() == str(body["label"]).lower() and not s["archived"] for s in stages):
                return _bad(f"A stage labelled {body['label']!r} already exists in this pipeline")
            stage = {
                "id": str(next(self._ids)),
                "label": str(body["label"]),
                "displayOrder": int(body["displayOrder"]),
                "metadata": {k: str(v) for k, v in (metadata or {}).items()},
                "createdAt": "2026-01-01T00:00:00.000Z",
                "updatedAt": "2026-01-01T00:00:00.000Z",
                "archived": False,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            }
            stages.append(stage)
            return Response.json(stage, 201)
        stage = next((s for s in stages if len(rest) == 3 and s["id"] == rest[2]), None)
        if stage is None:
            return _error(404, f"Unable to find stage {rest[2] if len(rest) == 3 else ''}", "OBJECT_NOT_FOUND")
        if method == "DELETE":
            stage["archived"] = True
            return Response(204)
        if method != "PATCH":
            return _error(405, f"{method} is not supported here", "VALIDATION_ERROR")
        if body.get("label"):
            stage["label"] = str(body["label"])
        if body.get("displayOrder") is not None:
            stage["displayOrder"] = int(body["displayOrder"])
        if metadata:
            stage["metadata"] = {**stage["metadata"], **{k: str(v) for k, v in metadata.items()}}
        if body.get("archived") is not None:
            stage["archived"] = bool(body["archived"])
        return Response.json(stage)
