"""A local server speaking the Salesforce REST API subset the connectors call.

Endpoints: SOAP login (/services/Soap/u/<ver>), OAuth token (/services/oauth2/token: password and
client_credentials grants), GET /services/data/ (versions), and under /services/data/vNN.N/:
limits, sobjects (global describe), sobjects/<Obj>, sobjects/<Obj>/describe, sobjects/<Obj>/<Id>,
query?q= / queryAll?q= with nextRecordsUrl paging (query/<locator>-<offset>), and
ui-api/object-info/<Obj>/picklist-values/<recordTypeId>/<Field>. Records are read-only; configuration is
written through the Tooling API (tooling/query, tooling/sobjects/...: see salesforce_tooling).

Every authenticated data request counts against DailyApiRequests (`daily_api_limit`); past it the
server answers 403 REQUEST_LIMIT_EXCEEDED like a real org, and each answer carries Sforce-Limit-Info.
Sessions can expire (`session_ttl` seconds, or `expire_sessions()` / POST /__sandbox__/sessions/expire),
after which requests get 401 INVALID_SESSION_ID and simple-salesforce logs in again.
"""

from __future__ import annotations

import base64
import html
import re
import secrets
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

from .clients import salesforce_client
from .faults import Fault
from .salesforce_tooling import Tooling
from .server import Request, Response, SandboxError, SandboxServer
from .sfquery import SoqlEngine
from .sfschema import MASTER_RECORD_TYPE, SfObject, build_objects, describe, global_entry, parse_sf_id
from .soql import SoqlError

ORG_ID = "00D5g000000SandAAA"
# Credentials of the fake org only; they open nothing outside the sandbox.
DEFAULT_USERNAME = "integration@sandbox.example"
DEFAULT_PASSWORD = "sandbox-password"
DEFAULT_TOKEN = "SANDBOXTOKEN"
DEFAULT_CONSUMER_KEY = "3MVG9sandbox.consumer.key"
DEFAULT_CONSUMER_SECRET = "sandbox-consumer-secret"
USER_ID = "0055g00000SandbAAA"
VERSIONS = {
    "55.0": "Summer '22",
    "56.0": "Winter '23",
    "57.0": "Spring '23",
    "58.0": "Summer '23",
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
    "63.0": "Spring '25",
    "64.0": "Summer '25",
}
_DATA = re.compile(r"^/services/data/v(\d+\.\d)(?:/(.*?))?/?$")

INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
INSUFFICIENT_ACCESS = [
    {
        "message": "insufficient access rights on object id",
        "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY",
    }
]
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]

_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."
SOAP_LOGIN_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>"
    f"<faultstring>INVALID_LOGIN: {_LOGIN_MESSAGE}</faultstring>"
    '<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>'
    f"<sf:exceptionMessage>{_LOGIN_MESSAGE}</sf:exceptionMessage></sf:LoginFault></detail>"
    "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
)

SOAP_LOGIN_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
   <soapenv:Body>
      <loginResponse>
         <result>
            <metadataServerUrl>{base}/services/Soap/m/{ver}/{org}</metadataServerUrl>
            <passwordExpired>false</passwordExpired>
            <sandbox>false</sandbox>
            <serverUrl>{base}/services/Soap/u/{ver}/{org}</serverUrl>
            <sessionId>{session}</sessionId>
            <userId>{user}</userId>
            <userInfo>
               <currencySymbol>$</currencySymbol>
               <orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>
               <orgHasPersonAccounts>false</orgHasPersonAccounts>
               <organizationId>{org}</organizationId>
               <organizationMultiCurrency>false</organizationMultiCurrency>
               <organizationName>{org_name}</organizationName>
               <sessionSecondsValid>{ttl}</sessionSecondsValid>
               <userEmail>{username}</userEmail>
               <userFullName>Sandbox Integration User</userFullName>
               <userId>{user}</userId>
               <userLanguage>en_US</userLanguage>
               <userLocale>en_US</userLocale>
               <userName>{username}</userName>
               <userTimeZone>UTC</userTimeZone>
               <userType>Standard</userType>
            </userInfo>
         </result>
      </loginResponse>
   </soapenv:Body>
