"""One connector interface for every CRM, returning plain dataclasses the rest of the app understands.

The audit engine, health checks and pages never see simple-salesforce or hubspot-api-client objects:
they call a `CrmConnector` and get the dataclasses below. Objects are named by platform-neutral kinds
("lead", "contact", "company", "deal", "ticket"); fields and values keep their platform API names so
a finding can point at the exact picklist value to fix.

Cost rule (DESIGN.md section 6): every method costs a number of API calls that depends on the number
of objects, fields, pipelines and stages, never on the number of records (SOQL GROUP BY / COUNT(),
HubSpot search `total` with limit=1). Anything that must walk records takes `deep=True`, checks the
remaining budget first and reports what it spent in its result's `calls`.

Errors are `CrmError` subclasses whose message is plain words a consultant can act on, never a
secret, a stack trace or a raw response dump.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

if TYPE_CHECKING:
    from .http import Guard, HttpOptions

OBJECT_KINDS = ("lead", "contact", "company", "deal", "ticket")
STAGE_OBJECTS = ("deal", "ticket")


class AuthMethod:
    """How a connection authenticates; stored on CrmConnection.auth_method."""

    SF_PASSWORD = "password"  # username + password + security token (SOAP login)
    SF_CLIENT_CREDENTIALS = "client_credentials"  # OAuth client credentials: consumer key/secret + My Domain
    SF_SESSION = "session"  # an existing access token (session id) + instance URL
    HS_PRIVATE_APP = "private_app"  # HubSpot private-app access token
    # the client granted access through OAuth in the portal: access + refresh token (crm_connectors/oauth.py)
    SF_OAUTH = "salesforce_oauth"
    HS_OAUTH = "hubspot_oauth"

    SALESFORCE = (SF_PASSWORD, SF_CLIENT_CREDENTIALS, SF_SESSION, SF_OAUTH)
    HUBSPOT = (HS_PRIVATE_APP, HS_OAUTH)
    OAUTH = (SF_OAUTH, HS_OAUTH)


# ---------------------------------------------------------------- errors


class CrmError(Exception):
    """A CRM call failed. `str(error)` is a plain-words message, safe to show and to log."""

    def __init__(
        self, message: str, *, platform: str = "", path: str = "", status: int | None = None, attempts: int = 0
    ) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform
        self.path = path
        self.status = status
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class CrmConfigurationError(CrmError):
    """The connection is set up wrongly (plain http, missing credentials, a URL that cannot work)."""


class CrmUnsupported(CrmError):
    """The CRM has no such object, field or history (e.g. HubSpot has no lead object here)."""


class CrmAuthError(CrmError):
    """Credentials rejected, session expired and a fresh login did not help, or no permission."""


class CrmReconnectNeeded(CrmAuthError):
    """The CRM refused the OAuth refresh token (revoked, expired): only the client can grant access again."""


class CrmRateLimited(CrmError):
    """The CRM kept answering 'slow down' (429, concurrent-request limit) after bounded retries."""


class CrmApiLimitExceeded(CrmError):
    """The CRM's own daily allocation is used up (or nearly: we leave the last share to the client)."""


class CrmBudgetExhausted(CrmError):
    """This connection spent its share of today's API allocation; GTM Ops refuses further calls."""


class CrmTimeout(CrmError):
    """The CRM did not answer within the timeout, also on the retry."""


class CrmUnavailable(CrmError):
    """The CRM answered 5xx or dropped the connection, after bounded retries."""


class CrmMalformedResponse(CrmError):
    """The CRM answered 200 with a body that is not valid JSON (truncated or broken)."""


class CrmQueryError(CrmError):
    """The CRM refused a request as invalid (unknown field, bad query, missing resource)."""


class CrmNotReadable(CrmQueryError):
    """This user may not read one object or endpoint (Salesforce INSUFFICIENT_ACCESS on a describe, HubSpot
    MISSING_SCOPES): about that item only, so the reading notes it and goes on."""


class Unreadable(NamedTuple):
    """A field the connector meant to read but could not: absent from describe/properties, or refused when queried
    (field-level security). `reason` is plain words a consultant can act on."""

    object: str  # kind
    field: str
    reason: str


