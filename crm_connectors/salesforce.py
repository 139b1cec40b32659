"""The Salesforce connector, on simple-salesforce, through a guarded requests.Session.

simple-salesforce builds every URL itself (https://<domain>.salesforce.com for logins, https://<instance>
afterwards) and calls `session.request`; `GuardedSession` is where every request gets its timeout,
budget, rate-limit slot, retries and error translation (see http.py). It also
  - points logins at the connection's base URL when that is not a *.salesforce.com host (a proxy, a
    loopback sandbox), and keeps http for an http base when CRM_ALLOW_HTTP allows it;
  - bounds simple-salesforce's re-login loop: after a 401 the library logs in again and retries; a
    second 401 before any success raises CrmAuthError instead of logging in forever (SFType.describe
    recurses without a limit).
Counts are SOQL aggregates (COUNT(), GROUP BY), so their cost does not grow with the org.
"""

# SOQL is built from fixed object names, field names checked against describe (or `ident`) and
# values quoted by `soql_string`: S608 (string-built SQL) does not apply.
# ruff: noqa: S608

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from .base import (
    OBJECT_KINDS,
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
    ValueChange,
    ValueCount,
    ValueCounts,
    check_kind,
    field_role,
    group_free_text,
    history_in_window,
    history_key,
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
    short_hash,
)
from .salesforce_moves import SalesforceMoves
from .salesforce_writes import SalesforceWrites

OBJECTS = {"lead": "Lead", "contact": "Contact", "company": "Account", "deal": "Opportunity", "ticket": "Case"}
STAGE_FIELD = {"deal": "StageName", "ticket": "Status"}
HISTORY = {
    "lead": ("LeadHistory", "LeadId"),
    "contact": ("ContactHistory", "ContactId"),
    "company": ("AccountHistory", "AccountId"),
    "deal": ("OpportunityFieldHistory", "OpportunityId"),
    "ticket": ("CaseHistory", "CaseId"),
}
REQUIRED = {
    "lead": ["Email", "Phone", "Company", "LeadSource"],
    "contact": ["Email", "Phone", "Title", "LeadSource"],
    "company": ["Website", "Industry"],
    "deal": ["Amount", "LeadSource", "CloseDate"],
}
NEXT_STEP = ("NextStep", "IsClosed")  # open deals without a next step
DUPLICATE_KEYS = {"lead": "Email", "contact": "Email", "company": "Website"}
PAGE = 2000  # records per SOQL page
WINDOW_PAGES = 30  # stage_transitions / time_in_stage without deep: at most this many pages of a month's history rows
AFTER_PAGES = 5  # first values: at most this many pages of a field's changes since the period (a run on time: 1)
FREE_TEXT_RECORDS = 2000  # value_counts on a free-text field reads at most this many records (one SOQL page)
CUSTOM_OBJECTS = 10  # custom_objects: at most this many custom objects described
_LIKELY_LIFECYCLE = re.compile(r"stage|lifecycle|health|status|customer|success|renewal|onboard|account", re.I)
_BAD_FIELD = re.compile(r"(?:No such column|field) '?([A-Za-z0-9_]+)'?", re.I)
HISTORY_RECORDS = 1_000  # field_history: records read per field (the deep audit's cap)
HISTORY_ROWS_PER_RECORD = 8  # field_history stops after the pages this many rows per record would fill
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DATA_PATH = re.compile(r"^/services/data/v\d+\.\d+")
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
_TYPES = {
    "picklist": "picklist",
    "multipicklist": "picklist",
    "string": "string",
    "textarea": "text",
    "encryptedstring": "string",
    "email": "email",
    "phone": "phone",
    "url": "url",
    "int": "number",
    "double": "number",
    "currency": "number",
    "percent": "number",
    "long": "number",
    "date": "date",
    "datetime": "datetime",
    "boolean": "boolean",
    "reference": "reference",
    "id": "id",
}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def soql_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ident(name: str) -> str:
    if not _IDENT.match(name or ""):
        raise CrmQueryError(f"{name!r} is not a Salesforce field or object name.")
    return name


def parse_sf_datetime(text: str | datetime | None) -> datetime | None:
    if not text:
        return None
    if isinstance(text, datetime):  # a history row's time, parsed once when the row was read (_change)
        return text
    try:  # Salesforce's own format (2026-11-03T10:00:00.000+0000): a month of history is 10^4-10^5 rows, each
        parsed = datetime.fromisoformat(text)  # parsed a few times, and strptime was most of a run's CPU
    except ValueError:
        parsed = None
    if parsed is not None and parsed.tzinfo is not None:
        return parsed
    value = text.replace("Z", "+0000")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def email_key(value: str | None) -> str | None:
    return value.strip().lower() if value and value.strip() else None


def domain_key(value: str | None) -> str | None:
    if not value or not value.strip():
        return None
    text = value.strip().lower()
    host = urlsplit(text if "://" in text else f"//{text}").hostname or ""
    return host.removeprefix("www.") or None


def days(ms_or_delta: float | timedelta) -> float:
    seconds = ms_or_delta.total_seconds() if isinstance(ms_or_delta, timedelta) else ms_or_delta / 1000
    return seconds / 86_400


# ---------------------------------------------------------------- transport


