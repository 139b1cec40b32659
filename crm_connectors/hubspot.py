"""The HubSpot connector, on hubspot-api-client, with every request routed through the Guard.

hubspot-api-client builds one generated API client per package (objects, properties, pipelines), each
with its own urllib3 pool and its own ApiException class. Our `api_factory` wraps each REST client's
`request` so that every call gets a timeout, the budget, a rate-limit slot (searches in their own,
slower bucket), our retries (POST searches included: the library never retries them) and a check
that a 200 body is JSON (the library would hand back models with results=None). urllib3's own
retries are switched off so the counts are honest.

Counts use the search API with limit=1 and read `total`: one call per value, whatever the portal size.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.objects import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from hubspot.crm.schemas.exceptions import ApiException as SchemasApiException
from hubspot.discovery.discovery_base import DiscoveryBase

from .base import (
    STAGE_OBJECTS,
    ApiBudget,
    AuthMethod,
    CrmApiLimitExceeded,
    CrmAuthError,
    CrmBudgetExhausted,
    CrmConfigurationError,
    CrmConnector,
    CrmError,
    CrmField,
    CrmMalformedResponse,
    CrmNotReadable,
    CrmObject,
    CrmQueryError,
    CrmUnsupported,
    CustomObject,
    CustomObjects,
    DataQuality,
    Duplicates,
    FieldFill,
    FieldHistory,
    FieldValue,
    Pipeline,
    RecordHistory,
    Stage,
    StageCounts,
    StageDuration,
    StaleRecords,
    TimeInStage,
    Transition,
    Transitions,
    Unreadable,
    ValueCount,
    ValueCounts,
    check_kind,
    field_role,
    group_free_text,
    history_in_window,
    order_history,
    scrub,
    stage_order,
    unreadable,
)
from .http import (
    CaseInsensitive,
    Guard,
    Outcome,
    TransportFailure,
    Verdict,
    parse_retry_after,
)
from .hubspot_moves import HubSpotMoves
from .hubspot_writes import HubSpotWrites

API_ERRORS = (ObjectsApiException, PipelinesApiException, PropertiesApiException, SchemasApiException)
DEFAULT_BASE_URL = "https://api.hubapi.com"
OBJECTS = {"lead": "leads", "contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets"}
LABELS = {"lead": "Leads", "contact": "Contacts", "company": "Companies", "deal": "Deals", "ticket": "Tickets"}
PIPELINE_FIELDS = {"deal": ("pipeline", "dealstage"), "ticket": ("hs_pipeline", "hs_pipeline_stage")}
MODIFIED = {"contact": "lastmodifieddate", "company": "hs_lastmodifieddate", "deal": "hs_lastmodifieddate"}
REQUIRED = {
    "contact": ["email", "phone", "jobtitle", "hs_analytics_source"],
    "company": ["domain", "industry"],
    "deal": ["amount", "hs_analytics_source", "closedate"],
}
NEXT_STEP = ("hs_next_step", "hs_is_closed")  # open deals without a next step
DUPLICATE_KEYS = {"contact": "email", "company": "domain"}
FREE_TEXT_RECORDS = 200  # value_counts on a free-text property reads at most this many records (one search page)
CUSTOM_OBJECTS = 10  # custom_objects: at most this many custom object schemas kept
# lifecycle-like HubSpot-defined properties worth auditing; other hs_* enumerations are system noise
KNOWN_HS = {"hs_lead_status", "hs_pipeline_stage"}
SEARCH_PAGE = 200
HISTORY_RECORDS = 1_000  # field_history: records read per property (the deep audit's cap)
HISTORY_BATCH = 50  # batch reads with propertiesWithHistory: records per call
SEARCH_CEILING = 10_000
IN_VALUES = 100  # values one IN (or NOT_IN) search filter takes
LIST_PAGE = 100
DATE_PREFIXES = {
    "entered": ("hs_v2_date_entered_", "hs_date_entered_"),
    "exited": ("hs_v2_date_exited_", "hs_date_exited_"),
}
_TYPES = {
    "enumeration": "picklist",
    "string": "string",
    "number": "number",
    "date": "date",
    "datetime": "datetime",
    "bool": "boolean",
    "phone_number": "phone",
}


def epoch_ms(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(int(value.timestamp() * 1000))


def parse_hs_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso_datetime(text: str) -> Any:
    """The generated client's datetime deserializer, fast on HubSpot's ISO 8601; anything else as it parsed it."""
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        from dateutil.parser import parse

        return parse(text)


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


# ---------------------------------------------------------------- transport


class HubSpotGuard(Guard):
    # An OAuth connection's token refresh: called on a 401, before the one retry an auth failure gets.
    on_unauthorized: Callable[[], None] | None = None
    window_limit: int | None = None
    window_remaining: int | None = None
    window_seconds: float | None = None

    def observe(self, outcome: Outcome) -> None:
        h = outcome.headers
        daily, daily_left = _int(h.get("x-hubspot-ratelimit-daily")), _int(h.get("x-hubspot-ratelimit-daily-remaining"))
        if daily or daily_left is not None:
            self.budget.observe(daily_limit=daily, daily_remaining=daily_left)
        limit, left = _int(h.get("x-hubspot-ratelimit-max")), _int(h.get("x-hubspot-ratelimit-remaining"))
        interval = _int(h.get("x-hubspot-ratelimit-interval-milliseconds"))
        if limit:
            self.window_limit, self.window_remaining = limit, left
            self.window_seconds = interval / 1000 if interval else self.window_seconds
        if outcome.status >= 300:
            return
        # Slow down before HubSpot says no: spread what is left of the window over the window.
        if limit and left is not None and interval and left <= max(2, limit // 10):
            self.pause("slowdown", min(interval / 1000, interval / 1000 / max(left, 1)))
        elif _int(h.get("x-hubspot-ratelimit-secondly-remaining")) == 0:
            self.pause("slowdown", 1.0)

    def classify(self, method: str, path: str, outcome: Outcome) -> Verdict:
        status = outcome.status
        if status < 300:
            if outcome.body_is_broken_json():
                return Verdict("retry", "malformed")
            return Verdict.ok()
        body = outcome.json() if isinstance(outcome.json(), dict) else {}
        if status == 401:
            if self.on_unauthorized is not None:
                self.on_unauthorized()
            return Verdict("retry", "auth", detail=str(body.get("category") or "401"))
        if status == 429:
            policy = str(body.get("policyName") or "")
            if policy == "DAILY" or "daily" in str(body.get("message", "")).lower():
                return Verdict(
                    "raise",
                    error=CrmApiLimitExceeded(
                        "HubSpot refused the request: the account's daily API limit is used up. "
                        "It resets at midnight in the account's time zone.",
                        platform="hubspot",
                        status=429,
                    ),
                )
            return Verdict("retry", "rate_limit", parse_retry_after(outcome.headers.get("retry-after")), 1.0)
        if status >= 500 or status == 0:
            return Verdict("retry", "server", parse_retry_after(outcome.headers.get("retry-after")))
        return Verdict.ok()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- the connector


class HubSpotConnector(HubSpotMoves, HubSpotWrites, CrmConnector):
    platform = "hubspot"
    label = "HubSpot"
    minimum_fields = REQUIRED

    def __init__(
        self,
        *,
        access_token: str,
        base_url: str = DEFAULT_BASE_URL,
        auth_method: str = AuthMethod.HS_PRIVATE_APP,
        key: str | None = None,
        refresh: Callable[[], str] | None = None,
        **options: Any,
    ) -> None:
        self._configure(
            base_url=base_url or DEFAULT_BASE_URL, auth_method=auth_method, methods=AuthMethod.HUBSPOT, options=options
        )
        if not access_token:
            raise CrmConfigurationError("HubSpot needs a private-app access token.")
        self._token = access_token
        self.guard = self._account_guard(HubSpotGuard, account=access_token, key=key)
        if refresh is not None:  # OAuth: a new access token replaces the expired one on the next attempt

            def refreshed() -> None:
                self._token = refresh()

            self.guard.on_unauthorized = refreshed
        self._client: HubSpot | None = None
        self._apis: dict[str, Any] = {}
        self._properties: dict[str, list[Any]] = {}
        self._pipelines: dict[str, list[Pipeline]] = {}
        self._fields: dict[str, list[CrmField]] = {}
        self._record_totals: dict[str, int] = {}

    # ---- plumbing

    def _api_factory(self, api_client_package: Any, api_name: str, config: dict[str, Any]) -> Any:
        api = DiscoveryBase._default_api_factory(api_client_package, api_name, config)
        # The client parses every record's createdAt/updatedAt with dateutil: a health check's stay pages made that
        # most of a run's CPU. HubSpot writes ISO 8601, which the standard library parses many times faster.
        api.api_client._ApiClient__deserialize_datetime = _iso_datetime
        # ...and it parses each answer's JSON that the guard already parsed to know it is whole: once is enough.
        client = api.api_client
        deserialize = client.deserialize

        def parsed_once(response: Any, response_type: Any) -> Any:
            document = getattr(response, "gtm_document", None)
            if document is None or response_type == "file":
                return deserialize(response, response_type)
            try:
                data = document.value()
            except ValueError:
                data = response.data
            return client._ApiClient__deserialize(data, response_type)

        client.deserialize = parsed_once
        rest = api.api_client.rest_client
        original = rest.request
        package_error = getattr(sys.modules[type(rest).__module__], "ApiException", Exception)
        guard = self.guard

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("_request_timeout") is None:
                kwargs["_request_timeout"] = guard.timeout
            search = method.upper() == "POST" and url.rstrip("/").endswith("/search")

            def send() -> Outcome:
                headers = kwargs.get("headers")
                if headers and "Authorization" in headers:
                    headers["Authorization"] = f"Bearer {self._token}"  # the refreshed one after a 401
                try:
                    response = original(method, url, *args, **kwargs)
                except package_error as exc:
                    if not exc.status:
                        raise TransportFailure("connection", "TLS or transport error") from None
                    return Outcome(
                        exc.status, CaseInsensitive(dict(exc.headers or {})), exc.body or b"", exc.reason or "", exc
                    )
                except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
                    raise TransportFailure("timeout", type(exc).__name__) from None
                except urllib3.exceptions.HTTPError as exc:
                    raise TransportFailure("connection", type(exc).__name__) from None
                headers = CaseInsensitive(dict(response.urllib3_response.headers))
                outcome = Outcome(response.status, headers, response.data or b"", response.reason or "", response)
                response.gtm_document = outcome.document  # for parsed_once
                return outcome

            raw = guard.call(method.upper(), url, send, bucket="hubspot-search" if search else "hubspot")
            if isinstance(raw, BaseException):
                raise raw
            return raw

        rest.request = request
        return api

    def _api(self, name: str) -> Any:
        if name not in self._apis:
            if self._client is None:
                # retry=False: urllib3 must not retry behind our back (it would hide timeouts and costs)
                self._client = HubSpot(
                    access_token=self._token, host=self.base_url, retry=False, api_factory=self._api_factory
                )
            crm = self._client.crm
            self._apis[name] = {
                "search": lambda: crm.objects.search_api,
                "objects": lambda: crm.objects.basic_api,
                "batch": lambda: crm.objects.batch_api,
                "properties": lambda: crm.properties.core_api,
                "pipelines": lambda: crm.pipelines.pipelines_api,
                "schemas": lambda: crm.schemas.core_api,
            }[name]()
        return self._apis[name]

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except CrmError as exc:
            exc.message = scrub(exc.message, [self._token])
            exc.platform = "hubspot"
            raise
        except API_ERRORS as exc:
            raise self._api_error(exc) from None

    def _api_error(self, exc: Any) -> CrmError:
        status = getattr(exc, "status", None)
        body = _json(getattr(exc, "body", None))
        message = scrub(
            " ".join(str(body.get("message") or getattr(exc, "reason", "") or "").split())[:300], [self._token]
        )
        category = body.get("category") or ""
        detail = f"{category}: {message}" if category else message
        if status == 403 and category == "MISSING_SCOPES":
            return CrmNotReadable(
                f"HubSpot refused the request ({detail}). The private app lacks the scope for this object.",
                platform="hubspot",
                status=status,
            )
        if status in (401, 403):
            return CrmAuthError(
                f"HubSpot refused the request ({detail}). Check the private app's token and scopes.",
                platform="hubspot",
                status=status,
            )
        if status == 404:
            return CrmUnsupported(f"HubSpot has no such resource ({detail}).", platform="hubspot", status=status)
        return CrmQueryError(f"HubSpot refused the request ({status}, {detail}).", platform="hubspot", status=status)

    def _object_type(self, kind: str) -> str:
        check_kind(kind)
        if kind == "lead":
            raise CrmUnsupported(
                "HubSpot has no separate lead object here: leads are contacts with a lifecycle stage.",
                platform="hubspot",
            )
        return OBJECTS[kind]

    def _search(self, kind: str, groups: list[list[dict[str, Any]]], **kwargs: Any) -> Any:
        api = self._api("search")
        # A model built without a configuration builds a new default one (loggers, a CPU count): 6% of a health
        # check's CPU went there. The client's own configuration validates the same way.
        config = api.api_client.configuration
        request = PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[Filter(**f, local_vars_configuration=config) for f in g], local_vars_configuration=config
                )
                for g in groups
            ],
            local_vars_configuration=config,
            **kwargs,
        )
        with self._translate():
            result = api.do_search(self._object_type(kind), public_object_search_request=request)
        if result is None or result.total is None:
            raise CrmMalformedResponse("HubSpot returned a search answer without a total.", platform="hubspot")
        return result

    def _search_pages(
        self, kind: str, groups: list[list[dict[str, Any]]], *, limit: int, properties: list[str], sorts: list[dict]
    ) -> Iterator[Any]:
        """A search read page by page (the `after` cursor) until `limit` records are read or the last page came:
        HubSpot answers at most SEARCH_PAGE records a call."""
        read, after = 0, None
        while True:
            page = self._search(
                kind,
                groups,
                limit=max(1, min(SEARCH_PAGE, limit - read)),
                after=after,
                properties=properties,
                sorts=sorts,
            )
            yield page
            read += len(page.results or [])
            if read >= limit or not page.paging or not page.results:
                return
            after = page.paging.next.after

    def _total(self, kind: str, groups: list[list[dict[str, Any]]]) -> int:
        return int(self._search(kind, groups, limit=1, properties=["hs_object_id"]).total)

    def _records(self, kind: str) -> int:
        """All records of an object, counted once per connector (the counts below share it)."""
        if kind not in self._record_totals:
            self._record_totals[kind] = self._total(kind, [])
        return self._record_totals[kind]

    def _rest(self, kind: str, name: str, counted: int, values: list[str], *, single: bool = False) -> int:
        """Records holding a value no option (or stage) lists: what is left of all records once every option and
        the empty ones are counted; a single-select property holds one value per record. Searched instead (NOT_IN)
        for a multi-select property, or when the records changed between the counts and the arithmetic would be
        negative."""
        multi = not single and any(p.name == name and p.field_type == "checkbox" for p in self._property_list(kind))
        if not multi:
            left = self._records(kind) - counted
            if left >= 0:
                return left
        return self._total(kind, [self._not_in(name, values)]) if values else 0

    def _property_list(self, kind: str) -> list[Any]:
        object_type = self._object_type(kind)
        if kind not in self._properties:
            with self._translate():
                result = self._api("properties").get_all(object_type)
            if result is None or result.results is None:
                raise CrmMalformedResponse("HubSpot returned a property list without results.", platform="hubspot")
            self._properties[kind] = list(result.results)
        return self._properties[kind]

    def _field(self, kind: str, name: str) -> CrmField:
        wanted = name.lower()
        found = next((f for f in self.fields(kind) if f.api_name.lower() == wanted), None)
        if found is None:
            raise CrmQueryError(f"HubSpot {OBJECTS[kind]} have no property {name!r}.", platform="hubspot")
        return found

    def _date_properties(self, kind: str, which: str) -> dict[str, str]:
        """value suffix -> property name, for hs_date_entered_* / hs_date_exited_* (newest naming first)."""
        found: dict[str, str] = {}
        names = [p.name for p in self._property_list(kind)]
        for prefix in reversed(DATE_PREFIXES[which]):
            for name in names:
                if name.startswith(prefix):
                    found[name[len(prefix) :].lower()] = name
        if which == "entered" and kind == "contact":
            for name in names:  # the older lifecycle naming: hs_lifecyclestage_<value>_date
                if name.startswith("hs_lifecyclestage_") and name.endswith("_date"):
                    found.setdefault(name[len("hs_lifecyclestage_") : -len("_date")].lower(), name)
        return found

    def _stage_order(self, kind: str, f: CrmField) -> dict[str, int]:
        """A field's values in stage order: a pipeline stage field by each pipeline's display order, others by the
        property's option order."""
        if kind in PIPELINE_FIELDS and f.api_name == PIPELINE_FIELDS[kind][1]:
            return stage_order((st.id, i) for p in self.pipelines(kind) for i, st in enumerate(p.stages))
        return stage_order((v.api_value, v.order) for v in f.values)

    def _ensure_budget(self, calls: int, what: str) -> None:
        remaining = self.guard.budget.remaining
        if calls > remaining:
            raise CrmBudgetExhausted(
                f"{what} would take about {calls:,} HubSpot calls; this connection has {remaining:,} left in "
                "today's budget.",
                platform="hubspot",
            )

    # ---- metadata

    def objects(self) -> list[CrmObject]:
        out = [CrmObject("lead", OBJECTS["lead"], LABELS["lead"], False)]
        for kind in ("contact", "company", "deal", "ticket"):
            try:
                out.append(CrmObject(kind, OBJECTS[kind], LABELS[kind], True, self._records(kind)))
            except CrmNotReadable as exc:
                self.note(f"{LABELS[kind]} are not readable by this token ({exc}).")
                out.append(CrmObject(kind, OBJECTS[kind], LABELS[kind], False))
        return out

    def fields(self, kind: str) -> list[CrmField]:
        if kind not in self._fields:
            props = self._property_list(kind)
            stage_field = PIPELINE_FIELDS.get(kind, (None, None))[1]
            stages = {}
            if kind in STAGE_OBJECTS:
                stages = {s.id.lower(): s for p in self.pipelines(kind) for s in p.stages}
            out = []
            for p in props:
                ftype = _TYPES.get(p.type or "", "other")
                if p.field_type in ("checkbox",) and ftype == "picklist":
                    ftype = "picklist"
                if ftype == "string" and p.field_type == "textarea":
                    ftype = "text"
                values = []
                for i, o in enumerate(sorted(p.options or [], key=lambda o: o.display_order or 0)):
                    stage = stages.get(str(o.value).lower()) if p.name == stage_field else None
                    values.append(
                        FieldValue(
                            api_value=str(o.value),
                            label=o.label or str(o.value),
                            active=not o.hidden,
                            order=i,
                            probability=stage.probability if stage else None,
                            is_closed=stage.is_closed if stage else None,
                            is_won=stage.is_won if stage else None,
                        )
                    )
                role = None
                if ftype == "picklist" and not p.calculated and (not p.name.startswith("hs_") or p.name in KNOWN_HS):
                    role = field_role(kind, p.name, p.label or "", stage_field)
                out.append(
                    CrmField(
                        object=kind,
                        api_name=p.name,
                        label=p.label or p.name,
                        type=ftype,
                        custom=not bool(p.hubspot_defined),
                        required=False,  # HubSpot has no required flag outside forms and pipelines
                        role=role,
                        values=tuple(values),
                    )
                )
            self._fields[kind] = out
        return self._fields[kind]

    def lifecycle_fields(self) -> list[CrmField]:
        out = []
        for kind in ("contact", "company", "deal", "ticket"):
            out += [f for f in self.fields(kind) if f.is_picklist and f.role]
        return out

    def pipelines(self, kind: str = "deal") -> list[Pipeline]:
        check_kind(kind, STAGE_OBJECTS)
        if kind not in self._pipelines:
            with self._translate():
                result = self._api("pipelines").get_all(OBJECTS[kind])
            if result is None or result.results is None:
                raise CrmMalformedResponse("HubSpot returned a pipeline list without results.", platform="hubspot")
            pipelines = []
            for p in sorted(result.results, key=lambda p: p.display_order or 0):
                stages = []
                for s in sorted(p.stages or [], key=lambda s: s.display_order or 0):
                    meta = s.metadata or {}
                    probability = _float(meta.get("probability"))
                    closed = str(meta.get("isClosed", "")).lower() == "true" or meta.get("ticketState") == "CLOSED"
                    stages.append(
                        Stage(
                            id=s.id,
                            label=s.label,
                            order=s.display_order or 0,
                            probability=probability,
                            is_closed=closed,
                            is_won=closed and probability == 1.0,
                            active=not s.archived,
                        )
                    )
                pipelines.append(Pipeline(kind, p.id, p.label, p.display_order or 0, not p.archived, tuple(stages)))
            self._pipelines[kind] = pipelines
        return self._pipelines[kind]

    # ---- counts

    def _not_in(self, name: str, values: list[str]) -> list[dict[str, Any]]:
        chunks = list(_chunks(values, IN_VALUES))
        if len(chunks) > 5:
            raise CrmUnsupported(
                f"{name} has {len(values)} options; HubSpot search cannot exclude more than 500 at once.",
                platform="hubspot",
            )
        return [{"property_name": name, "operator": "NOT_IN", "values": c} for c in chunks] + [
            {"property_name": name, "operator": "HAS_PROPERTY"}
        ]

    def stage_counts(self, kind: str = "deal") -> StageCounts:
        with self.metered() as meter:
            pipelines = self.pipelines(kind)
            _, stage_field = PIPELINE_FIELDS[kind]
            stages, ids = [], []
            for p in pipelines:
                for s in p.stages:
                    n = self._total(kind, [[{"property_name": stage_field, "operator": "EQ", "value": s.id}]])
                    stages.append(ValueCount(s.id, s.label, n, True, s.active, p.id))
                    ids.append(s.id)
            without = self._total(kind, [[{"property_name": stage_field, "operator": "NOT_HAS_PROPERTY"}]])
            # a pipeline stage property holds one stage per record
            unknown = self._rest(kind, stage_field, sum(s.count for s in stages) + without, ids, single=True)
        total = sum(s.count for s in stages) + without + unknown
        return StageCounts(kind, tuple(stages), without, unknown, total, meter.calls)

    def value_counts(self, kind: str, field_name: str, *, deep: bool = False) -> ValueCounts:
        with self.metered() as meter:
            f = self._field(kind, field_name)
            if not f.is_picklist and f.type in ("string", "text"):
                return self._free_text_counts(kind, f, meter)
            if not f.is_picklist or not f.values:
                raise CrmQueryError(f"HubSpot property {f.api_name} has no options to count.", platform="hubspot")
            values = [
                ValueCount(
                    v.api_value,
                    v.label,
                    self._total(kind, [[{"property_name": f.api_name, "operator": "EQ", "value": v.api_value}]]),
                    True,
                    v.active,
                )
                for v in f.values
            ]
            empty = self._total(kind, [[{"property_name": f.api_name, "operator": "NOT_HAS_PROPERTY"}]])
            rest = [self._not_in(f.api_name, [v.api_value for v in f.values])]
            unknown = self._rest(
                kind, f.api_name, sum(v.count for v in values) + empty, [v.api_value for v in f.values]
            )
            named, note = unknown == 0, ""
            if unknown and deep:
                found, complete = self._walk_values(kind, f.api_name, rest, unknown)
                values += [ValueCount(v, None, n, False) for v, n in sorted(found.items())]
                named = complete
                if not complete:
                    note = f"Named the values of the first {SEARCH_CEILING:,} of {unknown:,} records (search limit)."
            elif unknown:
                note = f"{unknown:,} records hold values that are not options; deep=True names them."
        total = sum(v.count for v in values if v.known) + empty + unknown
        return ValueCounts(kind, f.api_name, tuple(values), empty, unknown, named, total, meter.calls, deep, note)

    def _free_text_counts(self, kind: str, f: CrmField, meter: Any) -> ValueCounts:
        """A free-text property (closed_lost_reason): the FREE_TEXT_RECORDS most recently created records holding
        it (one search page, whatever the portal's size), grouped by normalised wording and labelled by their most
        frequent spelling. `empty` counts the blank ones read; count_without_value counts every record without."""
        page = self._search(
            kind,
            [[{"property_name": f.api_name, "operator": "HAS_PROPERTY"}]],
            limit=FREE_TEXT_RECORDS,
            properties=[f.api_name],
            sorts=[{"propertyName": "createdate", "direction": "DESCENDING"}],
        )
        texts = [(r.properties or {}).get(f.api_name) for r in page.results or []]
        counts, labels, blank = group_free_text(texts)
        values = tuple(
            ValueCount(labels[k], labels[k], n, True) for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        note = (
            f"{f.label} is free text: read {len(texts):,} of the {int(page.total):,} {OBJECTS[kind]} that hold it "
            f"(the latest {FREE_TEXT_RECORDS:,} at most), grouped by their wording (case and spacing ignored)."
        )
        return ValueCounts(
            kind, f.api_name, values, blank, 0, True, len(texts), meter.calls, False, note, free_text=True
        )

    def _walk_values(
        self, kind: str, name: str, group: list[list[dict[str, Any]]], total: int
    ) -> tuple[dict[str, int], bool]:
        reachable = min(total, SEARCH_CEILING)
        self._ensure_budget(math.ceil(reachable / SEARCH_PAGE), f"Naming the values of {reachable:,} records")
        found: Counter[str] = Counter()
        after, seen = None, 0
        while seen < reachable:
            page = self._search(kind, group, limit=min(SEARCH_PAGE, reachable - seen), after=after, properties=[name])
            for r in page.results or []:
                value = (r.properties or {}).get(name)
                if value not in (None, ""):
                    found[str(value)] += 1
            seen += len(page.results or [])
            if not page.paging or not page.results:
                break
            after = page.paging.next.after
        return dict(found), reachable == total

    counts_per_value = True

    def held_counts(self, kind: str, field_name: str, values: Sequence[str]) -> dict[str, int]:
        """One IN search over all the values first: on most portals none of the values a health check asks about
        (unsigned or retired ones) is held, and that answer costs one search instead of one per value."""
        with self.metered():
            f = self._field(kind, field_name)
            values = list(dict.fromkeys(values))
            if not values:
                return {}
            if 1 < len(values) <= IN_VALUES:
                held = [[{"property_name": f.api_name, "operator": "IN", "values": values}]]
                if self._total(kind, held) == 0:
                    return {}
            counts = {
                v: self._total(kind, [[{"property_name": f.api_name, "operator": "EQ", "value": v}]]) for v in values
            }
        return {v: n for v, n in counts.items() if n > 0}

    def count_unlisted(self, kind: str, field_name: str) -> int:
        f = self._field(kind, field_name)
        if kind in PIPELINE_FIELDS and f.api_name == PIPELINE_FIELDS[kind][1]:
            listed = [st.id for p in self.pipelines(kind) for st in p.stages]
        else:
            listed = [v.api_value for v in f.values]
        return self._total(kind, [self._not_in(f.api_name, listed)]) if listed else 0

    def count_without_value(self, kind: str, field_name: str) -> int:
        f = self._field(kind, field_name)
        return self._total(kind, [[{"property_name": f.api_name, "operator": "NOT_HAS_PROPERTY"}]])

    def _stage_values(self, f: CrmField, wanted: Sequence[str] | None) -> list[FieldValue]:
        """The options to count, one search each: those asked for (by value or label), else the active ones."""
        if wanted is not None:
            names = {w.lower() for w in wanted}
            return [v for v in f.values if v.api_value.lower() in names or v.label.lower() in names]
        return [v for v in f.values if v.active] or list(f.values)

    def stage_transitions(
        self,
        kind: str,
        field_name: str,
        start: datetime,
        end: datetime,
        *,
        deep: bool = False,
        values: Sequence[str] | None = None,
    ) -> Transitions:
        with self.metered() as meter:
            f = self._field(kind, field_name)
            entered = self._date_properties(kind, "entered")
            into = []
            for v in self._stage_values(f, values):
                prop = entered.get(v.api_value.lower().replace("-", "_"))
                if prop is None:
                    into.append(Transition(v.api_value, v.label, None))
                    continue
                n = self._total(
                    kind,
                    [
                        [
                            {"property_name": prop, "operator": "GTE", "value": epoch_ms(start)},
                            {"property_name": prop, "operator": "LT", "value": epoch_ms(end)},
                        ]
                    ],
                )
                into.append(Transition(v.api_value, v.label, n))
        available = any(t.count is not None for t in into)
        note = "" if available else f"HubSpot keeps no 'date entered' property for {f.api_name}."
        if deep:
            note = (note + " deep=True changes nothing here: the counts are already exact.").strip()
        return Transitions(
            kind,
            f.api_name,
            start,
            end,
            tuple(into),
            available,
            "hs_date_entered_* properties: the latest time each record entered each value",
            None,
            meter.calls,
            deep,
            note,
        )

    def time_in_stage(
        self,
        kind: str,
        field_name: str,
        start: datetime,
        end: datetime,
        *,
        deep: bool = False,
        values: Sequence[str] | None = None,
    ) -> TimeInStage:
        with self.metered() as meter:
            f = self._field(kind, field_name)
            entered, exited = self._date_properties(kind, "entered"), self._date_properties(kind, "exited")
            plan = []
            for v in self._stage_values(f, values):
                suffix = v.api_value.lower().replace("-", "_")
                if suffix in entered and suffix in exited:
                    plan.append((v, entered[suffix], exited[suffix]))
            durations = []
            sampled = False
            for v, enter_prop, exit_prop in plan:
                group = [
                    [
                        {"property_name": exit_prop, "operator": "GTE", "value": epoch_ms(start)},
                        {"property_name": exit_prop, "operator": "LT", "value": epoch_ms(end)},
                        {"property_name": enter_prop, "operator": "HAS_PROPERTY"},
                    ]
                ]
                spans, population = self._spans(kind, group, enter_prop, exit_prop, deep)
                sampled = sampled or len(spans) < population
                durations.append(
                    StageDuration(
                        v.api_value, v.label, sum(spans) / len(spans) if spans else None, len(spans), population
                    )
                )
        note = ""
        if not plan:
            note = f"HubSpot keeps no 'date entered/exited' properties for {f.api_name}."
        elif sampled:
            note = f"Averages over the {SEARCH_PAGE} most recently created records per stage" + (
                " (search stops at 10,000 records)." if deep else "; deep=True reads them all."
            )
        return TimeInStage(
            kind,
            f.api_name,
            start,
            end,
            tuple(durations),
            bool(plan),
            sampled,
            "hs_date_entered_* / hs_date_exited_* properties (the latest stay in each value)",
            meter.calls,
            deep,
            note,
        )

    def _spans(
        self, kind: str, group: list[list[dict[str, Any]]], enter_prop: str, exit_prop: str, deep: bool
    ) -> tuple[list[float], int]:
        spans: list[float] = []
        population = None
        newest_first = [{"propertyName": "createdate", "direction": "DESCENDING"}]
        limit = SEARCH_CEILING if deep else SEARCH_PAGE
        for page in self._search_pages(
            kind, group, limit=limit, properties=[enter_prop, exit_prop], sorts=newest_first
        ):
            if population is None:
                population = int(page.total)
                if deep and population > SEARCH_PAGE:
                    reachable = min(population, SEARCH_CEILING)
                    self._ensure_budget(math.ceil(reachable / SEARCH_PAGE) - 1, f"Reading {reachable:,} stays")
            for r in page.results or []:
                props = r.properties or {}
                came, left = parse_hs_datetime(props.get(enter_prop)), parse_hs_datetime(props.get(exit_prop))
                if came and left and left >= came:
                    spans.append((left - came).total_seconds() / 86_400)
        return spans, population or 0

    def field_history(
        self, kind: str, field_name: str, start: datetime, end: datetime, *, limit: int = HISTORY_RECORDS
    ) -> FieldHistory:
        """Each record's values of a property in [start, end), from `propertiesWithHistory`.

        A search finds the records modified since `start` (a record whose property changed in the window was
        modified in it), newest first, `limit` at most; batch reads of HISTORY_BATCH ids then return each one's
        property history (and the deal's pipeline). Cost: ceil(n / 200) searches + ceil(n / 50) batch reads."""
        with self.metered() as meter:
            f = self._field(kind, field_name)
            object_type = self._object_type(kind)
            lo, hi = _aware(start), _aware(end)
            limit = max(1, min(limit, SEARCH_CEILING))
            modified = MODIFIED.get(kind, "hs_lastmodifieddate")
            group = [[{"property_name": modified, "operator": "GTE", "value": epoch_ms(lo)}]]
            ids: list[str] = []
            population: int | None = None
            newest_first = [{"propertyName": "createdate", "direction": "DESCENDING"}]
            pages = self._search_pages(kind, group, limit=limit, properties=["hs_object_id"], sorts=newest_first)
            for n, page in enumerate(pages):
                if n == 0:
                    population = int(page.total)
                    wanted = min(population, limit)
                    calls = math.ceil(wanted / SEARCH_PAGE) - 1 + math.ceil(wanted / HISTORY_BATCH)
                    self._ensure_budget(calls, f"Reading the {f.api_name} history of {wanted:,} {object_type}")
                ids += [str(r.id) for r in page.results or []]
            pipeline_prop = PIPELINE_FIELDS[kind][0] if f.role == "stage" and kind in PIPELINE_FIELDS else None
            order = self._stage_order(kind, f)
            records: list[RecordHistory] = []
            entries_read = 0
            for chunk in _chunks(ids[:limit], HISTORY_BATCH):
                request = BatchReadInputSimplePublicObjectId(
                    inputs=[SimplePublicObjectId(id=i) for i in chunk],
                    properties=[pipeline_prop] if pipeline_prop else [f.api_name],
                    properties_with_history=[f.api_name],
                )
                with self._translate():
                    result = self._api("batch").read(object_type, batch_read_input_simple_public_object_id=request)
                if result is None or result.results is None:
                    raise CrmMalformedResponse("HubSpot returned a batch read without results.", platform="hubspot")
                for r in result.results:
                    history = list((r.properties_with_history or {}).get(f.api_name) or [])
                    entries_read += len(history)
                    # HubSpot lists the newest entry first: the position read backwards is its own sequence
                    entries = [
                        (h.value, parse_hs_datetime(h.timestamp), len(history) - i) for i, h in enumerate(history)
                    ]
                    steps = [
                        (value, at)
                        for value, at, _ in order_history(
                            entries, at=lambda e: e[1], value=lambda e: e[0], sequence=lambda e: e[2], order=order
                        )
                    ]
                    pipeline = (r.properties or {}).get(pipeline_prop) if pipeline_prop else None
                    records.append(RecordHistory(str(r.id), history_in_window(steps, lo, hi), pipeline))
        sampled = (population or 0) > len(records)
        note = (
            f"Read the {len(records):,} most recently created of {population:,} {object_type} modified in the "
            "window (the deep audit's cap)."
            if sampled
            else ""
        )
        return FieldHistory(
            kind,
            f.api_name,
            lo,
            hi,
            tuple(records),
            True,
            len(records),
            entries_read,
            sampled,
            population,
            f"propertiesWithHistory of {f.api_name} (batch read), for {object_type} modified in the window",
            meter.calls,
            note,
        )

    def custom_objects(self) -> CustomObjects:
        """Custom object schemas (GET /crm/v3/schemas) with their enumeration properties that look like stage,
        lifecycle or status fields, and a record count each (search total); at most CUSTOM_OBJECTS kept. A refusal
        (no custom objects on this account tier, a token without the scope) is noted, never raised."""
        with self.metered() as meter:
            try:
                with self._translate():
                    result = self._api("schemas").get_all()
            except (CrmQueryError, CrmUnsupported, CrmAuthError) as exc:
                return CustomObjects((), 0, 0, meter.calls, (f"HubSpot custom objects could not be read ({exc}).",))
            schemas = [sc for sc in (getattr(result, "results", None) or []) if not getattr(sc, "archived", False)]
            notes = []
            if len(schemas) > CUSTOM_OBJECTS:
                notes.append(f"The account has {len(schemas)} custom objects; the first {CUSTOM_OBJECTS} were read.")
            found = []
            for sc in schemas[:CUSTOM_OBJECTS]:
                fields = tuple(_custom_field(sc.name, p) for p in sc.properties or [] if _stage_like(p))
                if not fields:
                    continue
                object_type = sc.object_type_id or sc.fully_qualified_name or sc.name
                try:
                    with self._translate():
                        page = self._api("search").do_search(
                            object_type,
                            public_object_search_request=PublicObjectSearchRequest(
                                filter_groups=[], limit=1, properties=["hs_object_id"]
                            ),
                        )
                    records: int | None = int(page.total) if page is not None and page.total is not None else None
                except (CrmQueryError, CrmUnsupported, CrmAuthError) as exc:
                    records = None
                    notes.append(f"{sc.name} records could not be counted ({exc}).")
                labels = sc.labels
                label = (
                    (getattr(labels, "plural", None) or getattr(labels, "singular", None) or sc.name)
                    if labels
                    else sc.name
                )
                found.append(CustomObject(sc.name, label, records, fields))
        return CustomObjects(tuple(found), min(len(schemas), CUSTOM_OBJECTS), len(schemas), meter.calls, tuple(notes))

    @classmethod
    def fields_read(cls) -> tuple[tuple[str, str], ...]:
        named = [(k, n) for k, names in REQUIRED.items() for n in names]
        named += [("deal", n) for n in NEXT_STEP] + list(DUPLICATE_KEYS.items())
        return tuple(dict.fromkeys(named))

    def _readable(self, kind: str, names: Sequence[str]) -> tuple[list[str], list[Unreadable]]:
        """The names the property list holds, and the others as unreadable."""
        listed = {p.name.lower(): p.name for p in self._property_list(kind)}
        found, skipped = [], []
        for n in names:
            if n.lower() in listed:
                found.append(listed[n.lower()])
            else:
                skipped.append(unreadable(kind, LABELS[kind], n))
        return found, skipped

    def _field_total(
        self, kind: str, names: Sequence[str], groups: list[list[dict[str, Any]]], unread: list[Unreadable]
    ) -> int | None:
        """A count that needs `names`: None (and each missing one noted) when the property list lacks one, or when
        HubSpot refuses the search anyway (VALIDATION_ERROR on a property this token cannot read)."""
        _, skipped = self._readable(kind, names)
        if skipped:
            unread += skipped
            return None
        try:
            return self._total(kind, groups)
        except CrmQueryError as exc:
            unread += [unreadable(kind, LABELS[kind], n, f"refused when searched: {exc}") for n in names[:1]]
            return None

    def data_quality(
        self,
        *,
        as_of: datetime | None = None,
        stale_days: int = 180,
        required: dict[str, list[str]] | None = None,
        deep: bool = False,
    ) -> DataQuality:
        """Every property is checked against the property list first: a missing one is skipped and listed in
        `unreadable` (its figure is left out), never searched; one HubSpot refuses anyway is noted the same way."""
        as_of = as_of or datetime.now(UTC)
        as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        cutoff = epoch_ms(as_of - timedelta(days=stale_days))
        unread: list[Unreadable] = []
        with self.metered() as meter:
            totals = {kind: self._records(kind) for kind in ("contact", "company", "deal")}
            missing = []
            for kind, names in (required or REQUIRED).items():
                if kind == "lead":
                    continue
                if kind not in totals:
                    totals[kind] = self._records(kind)
                for name in names:
                    n = self._field_total(
                        kind, [name], [[{"property_name": name, "operator": "NOT_HAS_PROPERTY"}]], unread
                    )
                    if n is not None:
                        missing.append(FieldFill(kind, name, n, totals[kind]))
            stale = []
            for kind, prop in MODIFIED.items():
                n = self._field_total(
                    kind, [prop], [[{"property_name": prop, "operator": "LT", "value": cutoff}]], unread
                )
                if n is not None:
                    stale.append(StaleRecords(kind, n, totals[kind]))
            no_next_step = self._field_total(
                "deal",
                list(NEXT_STEP),
                [
                    [
                        {"property_name": "hs_is_closed", "operator": "EQ", "value": "false"},
                        {"property_name": "hs_next_step", "operator": "NOT_HAS_PROPERTY"},
                    ]
                ],
                unread,
            )
            duplicates, notes = None, []
            if deep:
                duplicates = self._duplicates(totals, unread)
            else:
                notes.append("Duplicates need deep=True: finding them means reading every email and domain.")
        notes += [f"{u.reason}: left out." for u in dict.fromkeys(unread)]
        return DataQuality(
            as_of,
            stale_days,
            tuple(missing),
            tuple(stale),
            no_next_step,
            duplicates,
            meter.calls,
            deep,
            tuple(notes),
            tuple(dict.fromkeys(unread)),
        )

    def _duplicates(self, totals: dict[str, int], unread: list[Unreadable]) -> tuple[Duplicates, ...]:
        from .salesforce import domain_key, email_key

        plan = []
        for kind, prop in DUPLICATE_KEYS.items():
            readable, skipped = self._readable(kind, [prop])
            unread += skipped
            if readable:
                plan.append((kind, readable[0], domain_key if kind == "company" else email_key))
        pages = sum(max(1, math.ceil(totals[kind] / LIST_PAGE)) for kind, _, _ in plan)
        self._ensure_budget(pages, f"Finding duplicates reads {sum(totals[k] for k, _, _ in plan):,} records and")
        out = []
        for kind, prop, normalise in plan:
            keys: Counter[str] = Counter()
            scanned, after = 0, None
            while True:
                with self._translate():
                    page = self._api("objects").get_page(OBJECTS[kind], limit=LIST_PAGE, after=after, properties=[prop])
                for r in page.results or []:
                    scanned += 1
                    key = normalise((r.properties or {}).get(prop))
                    if key:
                        keys[key] += 1
                if not page.paging or not page.results:
                    break
                after = page.paging.next.after
            repeated = [n for n in keys.values() if n > 1]
            out.append(Duplicates(kind, prop, len(repeated), sum(repeated), scanned))
        return tuple(out)

    def api_budget(self) -> ApiBudget:
        if self.guard.window_limit is None or self.guard.budget.daily_limit is None:
            with self._translate():
                self._api("properties").get_by_name("contacts", "email")  # any non-search call carries the headers
        budget, guard = self.guard.budget, self.guard
        return ApiBudget(
            platform="hubspot",
            daily_limit=budget.daily_limit,
            daily_remaining=budget.daily_remaining,
            share=budget.share,
            budget_limit=budget.limit,
            budget_used=budget.used,
            calls_spent=self.calls_spent,
            window_limit=guard.window_limit,
            window_remaining=guard.window_remaining,
            window_seconds=guard.window_seconds,
            source="X-HubSpot-RateLimit-* headers",
        )

    def close(self) -> None:
        for api in self._apis.values():
            try:
                api.api_client.rest_client.pool_manager.clear()
            except AttributeError:  # pragma: no cover
                pass
        self._apis.clear()


def _stage_like(prop: Any) -> bool:
    return getattr(prop, "type", None) == "enumeration" and bool(
        field_role("custom", str(prop.name), str(getattr(prop, "label", "") or ""))
    )


def _custom_field(object_name: str, prop: Any) -> CrmField:
    options = sorted(prop.options or [], key=lambda o: o.display_order or 0)
    return CrmField(
        object=object_name,
        api_name=prop.name,
        label=prop.label or prop.name,
        type="picklist",
        custom=True,
        role=field_role("custom", prop.name, prop.label or ""),
        values=tuple(FieldValue(str(o.value), o.label or str(o.value), not o.hidden, i) for i, o in enumerate(options)),
    )


def _json(body: Any) -> dict[str, Any]:
    import json

    if isinstance(body, bytes | str):
        try:
            value = json.loads(body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _float(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


__all__ = ["DEFAULT_BASE_URL", "HubSpotConnector"]