def unreadable(kind: str, object_label: str, field_name: str, detail: str = "") -> Unreadable:
    """The one wording for a field the CRM would not let us read."""
    reason = f"{object_label}.{field_name} is missing or not readable by this user"
    return Unreadable(kind, field_name, f"{reason} ({detail})" if detail else reason)


# ---------------------------------------------------------------- metadata


@dataclass(frozen=True)
class CrmObject:
    kind: str  # lead, contact, company, deal, ticket
    api_name: str  # Lead / Account / contacts / deals ...
    label: str
    available: bool
    record_count: int | None = None


@dataclass(frozen=True)
class FieldValue:
    """One value of a picklist / enumeration (a lifecycle stage, a status, a deal stage...)."""

    api_value: str
    label: str
    active: bool = True
    order: int = 0
    probability: float | None = None  # 0..1, stages only
    is_closed: bool | None = None
    is_won: bool | None = None


@dataclass(frozen=True)
class CrmField:
    object: str  # kind
    api_name: str
    label: str
    type: str  # picklist, string, email, phone, url, text, number, date, datetime, boolean, reference, id, other
    custom: bool = False
    required: bool = False
    # lifecycle, status, stage, type: what the field tracks, for lifecycle-like picklists; None otherwise
    role: str | None = None
    values: tuple[FieldValue, ...] = ()

    @property
    def is_picklist(self) -> bool:
        return self.type == "picklist"

    def value(self, api_value: str | None) -> FieldValue | None:
        if api_value is None:
            return None
        wanted = api_value.lower()
        return next((v for v in self.values if v.api_value.lower() == wanted), None)


@dataclass(frozen=True)
class Stage:
    id: str  # Salesforce: the StageName / Status value; HubSpot: the stage id
    label: str
    order: int
    probability: float | None  # 0..1
    is_closed: bool
    is_won: bool
    active: bool = True


@dataclass(frozen=True)
class Pipeline:
    """A deal or ticket pipeline. Salesforce: a record type (its sales/support process)."""

    object: str  # deal or ticket
    id: str  # Salesforce record type id ("master" without record types); HubSpot pipeline id
    label: str
    order: int
    active: bool
    stages: tuple[Stage, ...]

    def stage(self, stage_id: str | None) -> Stage | None:
        if stage_id is None:
            return None
        wanted = stage_id.lower()
        return next((s for s in self.stages if s.id.lower() == wanted), None)


# ---------------------------------------------------------------- counts


@dataclass(frozen=True)
class ValueCount:
    value: str
    label: str | None
    count: int
    known: bool  # the value is one of the field's picklist options (or the pipeline's stages)
    active: bool | None = None  # None when unknown
    pipeline_id: str | None = None


@dataclass(frozen=True)
class ValueCounts:
    """Records per value of one field, as the records hold them (rogue values included)."""

    object: str
    field: str
    values: tuple[ValueCount, ...]
    empty: int  # records with no value
    unknown_total: int  # records holding a value that is not a picklist option
    unknown_named: bool  # True when `values` names every unknown value (Salesforce; HubSpot with deep)
    total: int
    calls: int
    deep: bool = False
    note: str = ""
    free_text: bool = False  # a text field, not a picklist: values grouped by normalised wording from a bounded read

    def count(self, value: str) -> int:
        wanted = value.lower()
        return sum(v.count for v in self.values if v.value.lower() == wanted)

    @property
    def unknown(self) -> tuple[ValueCount, ...]:
        return tuple(v for v in self.values if not v.known)


@dataclass(frozen=True)
class StageCounts:
    """Records per pipeline stage, records with no stage, records in a stage no pipeline lists."""

    object: str
    stages: tuple[ValueCount, ...]  # pipeline_id set; known=False for stages the pipeline does not list
    without_stage: int
    unknown_total: int
    total: int
    calls: int

    def count(self, stage_id: str, pipeline_id: str | None = None) -> int:
        wanted = stage_id.lower()
        return sum(
            s.count
            for s in self.stages
            if s.value.lower() == wanted and (pipeline_id is None or s.pipeline_id == pipeline_id)
        )