class SalesforceGuard(Guard):
    def __init__(self, *args: Any, can_relogin: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.can_relogin = can_relogin
        self._unauthorized_since_success = False

    def display_path(self, url: str) -> str:
        path = urlsplit(url).path or "/"
        return _DATA_PATH.sub("", path).rstrip("/") or path

    def observe(self, outcome: Outcome) -> None:
        m = _LIMIT_INFO.search(outcome.headers.get("sforce-limit-info") or "")
        if m:
            used, total = int(m.group(1)), int(m.group(2))
            self.budget.observe(daily_limit=total, daily_remaining=max(0, total - used))

    def classify(self, method: str, path: str, outcome: Outcome) -> Verdict:
        status = outcome.status
        login = path.startswith(("/services/Soap/", "/services/oauth2/"))
        if status < 300:
            if outcome.body_is_broken_json():
                return Verdict("retry", "malformed")
            if not login:
                self._unauthorized_since_success = False
            return Verdict.ok()
        errors = outcome.json()
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        code, message = first.get("errorCode", ""), first.get("message", "")
        if status == 401 and not login:
            if self._unauthorized_since_success or not self.can_relogin or code != "INVALID_SESSION_ID":
                return Verdict(
                    "raise",
                    error=CrmAuthError(
                        "Salesforce session expired and logging in again did not help: the credentials were "
                        "rejected or the session was revoked. Check the connection's credentials."
                        if self.can_relogin
                        else "Salesforce rejected the access token (session expired or revoked). Paste a fresh "
                        "access token, or switch to username and password so GTM Ops can log in again.",
                        platform="salesforce",
                        status=401,
                    ),
                )
            self._unauthorized_since_success = True
            return Verdict.ok()  # simple-salesforce logs in again once and retries
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            if "TotalRequests" in message:
                return Verdict(
                    "raise",
                    error=CrmApiLimitExceeded(
                        "Salesforce refused the request: the org's daily API request limit is used up "
                        "(REQUEST_LIMIT_EXCEEDED). It frees up over the next 24 hours.",
                        platform="salesforce",
                        status=403,
                    ),
                )
            return Verdict("retry", "rate_limit", parse_retry_after(outcome.headers.get("retry-after")), 1.0)
        if status == 429:
            return Verdict("retry", "rate_limit", parse_retry_after(outcome.headers.get("retry-after")), 1.0)
        if status >= 500:
            if login and b"faultcode" in outcome.body:
                return Verdict.ok()  # a SOAP login fault: simple-salesforce reports the login failure
            return Verdict("retry", "server", parse_retry_after(outcome.headers.get("retry-after")))
        return Verdict.ok()


class GuardedSession(requests.Session):
    """A requests.Session whose every request goes through the connection's Guard."""

    def __init__(self, guard: SalesforceGuard, base_url: str) -> None:
        super().__init__()
        base = urlsplit(base_url)
        self.guard = guard
        self._scheme, self._netloc, self._host = base.scheme, base.netloc, (base.hostname or "")
        self._salesforce_host = self._host.endswith(".salesforce.com")
        self.trust_env = self._host not in LOOPBACK  # proxy variables must not capture a loopback sandbox

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host == self._host or (not self._salesforce_host and host.endswith(".salesforce.com")):
            return urlunsplit((self._scheme, self._netloc, parts.path, parts.query, parts.fragment))
        return url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        target = self.rewrite(url.decode() if isinstance(url, bytes) else url)
        verb = method.decode() if isinstance(method, bytes) else method
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.guard.timeout
        send_request = super().request

        def send() -> Outcome:
            try:
                response = send_request(verb, target, *args, **kwargs)
            except requests.exceptions.Timeout as exc:
                raise TransportFailure("timeout", type(exc).__name__) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise TransportFailure("connection", type(exc).__name__) from None
            outcome = Outcome(
                response.status_code, CaseInsensitive(response.headers), response.content, response.reason, response
            )
            if response.ok:  # simple-salesforce reads the body with response.json(): the guard's parse serves it
                document = outcome.document
                response.json = lambda *args, **kwargs: document.value()  # type: ignore[method-assign]
            return outcome

        return self.guard.call(verb.upper(), target, send, bucket="salesforce")


# ---------------------------------------------------------------- the connector


class SalesforceConnector(SalesforceMoves, SalesforceWrites, CrmConnector):
    platform = "salesforce"
    label = "Salesforce"
    minimum_fields = REQUIRED

    def __init__(
        self,
        *,
        base_url: str,
        auth_method: str = AuthMethod.SF_PASSWORD,
        username: str = "",
        password: str = "",
        security_token: str = "",
        consumer_key: str = "",
        consumer_secret: str = "",
        access_token: str = "",
        api_version: str = "59.0",
        key: str | None = None,
        refresh: Callable[[], str] | None = None,
        **options: Any,
    ) -> None:
        self._configure(base_url=base_url, auth_method=auth_method, methods=AuthMethod.SALESFORCE, options=options)
        self.api_version = api_version
        self.username, self.consumer_key = username, consumer_key
        self._secrets = {
            "password": password,
            "security_token": security_token,
            "consumer_secret": consumer_secret,
            "access_token": access_token,
        }
        self._refresh = refresh  # OAuth: a new access token from the refresh token
        self._check_credentials()
        self.guard = self._account_guard(
            SalesforceGuard,
            account=username or consumer_key or short_hash(access_token),
            key=key,
            can_relogin=auth_method != AuthMethod.SF_SESSION,
        )
        self._sf: Salesforce | None = None
        self._describes: dict[str, dict[str, Any]] = {}
        self._global: dict[str, dict[str, Any]] | None = None
        self._stage_attrs: dict[str, dict[str, dict[str, Any]]] = {}
        self._pipelines: dict[str, list[Pipeline]] = {}
        self._fields: dict[str, list[CrmField]] = {}
        self._windows: dict[tuple[str, str, datetime, datetime], list[Change]] = {}

    def _check_credentials(self) -> None:
        s = self._secrets
        if self.auth_method == AuthMethod.SF_PASSWORD and not (self.username and s["password"]):
            raise CrmConfigurationError("Salesforce username-and-password login needs a username and a password.")
        if self.auth_method == AuthMethod.SF_CLIENT_CREDENTIALS:
            if not (self.consumer_key and s["consumer_secret"]):
                raise CrmConfigurationError("Salesforce client-credentials login needs a consumer key and secret.")
            host = urlsplit(self.base_url).hostname or ""
            if host in ("login.salesforce.com", "test.salesforce.com"):
                raise CrmConfigurationError(
                    "Salesforce client-credentials login needs the org's My Domain URL "
                    "(https://<name>.my.salesforce.com), not login.salesforce.com."
                )
        if self.auth_method in (AuthMethod.SF_SESSION, AuthMethod.SF_OAUTH) and not s["access_token"]:
            raise CrmConfigurationError("Salesforce access-token login needs an access token (session id).")

    # ---- plumbing

    def _domain(self) -> str:
        host = urlsplit(self.base_url).hostname or ""
        if host.endswith(".salesforce.com"):
            return host[: -len(".salesforce.com")]
        # any other host (a proxy, a loopback sandbox): the session rewrites *.salesforce.com to it
        return "login" if self.auth_method == AuthMethod.SF_PASSWORD else "mydomain.my"

    def _client(self) -> Salesforce:
        if self._sf is None:
            session = GuardedSession(self.guard, self.base_url)
            common: dict[str, Any] = {"version": self.api_version, "session": session}
            s = self._secrets
            with self._translate():
                if self.auth_method == AuthMethod.SF_PASSWORD:
                    self._sf = Salesforce(
                        username=self.username,
                        password=s["password"],
                        security_token=s["security_token"] or "",
                        domain=self._domain(),
                        **common,
                    )
                elif self.auth_method == AuthMethod.SF_CLIENT_CREDENTIALS:
                    self._sf = Salesforce(
                        consumer_key=self.consumer_key,
                        consumer_secret=s["consumer_secret"],
                        domain=self._domain(),
                        **common,
                    )
                else:
                    self._sf = Salesforce(instance_url=self.base_url, session_id=s["access_token"], **common)
                    if self._refresh is not None:
                        # simple-salesforce "logs in again" after a 401 INVALID_SESSION_ID through this partial
                        self._sf._salesforce_login_partial = self._refreshed_session  # type: ignore[assignment]
        return self._sf

    def _refreshed_session(self) -> tuple[str, str]:
        assert self._refresh is not None and self._sf is not None
        self._secrets["access_token"] = self._refresh()
        return self._secrets["access_token"], self._sf.sf_instance

    def _secret_values(self) -> list[str]:
        values = [v for v in self._secrets.values() if v]
        if self._sf is not None and getattr(self._sf, "session_id", None):
            values.append(self._sf.session_id)
        if self._secrets["password"] and self._secrets["security_token"]:
            values.append(self._secrets["password"] + self._secrets["security_token"])
        return values

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except CrmError as exc:
            exc.message = scrub(exc.message, self._secret_values())
            exc.platform = "salesforce"
            raise
        except SalesforceAuthenticationFailed as exc:
            detail = scrub(f"{exc.code}: {exc.auth_message}".strip(": "), self._secret_values())
            raise CrmAuthError(f"Salesforce rejected the credentials ({detail}).", platform="salesforce") from None
        except SalesforceExpiredSession:
            raise CrmAuthError(
                "Salesforce rejected the access token (session expired or revoked). Paste a fresh access token, "
                "or switch to username and password so GTM Ops can log in again.",
                platform="salesforce",
                status=401,
            ) from None
        except (SalesforceMalformedRequest, SalesforceResourceNotFound, SalesforceRefusedRequest) as exc:
            code, message = _error_detail(exc.content)
            path = self.guard.display_path(exc.url)
            detail = scrub(f"{code}: {message}" if code else message, self._secret_values())
            cls = CrmAuthError if isinstance(exc, SalesforceRefusedRequest) else CrmQueryError
            if isinstance(exc, SalesforceRefusedRequest) and code.startswith("INSUFFICIENT_ACCESS"):
                cls = CrmNotReadable  # this user may not read one object: not the credentials
            raise cls(
                f"Salesforce refused {path} ({detail})", platform="salesforce", path=path, status=exc.status
            ) from None
        except SalesforceError as exc:
            path = self.guard.display_path(exc.url) if exc.url else ""
            raise CrmError(
                f"Salesforce answered {exc.status} on {path or 'a request'}.", platform="salesforce", status=exc.status
            ) from None
        except requests.exceptions.JSONDecodeError:
            raise CrmMalformedResponse("Salesforce returned a body that is not JSON.", platform="salesforce") from None

    def _query(self, soql: str) -> dict[str, Any]:
        with self._translate():
            return self._client().query(soql)

    def _query_all(self, soql: str) -> Iterator[dict[str, Any]]:
        with self._translate():
            yield from self._client().query_all_iter(soql)

    def _query_more(self, next_records_url: str) -> dict[str, Any]:
        with self._translate():
            return self._client().query_more(next_records_url, identifier_is_url=True)

    def _records(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The records of a query's answer and of every page after it (nextRecordsUrl), one page held at a time."""
        yield from body.get("records") or []
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = self._query_more(body["nextRecordsUrl"])
            yield from body.get("records") or []

    def _count(self, soql: str) -> int:
        return int(self._query(soql)["totalSize"])

    def _rest(self, path: str) -> Any:
        with self._translate():
            return self._client().restful(path)

    def _global_describe(self) -> dict[str, dict[str, Any]]:
        if self._global is None:
            body = self._rest("sobjects/") or {}
            self._global = {o["name"]: o for o in body.get("sobjects", [])}
        return self._global

    def _describe(self, kind: str) -> dict[str, Any]:
        name = OBJECTS[check_kind(kind)]
        if name not in self._describes:
            self._describes[name] = self._rest(f"sobjects/{name}/describe/")
        return self._describes[name]

    def _may_exist(self, name: str) -> bool:
        """False when describe-global, if this connector read it already (an audit does), does not list `name`.
        A health check does not read it for this alone: the query answers INVALID_TYPE for an object that is
        missing or not readable (`_no_such_object`), and a month's check has no request to spare (issue 10: at
        most 40 at 200,000 leads)."""
        return self._global is None or name in self._global

    def _stage_attributes(self, kind: str) -> dict[str, dict[str, Any]]:
        """Probability / closed / won per stage value, from OpportunityStage or CaseStatus. A metadata object this
        user cannot read is noted and skipped: the stages then come from the picklist alone."""
        if kind not in self._stage_attrs:
            attrs: dict[str, dict[str, Any]] = {}
            source = {"deal": "OpportunityStage", "ticket": "CaseStatus"}.get(kind)
            rows: list[dict[str, Any]] = []
            missing = (
                f"{source} is missing or not readable by this user: whether a stage is closed or won is taken "
                "from the picklist alone."
            )
            if source is not None and not self._may_exist(source):
                self.note(missing)
            elif source is not None:
                columns = (
                    "ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability, SortOrder"
                    if kind == "deal"
                    else "ApiName, MasterLabel, IsClosed"
                )
                try:
                    rows = self._query(f"SELECT {columns} FROM {source}")["records"]
                except CrmQueryError as exc:
                    self.note(
                        missing
                        if _no_such_object(exc)
                        else f"{source} could not be read ({exc}): whether a stage is closed or won is taken from "
                        "the picklist alone."
                    )
            for r in rows:
                probability = r.get("DefaultProbability")
                key = (r.get("ApiName") or r["MasterLabel"]).lower()
                if kind == "deal":
                    attrs[key] = {
                        "probability": None if probability is None else round(float(probability) / 100, 4),
                        "is_closed": bool(r.get("IsClosed")),
                        "is_won": bool(r.get("IsWon")),
                    }
                else:
                    attrs[key] = {"is_closed": bool(r.get("IsClosed")), "is_won": None}
            self._stage_attrs[kind] = attrs
        return self._stage_attrs[kind]

    def _readable(self, kind: str, names: Sequence[str]) -> tuple[list[str], list[Unreadable]]:
        """The names describe lists (spelled as describe spells them), and the others as unreadable."""
        listed = {str(f["name"]).lower(): str(f["name"]) for f in self._describe(kind).get("fields") or []}
        found, skipped = [], []
        for n in names:
            if n.lower() in listed:
                found.append(listed[n.lower()])
            else:
                skipped.append(unreadable(kind, OBJECTS[kind], n))
        return found, skipped

    def _field(self, kind: str, name: str) -> CrmField:
        wanted = name.lower()
        found = next((f for f in self.fields(kind) if f.api_name.lower() == wanted), None)
        if found is None:
            raise CrmQueryError(f"Salesforce {OBJECTS[kind]} has no field {name!r}.", platform="salesforce")
        return found

    def _ensure_budget(self, calls: int, what: str) -> None:
        remaining = self.guard.budget.remaining
        if calls > remaining:
            raise CrmBudgetExhausted(
                f"{what} would take about {calls:,} Salesforce calls; this connection has {remaining:,} left "
                "in today's budget.",
                platform="salesforce",
            )

    # ---- metadata

    def objects(self) -> list[CrmObject]:
        described = self._global_describe()
        out = []
        for kind, name in OBJECTS.items():
            entry = described.get(name)
            if entry is None:
                out.append(CrmObject(kind, name, name, False))
                continue
            label = entry.get("labelPlural") or entry.get("label") or name
            try:
                count = self._count(f"SELECT COUNT() FROM {name}")
            except CrmQueryError as exc:
                self.note(f"{name} is listed but not readable by this user ({exc}).")
                out.append(CrmObject(kind, name, label, False))
                continue
            out.append(CrmObject(kind, name, label, True, count))
        return out

    def fields(self, kind: str) -> list[CrmField]:
        check_kind(kind)
        if kind not in self._fields:
            describe = self._describe(kind)
            attrs = self._stage_attributes(kind) if kind in STAGE_OBJECTS else {}
            out = []
            for f in describe.get("fields", []):
                ftype = _TYPES.get(f.get("type", ""), "other")
                values: tuple[FieldValue, ...] = ()
                if ftype == "picklist":
                    is_stage = f["name"] == STAGE_FIELD.get(kind)
                    values = tuple(
                        FieldValue(
                            api_value=v["value"],
                            label=v.get("label") or v["value"],
                            active=bool(v.get("active", True)),
                            order=i,
                            **(attrs.get(v["value"].lower(), {}) if is_stage else {}),
                        )
                        for i, v in enumerate(f.get("picklistValues") or [])
                    )
                out.append(
                    CrmField(
                        object=kind,
                        api_name=f["name"],
                        label=f.get("label") or f["name"],
                        type=ftype,
                        custom=bool(f.get("custom")),
                        required=not f.get("nillable", True)
                        and bool(f.get("createable"))
                        and not f.get("defaultedOnCreate"),
                        role=field_role(kind, f["name"], f.get("label", ""), STAGE_FIELD.get(kind))
                        if ftype == "picklist"
                        else None,
                        values=values,
                    )
                )
            self._fields[kind] = out
        return self._fields[kind]

    def lifecycle_fields(self) -> list[CrmField]:
        described = self._global_describe()
        out = []
        for kind in OBJECT_KINDS:
            if OBJECTS[kind] in described:
                out += [f for f in self.fields(kind) if f.is_picklist and f.role]
        return out

    def pipelines(self, kind: str = "deal") -> list[Pipeline]:
        check_kind(kind, STAGE_OBJECTS)
        if kind not in self._pipelines:
            name, stage_field = OBJECTS[kind], STAGE_FIELD[kind]
            describe = self._describe(kind)
            attrs = self._stage_attributes(kind)
            record_types = [rt for rt in describe.get("recordTypeInfos") or [] if not rt.get("master")]
            pipelines = []
            for order, rt in enumerate(record_types):
                body = self._rest(f"ui-api/object-info/{name}/picklist-values/{rt['recordTypeId']}/{stage_field}") or {}
                stages = []
                for i, v in enumerate(body.get("values") or []):
                    known = attrs.get(v["value"].lower(), {})
                    extra = v.get("attributes") or {}
                    probability = extra.get("defaultProbability")
                    stages.append(
                        Stage(
                            id=v["value"],
                            label=v.get("label") or v["value"],
                            order=i,
                            probability=round(float(probability) / 100, 4)
                            if probability is not None
                            else known.get("probability"),
                            is_closed=bool(extra.get("closed", known.get("is_closed", False))),
                            is_won=bool(extra.get("won", known.get("is_won") or False)),
                        )
                    )
                pipelines.append(
                    Pipeline(
                        kind,
                        rt["recordTypeId"],
                        rt.get("name") or rt["recordTypeId"],
                        order,
                        bool(rt.get("active", True)),
                        tuple(stages),
                    )
                )
            if not pipelines:
                field_meta = self._field(kind, stage_field)
                stages = [
                    Stage(
                        id=v.api_value,
                        label=v.label,
                        order=i,
                        probability=v.probability,
                        is_closed=bool(v.is_closed),
                        is_won=bool(v.is_won),
                    )
                    for i, v in enumerate(x for x in field_meta.values if x.active)
                ]
                label = describe.get("labelPlural") or name
                pipelines.append(Pipeline(kind, "master", f"All {label}", 0, True, tuple(stages)))
            self._pipelines[kind] = pipelines
        return self._pipelines[kind]

    # ---- counts

    @property
    def _counted(self) -> dict[tuple, Any]:
        """The aggregates this connector (one audit or health check) last read: a field's GROUP BY also answers how
        many records hold no value, so count_without_value after it costs no query of its own."""
        return self.__dict__.setdefault("_counted_aggregates", {})

    def stage_counts(self, kind: str = "deal") -> StageCounts:
        self._counted[("stages", kind)] = counts = self._stage_counts(kind)
        return counts

    def _stage_counts(self, kind: str) -> StageCounts:
        with self.metered() as meter:
            pipelines = self.pipelines(kind)
            by_id = {p.id: p for p in pipelines}
            name, stage_field = OBJECTS[kind], STAGE_FIELD[kind]
            if set(by_id) == {"master"}:
                soql = f"SELECT {stage_field}, COUNT(Id) FROM {name} GROUP BY {stage_field}"
            else:
                soql = f"SELECT RecordTypeId, {stage_field}, COUNT(Id) FROM {name} GROUP BY RecordTypeId, {stage_field}"
            rows = self._query(soql)["records"]
            stages, without, unknown, total = [], 0, 0, 0
            for r in rows:
                n = int(r["expr0"])
                total += n
                pipeline_id = r.get("RecordTypeId") if "RecordTypeId" in r else "master"
                value = r.get(stage_field)
                if value is None:
                    without += n
                    continue
                pipeline = by_id.get(pipeline_id or "")
                stage = pipeline.stage(value) if pipeline else None
                if stage is None:
                    unknown += n
                stages.append(
                    ValueCount(
                        value=value,
                        label=stage.label if stage else value,
                        count=n,
                        known=stage is not None,
                        active=stage.active if stage else None,
                        pipeline_id=pipeline_id,
                    )
                )
        return StageCounts(kind, tuple(stages), without, unknown, total, meter.calls)

    def value_counts(self, kind: str, field_name: str, *, deep: bool = False) -> ValueCounts:
        counts = self._value_counts(kind, field_name, deep)
        if not counts.free_text:  # a free-text reading sees some records only
            self._counted[("values", kind, counts.field.lower())] = counts
        return counts

    def _value_counts(self, kind: str, field_name: str, deep: bool) -> ValueCounts:
        with self.metered() as meter:
            f = self._field(kind, field_name)
            if not f.is_picklist:
                if f.type in ("string", "text"):
                    return self._free_text_counts(kind, f, meter)
                raise CrmQueryError(f"{OBJECTS[kind]}.{f.api_name} is not a picklist.", platform="salesforce")
            rows = self._query(f"SELECT {f.api_name}, COUNT(Id) FROM {OBJECTS[kind]} GROUP BY {f.api_name}")["records"]
            values, empty, unknown, total = [], 0, 0, 0
            for r in rows:
                n = int(r["expr0"])
                total += n
                value = r.get(f.api_name)
                if value is None:
                    empty += n
                    continue
                option = f.value(str(value))
                if option is None:
                    unknown += n
                values.append(
                    ValueCount(
                        value=str(value),
                        label=option.label if option else None,
                        count=n,
                        known=option is not None,
                        active=option.active if option else None,
                    )
                )
        return ValueCounts(kind, f.api_name, tuple(values), empty, unknown, True, total, meter.calls, deep)

    def _free_text_counts(self, kind: str, f: CrmField, meter: Any) -> ValueCounts:
        """A free-text field (a loss reason typed by hand): the latest FREE_TEXT_RECORDS records (closed-lost deals
        for a deal field) grouped by normalised value, labelled by their most frequent spelling. One SOQL page:
        text fields cannot be grouped, and long ones cannot even be filtered."""
        name = OBJECTS[kind]
        where = ""
        if kind == "deal" and not self._readable("deal", ["IsClosed", "IsWon"])[1]:
            where = " WHERE IsClosed = true AND IsWon = false"
        body = self._query(
            f"SELECT {f.api_name} FROM {name}{where} ORDER BY CreatedDate DESC LIMIT {FREE_TEXT_RECORDS}"
        )
        rows = body.get("records") or []
        counts, labels, empty = group_free_text(r.get(f.api_name) for r in rows)
        values = tuple(
            ValueCount(labels[k], labels[k], n, True) for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        which = "closed-lost opportunities" if where else f"{name} records"
        note = (
            f"{f.label} is free text: {len(rows):,} {which} read (the latest {FREE_TEXT_RECORDS:,} at most), "
            "grouped by their wording (case and spacing ignored)."
        )
        return ValueCounts(
            kind, f.api_name, values, empty, 0, True, len(rows), meter.calls, False, note, free_text=True
        )

    def count_without_value(self, kind: str, field_name: str) -> int:
        f = self._field(kind, field_name)
        read = self._counted.get(("values", kind, f.api_name.lower()))
        if read is not None:
            return read.empty
        if kind in STAGE_FIELD and f.api_name == STAGE_FIELD[kind] and ("stages", kind) in self._counted:
            return self._counted[("stages", kind)].without_stage
        return self._count(f"SELECT COUNT() FROM {OBJECTS[kind]} WHERE {f.api_name} = null")

    def _history_source(self, kind: str, f: CrmField) -> tuple[str, str, bool]:
        """(history object, parent id field, snapshot rows?) for a field: OpportunityHistory for the opportunity
        stage (a row per stage entered, always kept), else <Object>History (field history tracking)."""
        if kind == "deal" and f.api_name == "StageName":
            return "OpportunityHistory", "OpportunityId", True
        history, parent = HISTORY[kind]
        return history, parent, False

    def _stage_order(self, kind: str, f: CrmField) -> dict[str, int]:
        return stage_order((v.api_value, v.order) for v in f.values)

    def _window_rows(self, kind: str, f: CrmField, lo: datetime, hi: datetime) -> list[Change] | str:
        """The history rows of one field created in [lo, hi), every page (nextRecordsUrl), at most WINDOW_PAGES
        pages; shared by stage_transitions and time_in_stage. A string says why they cannot be read."""
        key = (kind, f.api_name, lo, hi)
        if key in self._windows:
            return self._windows[key]
        history, parent, snapshot = self._history_source(kind, f)
        missing = f"Salesforce keeps no {history} here, or this user cannot read it."
        if not self._may_exist(history):
            return missing
        window = f"CreatedDate >= {soql_datetime(lo)} AND CreatedDate < {soql_datetime(hi)}"
        if snapshot:
            soql = f"SELECT Id, {parent}, StageName, CreatedDate FROM {history} WHERE {window}"
        else:
            soql = (
                f"SELECT Id, {parent}, OldValue, NewValue, CreatedDate FROM {history} "
                f"WHERE Field = {soql_string(f.api_name)} AND {window}"
            )
        try:
            body = self._query(soql)
        except CrmQueryError as exc:
            return missing if _no_such_object(exc) else f"{history} could not be read ({exc})."
        total = int(body.get("totalSize") or 0)
        pages = max(1, math.ceil(total / PAGE))
        if pages > WINDOW_PAGES:
            return (
                f"{total:,} {history} rows for {f.api_name} in this period would take {pages:,} calls "
                f"(more than {WINDOW_PAGES}); deep mode reads them."
            )
        self._ensure_budget(pages - 1, f"Reading {total:,} {history} rows")
        rows = _changes(self._records(body), parent, snapshot, {})
        if not rows and not snapshot:
            ever = self._count(f"SELECT COUNT() FROM {history} WHERE Field = {soql_string(f.api_name)}")
            if not ever:
                return f"{history} holds no change of {f.api_name}: field history tracking looks off for this field."
        self._windows[key] = rows
        return rows

    def stage_transitions(
        self,
        kind: str,
        field_name: str,
        start: datetime,
        end: datetime,
        *,
        deep: bool = False,
        values: Sequence[str] | None = None,  # one reading counts every value: nothing to save
    ) -> Transitions:
        """Entries into each value in [start, end): the opportunity stage from an OpportunityHistory aggregate,
        other fields from their <Object>History rows in the window (every page), counted per NewValue."""
        with self.metered() as meter:
            f = self._field(kind, field_name)
            window = f"CreatedDate >= {soql_datetime(start)} AND CreatedDate < {soql_datetime(end)}"
            if kind == "deal" and f.api_name == "StageName":
                rows = self._query(
                    f"SELECT StageName, COUNT(Id) FROM OpportunityHistory WHERE {window} GROUP BY StageName"
                )["records"]
                counts = {str(r["StageName"]): int(r["expr0"]) for r in rows if r.get("StageName") is not None}
                into = _transitions(f, counts)
                return Transitions(
                    kind,
                    f.api_name,
                    start,
                    end,
                    into,
                    True,
                    "OpportunityHistory: a row for every stage an opportunity entered, its first stage included",
                    sum(counts.values()),
                    meter.calls,
                    deep,
                )
            history, _ = HISTORY[kind]
            found = self._window_rows(kind, f, _aware(start), _aware(end))
            if isinstance(found, str):
                return Transitions(kind, f.api_name, start, end, (), False, history, None, meter.calls, deep, found)
            counts: Counter[str] = Counter(str(r.new) for r in found if r.new is not None)
            firsts, created = self._first_values(kind, f, found, window, _aware(end))
        if firsts is None:
            note = (
                f"A record's first {f.label} is not a change in Salesforce field history, and the value each of the "
                f"{created:,} {OBJECTS[kind]} records created in the period was created with takes more than "
                f"{AFTER_PAGES} pages of later changes or {WINDOW_PAGES} pages of records to read (a month long "
                "past): entries into the value records are created with count only the records that re-entered it."
            )
        else:
            note = (
                f"A record's first {f.label} is not a change in Salesforce field history: the {created:,} "
                f"{OBJECTS[kind]} records created in the period are counted as entering the value they were created "
                "with (the old value of their first change, else the value they hold now)."
            )
        return Transitions(
            kind,
            f.api_name,
            start,
            end,
            _transitions(f, dict(counts)),
            True,
            f"{history}: changes of {f.api_name} in the period (field history tracking), counted by new value; "
            "a record's first value is not a change",
            len(found),
            meter.calls,
            deep,
            note,
            created,
            _transitions(f, dict(firsts or {})),
        )

    def _first_values(
        self, kind: str, f: CrmField, rows: list[Change], window: str, end: datetime
    ) -> tuple[Counter[str] | None, int]:
        """(the records created in the period by the value they were created with, all records created in it).

        A record's first value is not a change in field history: it is the old value of the record's first change,
        in the period or after it, else the value the record holds now. The changes after the period are read too:
        a run on time reads a day or two of them; a catch-up of a month long past would read months, so beyond
        AFTER_PAGES pages (or WINDOW_PAGES pages of records created) the values are None rather than read at
        today's values, which would be wrong (the caller then counts the changes alone)."""
        history, parent, _ = self._history_source(kind, f)
        after = self._query(
            f"SELECT Id, {parent}, OldValue, NewValue, CreatedDate FROM {history} "
            f"WHERE Field = {soql_string(f.api_name)} AND CreatedDate >= {soql_datetime(end)}"
        )
        if math.ceil(int(after.get("totalSize") or 0) / PAGE) > AFTER_PAGES:
            return None, self._count(f"SELECT COUNT() FROM {OBJECTS[kind]} WHERE {window}")
        body = self._query(f"SELECT Id, {f.api_name} FROM {OBJECTS[kind]} WHERE {window}")
        created = int(body.get("totalSize") or 0)
        if math.ceil(created / PAGE) > WINDOW_PAGES:
            return None, created
        held = [(r["Id"], r.get(f.api_name)) for r in self._records(body)]  # the pages' rows: not kept
        later = _changes(self._records(after), parent, False, {})
        order = self._stage_order(kind, f)
        first_old = {}
        for changes in (later, rows):  # a change in the period comes before any after it: it wins
            for record, ordered in _by_record(changes, order).items():
                first_old[record] = ordered[0].old
        firsts: Counter[str] = Counter()
        for record, now in held:
            value = first_old[record] if record in first_old else now
            if value not in (None, ""):
                firsts[str(value)] += 1
        return firsts, created

    def time_in_stage(
        self,
        kind: str,
        field_name: str,
        start: datetime,
        end: datetime,
        *,
        deep: bool = False,
        values: Sequence[str] | None = None,  # one reading serves every value: nothing to save
    ) -> TimeInStage:
        """Average days in each value for stays that ended in [start, end).

        Without deep mode: from the period's history rows (the ones stage_transitions reads), so stays that began
        and ended inside the period are measured and longer ones are counted in `population` but not measured
        (`sampled`). With deep mode: every history row up to `end` is read, so every stay is measured."""
        with self.metered() as meter:
            f = self._field(kind, field_name)
            history, parent, snapshot = self._history_source(kind, f)
            lo, hi = _aware(start), _aware(end)
            order = self._stage_order(kind, f)
            if not deep:
                found = self._window_rows(kind, f, lo, hi)
                if isinstance(found, str):
                    return TimeInStage(
                        kind, f.api_name, start, end, (), False, False, history, meter.calls, deep, found
                    )
                stays, unmeasured = _window_stays(_by_record(found, order), snapshot)
                source = f"{history}: time between changes of {f.api_name} inside the period"
            else:
                stays, unmeasured, source = self._deep_stays(kind, f, history, parent, snapshot, lo, hi, order)
                if isinstance(stays, str):
                    return TimeInStage(
                        kind, f.api_name, start, end, (), False, False, history, meter.calls, deep, stays
                    )
        durations = []
        for value in set(stays) | set(unmeasured):
            spans = stays.get(value, [])
            option = f.value(value)
            durations.append(
                StageDuration(
                    value,
                    option.label if option else None,
                    sum(spans) / len(spans) if spans else None,
                    len(spans),
                    len(spans) + unmeasured.get(value, 0),
                )
            )
        durations.sort(key=lambda d: (order.get(d.value.lower(), 10_000), d.value))
        # OpportunityHistory rows name the stage entered, not the one left: a stay that began before the period
        # is neither measured nor counted, so without deep mode its averages are always partial
        sampled = any(unmeasured.values()) or (snapshot and not deep)
        note = ""
        if sampled:
            note = (
                f"Measured the {sum(len(v) for v in stays.values()):,} stays that began and ended in the period; "
                f"{sum(unmeasured.values()):,} that began earlier are counted but not measured (deep mode reads "
                "the history before the period too)."
            )
        return TimeInStage(
            kind, f.api_name, start, end, tuple(durations), True, sampled, source, meter.calls, deep, note
        )

    def _deep_stays(
        self,
        kind: str,
        f: CrmField,
        history: str,
        parent: str,
        snapshot: bool,
        lo: datetime,
        hi: datetime,
        order: dict[str, int],
    ) -> tuple[dict[str, list[float]] | str, dict[str, int], str]:
        before = f"CreatedDate < {soql_datetime(hi)}"
        where = before if snapshot else f"Field IN ('created', {soql_string(f.api_name)}) AND {before}"
        try:
            rows_total = self._count(f"SELECT COUNT() FROM {history} WHERE {where}")
        except CrmQueryError:
            return f"Salesforce keeps no {history} here.", {}, history
        self._ensure_budget(max(1, math.ceil(rows_total / PAGE)), f"Reading {rows_total:,} {history} rows")
        columns = "StageName" if snapshot else "Field, OldValue, NewValue"
        rows = _changes(
            self._query_all(f"SELECT Id, {parent}, {columns}, CreatedDate FROM {history} WHERE {where}"),
            parent,
            snapshot,
            {},
        )
        stays: dict[str, list[float]] = defaultdict(list)
        for record_rows in _by_record(rows, order).values():
            if snapshot:
                current, since = None, None
                for r in record_rows:
                    if r.new == current or r.at is None:
                        continue
                    if current is not None and since is not None and lo <= r.at < hi:
                        stays[current].append(days(r.at - since))
                    current, since = r.new, r.at
                continue
            # the 'created' row first, whatever the ties: the record exists before its first change
            record_rows.sort(key=lambda r: r.field != "created")
            record_rows.sort(key=lambda r: r.at or lo)
            since = None
            for r in record_rows:
                if r.field != "created" and since is not None and r.at is not None and lo <= r.at < hi:
                    if r.old is not None:
                        stays[str(r.old)].append(days(r.at - since))
                since = r.at
        return stays, {}, f"{history}: time between changes of {f.api_name}"

    def field_history(
        self, kind: str, field_name: str, start: datetime, end: datetime, *, limit: int = HISTORY_RECORDS
    ) -> FieldHistory:
        """Each record's values of a field in [start, end), from the history objects, in SOQL pages ordered by
        record then time (following nextRecordsUrl); stops after `limit` records or `_history_pages(limit)` pages.

        Opportunity stages come from OpportunityHistory (a row per stage change, always kept), read up to `end` so
        the stage an opportunity held when the window opened is known; other fields from <Object>History rows
        (OldValue, NewValue) inside the window, which needs field history tracking on the field."""
        with self.metered() as meter:
            f = self._field(kind, field_name)
            lo, hi = _aware(start), _aware(end)
            window = f"CreatedDate >= {soql_datetime(lo)} AND CreatedDate < {soql_datetime(hi)}"
            opportunity = kind == "deal" and f.api_name == "StageName"
            if opportunity:
                history, parent = "OpportunityHistory", "OpportunityId"
                where = f"CreatedDate < {soql_datetime(hi)}"
                fields = "Id, StageName, CreatedDate"
                source = "OpportunityHistory: the stage of every opportunity after each change"
            else:
                history, parent = HISTORY[kind]
                where = f"Field = {soql_string(f.api_name)} AND {window}"
                fields = "Id, OldValue, NewValue, CreatedDate"
                source = f"{history}: changes of {f.api_name} (field history tracking)"
            try:
                population = self._count(f"SELECT COUNT() FROM {history} WHERE {where}")
            except CrmQueryError:
                return FieldHistory(
                    kind,
                    f.api_name,
                    lo,
                    hi,
                    (),
                    False,
                    0,
                    0,
                    False,
                    None,
                    history,
                    meter.calls,
                    f"Salesforce keeps no {history} here (field history tracking is off for {OBJECTS[kind]}).",
                )
            most = _history_pages(limit)
            pages = min(most, max(1, math.ceil(population / PAGE)))
            self._ensure_budget(pages, f"Reading the {f.api_name} history of up to {limit:,} {OBJECTS[kind]} records")
            records: list[RecordHistory] = []
            rows: list[Change] = []
            current: str | None = None
            read, sampled = 0, False

            order = self._stage_order(kind, f)
            pool: dict[Any, Any] = {}

            def close() -> None:
                if current is not None:
                    ordered = _by_record(rows, order)[current]
                    records.append(RecordHistory(current, _sf_history(ordered, opportunity, lo, hi)))

            body = (
                self._query(f"SELECT {parent}, {fields} FROM {history} WHERE {where} ORDER BY {parent}, CreatedDate")
                if population
                else {"records": [], "done": True}
            )
            fetched = 1
            while True:
                for r in body.get("records") or []:
                    if r.get(parent) != current:
                        close()
                        if len(records) >= limit:
                            sampled = True
                            break
                        current, rows = r.get(parent), []
                    rows.append(_change(r, parent, opportunity, pool))
                    read += 1
                if sampled:
                    break
                more = body.get("nextRecordsUrl")
                if body.get("done", True) or not more:
                    close()
                    break
                if fetched >= most:
                    sampled = True  # the record read last may continue on the next page: left out
                    break
                body = self._query_more(more)
                fetched += 1
        note = ""
        if sampled:
            note = f"Read the first {len(records):,} records with {f.api_name} history (the deep audit's cap)."
        return FieldHistory(
            kind,
            f.api_name,
            lo,
            hi,
            tuple(records),
            True,
            len(records),
            read,
            sampled,
            population,
            source,
            meter.calls,
            note,
        )

    def custom_objects(self) -> CustomObjects:
        """Custom objects (`__c`) from the global describe, those whose names suggest a lifecycle first, at most
        CUSTOM_OBJECTS described; each with its picklists that look like stage, lifecycle or status fields and its
        record count. An object this user cannot describe or count is noted and skipped."""
        with self.metered() as meter:
            listed = [
                o
                for o in self._global_describe().values()
                if o.get("custom") and str(o.get("name", "")).endswith("__c") and o.get("queryable", True)
            ]
            listed.sort(key=lambda o: (not _LIKELY_LIFECYCLE.search(f"{o['name']} {o.get('label', '')}"), o["name"]))
            notes = []
            if len(listed) > CUSTOM_OBJECTS:
                notes.append(
                    f"The org has {len(listed)} custom objects; the first {CUSTOM_OBJECTS} were read (names that "
                    "suggest a lifecycle, customer or status first)."
                )
            found = []
            for o in listed[:CUSTOM_OBJECTS]:
                name = ident(o["name"])
                try:
                    describe = self._rest(f"sobjects/{name}/describe/") or {}
                except CrmQueryError as exc:
                    notes.append(f"{name} is not readable by this user ({exc}).")
                    continue
                fields = tuple(_custom_field(name, f) for f in describe.get("fields") or [] if _stage_like(f))
                if not fields:
                    continue
                try:
                    records: int | None = self._count(f"SELECT COUNT() FROM {name}")
                except CrmQueryError as exc:
                    records = None
                    notes.append(f"{name} records could not be counted ({exc}).")
                found.append(CustomObject(name, o.get("label") or name, records, fields))
        return CustomObjects(tuple(found), min(len(listed), CUSTOM_OBJECTS), len(listed), meter.calls, tuple(notes))

    @classmethod
    def fields_read(cls) -> tuple[tuple[str, str], ...]:
        named = [(k, n) for k, names in REQUIRED.items() for n in names]
        named += [("deal", n) for n in NEXT_STEP] + list(DUPLICATE_KEYS.items())
        return tuple(dict.fromkeys(named))

    def _fill_counts(self, kind: str, names: list[str]) -> tuple[int, dict[str, int], list[Unreadable]]:
        """(records, records with a value per field, fields refused) in one aggregate; a field the CRM refuses
        anyway (INVALID_FIELD: field-level security) is dropped and the aggregate asked again without it."""
        name, refused = OBJECTS[kind], []
        names = list(names)
        while True:
            counts = "".join(f", COUNT({n})" for n in names)
            try:
                row = self._query(f"SELECT COUNT(Id){counts} FROM {name}")["records"][0]
            except CrmQueryError as exc:
                bad = _refused_field(str(exc), names)
                if bad is None:
                    raise
                names.remove(bad)
                refused.append(unreadable(kind, name, bad, "refused when queried"))
                continue
            filled = {n: int(row[f"expr{i + 1}"] or 0) for i, n in enumerate(names)}
            return int(row["expr0"] or 0), filled, refused

    def data_quality(
        self,
        *,
        as_of: datetime | None = None,
        stale_days: int = 180,
        required: dict[str, list[str]] | None = None,
        deep: bool = False,
    ) -> DataQuality:
        """Every field is checked against describe first: a missing or hidden one is skipped and listed in
        `unreadable` (its figure is left out), never queried; one the CRM refuses anyway is dropped and the
        aggregate asked again without it."""
        as_of = _aware(as_of or datetime.now(UTC))
        cutoff = soql_datetime(as_of - timedelta(days=stale_days))
        with self.metered() as meter:
            described = self._global_describe()
            missing: list[FieldFill] = []
            unread: list[Unreadable] = []
            totals: dict[str, int] = {}
            for kind, names in (required or REQUIRED).items():
                name = OBJECTS[check_kind(kind)]
                if name not in described:
                    continue
                readable, skipped = self._readable(kind, [ident(n) for n in names])
                total, filled, refused = self._fill_counts(kind, readable)
                unread += skipped + refused
                totals[kind] = total
                missing += [FieldFill(kind, n, total - filled[n], total) for n in readable if n in filled]
            stale = []
            for kind in ("lead", "contact", "company", "deal"):
                name = OBJECTS[kind]
                if name not in described:
                    continue
                total = totals[kind] if kind in totals else self._count(f"SELECT COUNT() FROM {name}")
                totals[kind] = total
                n = self._count(f"SELECT COUNT() FROM {name} WHERE LastModifiedDate < {cutoff}")
                stale.append(StaleRecords(kind, n, total))
            no_next_step = None
            if "Opportunity" in described:
                readable, skipped = self._readable("deal", list(NEXT_STEP))
                unread += skipped
                if not skipped:
                    try:
                        no_next_step = self._count(
                            "SELECT COUNT() FROM Opportunity WHERE IsClosed = false AND NextStep = null"
                        )
                    except CrmQueryError as exc:
                        bad = _refused_field(str(exc), list(NEXT_STEP)) or "NextStep"
                        unread.append(unreadable("deal", "Opportunity", bad, "refused when queried"))
            duplicates = None
            notes: list[str] = []
            if deep:
                duplicates = self._duplicates(described, unread)
            else:
                notes.append("Duplicates need deep=True: finding them means reading every email and website.")
        notes += [f"{u.reason}: left out." for u in unread]
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

    def _duplicates(self, described: dict[str, Any], unread: list[Unreadable]) -> tuple[Duplicates, ...]:
        plan = []
        for kind, field_name in DUPLICATE_KEYS.items():
            if OBJECTS[kind] not in described:
                continue
            readable, skipped = self._readable(kind, [field_name])
            unread += skipped
            if readable:
                plan.append((kind, OBJECTS[kind], readable[0]))
        sizes = {}
        for kind, name, field_name in list(plan):
            try:
                sizes[kind] = self._count(f"SELECT COUNT() FROM {name} WHERE {field_name} != null")
            except CrmQueryError:
                unread.append(unreadable(kind, name, field_name, "refused when queried"))
                plan.remove((kind, name, field_name))
        pages = sum(max(1, math.ceil(s / PAGE)) for s in sizes.values())
        self._ensure_budget(pages, f"Finding duplicates reads {sum(sizes.values()):,} records and")
        out = []
        for kind, name, field_name in plan:
            keys: Counter[str] = Counter()
            scanned = 0
            normalise = domain_key if field_name == "Website" else email_key
            for r in self._query_all(f"SELECT {field_name} FROM {name} WHERE {field_name} != null"):
                scanned += 1
                key = normalise(r.get(field_name))
                if key:
                    keys[key] += 1
            repeated = [n for n in keys.values() if n > 1]
            out.append(
                Duplicates(
                    kind, "domain" if field_name == "Website" else "email", len(repeated), sum(repeated), scanned
                )
            )
        return tuple(out)

    def api_budget(self) -> ApiBudget:
        body = self._rest("limits/") or {}
        daily = body.get("DailyApiRequests") or {}
        if daily.get("Max"):
            self.guard.budget.observe(daily_limit=int(daily["Max"]), daily_remaining=int(daily.get("Remaining", 0)))
        budget = self.guard.budget
        return ApiBudget(
            platform="salesforce",
            daily_limit=budget.daily_limit,
            daily_remaining=budget.daily_remaining,
            share=budget.share,
            budget_limit=budget.limit,
            budget_used=budget.used,
            calls_spent=self.calls_spent,
            source="Salesforce /limits (DailyApiRequests) and Sforce-Limit-Info",
        )

    def close(self) -> None:
        if self._sf is not None:
            self._sf.session.close()
            self._sf = None


def _error_detail(content: Any) -> tuple[str, str]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        message = " ".join(str(content[0].get("message", "")).split())
        return str(content[0].get("errorCode", "")), message[:300]
    if isinstance(content, dict):
        return str(content.get("errorCode", "")), str(content.get("message", ""))[:300]
    return "", " ".join(str(content).split())[:200]


def _no_such_object(exc: CrmQueryError) -> bool:
    """A SOQL query on an object that is missing or that this user may not read: INVALID_TYPE, as describe-global
    leaving it out would say."""
    return "INVALID_TYPE" in exc.message


def _refused_field(message: str, names: list[str]) -> str | None:
    """Which of `names` a Salesforce error is about (INVALID_FIELD: "No such column 'Phone' on entity 'Lead'")."""
    wanted = {n.lower(): n for n in names}
    for m in _BAD_FIELD.finditer(message):
        if m.group(1).lower() in wanted:
            return wanted[m.group(1).lower()]
    return None


def _transitions(f: CrmField, counts: dict[str, int]) -> tuple[Transition, ...]:
    out = [Transition(v.api_value, v.label, counts.get(v.api_value, 0)) for v in f.values]
    listed = {v.api_value.lower() for v in f.values}
    out += [Transition(value, None, n) for value, n in sorted(counts.items()) if value.lower() not in listed]
    return tuple(out)


def _stage_like(field: dict[str, Any]) -> bool:
    return field.get("type") in ("picklist", "multipicklist") and bool(
        field_role("custom", str(field.get("name", "")), str(field.get("label", "")))
    )


def _custom_field(object_name: str, f: dict[str, Any]) -> CrmField:
    return CrmField(
        object=object_name,
        api_name=f["name"],
        label=f.get("label") or f["name"],
        type="picklist",
        custom=bool(f.get("custom")),
        role=field_role("custom", f["name"], f.get("label") or ""),
        values=tuple(
            FieldValue(v["value"], v.get("label") or v["value"], bool(v.get("active", True)), i)
            for i, v in enumerate(f.get("picklistValues") or [])
        ),
    )


def _window_stays(per_record: dict[str, list[Change]], snapshot: bool) -> tuple[dict[str, list[float]], dict[str, int]]:
    """From each record's rows inside a period (time order): (days per stay that began and ended in it, per value;
    stays that ended in it but began before, per value). A record's first row ends a stay that began earlier."""
    stays: dict[str, list[float]] = defaultdict(list)
    unmeasured: Counter[str] = Counter()
    for rows in per_record.values():
        if not snapshot and rows and rows[0].old is not None:
            unmeasured[str(rows[0].old)] += 1
        for here, after in zip(rows, rows[1:], strict=False):
            if here.new is None or here.at is None or after.at is None or after.new == here.new:
                continue
            stays[str(here.new)].append(days(after.at - here.at))
    return dict(stays), dict(unmeasured)


class Change(NamedTuple):
    """One history row as the connector keeps it: a month of a large org's history is held for the run, tens of
    thousands of rows per field in each of the CRM worker's threads, and a row as parsed (a dict with `attributes`,
    its type and URL) took about 550 bytes; this about 250. `new` is the value entered (OpportunityHistory: the
    stage, with `old` None), `id` the CRM's sequence for ties, `field` 'created' on a record's creation row."""

    record: str
    id: str
    old: str | None
    new: str | None
    at: datetime | None
    field: str | None


def _change(r: dict[str, Any], parent: str, snapshot: bool, pool: dict[Any, Any]) -> Change:
    """A row of a SOQL answer as a Change; `pool` keeps one copy of each value and record id across a read."""
    keep = pool.setdefault
    old, new = (None, r.get("StageName")) if snapshot else (r.get("OldValue"), r.get("NewValue"))
    old, new = (None if v is None else str(v) for v in (old, new))  # anyType in <Object>History
    return Change(
        keep(r.get(parent), r.get(parent)),
        r.get("Id") or "",
        keep(old, old),
        keep(new, new),
        parse_sf_datetime(r.get("CreatedDate")),
        keep(r.get("Field"), r.get("Field")),
    )


def _changes(
    records: Iterable[dict[str, Any]] | None, parent: str, snapshot: bool, pool: dict[Any, Any]
) -> list[Change]:
    return [_change(r, parent, snapshot, pool) for r in records or ()]


def _by_record(rows: Iterable[Change], order: dict[str, int]) -> dict[str, list[Change]]:
    """Rows grouped by record, each record's rows in time order, ties by stage order then row id (`history_key`)."""
    grouped: dict[str, list[Change]] = defaultdict(list)
    for r in rows:
        grouped[r.record].append(r)
    for found in grouped.values():
        if len(found) > 1:
            found.sort(key=lambda r: history_key(r.at, r.new, r.id, order))
    return grouped


def _history_pages(limit: int) -> int:
    """The most SOQL pages a history read may take for `limit` records (a generous rows-per-record allowance)."""
    return 1 + math.ceil(limit * HISTORY_ROWS_PER_RECORD / PAGE)


def _sf_history(rows: list[Change], opportunity: bool, lo: datetime, hi: datetime) -> tuple[ValueChange, ...]:
    entries: list[tuple[str | None, datetime | None]] = []
    if rows and not opportunity and rows[0].old is not None:
        entries.append((str(rows[0].old), None))  # held when the window opened
    entries += [(None if r.new is None else str(r.new), r.at) for r in rows]
    return history_in_window(entries, lo, hi)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