</soapenv:Envelope>"""

LIMIT_NAMES = [
    "ConcurrentAsyncGetReportInstances",
    "ConcurrentSyncReportRuns",
    "DailyAsyncApexExecutions",
    "DailyBulkApiRequests",
    "DailyStreamingApiEvents",
    "DailyWorkflowEmails",
    "DataStorageMB",
    "FileStorageMB",
    "HourlyAsyncReportRuns",
    "HourlyDashboardRefreshes",
    "HourlySyncReportRuns",
    "MassEmail",
    "SingleEmail",
    "StreamingApiConcurrentClients",
]


def _xml_value(body: str, name: str) -> str | None:
    m = re.search(rf"<(?:\w+:)?{name}>(.*?)</(?:\w+:)?{name}>", body, re.S)
    return html.unescape(m.group(1)) if m else None


class SalesforceSandbox(SandboxServer):
    """A Salesforce org on a loopback port.

    >>> with SalesforceSandbox(profile="messy", seed=7, size=100_000) as sb:
    ...     sf = sb.client()                    # a real simple_salesforce.Salesforce (SOAP login)
    ...     sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    """

    platform = "salesforce"
    default_fault_path = r"^/services/data/v"

    def __init__(
        self,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        security_token: str = DEFAULT_TOKEN,
        consumer_key: str = DEFAULT_CONSUMER_KEY,
        consumer_secret: str = DEFAULT_CONSUMER_SECRET,
        daily_api_limit: int = 100_000,
        daily_api_used: int = 0,
        session_ttl: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.username = username
        self.password = password
        self.security_token = security_token
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.daily_api_limit = daily_api_limit
        self.api_used = daily_api_used
        self.session_ttl = session_ttl
        self.objects: dict[str, SfObject] = build_objects(self.model)
        self._by_lower = {k.lower(): v for k, v in self.objects.items()}
        self.engine = SoqlEngine(self.model, self.objects)
        self.tooling = Tooling(self)  # configuration the Tooling API reads and writes
        self.by_method: Counter[str] = Counter()  # requests answered, by HTTP method: a dry run sends no write
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()
        self.session_id = self.issue_session()

    def client(self, auth: str = "soap", **kwargs: Any) -> Any:
        """A real simple_salesforce.Salesforce for this org; see clients.salesforce_client."""
        return salesforce_client(self, auth, **kwargs)

    # ---- sessions and usage ----

    def issue_session(self) -> str:
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(24)}"
        with self._lock:
            self._sessions[token] = time.monotonic()
        return token

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _session_ok(self, req: Request) -> bool:
        auth = req.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            return False
        with self._lock:
            issued = self._sessions.get(token.strip())
        if issued is None:
            return False
        return self.session_ttl is None or time.monotonic() - issued < self.session_ttl

    def credentials(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self.password,
            "security_token": self.security_token,
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "domain": "login",
            "client_credentials_domain": "sandbox-org.my",
            "session_id": self.session_id,
            "instance_url": self.base_url,
        }

    def control(self, req: Request) -> Response | None:
        if req.path.rstrip("/") == "/__sandbox__/sessions/expire" and req.method == "POST":
            self.expire_sessions()
            return Response.json({"expired": True})
        return None

    # ---- request kinds and faults ----

    def classify(self, req: Request) -> str:
        path = req.path
        if path.startswith("/services/Soap/u/"):
            return "login_soap"
        if path.rstrip("/") == "/services/oauth2/token":
            return "oauth_token"
        m = _DATA.match(path)
        if path.rstrip("/") == "/services/data" or not m:
            return "versions" if path.rstrip("/") == "/services/data" else "other"
        rest = (m.group(2) or "").split("/")
        head = rest[0]
        if head in ("query", "queryAll"):
            return "query_more" if len(rest) > 1 else "query"
        if head == "sobjects":
            return {1: "describe_global", 2: "sobject"}.get(
                len(rest), "describe" if rest[-1] == "describe" else "record"
            )
        if head == "tooling":
            return "tooling_query" if rest[1:2] == ["query"] else f"tooling_{req.method.lower()}"
        return {"limits": "limits", "ui-api": "ui_api", "": "resources"}.get(head, "other")

    def fault_response(self, fault: Fault, req: Request) -> Response:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.kind in ("rate_limit", "request_limit"):
            return Response.json(
                [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                403,
                headers,
            )
        if fault.kind == "concurrent_limit":
            return Response.json(
                [
                    {
                        "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
                403,
                headers,
            )
        if fault.kind == "expired_session":
            return Response.json(INVALID_SESSION, 401)
        if fault.kind == "rejected":
            return Response.json(
                [{"errorCode": "FIELD_INTEGRITY_EXCEPTION", "message": "sandbox fault: write refused", "fields": []}],
                400,
            )
        status = fault.status or 500
        if status == 500:
            return self.internal_error()
        return _proxy_page(status)

    def internal_error(self) -> Response:
        return Response.json(
            [
                {
                    "errorCode": "UNKNOWN_EXCEPTION",
                    "message": "An unexpected error occurred. Please "
                    "include this ErrorId if you contact support: 1085309925-31741 (-1476225741)",
                }
            ],
            500,
        )

    def after_request(self, req: Request, kind: str, response: Response) -> None:
        if _DATA.match(req.path) and response.status != 401:
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.daily_api_limit}"

    # ---- routes ----

    def handle(self, req: Request) -> Response:
        path = req.path
        if path.startswith("/services/Soap/u/") and req.method == "POST":
            return self._soap_login(req, path.split("/")[4] if len(path.split("/")) > 4 else "59.0")
        if path.rstrip("/") == "/services/oauth2/token" and req.method == "POST":
            return self._oauth(req)
        if path.rstrip("/") == "/services/data":
            return Response.json(
                [
                    {"label": label, "url": f"/services/data/v{v}", "version": v}
                    for v, label in VERSIONS.items()
                ]
            )
        m = _DATA.match(path)
        if not m:
            return Response.json(NOT_FOUND, 404)
        with self._lock:  # REST API requests by method (a login is a POST that changes nothing)
            self.by_method[req.method] += 1
        if not self._session_ok(req):
            return Response.json(INVALID_SESSION, 401)
        with self._lock:
            self.api_used += 1
            over = self.api_used > self.daily_api_limit
        if over:
            return Response.json(
                [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403
            )
        version, rest = m.group(1), (m.group(2) or "")
        if rest.startswith("tooling/"):
            return self.tooling.handle(req, version, rest.split("/")[1:])
        if req.method not in ("GET", "HEAD"):
            return Response.json(
                [
                    {
                        "errorCode": "METHOD_NOT_ALLOWED",
                        "message": f"HTTP Method '{req.method}' not "
                        "allowed. Allowed are GET,HEAD (the sandbox org is read-only)",
                    }
                ],
                405,
            )
        return self._data(req, version, rest.split("/") if rest else [])

    def _data(self, req: Request, version: str, parts: list[str]) -> Response:
        if not parts:
            base = f"/services/data/v{version}"
            resources = {name: f"{base}/{name}" for name in ("sobjects", "query", "queryAll", "limits", "ui-api")}
            # who is connected, as an org says it: the identity URL ends in the user's Id
            return Response.json({**resources, "identity": f"{self.base_url}/id/{ORG_ID}/{USER_ID}"})
        head = parts[0]
        if head == "limits" and len(parts) == 1:
            return Response.json(self._limits())
        if head in ("query", "queryAll"):
            return self._query(req, version, parts)
        if head == "sobjects":
            return self._sobjects(req, version, parts[1:])
        if (
            head == "ui-api"
            and len(parts) == 6
            and parts[1] == "object-info"
            and parts[3] == "picklist-values"
        ):
            return self._picklist(version, parts[2], parts[4], parts[5])
        return Response.json(NOT_FOUND, 404)

    def _limits(self) -> dict[str, Any]:
        body = {name: {"Max": 1000, "Remaining": 1000} for name in LIMIT_NAMES}
        body["DailyApiRequests"] = {
            "Max": self.daily_api_limit,
            "Remaining": max(0, self.daily_api_limit - self.api_used),
        }
        return dict(sorted(body.items()))

    def _query(self, req: Request, version: str, parts: list[str]) -> Response:
        try:
            if len(parts) > 1:
                return Response.json(self.engine.more(parts[1], version))
            text = req.arg("q")
            if text is None:
                return Response.json(
                    [{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}], 400
                )
            options = req.headers.get("sforce-query-options", "")
            batch = 2000
            m = re.search(r"batchSize=(\d+)", options)
            if m:
                batch = min(2000, max(200, int(m.group(1))))
            return Response.json(self.engine.query(text, version, batch))
        except SoqlError as exc:
            return Response.json([{"message": exc.message, "errorCode": exc.code}], 400)

    def _object(self, name: str) -> SfObject:
        obj = self._by_lower.get(name.lower())
        if obj is None:
            raise SandboxError(Response.json(NOT_FOUND, 404))
        return obj

    def _sobjects(self, req: Request, version: str, parts: list[str]) -> Response:
        if not parts:
            return Response.json(
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [
                        global_entry(o, version, self.model.profile.refuses(o.name))
                        for o in self.objects.values()
                    ],
                }
            )
        obj = self._object(parts[0])
        if self.model.profile.refuses(obj.name):
            return Response.json(INSUFFICIENT_ACCESS, 403)
        if len(parts) == 1:
            return Response.json({"objectDescribe": global_entry(obj, version), "recentItems": []})
        if parts[1] == "describe" and len(parts) == 2:
            return Response.json(describe(obj, self.model, version))
        if len(parts) == 2 and obj.table and not obj.table.endswith("history"):
            index = parse_sf_id(obj.prefix, parts[1])
            table = self.model.sets[obj.table]
            if index is None or index >= table.size:
                return Response.json(NOT_FOUND, 404)
            row = table.row_at(index)
            wanted = req.arg("fields")
            fields = (
                [obj.field(n.strip()) for n in wanted.split(",")] if wanted else list(obj.fields.values())
            )
            out: dict[str, Any] = {
                "attributes": {
                    "type": obj.name,
                    "url": f"/services/data/v{version}/sobjects/{obj.name}/{parts[1]}",
                }
            }
            for name, f in zip(wanted.split(",") if wanted else [], fields, strict=False):
                if f is None:
                    return Response.json(
                        [
                            {
                                "errorCode": "INVALID_FIELD",
                                "message": f"No such column '{name.strip()}' on entity '{obj.name}'. If you are"
                                " attempting to use a custom field, be sure to append the '__c' after the custom"
                                " field name. Please reference your WSDL or the describe call for the"
                                " appropriate names.",
                            }
                        ],
                        400,
                    )
            for f in fields:
                out[f.name] = f.get(row)
            return Response.json(out)
        return Response.json(NOT_FOUND, 404)

    def _picklist(self, version: str, obj_name: str, record_type: str, field_name: str) -> Response:
        obj = self._object(obj_name)
        if self.model.profile.refuses(obj.name):
            return Response.json(INSUFFICIENT_ACCESS, 403)
        f = obj.field(field_name)
        if f is None or f.type != "picklist":
            return Response.json(NOT_FOUND, 404)
        pipelines = {
            "Opportunity": self.model.schema.deal_pipelines,
            "Case": self.model.schema.ticket_pipelines,
        }
        values = []
        chosen = [pl for pl in pipelines.get(obj.name, ()) if pl.sf_record_type_id == record_type]
        written = self.tooling.record_type_values(obj.name, chosen[0].sf_process_id) if chosen else None
        if written is not None and f.name in ("StageName", "Status"):
            values = written
        elif chosen and f.name in ("StageName", "Status"):
            for st in chosen[0].stages:
                if not st.listed:
                    continue
                attrs = None
                if obj.name == "Opportunity":
                    attrs = {
                        "closed": st.closed,
                        "defaultProbability": round((st.probability or 0) * 100, 1),
                        "forecastCategoryName": st.forecast,
                        "picklistAtrributesValueType": "OpportunityStage",
                        "won": st.won,
                    }
                values.append({"attributes": attrs, "label": st.label, "validFor": [], "value": st.label})
        elif record_type == MASTER_RECORD_TYPE or not chosen:
            values = [
                {"attributes": None, "label": v["label"], "validFor": [], "value": v["value"]}
                for v in f.describe()["picklistValues"]
                if v["active"]  # the UI API lists the values a user may pick: active ones
            ]
        return Response.json(
            {
                "controllerValues": {},
                "defaultValue": None,
                "eTag": f"sandbox-{record_type}",
                "url": f"/services/data/v{version}/ui-api/object-info/{obj.name}/picklist-values/"
                f"{record_type}/{f.name}",
                "values": values,
            }
        )

    def _soap_login(self, req: Request, version: str) -> Response:
        body = req.body.decode("utf-8", "replace")
        username = _xml_value(body, "username")
        password = _xml_value(body, "password") or ""
        ok = username == self.username and password in (self.password + self.security_token, self.password)
        if not ok:
            return Response(500, SOAP_LOGIN_FAULT.encode(), {}, "text/xml;charset=UTF-8")
        token = self.issue_session()
        xml = SOAP_LOGIN_OK.format(
            base=self.base_url,
            ver=version,
            org=ORG_ID,
            session=token,
            user=USER_ID,
            org_name=html.escape(self.model.profile.name.title() + " Sandbox Org"),
            ttl=int(self.session_ttl or 7200),
            username=html.escape(self.username),
        )
        return Response(200, xml.encode(), {}, "text/xml;charset=UTF-8")

    def _oauth(self, req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                client_id = client_secret = None
        if grant not in ("password", "client_credentials"):
            return Response.json(
                {"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400
            )
        if client_id != self.consumer_key or client_secret != self.consumer_secret:
            return Response.json(
                {"error": "invalid_client", "error_description": "invalid client credentials"}, 400
            )
        if grant == "password":
            password = form.get("password") or ""
            if form.get("username") != self.username or password not in (
                self.password,
                self.password + self.security_token,
            ):
                return Response.json(
                    {
                        "error": "invalid_grant",
                        "error_description": "authentication failure - Invalid Password",
                    },
                    400,
                )
        token = self.issue_session()
        issued = str(int(time.time() * 1000))
        signature = base64.b64encode(secrets.token_bytes(32)).decode()
        return Response.json(
            {
                "access_token": token,
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/{ORG_ID}/{USER_ID}",
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": signature,
            }
        )


def _proxy_page(status: int) -> Response:
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
    page = f"<html><head><title>{status} {reason}</title></head><body><h1>{reason}</h1></body></html>"
    return Response.text(page, status, "text/html")
