"""Reliability for every CRM call: timeouts, bounded retries, rate limiting and the per-connection budget.

Both connectors send each HTTP request through `Guard.call`, which
  1. refuses plain http unless settings.CRM_ALLOW_HTTP (loopback sandboxes in development),
  2. charges the request to the connection's daily budget (at most CRM_DAILY_BUDGET_SHARE of the
     CRM's daily allocation, counted across all workers) and refuses with CrmBudgetExhausted when spent,
  3. waits for a slot in the shared rate limiter (Redis when the broker is redis://, in-process otherwise),
  4. sends with a (connect, read) timeout,
  5. reads the platform's limit headers (Sforce-Limit-Info, X-HubSpot-RateLimit-*): they update the
     budget and slow us down when the window is nearly used up,
  6. retries what is worth retrying (429, concurrent-request limits, 5xx, dropped connections: up to
     `max_retries`; timeouts, malformed JSON and an auth hiccup: once) with exponential backoff and
     jitter, honouring Retry-After, and gives up with a plain-words CrmError.
Platform specifics (which answer is which) live in `classify` / `observe` of the Guard subclasses in
salesforce.py and hubspot.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from .base import (
    CrmApiLimitExceeded,
    CrmAuthError,
    CrmBudgetExhausted,
    CrmConfigurationError,
    CrmError,
    CrmMalformedResponse,
    CrmRateLimited,
    CrmTimeout,
    CrmUnavailable,
)

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "CRM_ALLOW_HTTP": False,
    "CRM_DAILY_BUDGET_SHARE": 0.05,
    "CRM_CONNECT_TIMEOUT": 5.0,
    "CRM_READ_TIMEOUT": 30.0,
    "CRM_MAX_RETRIES": 3,
    # requests per period, per CRM account, shared by every worker. HubSpot Pro allows 190 per 10 s
    # and about 4 searches per second; Salesforce counts concurrency more than rate.
    "CRM_RATE_LIMITS": {"salesforce": "25/1", "hubspot": "150/10", "hubspot-search": "4/1"},
}
# What a CRM allows per day until its headers say otherwise: the smallest common tier.
DEFAULT_DAILY_ALLOCATION = {"salesforce": 15_000, "hubspot": 250_000}
BUDGET_TTL = 2 * 24 * 3600


def crm_setting(name: str) -> Any:
    try:
        from django.conf import settings

        if settings.configured:
            return getattr(settings, name, DEFAULTS[name])
    except ImportError:  # pragma: no cover - the connectors also run without Django (bench)
        pass
    return DEFAULTS[name]


def check_url(url: str, label: str, *, allow_http: bool | None = None) -> str:
    """Validate a CRM base URL: https (or http when allowed), a host, nothing after the path."""
    allow = crm_setting("CRM_ALLOW_HTTP") if allow_http is None else allow_http
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise CrmConfigurationError(
            f"{label} base URL {url!r} is not a full URL; expected something like https://example.my.salesforce.com"
            if label == "Salesforce"
            else f"{label} base URL {url!r} is not a full URL; expected https://api.hubapi.com"
        )
    if parts.scheme == "http" and not allow:
        raise CrmConfigurationError(
            f"Plain http:// is refused for {label} ({parts.netloc}): use https://. "
            "CRM_ALLOW_HTTP=true allows it for a loopback sandbox in development only."
        )
    if parts.username or parts.password:
        raise CrmConfigurationError(f"Put {label} credentials in their own fields, not in the URL.")
    return f"{parts.scheme}://{parts.netloc}"


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- retry policy


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3  # rate limits, 5xx, dropped connections
    slow_retries: int = 1  # timeouts, malformed bodies, an auth hiccup: once, then give up
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0  # a longer Retry-After gives up at once instead of blocking a worker

    def allowed(self, kind: str) -> int:
        return self.slow_retries if kind in ("timeout", "malformed", "auth") else self.max_retries

    def delay(self, attempt: int, retry_after: float | None = None, floor: float = 0.0) -> float | None:
        """Seconds before retry number `attempt` (0-based); None when Retry-After asks for too long."""
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after + random.uniform(0, min(1.0, 0.1 * retry_after))
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return max(floor, random.uniform(backoff / 2, backoff))


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# ---------------------------------------------------------------- shared state: rate windows and counters


class Store(Protocol):
    def acquire(self, key: str, limit: int, period: float) -> float: ...

    def incr(self, key: str, amount: int = 1, ttl: int = BUDGET_TTL) -> int: ...

    def get(self, key: str) -> int: ...

    def put(self, key: str, value: int, ttl: int = BUDGET_TTL) -> None: ...


class LocalStore:
    """Sliding windows and counters in this process (threads share them)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._windows: dict[str, deque[float]] = {}
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: int, period: float) -> float:
        """Take a slot in the window; 0 when granted, else the seconds until one frees up."""
        now = self.clock()
        with self._lock:
            hits = self._windows.setdefault(key, deque())
            while hits and now - hits[0] >= period:
                hits.popleft()
            if len(hits) < limit:
                hits.append(now)
                return 0.0
            return max(0.001, hits[0] + period - now)

    def incr(self, key: str, amount: int = 1, ttl: int = BUDGET_TTL) -> int:
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + amount
            return self._counters[key]

    def get(self, key: str) -> int:
        with self._lock:
            return self._counters.get(key, 0)

    def put(self, key: str, value: int, ttl: int = BUDGET_TTL) -> None:
        with self._lock:
            self._counters[key] = value


