"""The HTTP plumbing both sandboxes share: threads, control endpoints, request counts, faults.

Control endpoints (never counted, never faulted):
  GET    /__sandbox__/stats    requests served: total, by_kind, by_status, faults_injected
  DELETE /__sandbox__/stats    reset the counts
  GET    /__sandbox__/faults   the fault list, with how often each fired
  POST   /__sandbox__/faults   add faults: one fault object, a list, or {"faults": [...], "replace": true}
  DELETE /__sandbox__/faults   remove all faults
  GET    /__sandbox__/org      the org's profile, gotchas, sizes and expected figures, plus credentials
  GET    /__sandbox__/oauth    the OAuth app the sandbox accepts and its knobs; POST sets knobs (see oauth.py)
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .faults import Fault, FaultPlan
from .orgmodel import OrgModel
from .profiles import Profile

CONTROL_PREFIX = "/__sandbox__/"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(payload).encode(), dict(headers or {}))

    @classmethod
    def text(cls, text: str, status: int, content_type: str) -> Response:
        return cls(status, text.encode(), {}, content_type)


class SandboxError(Exception):
    """Raised by handlers to answer with a prepared error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.by_kind: Counter[str] = Counter()
            self.by_status: Counter[int] = Counter()
            self.faults: Counter[str] = Counter()

    def record(self, kind: str, status: int | None, fault: Fault | None) -> None:
        with self._lock:
            self.total += 1
            self.by_kind[kind] += 1
            if status is not None:
                self.by_status[status] += 1
            if fault is not None:
                self.faults[fault.kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self.total,
                "by_kind": dict(self.by_kind),
                "by_status": {str(k): v for k, v in self.by_status.items()},
                "faults_injected": dict(self.faults),
            }


class SandboxServer:
    """Base for SalesforceSandbox and HubSpotSandbox: a ThreadingHTTPServer on a loopback port."""

    platform = "base"
    default_fault_path = r"^/"

    def __init__(
        self,
        *,
        profile: str | Profile = "demo",
        seed: int = 0,
        size: int | None = None,
        as_of: datetime | date | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: list[Fault | dict[str, Any]] | None = None,
        verbose: bool = False,
    ) -> None:
        self.model = OrgModel(profile, seed=seed, size=size, as_of=as_of)
        self.host = host
        self.port = port
        self.verbose = verbose
        self.faults = FaultPlan(self.default_fault_path, faults)
        self.holding, self._released = threading.Event(), threading.Event()  # the "hold" fault
        self._stats = Stats()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.extensions = _extensions(self)
        from .oauth import OAuthProvider  # oauth.py builds on this module's Request and Response

        self.oauth = OAuthProvider(self)

    # ---- lifecycle ----

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            # a short poll interval keeps stop(), and so every test teardown, fast
            target=self._httpd.serve_forever,
            args=(0.05,),
            name=f"{self.platform}-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the management command); returns on KeyboardInterrupt."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- counting and faults ----

    @property
    def stats(self) -> dict[str, Any]:
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    def inject(self, kind: str, **kwargs: Any) -> Fault:
        return self.faults.add(kind=kind, **kwargs)

    # ---- for subclasses ----

    def classify(self, req: Request) -> str:
        return "other"

    def handle(self, req: Request) -> Response:
        raise NotImplementedError

    def release_held(self) -> None:
        """Send the answer a "hold" fault keeps back."""
        self._released.set()

    def fault_response(self, fault: Fault, req: Request) -> Response:
        raise NotImplementedError

    def internal_error(self) -> Response:
        return Response.json({"error": "internal sandbox error"}, 500)

    def credentials(self) -> dict[str, Any]:
        return {}

    def control(self, req: Request) -> Response | None:
        return None

    def after_request(self, req: Request, kind: str, response: Response) -> None:
        """Hook for per-request bookkeeping (API usage headers)."""

    # ---- dispatch ----

    def _control(self, req: Request) -> Response:
        name = req.path[len(CONTROL_PREFIX) :].strip("/")
        if name == "stats":
            if req.method == "DELETE":
                self.reset_stats()
            return Response.json(self.stats)
        if name == "faults":
            if req.method == "DELETE":
                self.faults.clear()
            elif req.method == "POST":
                try:
                    payload = req.json()
                    if isinstance(payload, dict) and "faults" in payload:
                        if payload.get("replace"):
                            self.faults.clear()
                        payload = payload["faults"]
                    for item in payload if isinstance(payload, list) else [payload]:
                        self.faults.add(item)
                except (ValueError, TypeError) as exc:
                    return Response.json({"error": str(exc)}, 400)
            return Response.json({"faults": self.faults.list()})
        if name == "oauth":
            return self.oauth.control(req)
        if name == "org":
            return Response.json(
                {
                    "platform": self.platform,
                    "base_url": self.base_url,
                    "credentials": self.credentials(),
                    "org": self.model.summary(),
                }
            )
        extra = self.control(req)
        if extra is not None:
            return extra
        return Response.json({"error": f"unknown control endpoint {req.path}"}, 404)

    def dispatch(self, req: Request) -> tuple[Response | None, str]:
        """Return (response or None to drop the connection, request kind)."""
        if req.path.startswith(CONTROL_PREFIX):
            return self._control(req), "control"
        oauth = self.oauth.handle(req)
        if oauth is not None:
            self._stats.record("oauth", oauth.status, None)
            return oauth, "oauth"
        kind = self.classify(req)
        fault = self.faults.match(req.method, req.path)
        if fault is not None and fault.kind == "disconnect":
            self._stats.record(kind, None, fault)
            return None, kind
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and fault.kind not in ("slow", "truncated_json", "malformed_json", "hold"):
            response = self.fault_response(fault, req)
        else:
            try:
                response = next((r for e in self.extensions if (r := e.answer(req)) is not None), None)
                response = response or self.handle(req)
            except SandboxError as exc:
                response = exc.response
            except Exception:  # the sandbox must answer like a server, not hang the client
                traceback.print_exc(file=sys.stderr)
                response = self.internal_error()
            if fault is not None and fault.kind == "truncated_json":
                response.body = response.body[: max(1, len(response.body) // 2)]
            elif fault is not None and fault.kind == "malformed_json":
                response.body = response.body.replace(b":", b";", 1) if b":" in response.body else b"{]"
            elif fault is not None and fault.kind == "hold":
                self.holding.set()
                self._released.wait(120)
        self.after_request(req, kind, response)
        self._stats.record(kind, response.status, fault)
        return response, kind


def _extensions(server: SandboxServer) -> list[Any]:
    """Modules that answer some requests before the platform's handler (configuration writes), by platform."""
    if server.platform == "hubspot":
        from .hubspot_batch import HubSpotBatch
        from .hubspot_writes import HubSpotWrites

        return [HubSpotWrites(server), HubSpotBatch(server)]  # type: ignore[arg-type]
    if server.platform == "salesforce":
        from .salesforce_bulk import SalesforceBulk
        from .salesforce_permissions import FieldSecurity

        return [SalesforceBulk(server), FieldSecurity(server)]  # type: ignore[arg-type]
    return []


class _Handler(BaseHTTPRequestHandler):
    sandbox: SandboxServer
    protocol_version = "HTTP/1.1"
    # One buffered write per answer and no Nagle: otherwise headers and body leave as two segments and
    # every keep-alive request waits ~40 ms for a delayed ACK.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server_version = "Sandbox"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.sandbox.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        response, _ = self.sandbox.dispatch(req)
        if response is None:
            self.close_connection = True
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout on a slow fault)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815
