"""Faults a sandbox server injects on request.

A fault applies to requests whose path matches `path` (a regex searched in the path, without the
query string; default: every API request of the server) and, optionally, `method` ("WRITE": any of POST,
PATCH, PUT, DELETE that is not a search). It lets `skip` matching requests through, then fires on the next
`count` ones (`count=None`: until cleared): `method="WRITE", skip=2` fails the third configuration write.

Kinds:
- rate_limit: 429. HubSpot body by `policy` (TEN_SECONDLY_ROLLING, SECONDLY, DAILY); Salesforce
  has no 429 in its REST API, so there it is served with REQUEST_LIMIT_EXCEEDED. `retry_after`
  (seconds) adds a Retry-After header; None leaves it out, as HubSpot usually does.
- request_limit: Salesforce 403 REQUEST_LIMIT_EXCEEDED ("TotalRequests Limit exceeded."); HubSpot's
  equivalent, a 429 with the DAILY policy body.
- concurrent_limit: Salesforce 403 REQUEST_LIMIT_EXCEEDED ("ConcurrentPerOrgLongTxn Limit exceeded.").
- expired_session: 401 (Salesforce INVALID_SESSION_ID; HubSpot EXPIRED_AUTHENTICATION).
- server_error: `status` 500 (platform JSON body) or 502/503/504 (a proxy's HTML page).
- slow: wait `delay` seconds, then answer normally.
- truncated_json: the normal answer cut in half (Content-Length matches the cut body).
- malformed_json: the normal answer with its JSON syntax broken, status 200.
- disconnect: close the connection without answering.
- hold: answer normally, but send the answer only once the test calls the server's `release_held()` (the server's
  `holding` event is set meanwhile): the write is done and its client never learns it if it is killed first.
- rejected: a write refused as invalid, which clients do not retry: Salesforce 400
  [{"errorCode": "FIELD_INTEGRITY_EXCEPTION", ...}]. With path "/tooling/sobjects/" and `skip=N-1` it fails the
  Nth configuration write (a server_error there with count=None fails it with 500s past the retries).
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

KINDS = (
    "rate_limit",
    "request_limit",
    "concurrent_limit",
    "expired_session",
    "server_error",
    "slow",
    "truncated_json",
    "malformed_json",
    "disconnect",
    "rejected",  # configuration writes
    "hold",
)
POLICIES = ("TEN_SECONDLY_ROLLING", "SECONDLY", "DAILY")


@dataclass
class Fault:
    kind: str
    count: int | None = 1
    path: str | None = None
    method: str | None = None
    skip: int = 0
    status: int | None = None
    retry_after: float | None = None
    policy: str = "TEN_SECONDLY_ROLLING"
    delay: float = 0.0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose from {', '.join(POLICIES)}")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0 or None")
        if self.status is not None and self.status not in (500, 502, 503, 504):
            raise ValueError("status must be one of 500, 502, 503, 504")
        if self.path is not None:
            re.compile(self.path)
        if self.method:
            self.method = self.method.upper()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)} - {"fired"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("a fault needs a kind")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    """The faults of one server, safe to change from any thread while requests are served."""

    def __init__(self, default_path: str, faults: list[Fault | dict[str, Any]] | None = None) -> None:
        self.default_path = re.compile(default_path)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        for f in faults or []:
            self.add(f)

    def add(self, fault: Fault | dict[str, Any] | None = None, /, **kwargs: Any) -> Fault:
        if fault is None:
            fault = Fault(**kwargs)
        elif isinstance(fault, dict):
            fault = Fault.from_dict({**fault, **kwargs})
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def match(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                pattern = re.compile(fault.path) if fault.path is not None else self.default_path
                if not pattern.search(path) or not _method_matches(fault.method, method, path):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.count is not None and fault.fired >= fault.count:
                    continue
                fault.fired += 1
                return fault
        return None


def _method_matches(wanted: str | None, method: str, path: str) -> bool:
    if not wanted:
        return True
    if wanted == "WRITE":  # a search is a POST that changes nothing
        return method in ("POST", "PATCH", "PUT", "DELETE") and not path.rstrip("/").endswith("/search")
    return wanted == method