_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class RedisStore:
    """The same windows and counters in Redis, so every worker and web process shares them.

    The window is a sorted set of request times keyed by Redis' own clock (one clock for all hosts);
    a Lua script trims, counts and adds atomically. If Redis stops answering, calls fall back to the
    in-process store with a warning rather than failing the audit.
    """

    def __init__(self, url: str, fallback: LocalStore | None = None) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._acquire = self._redis.register_script(_ACQUIRE_LUA)
        self._fallback = fallback or LocalStore()
        self._warned = False

    def _failed(self, exc: Exception) -> LocalStore:
        if not self._warned:
            logger.warning("CRM rate limiter: Redis unavailable (%s); using in-process limits", type(exc).__name__)
            self._warned = True
        return self._fallback

    def acquire(self, key: str, limit: int, period: float) -> float:
        from redis.exceptions import RedisError

        try:
            wait_ms = int(self._acquire(keys=[key], args=[limit, int(period * 1000), uuid.uuid4().hex]))
        except RedisError as exc:
            return self._failed(exc).acquire(key, limit, period)
        return wait_ms / 1000.0

    def incr(self, key: str, amount: int = 1, ttl: int = BUDGET_TTL) -> int:
        from redis.exceptions import RedisError

        try:
            pipe = self._redis.pipeline()
            pipe.incrby(key, amount)
            pipe.expire(key, ttl)
            value, _ = pipe.execute()
        except RedisError as exc:
            return self._failed(exc).incr(key, amount, ttl)
        return int(value)

    def get(self, key: str) -> int:
        from redis.exceptions import RedisError

        try:
            return int(self._redis.get(key) or 0)
        except RedisError as exc:
            return self._failed(exc).get(key)

    def put(self, key: str, value: int, ttl: int = BUDGET_TTL) -> None:
        from redis.exceptions import RedisError

        try:
            self._redis.set(key, value, ex=ttl)
        except RedisError as exc:
            self._failed(exc).put(key, value, ttl)


_LOCAL_STORE = LocalStore()
_REDIS_STORES: dict[str, RedisStore] = {}
_STORES_LOCK = threading.Lock()