@dataclass(frozen=True)
class Transition:
    value: str
    label: str | None
    count: int | None  # None when the CRM keeps no entry date for this value


@dataclass(frozen=True)
class Transitions:
    """How many records entered each value of a field in [start, end)."""

    object: str
    field: str
    start: datetime
    end: datetime
    into: tuple[Transition, ...]
    available: bool  # False when per-value counts need deep=True or the CRM has no history
    source: str  # what was counted, in words
    total_changes: int | None  # all changes of the field in the period, where the CRM can count them
    calls: int
    deep: bool = False
    note: str = ""
    # Salesforce field history: a record's first value is not a change, so entries into a funnel's first stage are
    # not in `into`; the records created in the period are, by the value they were created with (None where `into`
    # already counts first values)
    created: int | None = None
    first_values: tuple[Transition, ...] = ()

    def count(self, value: str) -> int | None:
        """Changes into a value (on Salesforce field history, records created in it left out)."""
        wanted = value.lower()
        found = [t.count for t in self.into if t.value.lower() == wanted]
        if not found:
            return 0 if self.available else None
        return None if any(c is None for c in found) else sum(c for c in found if c is not None)

    def entered(self, value: str) -> int | None:
        """Records that entered a value, those created in it included: what HubSpot's 'date entered' counts, so
        a funnel's first stage has its entries on every CRM."""
        changes = self.count(value)
        if changes is None:
            return None
        return changes + sum(t.count or 0 for t in self.first_values if t.value.lower() == value.lower())


@dataclass(frozen=True)
class StageDuration:
    value: str
    label: str | None
    average_days: float | None
    sample_size: int  # stays measured
    population: int  # stays that ended in the period


@dataclass(frozen=True)
class TimeInStage:
    """Average days a record stayed in each value, for stays that ended in [start, end)."""

    object: str
    field: str
    start: datetime
    end: datetime
    stages: tuple[StageDuration, ...]
    available: bool
    sampled: bool  # True when some averages come from a sample, not every stay
    source: str
    calls: int
    deep: bool = False
    note: str = ""

    def stage(self, value: str) -> StageDuration | None:
        wanted = value.lower()
        return next((s for s in self.stages if s.value.lower() == wanted), None)


@dataclass(frozen=True)
class ValueChange:
    """One value a record held, and when it entered it (None: held when the window opened, time unknown)."""

    value: str
    at: datetime | None


@dataclass(frozen=True)
class RecordHistory:
    """The values one record held in [start, end), oldest first, consecutive repeats collapsed. The first entry is
    the value the record held when the window opened, where the CRM tells it (Salesforce OldValue, HubSpot's
    earlier history entry, OpportunityHistory's earlier row)."""

    record_id: str
    values: tuple[ValueChange, ...]
    pipeline: str | None = None  # the deal's pipeline where the CRM returns it with the history (HubSpot)

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(v.value for v in self.values)


@dataclass(frozen=True)
class FieldHistory:
    """Per-record value history of one field in [start, end): deep mode only (cost grows with records read).

    At most `limit` records are read; `sampled` says some records with changes in the window were left out.
    """

    object: str
    field: str
    start: datetime
    end: datetime
    records: tuple[RecordHistory, ...]
    available: bool  # False when the CRM keeps no history for this field
    records_read: int
    changes_read: int  # history rows (Salesforce) or history entries (HubSpot) read
    sampled: bool
    population: int | None  # what the CRM said it holds: history rows in the window (Salesforce),
    # records modified in the window (HubSpot)
    source: str
    calls: int
    note: str = ""


@dataclass(frozen=True)
class FieldFill:
    object: str
    field: str
    missing: int
    total: int

    @property
    def missing_share(self) -> float:
        return self.missing / self.total if self.total else 0.0


@dataclass(frozen=True)
class StaleRecords:
    object: str
    stale: int
    total: int


@dataclass(frozen=True)
class Duplicates:
    object: str
    key: str  # email or domain
    groups: int  # distinct keys held by more than one record
    records: int  # records in those groups
    scanned: int  # records read


