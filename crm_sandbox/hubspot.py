"""A local server speaking the HubSpot CRM v3 subset the connectors call.

Endpoints (bearer private-app token): GET /crm/v3/schemas[/{objectType}] (also under
/crm-object-schemas/v3/, as hubspot-api-client calls it: the custom object of the
customer_stages_on_custom_object gotcha, objectTypeId 2-7654321, name customer_health, whose records
are served like any object type), GET /crm/v3/properties/{objectType}[/{name}],
GET /crm/v3/pipelines/{objectType}[/{id}[/stages]] (deals, tickets, and the contacts/companies
lifecycle-stage pipeline), GET /crm/v3/objects/{objectType} pages (limit, after, properties,
propertiesWithHistory), GET /crm/v3/objects/{objectType}/{id}, and
POST /crm/v3/objects/{objectType}/search (filterGroups with EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN,
NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY; sorts on createdate / hs_object_id; limit <= 200; after;
the 10,000-result ceiling). Object types: contacts, companies, deals, tickets (or 0-1, 0-2, 0-3, 0-5).

Non-search answers carry X-HubSpot-RateLimit-* headers computed from rolling windows
(`rate_limit`, default 190 per 10 s; `daily_limit`); search answers carry none, as HubSpot documents.
With `enforce_rate_limits=True` the windows also refuse requests with HubSpot's 429 bodies
(TEN_SECONDLY_ROLLING, or SECONDLY for search at `search_rate_limit`, default 5 per second).
Search semantics worth knowing: NEQ and NOT_IN also match records without the property; string
comparisons ignore case.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import deque
from typing import Any

from .clients import hubspot_client
from .dates import hs_datetime, parse_iso
from .faults import Fault
from .hsschema import (
    CANONICAL,
    CUSTOM_OBJECT,
    CUSTOM_OBJECT_TYPE_ID,
    DEFAULT_PROPERTIES,
    OBJECT_TYPES,
    HsProp,
    build_properties,
    custom_schema,
    lifecycle_pipeline,
    pipeline_body,
)
from .orgschema import Pipeline
from .query import Condition, DateNull, DateRange, MatchSet, Static
from .server import Request, Response, SandboxError, SandboxServer

SEARCH_CEILING = 10_000
OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
RATE_LIMIT_BODIES = {
    "TEN_SECONDLY_ROLLING": {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "policyName": "TEN_SECONDLY_ROLLING",
    },
    "SECONDLY": {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT",
    },
    "DAILY": {
        "status": "error",
        "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT",
        "policyName": "DAILY",
    },
}
UNAUTHORIZED = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    return Response.json(
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        },
        status,
    )


def _bad(message: str) -> SandboxError:
    return SandboxError(_error(400, message, "VALIDATION_ERROR"))


def _no_property(name: str) -> SandboxError:
    """What HubSpot answers when a request names a property this user cannot see (or that does not exist)."""
    return SandboxError(
        _error(
            400,
            f'There was a problem with the request. Property "{name}" does not exist',
            "VALIDATION_ERROR",
            errors=[
                {
                    "message": f'Property "{name}" does not exist',
                    "code": "PROPERTY_DOESNT_EXIST",
                    "context": {"propertyName": [name]},
                }
            ],
        )
    )


def _schemas_path(parts: list[str]) -> bool:
    # hubspot-api-client calls /crm-object-schemas/v3/schemas; the docs also show /crm/v3/schemas
    return parts[:3] in (["crm", "v3", "schemas"], ["crm-object-schemas", "v3", "schemas"])


def _missing_scopes(scope: str) -> Response:
    return _error(
        403,
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes"
        " here: https://developers.hubspot.com/scopes.",
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


class RollingWindow:
    def __init__(self, size: int, seconds: float) -> None:
        self.size = size
        self.seconds = seconds
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        while self._hits and now - self._hits[0] >= self.seconds:
            self._hits.popleft()

    def hit(self) -> bool:
        """Record a request; False when the window was already full."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            if len(self._hits) >= self.size:
                return False
            self._hits.append(now)
            return True

    def remaining(self) -> int:
        with self._lock:
            self._trim(time.monotonic())
            return max(0, self.size - len(self._hits))