def redis_url() -> str | None:
    import os

    candidates = []
    try:
        from django.conf import settings

        if settings.configured:
            candidates += [getattr(settings, "CELERY_BROKER_URL", ""), getattr(settings, "REDIS_URL", "")]
    except ImportError:  # pragma: no cover
        pass
    candidates.append(os.environ.get("REDIS_URL", ""))
    return next((u for u in candidates if u and u.startswith(("redis://", "rediss://"))), None)


def shared_store() -> Store:
    """Redis when the app runs on a redis:// broker (all workers share limits), else this process."""
    url = redis_url()
    if not url:
        return _LOCAL_STORE
    with _STORES_LOCK:
        if url not in _REDIS_STORES:
            _REDIS_STORES[url] = RedisStore(url, _LOCAL_STORE)
        return _REDIS_STORES[url]


@dataclass(frozen=True)
class Rate:
    limit: int
    period: float

    @classmethod
    def parse(cls, text: str | Rate) -> Rate:
        if isinstance(text, Rate):
            return text
        count, _, seconds = str(text).partition("/")
        return cls(max(1, int(count)), float(seconds or 1))


# ---------------------------------------------------------------- budget


class Budget:
    """This connection's share of the CRM's daily allocation, counted per UTC day across workers."""

    def __init__(self, *, key: str, share: float, store: Store, label: str, default_daily: int) -> None:
        self.key = key
        self.share = share
        self.store = store
        self.label = label
        # the CRM's allocation, as last reported to any worker for this connection
        self.daily_limit: int | None = store.get(self._allocation_key()) or None
        self.daily_remaining: int | None = None
        self.default_daily = default_daily

    def _allocation_key(self) -> str:
        return f"crm:allocation:{self.key}"

    def observe(self, *, daily_limit: int | None = None, daily_remaining: int | None = None) -> None:
        if daily_limit and daily_limit != self.daily_limit:
            self.daily_limit = daily_limit
            self.store.put(self._allocation_key(), daily_limit)
        if daily_remaining is not None:
            self.daily_remaining = daily_remaining

    @property
    def limit(self) -> int:
        return max(1, int(self.share * (self.daily_limit or self.default_daily)))

    def _day_key(self) -> str:
        return f"crm:budget:{self.key}:{datetime.now(UTC):%Y-%m-%d}"

    @property
    def used(self) -> int:
        return self.store.get(self._day_key())

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def spend(self, path: str = "") -> None:
        allocation = self.daily_limit or self.default_daily
        if self.daily_remaining is not None and self.daily_remaining <= int(self.share * allocation):
            raise CrmApiLimitExceeded(
                f"{self.label} reports only {self.daily_remaining:,} of {allocation:,} daily API calls left for the "
                f"whole account; GTM Ops leaves the last {self.share:.0%} to the client's own integrations. "
                "Try again after the CRM's daily reset.",
                path=path,
            )
        key = self._day_key()
        used = self.store.incr(key, 1)
        if used > self.limit:
            self.store.incr(key, -1)
            raise CrmBudgetExhausted(
                f"This connection's {self.label} API budget for today is spent: {self.limit:,} calls, "
                f"{self.share:.0%} of the daily allocation of {allocation:,}. It resets at midnight UTC; "
                "CRM_DAILY_BUDGET_SHARE sets the share.",
                path=path,
            )


# ---------------------------------------------------------------- one guarded call