@dataclass(frozen=True)
class DataQuality:
    as_of: datetime
    stale_days: int
    missing: tuple[FieldFill, ...]
    stale: tuple[StaleRecords, ...]
    open_deals_without_next_step: int | None
    duplicates: tuple[Duplicates, ...] | None  # None unless deep=True: finding them means reading records
    calls: int
    deep: bool = False
    notes: tuple[str, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()  # fields skipped: missing or hidden; the figures that need them are None

    def missing_for(self, kind: str, field_name: str) -> FieldFill | None:
        return next((m for m in self.missing if m.object == kind and m.field == field_name), None)


@dataclass(frozen=True)
class CustomObject:
    """A custom object (Salesforce `__c`, HubSpot custom object schema) and its stage-like picklists."""

    api_name: str
    label: str
    records: int | None  # None when the CRM would not count them
    fields: tuple[CrmField, ...]  # picklists whose name or label says lifecycle, status or stage


@dataclass(frozen=True)
class CustomObjects:
    objects: tuple[CustomObject, ...]  # only those with a stage-like picklist
    examined: int  # custom objects described
    found: int  # custom objects the CRM lists
    calls: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiBudget:
    platform: str
    daily_limit: int | None  # the CRM's daily allocation for the whole account/org
    daily_remaining: int | None
    share: float  # CRM_DAILY_BUDGET_SHARE
    budget_limit: int  # this connection's share of the daily allocation
    budget_used: int  # spent today by this connection (all workers)
    calls_spent: int  # spent by this connector instance
    window_limit: int | None = None  # HubSpot rolling window (X-HubSpot-RateLimit-Max)
    window_remaining: int | None = None
    window_seconds: float | None = None
    source: str = ""

    @property
    def budget_remaining(self) -> int:
        return max(0, self.budget_limit - self.budget_used)


# ---------------------------------------------------------------- the interface


class WriteAccess(NamedTuple):
    allowed: bool
    reason: str = ""


class CrmConnector(ABC):
    """What every CRM connector offers. Construct through `CrmConnection.connector()` in the app.

    `calls_spent` counts every HTTP request this instance sent (logins and retries included), so a
    run can record what it cost. Results also carry their own `calls`.
    """

    platform: ClassVar[str]
    label: ClassVar[str]
    options: HttpOptions
    base_url: str
    auth_method: str
    guard: Guard

    # The connectors' shared setup. `http` imports this module, so its names are imported inside.

    def _configure(self, *, base_url: str, auth_method: str, methods: Iterable[str], options: dict[str, Any]) -> None:
        """HTTP options, the base URL and the sign-in method, checked alike for every CRM before its credentials."""
        from .http import HttpOptions, check_url

        self.options = HttpOptions.from_settings(**options)
        self.base_url = check_url(base_url, self.label, allow_http=self.options.allow_http)
        if auth_method not in methods:
            raise CrmConfigurationError(f"Unknown {self.label} authentication method {auth_method!r}.")
        self.auth_method = auth_method

    def _account_guard(self, guard_class: type[Guard], *, account: str, key: str | None, **extra: Any) -> Guard:
        """The Guard of one CRM account (base URL and who signs in as `account`): connections to the same account
        share its rate-limit windows and, unless `key` names another, its daily budget."""
        from .http import DEFAULT_DAILY_ALLOCATION, Budget, short_hash

        rate_key = short_hash(self.base_url, account)
        budget = Budget(
            key=key or f"{self.platform}:{rate_key}",
            share=self.options.share,
            store=self.options.store,
            label=self.label,
            default_daily=DEFAULT_DAILY_ALLOCATION[self.platform],
        )
        return guard_class(self.label, self.options, budget, rate_key=rate_key, **extra)

    @property
    def calls_spent(self) -> int:
        return self.guard.calls

    @property
    def notes(self) -> list[str]:
        """What the connector could not read and worked around (a refused metadata object), in plain words."""
        return self.__dict__.setdefault("_notes", [])

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    @classmethod
    def fields_read(cls) -> tuple[tuple[str, str], ...]:
        """The (object kind, field) pairs this connector reads by name (data quality, next step, duplicates); every
        other field it reads is found in describe/properties first. Each is checked against describe before it is
        queried, so an org hiding any of them still audits."""
        return ()

    def custom_objects(self) -> CustomObjects:
        """Custom objects with picklists that look like lifecycle or stage fields (a customer lifecycle kept on
        a custom object), bounded in cost; an empty answer where the CRM has none or refuses (noted)."""
        return CustomObjects((), 0, 0, 0, (f"{self.label} custom objects are not read here.",))

    @contextmanager
    def metered(self) -> Iterator[_Meter]:
        meter = _Meter(self.guard)
        yield meter

    # metadata
    @abstractmethod
    def objects(self) -> list[CrmObject]:
        """The standard objects (lead, contact, company, deal, ticket): present or not, and record counts."""

    @abstractmethod
    def fields(self, kind: str) -> list[CrmField]:
        """Every field of an object, with picklist values."""

    @abstractmethod
    def lifecycle_fields(self) -> list[CrmField]:
        """Lifecycle, status, company-type and stage picklists across objects, with their values."""

    @abstractmethod
    def pipelines(self, kind: str = "deal") -> list[Pipeline]:
        """Deal or ticket pipelines with their stages."""

    # counts (aggregate: cost independent of record count)
    @abstractmethod
    def stage_counts(self, kind: str = "deal") -> StageCounts:
        """Records per pipeline stage, without a stage, and in stages no pipeline lists."""

    @abstractmethod
    def value_counts(self, kind: str, field_name: str, *, deep: bool = False) -> ValueCounts:
        """Records per value actually present in `field_name`, rogue values included."""

    @abstractmethod
    def count_without_value(self, kind: str, field_name: str) -> int:
        """Records whose `field_name` is empty (e.g. records with no lifecycle stage)."""

    # Whether each value counted costs a request of its own (HubSpot: a search per value) rather than one aggregate
    # per field (Salesforce: GROUP BY). A health check then asks only about the values it judges (held_counts).
    counts_per_value: ClassVar[bool] = False
    # The minimum field set data_quality() measures by default (object kind -> API names).
    minimum_fields: ClassVar[dict[str, list[str]]] = {}

    def held_counts(self, kind: str, field_name: str, values: Sequence[str]) -> dict[str, int]:
        """Records holding each of `values` (API values), the held ones only."""
        counts = self.value_counts(kind, field_name)
        wanted = {v.lower() for v in values}
        return {v.value: v.count for v in counts.values if v.count > 0 and v.value.lower() in wanted}

    def count_unlisted(self, kind: str, field_name: str) -> int:
        """Records holding a value that no option of `field_name` lists."""
        return self.value_counts(kind, field_name).unknown_total

    @abstractmethod
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
        """Records that entered each value of `field_name` in [start, end); only `values` when given, where
        the CRM charges per value (HubSpot)."""

    @abstractmethod
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
        """Average days in each value, for stays that ended in [start, end); only `values` when given, as above."""

    def field_history(
        self, kind: str, field_name: str, start: datetime, end: datetime, *, limit: int = 1_000
    ) -> FieldHistory:
        """Deep mode only: each record's values of `field_name` in [start, end), for at most `limit` records.

        Costs calls in proportion to the records read (pages of history), bounded by `limit`; checks the
        remaining budget first and reports its cost in the result's `calls`."""
        raise CrmUnsupported(f"{self.label} offers no field history here.", platform=self.platform)

    @abstractmethod
    def data_quality(
        self,
        *,
        as_of: datetime | None = None,
        stale_days: int = 180,
        required: dict[str, list[str]] | None = None,
        deep: bool = False,
    ) -> DataQuality:
        """Missing required fields, stale records, open deals without a next step; duplicates with deep."""

    @abstractmethod
    def api_budget(self) -> ApiBudget:
        """The CRM's daily allocation and usage, and this connection's budget."""

    # configuration writes (the engineering phase's apply and undo). One operation of a change plan (see
    # engineering/plan.py for its shape: kind, object, field, pipeline, value, label, probability, target) is read
    # and written as a *state*, so apply writes `op["target"]` and undo writes the prior state it recorded:
    #   a value or stage: {"label": str, "active": bool, "probability": int 0-100 | None}; None = absent
    #   a field (create_field): {"type": str, "values": [label, ...]}; None = absent
    def write_access(self) -> WriteAccess:
        """Whether this connection may change configuration (scopes or permissions read from the CRM, never
        assumed), with the reason in words when it may not."""
        return WriteAccess(False, f"{self.label} configuration writes are not supported by this connector.")

    def config_state(self, op: dict[str, Any]) -> dict[str, Any] | None:
        """The CRM's state now of the value, stage or field `op` targets; None when it does not exist."""
        raise CrmUnsupported(f"{self.label} configuration cannot be read for writing here.", platform=self.platform)

    def write_config(self, op: dict[str, Any], state: dict[str, Any] | None) -> None:
        """Make the value, stage or field `op` targets carry `state` (None removes what an apply created).
        Sends writes only; the caller reads config_state first and skips an operation already in that state."""
        raise CrmUnsupported(f"{self.label} configuration cannot be written here.", platform=self.platform)

    # record moves (the engineering phase's opt-in move of records off a retired value onto its mapped value): the
    # records are found by their ids first, so a dry run can count them and a move writes exactly those.
    def records_holding(self, kind: str, field: str, value: str, pipeline: str | None, limit: int) -> list[str]:
        """The ids of the records of `kind` whose `field` holds `value` (in `pipeline`, for a stage), at most
        `limit` of them, read page by page."""
        raise CrmUnsupported(f"{self.label} records cannot be listed for a move here.", platform=self.platform)

    def move_records(self, kind: str, field: str, ids: Sequence[str], new_value: str) -> int:
        """Set `field` to `new_value` on the records `ids`; how many the CRM changed. CrmError when it refused."""
        raise CrmUnsupported(f"{self.label} records cannot be moved here.", platform=self.platform)

    def unlisted_values(
        self, kind: str, field: str, listed: Sequence[str], pipeline: str | None, limit: int
    ) -> tuple[dict[str, int], int]:
        """The values records of `kind` hold in `field` (in `pipeline`, for a stage) that `listed` does not name,
        with their records, from at most `limit` records; and how many records hold such values in all."""
        raise CrmUnsupported(f"{self.label} record values cannot be listed here.", platform=self.platform)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the instance must not be used afterwards."""

    def __enter__(self) -> CrmConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # never the credentials
        return f"<{type(self).__name__} {getattr(self, 'base_url', '')}>"


class _Meter:
    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._start = guard.calls

    @property
    def calls(self) -> int:
        return self._guard.calls - self._start


def check_kind(kind: str, allowed: tuple[str, ...] = OBJECT_KINDS) -> str:
    if kind not in allowed:
        raise CrmQueryError(f"Unknown object kind {kind!r}; expected one of {', '.join(allowed)}.")
    return kind


_LIFECYCLE = re.compile(r"lifecycle", re.I)
_STATUS = re.compile(r"status", re.I)
_STAGE = re.compile(r"stage", re.I)


def field_role(kind: str, api_name: str, label: str, stage_field: str | None = None) -> str | None:
    """What a picklist tracks, from its name and label: lifecycle, status, stage or (company) type."""
    text = f"{api_name} {label}"
    if kind in STAGE_OBJECTS:
        return "stage" if api_name == stage_field else None
    if _LIFECYCLE.search(text):
        return "lifecycle"
    if _STATUS.search(text):
        return "status"
    if _STAGE.search(text):
        return "lifecycle"  # a 'Lead Stage' on a person is a funnel position
    if kind == "company" and api_name.lower() == "type":
        return "type"
    return None


def history_in_window(
    entries: Iterable[tuple[str | None, datetime | None]], start: datetime, end: datetime
) -> tuple[ValueChange, ...]:
    """A record's values, oldest first, cut to [start, end): the value held when the window opened (if any),
    then every value entered inside it; empty values dropped, consecutive repeats collapsed. An entry without
    a time counts as held before the window."""
    held: ValueChange | None = None
    inside: list[ValueChange] = []
    for value, at in entries:
        if value in (None, ""):
            continue
        if at is not None and at >= end:
            break
        if at is None or at < start:
            held = ValueChange(str(value), at)
        else:
            inside.append(ValueChange(str(value), at))
    out: list[ValueChange] = []
    for change in ([held] if held else []) + inside:
        if not out or out[-1].value != change.value:
            out.append(change)
    return tuple(out)


def stage_order(values: Iterable[tuple[str, int]]) -> dict[str, int]:
    """value (lower case) -> position in the field's stage order (picklist order, pipeline display order)."""
    out: dict[str, int] = {}
    for value, order in values:
        out.setdefault(value.lower(), order)
    return out


def history_key(at: datetime | None, value: str | None, sequence: Any, order: dict[str, int]) -> tuple[Any, ...]:
    """Sort key for the history entries of one record: by time; entries sharing a timestamp (a workflow setting
    two stages at once) by the field's stage order, then by the CRM's own sequence (row id, position), so such a
    pair never reads as a backward move and the order is the same on every read. Unknown values sort after the
    known ones of the same instant. An entry without a time (held before the window) comes first."""
    when = (0, 0.0) if at is None else (1, at.timestamp())
    rank = order.get((value or "").lower(), len(order))
    return (when, rank, sequence)


def order_history(entries: Iterable[Any], *, at: Any, value: Any, sequence: Any, order: dict[str, int]) -> list[Any]:
    """One record's history entries, oldest first, ties by stage order then sequence (see `history_key`);
    `at`, `value` and `sequence` read an entry's time, value and CRM sequence."""
    return sorted(entries, key=lambda e: history_key(at(e), value(e), sequence(e), order))


_SPACES = re.compile(r"\s+")


def normalise_text(value: str) -> str:
    """A free-text value as people mean it: trimmed, case-folded, inner spaces collapsed."""
    return _SPACES.sub(" ", value.strip()).casefold()


def group_free_text(values: Iterable[str | None]) -> tuple[dict[str, int], dict[str, str], int]:
    """(count per normalised value, label per normalised value (its most frequent spelling), empty count)."""
    counts: dict[str, int] = {}
    spellings: dict[str, dict[str, int]] = {}
    empty = 0
    for raw in values:
        text = "" if raw is None else str(raw)
        key = normalise_text(text)
        if not key:
            empty += 1
            continue
        counts[key] = counts.get(key, 0) + 1
        seen = spellings.setdefault(key, {})
        spelled = _SPACES.sub(" ", text.strip())
        seen[spelled] = seen.get(spelled, 0) + 1
    labels = {k: max(sorted(v), key=lambda s: v[s]) for k, v in spellings.items()}
    return counts, labels, empty


def scrub(text: str, secrets: list[str]) -> str:
    """Replace any secret that slipped into a message (a CRM echoing a token back) with dots."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "•••")
    return text


def as_json(value: Any) -> Any:
    """Dataclasses (and datetimes) to JSON-ready structures, for summaries stored on rows."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return as_json(asdict(value))
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


__all__ = [
    "OBJECT_KINDS",
    "ApiBudget",
    "AuthMethod",
    "CrmApiLimitExceeded",
    "CrmAuthError",
    "CrmBudgetExhausted",
    "CrmConfigurationError",
    "CrmConnector",
    "CrmError",
    "CrmField",
    "CrmMalformedResponse",
    "CrmNotReadable",
    "CrmObject",
    "CrmQueryError",
    "CrmRateLimited",
    "CrmReconnectNeeded",
    "CrmTimeout",
    "CrmUnavailable",
    "CrmUnsupported",
    "CustomObject",
    "CustomObjects",
    "DataQuality",
    "Duplicates",
    "FieldFill",
    "FieldHistory",
    "FieldValue",
    "Pipeline",
    "RecordHistory",
    "Stage",
    "StageCounts",
    "StageDuration",
    "StaleRecords",
    "TimeInStage",
    "Unreadable",
    "Transition",
    "Transitions",
    "ValueChange",
    "ValueCount",
    "ValueCounts",
]