class HubSpotSandbox(SandboxServer):
    """A HubSpot portal on a loopback port.

    >>> with HubSpotSandbox(profile="messy", seed=7, size=100_000) as hs:
    ...     client = hs.client()                # a real hubspot.HubSpot
    ...     client.crm.pipelines.pipelines_api.get_all("deals")
    """

    platform = "hubspot"
    default_fault_path = r"^/crm/"

    def __init__(
        self,
        *,
        access_token: str | None = None,
        rate_limit: tuple[int, float] = (190, 10.0),
        search_rate_limit: tuple[int, float] = (5, 1.0),
        daily_limit: int = 500_000,
        enforce_rate_limits: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        digest = hashlib.blake2b(f"hubspot:{self.model.seed}".encode(), digest_size=16).digest()
        self.access_token = access_token or f"pat-na1-{uuid.UUID(bytes=digest)}"
        self._portal = 20_000_000 + self.model.seed % 1_000_000
        self.props = build_properties(self.model)
        # object types by every name a request may use: contacts or 0-1; a custom object by its
        # objectTypeId (2-...), its fullyQualifiedName (p<portal>_name) or its name
        self.types = dict(OBJECT_TYPES)
        self.canonical = dict(CANONICAL)
        if CUSTOM_OBJECT in self.props:
            for alias in (CUSTOM_OBJECT, CUSTOM_OBJECT_TYPE_ID, f"p{self._portal}_{CUSTOM_OBJECT}"):
                self.types[alias] = CUSTOM_OBJECT
                self.canonical[alias] = CUSTOM_OBJECT
        # field-level security: hidden properties are gone from the schema and refused by name in requests
        self.hidden: dict[str, set[str]] = {}
        for object_type, props in self.props.items():
            kinds = (object_type, self.types[object_type])
            self.hidden[object_type] = {n for n in props if self.model.profile.hides(kinds, n)}
            for n in self.hidden[object_type]:
                del props[n]
        self.window = RollingWindow(*rate_limit)
        self.search_window = RollingWindow(*search_rate_limit)
        self.daily_limit = daily_limit
        self.daily_used = 0
        self.enforce_rate_limits = enforce_rate_limits
        self._lock = threading.Lock()

    def client(self, **kwargs: Any) -> Any:
        """A real hubspot.HubSpot for this portal; see clients.hubspot_client."""
        return hubspot_client(self, **kwargs)

    def credentials(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "host": self.base_url, "portal_id": self._portal}

    # ---- kinds, faults, headers ----

    def classify(self, req: Request) -> str:
        parts = req.path.strip("/").split("/")
        if _schemas_path(parts):
            return "schemas"
        if parts[:2] != ["crm", "v3"] or len(parts) < 4:
            return "other"
        if parts[2] == "objects":
            if len(parts) == 5 and parts[4] == "search":
                return "search"
            if parts[4:] == ["batch", "read"]:
                return "batch_read"
            return "objects_list" if len(parts) == 4 else "object_get"
        return {"properties": "properties", "pipelines": "pipelines"}.get(parts[2], "other")

    def fault_response(self, fault: Fault, req: Request) -> Response:
        if fault.kind == "rate_limit":
            body = {**RATE_LIMIT_BODIES[fault.policy], "correlationId": str(uuid.uuid4())}
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            response = Response.json(body, 429, headers)
            if fault.policy != "SECONDLY":
                response.headers.update(self._limit_headers(remaining=0))
            return response
        if fault.kind in ("request_limit", "concurrent_limit"):
            return Response.json({**RATE_LIMIT_BODIES["DAILY"], "correlationId": str(uuid.uuid4())}, 429)
        if fault.kind == "expired_session":
            return _error(
                401, "The OAuth token used to make this call expired 1 hour(s) ago.", "EXPIRED_AUTHENTICATION"
            )
        status = fault.status or 500
        if status == 500:
            return self.internal_error()
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
        return Response.text(f"<html><body><h1>{status} {reason}</h1></body></html>", status, "text/html")

    def internal_error(self) -> Response:
        return _error(500, "internal error", "INTERNAL_ERROR")

    def _limit_headers(self, remaining: int | None = None) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self.daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window.seconds * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.window.size),
            "X-HubSpot-RateLimit-Remaining": str(self.window.remaining() if remaining is None else remaining),
            "X-HubSpot-RateLimit-Secondly": str(max(1, self.window.size // 10)),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(
                max(0, (self.window.remaining() if remaining is None else remaining) // 10)
            ),
        }

    def after_request(self, req: Request, kind: str, response: Response) -> None:
        if kind != "search" and req.path.startswith("/crm/") and response.status not in (401, 429):
            response.headers.update(self._limit_headers())

    # ---- routes ----

    def handle(self, req: Request) -> Response:
        auth = req.headers.get("authorization", "")
        if auth != f"Bearer {self.access_token}":
            return _error(401, UNAUTHORIZED, "INVALID_AUTHENTICATION")
        kind = self.classify(req)
        search = kind == "search"
        with self._lock:
            self.daily_used += 1
            daily_over = self.daily_used > self.daily_limit
        allowed = self.search_window.hit() if search else self.window.hit()
        if self.enforce_rate_limits and (daily_over or not allowed):
            policy = "DAILY" if daily_over else "SECONDLY" if search else "TEN_SECONDLY_ROLLING"
            return Response.json({**RATE_LIMIT_BODIES[policy], "correlationId": str(uuid.uuid4())}, 429)
        parts = req.path.strip("/").split("/")
        if _schemas_path(parts) and req.method == "GET":
            return self._schemas(parts[3:])
        if parts[:2] != ["crm", "v3"] or len(parts) < 4:
            return _error(404, "Not Found", "OBJECT_NOT_FOUND")
        area, object_type, rest = parts[2], parts[3], parts[4:]
        canonical = self.canonical.get(object_type, object_type)
        if self.model.profile.refuses(area, canonical, f"{area}/{canonical}"):
            return _missing_scopes("tickets" if canonical == "tickets" else f"crm.objects.{canonical}.read")
        if area == "properties" and req.method == "GET":
            return self._properties(req, object_type, rest)
        if area == "pipelines" and req.method == "GET":
            return self._pipelines(object_type, rest)
        if area == "objects":
            if rest == ["search"] and req.method == "POST":
                return self._search(req, object_type)
            if rest == ["batch", "read"] and req.method == "POST":
                return self._batch_read(req, object_type)
            if not rest and req.method == "GET":
                return self._list(req, object_type)
            if len(rest) == 1 and req.method == "GET":
                return self._get(req, object_type, rest[0])
        return _error(
            405 if area in ("properties", "pipelines", "objects") else 404,
            f"{req.method} is not supported on {req.path} (the sandbox portal is read-only)",
            "VALIDATION_ERROR" if area in ("properties", "pipelines", "objects") else "OBJECT_NOT_FOUND",
        )

    def _type(self, object_type: str) -> str:
        if object_type not in self.types:
            raise _bad(f"Unable to infer object type from: {object_type}")
        return self.canonical.get(object_type, object_type)

    def _schemas(self, rest: list[str]) -> Response:
        """GET /crm/v3/schemas[/{objectType}]: the portal's custom objects (customer_stages_on_custom_object)."""
        if self.model.profile.refuses("schemas"):
            return _missing_scopes("crm.schemas.custom.read")
        schemas = []
        if CUSTOM_OBJECT in self.props:
            schemas.append(custom_schema(self.props[CUSTOM_OBJECT], self._portal))
        if not rest:
            return Response.json({"results": schemas})
        match = [s for s in schemas if rest[0] in (s["objectTypeId"], s["fullyQualifiedName"], s["name"])]
        if not match or len(rest) > 1:
            return _error(404, f"Unable to find object schema {rest[0]}", "OBJECT_NOT_FOUND")
        return Response.json(match[0])

    def _properties(self, req: Request, object_type: str, rest: list[str]) -> Response:
        props = self.props[self._type(object_type)]
        if rest:
            prop = props.get(rest[0])
            if prop is None or len(rest) > 1:
                return _error(404, f"Unable to find property with name {rest[0]}", "OBJECT_NOT_FOUND")
            return Response.json(prop.definition())
        if req.arg("archived") == "true":
            return Response.json({"results": []})
        return Response.json({"results": [p.definition() for p in props.values()]})

    def _pipelines(self, object_type: str, rest: list[str]) -> Response:
        name = self._type(object_type)
        pipelines: tuple[Pipeline, ...] = {
            "deals": self.model.schema.deal_pipelines,
            "tickets": self.model.schema.ticket_pipelines,
        }.get(name) or (lifecycle_pipeline(self.model, name),)
        bodies = [pipeline_body(pl, name, i) for i, pl in enumerate(pipelines)]
        if not rest:
            return Response.json({"results": bodies})
        match = [b for b in bodies if b["id"] == rest[0]]
        if not match or len(rest) > 2 or (len(rest) == 2 and rest[1] != "stages"):
            return _error(404, f"Unable to find pipeline {rest[0]}", "OBJECT_NOT_FOUND")
        return Response.json({"results": match[0]["stages"]} if len(rest) == 2 else match[0])

    # ---- objects ----

    def _names(self, req: Request, key: str) -> list[str] | None:
        values = req.query.get(key)
        if values is None:
            return None
        return [n.strip() for v in values for n in v.split(",") if n.strip()]

    def _list(self, req: Request, object_type: str) -> Response:
        name = self._type(object_type)
        table = self.model.sets[self.types[name]]
        history = self._names(req, "propertiesWithHistory")
        try:
            limit = int(req.arg("limit", "10") or 10)
            after = int(req.arg("after", "0") or 0)
        except ValueError:
            raise _bad("limit and after must be integers") from None
        limit = max(1, min(limit, 50 if history else 100))
        if req.arg("archived") == "true":
            return Response.json({"results": []})
        end = min(table.size, after + limit)
        results = [
            self._body(name, table.row_at(i), self._names(req, "properties"), history)
            for i in range(max(0, after), end)
        ]
        body: dict[str, Any] = {"results": results}
        if end < table.size:
            body["paging"] = {
                "next": {"after": str(end), "link": f"{self.base_url}/crm/v3/objects/{name}?after={end}"}
            }
        return Response.json(body)

    def _get(self, req: Request, object_type: str, object_id: str) -> Response:
        name = self._type(object_type)
        table = self.model.sets[self.types[name]]
        if not object_id.isdigit() or not 1 <= int(object_id) <= table.size:
            return _error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        row = table.row_at(int(object_id) - 1)
        return Response.json(
            self._body(name, row, self._names(req, "properties"), self._names(req, "propertiesWithHistory"))
        )

    def _batch_read(self, req: Request, object_type: str) -> Response:
        """POST /crm/v3/objects/{type}/batch/read: records by id, with `propertiesWithHistory` like a list page
        (at most 50 ids then, 100 otherwise). Unknown ids are left out (HubSpot answers 207 with errors)."""
        name = self._type(object_type)
        table = self.model.sets[self.types[name]]
        try:
            body = req.json() or {}
        except json.JSONDecodeError:
            raise _bad("Invalid input JSON on line 1") from None
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise _bad("Invalid input JSON: expected an object with inputs")
        if body.get("idProperty"):
            raise _bad("sandbox: idProperty is not supported (read by record id)")
        history = [str(n) for n in body.get("propertiesWithHistory") or []] or None
        most = 50 if history else 100
        if len(body["inputs"]) > most:
            raise _bad(f"Batch read accepts at most {most} inputs here, but got {len(body['inputs'])}")
        started = hs_datetime(self.model.as_of)
        results = []
        for item in body["inputs"]:
            object_id = str((item or {}).get("id", "")) if isinstance(item, dict) else ""
            if object_id.isdigit() and 1 <= int(object_id) <= table.size:
                row = table.row_at(int(object_id) - 1)
                results.append(self._body(name, row, [str(n) for n in body.get("properties") or []] or None, history))
        return Response.json({"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": started})

    def _body(
        self, name: str, row: dict[str, Any], wanted: list[str] | None, history: list[str] | None
    ) -> dict[str, Any]:
        props = self.props[name]
        for n in (wanted or []) + (history or []):
            if n in self.hidden[name]:
                raise _no_property(n)
        modified = "lastmodifieddate" if name == "contacts" else "hs_lastmodifieddate"
        names = [n for n in (wanted or DEFAULT_PROPERTIES[name]) if n in props]
        for always in ("createdate", "hs_createdate", "hs_object_id", modified):
            if always in props and always not in names:
                names.append(always)
        created, updated = hs_datetime(row["created"]), hs_datetime(row["dates"]["last_modified"])
        body: dict[str, Any] = {
            "id": str(row["index"] + 1),
            "properties": {n: props[n].get(row) for n in names},
            "createdAt": created,
            "updatedAt": updated,
            "archived": False,
        }
        if history:
            body["propertiesWithHistory"] = {
                n: self._history(props[n], row, created) for n in history if n in props
            }
        return body

    def _history(self, prop: HsProp, row: dict[str, Any], created: str | None) -> list[dict[str, Any]]:
        if prop.history:
            steps = [(opt, ms) for opt, ms in row["paths"].get(prop.history, []) if not opt.sf_only]
            newest_first = list(reversed(steps))
            tied = row.get("ties", {}).get(prop.history)
            if tied is not None and 0 < tied < len(steps):  # same instant: the earlier stage listed first
                at = len(steps) - 1 - tied
                newest_first[at], newest_first[at + 1] = newest_first[at + 1], newest_first[at]
            out = []
            for i, (opt, ms) in enumerate(newest_first):
                automated = (row["index"] + i) % 3 == 0
                entry: dict[str, Any] = {
                    "value": opt.hs,
                    "timestamp": hs_datetime(ms),
                    "sourceType": "AUTOMATION_PLATFORM" if automated else "CRM_UI",
                }
                if automated:
                    entry.update(sourceId="enrollmentId:987;actionExecutionIndex:0", sourceLabel="Workflow")
                else:
                    entry.update(
                        sourceId=f"userId:{1_000_001 + row['owner']}",
                        updatedByUserId=1_000_001 + row["owner"],
                    )
                out.append(entry)
            return out
        value = prop.get(row)
        return [] if value is None else [{"value": value, "timestamp": created, "sourceType": "CRM_UI"}]

    # ---- search ----

    def _search(self, req: Request, object_type: str) -> Response:
        name = self._type(object_type)
        table = self.model.sets[self.types[name]]
        try:
            body = req.json() or {}
        except json.JSONDecodeError:
            raise _bad("Invalid input JSON on line 1") from None
        if not isinstance(body, dict):
            raise _bad("Invalid input JSON: expected an object")
        if body.get("query"):
            raise _bad("sandbox: free-text query is not supported")
        limit = body.get("limit") or 10
        try:
            limit, after = int(limit), int(body.get("after") or 0)
        except (TypeError, ValueError):
            raise _bad("limit and after must be integers") from None
        if limit > 200:
            raise _bad(f"Page size must be less than or equal to 200, but was {limit}")
        if after + limit > SEARCH_CEILING:
            raise _bad(
                f"Paging beyond {SEARCH_CEILING} results is not supported by the search API (after={after})"
            )
        groups = body.get("filterGroups") or []
        if (
            len(groups) > 5
            or any(len(g.get("filters") or []) > 6 for g in groups)
            or sum(len(g.get("filters") or []) for g in groups) > 18
        ):
            raise _bad("Search allows at most 5 filterGroups, 6 filters per group and 18 filters in total")
        flt: list[list[Condition]] = []
        for group in groups or [{"filters": []}]:
            options: list[list[Condition]] = [[]]
            for f in group.get("filters") or []:
                alternatives = self._filter(name, f)
                options = [a + b for a in options for b in alternatives]
            flt.extend(options)
        descending = self._sorts(name, body.get("sorts") or [])
        for n in body.get("properties") or []:
            if n in self.hidden[name]:
                raise _no_property(n)
        ms = MatchSet(table, flt)
        items = ms.page(after, limit, descending)
        wanted = body.get("properties") or None
        results = [self._body(name, table.row(rank, k), wanted, None) for rank, k in items]
        out: dict[str, Any] = {"total": ms.total, "results": results}
        if after + len(items) < ms.total:
            nxt = str(after + len(items))
            out["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return Response.json(out)

    def _sorts(self, name: str, sorts: list[Any]) -> bool:
        descending = False
        for s in sorts[:1]:
            if isinstance(s, str):
                prop, descending = s.lstrip("-"), s.startswith("-")
            else:
                prop, descending = (
                    s.get("propertyName"),
                    str(s.get("direction", "ASCENDING")).upper() == "DESCENDING",
                )
            if prop in self.hidden[name]:
                raise _no_property(prop)
            if prop not in ("createdate", "hs_createdate", "hs_object_id"):
                raise _bad(f"sandbox: sorting by {prop} is not supported (createdate, hs_object_id)")
        return descending

    def _filter(self, name: str, f: dict[str, Any]) -> list[list[Condition]]:
        prop_name, op = f.get("propertyName"), str(f.get("operator", "EQ")).upper()
        prop = self.props[name].get(prop_name or "")
        if prop_name in self.hidden[name]:
            raise _no_property(prop_name)
        if prop is None:
            raise _bad(f'There was a problem with the request. Property "{prop_name}" does not exist')
        if op not in OPERATORS:
            raise _bad(f"Unknown operator {op}")
        values = f.get("values")
        value = f.get("value")
        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            present = op == "HAS_PROPERTY"
            if prop.date:
                return [[DateNull(prop.date, not present)]]
            if prop.static:
                return [
                    [Static(prop.static, lambda v, p=prop, w=present: (p.to_hs(v) not in (None, "")) == w)]
                ]
            if prop.nullness:
                return [[Static(prop.nullness, lambda v, w=present: bool(v) == w)]]
            return [[]] if present else [[Static("__never__", lambda v: False)]]
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            raise _bad(f"sandbox: {op} is not supported")
        if op in ("IN", "NOT_IN"):
            if not isinstance(values, list) or not values:
                raise _bad(f"{op} needs a non-empty values list")
        elif value is None:
            raise _bad(f"{op} needs a value")
        if prop.date:
            return self._date_filter(prop, op, value, values, f.get("highValue"))
        if prop.static:
            return [[Static(prop.static, _static_test(prop, op, value, values, f.get("highValue")))]]
        raise _bad(f"sandbox: filtering on {prop.name} supports only HAS_PROPERTY / NOT_HAS_PROPERTY")

    def _date_filter(
        self, prop: HsProp, op: str, value: Any, values: list[Any] | None, high: Any
    ) -> list[list[Condition]]:
        assert prop.date is not None
        is_index = prop.date == "index"

        def num(v: Any) -> int:
            try:
                text = str(v)
                n = int(text) if text.lstrip("-").isdigit() else parse_iso(text)
            except ValueError:
                raise _bad(f"Invalid value {v!r} for {prop.name}") from None
            return n - 1 if is_index else n

        field = prop.date
        if op in ("IN", "NOT_IN"):
            points = sorted({num(v) for v in values or []})
            if op == "IN":
                if len(points) > 100:
                    raise _bad("sandbox: at most 100 values in IN on a date or id")
                return [[DateRange(field, p, p + 1)] for p in points]
            return [[DateRange(field, p, p + 1, negate=True) for p in points]]
        v = num(value)
        ranges = {
            "EQ": (v, v + 1, False),
            "NEQ": (v, v + 1, True),
            "LT": (None, v, False),
            "LTE": (None, v + 1, False),
            "GT": (v + 1, None, False),
            "GTE": (v, None, False),
        }
        if op == "BETWEEN":
            if high is None:
                raise _bad("BETWEEN needs a highValue")
            return [[DateRange(field, v, num(high) + 1)]]
        lo, hi, negate = ranges[op]
        return [[DateRange(field, lo, hi, negate)]]


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _static_test(prop: HsProp, op: str, value: Any, values: list[Any] | None, high: Any):  # noqa: ANN202
    to_hs = prop.to_hs
    if op in ("EQ", "NEQ", "IN", "NOT_IN"):
        wanted = {_norm(str(v)) for v in (values if op in ("IN", "NOT_IN") else [value]) or []}
        positive = op in ("EQ", "IN")
        return lambda v: (_norm(to_hs(v)) in wanted) == positive if to_hs(v) is not None else not positive
    numeric = prop.type == "number"

    def key(v: Any) -> Any:
        if v is None:
            return None
        if numeric:
            try:
                return float(v)
            except ValueError:
                raise _bad(f"Invalid number {v!r} for {prop.name}") from None
        return _norm(str(v))

    lo = key(value)
    hi = key(high) if op == "BETWEEN" else None
    if op == "BETWEEN" and hi is None:
        raise _bad("BETWEEN needs a highValue")

    def test(v: Any) -> bool:
        x = key(to_hs(v))
        if x is None:
            return False
        return {
            "LT": lambda: x < lo,
            "LTE": lambda: x <= lo,
            "GT": lambda: x > lo,
            "GTE": lambda: x >= lo,
            "BETWEEN": lambda: lo <= x <= hi,
        }[op]()

    return test