class TransportFailure(Exception):
    """Raised by a `send` adapter when no HTTP answer came back: kind is 'timeout' or 'connection'."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class CaseInsensitive(dict):
    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        super().__init__({k.lower(): v for k, v in (items or {}).items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


class JsonBody:
    """A body as JSON, parsed once: the guard parses it to know it is whole, and the connectors hand this to their
    library instead of letting it parse (a Salesforce page of 2,000 rows) again. Holds no reference to the
    response, so a hook on the response that reads it makes no reference cycle. value() raises ValueError."""

    __slots__ = ("body", "_value")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._value: tuple[Any] | None = None

    def value(self) -> Any:
        if self._value is None:
            self._value = (json.loads(self.body),)
        return self._value[0]


@dataclass
class Outcome:
    """One HTTP answer, whatever library produced it."""

    status: int
    headers: CaseInsensitive
    body: bytes
    reason: str = ""
    raw: Any = None
    document: JsonBody = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.document = JsonBody(self.body)

    @property
    def content_type(self) -> str:
        return (self.headers.get("content-type") or "").lower()

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return self.document.value()
        except ValueError:
            return None

    def body_is_broken_json(self) -> bool:
        if not self.body or "json" not in self.content_type:
            return False
        try:
            self.document.value()
        except ValueError:
            return True
        return False


@dataclass
class Verdict:
    action: str  # "return" (hand the answer to the library), "retry", "raise"
    kind: str = ""  # rate_limit, server, timeout, connection, malformed, auth
    retry_after: float | None = None
    floor: float = 0.0
    error: CrmError | None = None
    detail: str = ""

    @classmethod
    def ok(cls) -> Verdict:
        return cls("return")


@dataclass
class HttpOptions:
    connect_timeout: float
    read_timeout: float
    retry: RetryPolicy
    share: float
    allow_http: bool
    rates: dict[str, Rate]
    store: Store
    sleep: Callable[[float], Any] = time.sleep

    @classmethod
    def from_settings(cls, **overrides: Any) -> HttpOptions:
        rates = {k: Rate.parse(v) for k, v in {**DEFAULTS["CRM_RATE_LIMITS"], **crm_setting("CRM_RATE_LIMITS")}.items()}
        options = cls(
            connect_timeout=float(crm_setting("CRM_CONNECT_TIMEOUT")),
            read_timeout=float(crm_setting("CRM_READ_TIMEOUT")),
            retry=RetryPolicy(max_retries=int(crm_setting("CRM_MAX_RETRIES"))),
            share=float(crm_setting("CRM_DAILY_BUDGET_SHARE")),
            allow_http=bool(crm_setting("CRM_ALLOW_HTTP")),
            rates=rates,
            store=overrides.pop("store", None) or shared_store(),
        )
        if "timeout" in overrides:
            timeout = overrides.pop("timeout")
            options.connect_timeout, options.read_timeout = (
                timeout if isinstance(timeout, tuple) else (min(options.connect_timeout, timeout), timeout)
            )
        if "rates" in overrides:
            options.rates = {**options.rates, **{k: Rate.parse(v) for k, v in overrides.pop("rates").items()}}
        for name, value in overrides.items():
            if not hasattr(options, name):
                raise TypeError(f"unknown connector option {name!r}")
            setattr(options, name, value)
        return options


@dataclass
class Guard:
    """Counts, budgets, throttles, retries and translates one connection's HTTP requests."""

    label: str  # Salesforce / HubSpot, for messages
    options: HttpOptions
    budget: Budget
    rate_key: str  # identifies the CRM account: connections to one account share its windows
    calls: int = 0
    waits: list[tuple[str, float]] = field(default_factory=list)  # (reason, seconds): throttle, slowdown, retry

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.options.connect_timeout, self.options.read_timeout)

    def pause(self, reason: str, seconds: float) -> None:
        if seconds <= 0:
            return
        self.waits.append((reason, seconds))
        self.options.sleep(seconds)

    def throttle(self, bucket: str) -> None:
        rate = self.options.rates.get(bucket)
        if rate is None:
            return
        waited = 0.0
        while True:
            wait = self.options.store.acquire(f"crm:rate:{bucket}:{self.rate_key}", rate.limit, rate.period)
            if wait <= 0:
                return
            if waited > max(60.0, 4 * rate.period):
                raise CrmRateLimited(
                    f"GTM Ops' own {self.label} rate limiter ({rate.limit} requests per {rate.period:g} s, shared "
                    f"by all workers) kept this call waiting over {waited:.0f} seconds; other audits are using the "
                    "allowance. Try again later."
                )
            self.pause("throttle", wait)
            waited += wait

    # hooks for the platform subclasses
    def display_path(self, url: str) -> str:
        return urlsplit(url).path or "/"

    def observe(self, outcome: Outcome) -> None:
        """Read limit headers (budget, slow-down)."""

    def classify(self, method: str, path: str, outcome: Outcome) -> Verdict:
        raise NotImplementedError

    def call(self, method: str, url: str, send: Callable[[], Outcome], *, bucket: str) -> Any:
        """Send through the budget, limiter and retries; return the raw answer the library expects."""
        scheme = urlsplit(url).scheme
        if scheme != "https" and not (scheme == "http" and self.options.allow_http):
            raise CrmConfigurationError(
                f"Refusing to send a {self.label} request over {scheme or 'no scheme'}://; "
                "CRM_ALLOW_HTTP=true allows http for a loopback sandbox in development only."
            )
        path = self.display_path(url)
        seen: Counter[str] = Counter()
        attempts = 0
        last: Outcome | None = None
        while True:
            self.budget.spend(path)
            self.throttle(bucket)
            attempts += 1
            self.calls += 1
            try:
                outcome = send()
            except TransportFailure as failure:
                verdict = Verdict("retry", failure.kind, detail=failure.detail)
            else:
                last = outcome
                self.observe(outcome)
                verdict = self.classify(method, path, outcome)
            if verdict.action == "return":
                return outcome.raw
            if verdict.action == "raise":
                assert verdict.error is not None
                verdict.error.path, verdict.error.attempts = path, attempts
                raise verdict.error
            seen[verdict.kind] += 1
            retries = attempts - 1
            if seen[verdict.kind] > self.options.retry.allowed(verdict.kind):
                raise self.give_up(verdict, seen[verdict.kind], retries, path, last, attempts)
            delay = self.options.retry.delay(seen[verdict.kind] - 1, verdict.retry_after, verdict.floor)
            if delay is None:
                raise CrmRateLimited(
                    f"{self.label} asked us to wait {verdict.retry_after:g} seconds before retrying {path}; "
                    "gave up instead of holding a worker that long.",
                    path=path,
                    status=last.status if last else None,
                    attempts=attempts,
                )
            logger.info("%s %s %s: %s, retrying in %.1fs", self.label, method, path, verdict.kind, delay)
            self.pause("retry", delay)

    def give_up(
        self, verdict: Verdict, hits: int, retries: int, path: str, last: Outcome | None, attempts: int
    ) -> CrmError:
        label, kind = self.label, verdict.kind
        status = last.status if last is not None and kind not in ("timeout", "connection") else None
        after = f"gave up after {retries} {'retry' if retries == 1 else 'retries'}"
        if kind == "rate_limit":
            error: CrmError = CrmRateLimited(f"{label} rate limit hit {hits} times on {path}; {after}.")
        elif kind == "server":
            reason = f"{status} {last.reason}".strip() if last is not None else "an error"
            error = CrmUnavailable(f"{label} answered {reason} {hits} times on {path}; {after}.")
        elif kind == "timeout":
            error = CrmTimeout(
                f"{label} did not answer {path} within {self.options.read_timeout:g} seconds "
                f"({hits} {'attempt' if hits == 1 else 'attempts'}); {after}."
            )
        elif kind == "connection":
            error = CrmUnavailable(f"{label} dropped or refused the connection {hits} times on {path}; {after}.")
        elif kind == "malformed":
            error = CrmMalformedResponse(
                f"{label} returned malformed JSON for {path} ({hits} {'time' if hits == 1 else 'times'}); {after}."
            )
        elif kind == "auth":
            error = CrmAuthError(
                f"{label} rejected the credentials on {path} {hits} times ({verdict.detail or 'session expired'}); "
                "check the connection's token or password."
            )
        else:  # pragma: no cover - every kind is listed above
            error = CrmError(f"{label} request to {path} failed ({kind}); {after}.")
        error.platform, error.path, error.status, error.attempts = label.lower(), path, status, attempts
        return error
