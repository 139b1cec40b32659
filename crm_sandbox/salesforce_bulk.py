"""Bulk API 2.0 ingest on the Salesforce sandbox, in the wire format simple-salesforce's `bulk2` speaks:

  POST  /services/data/vXX.X/jobs/ingest                     create a job {object, operation: update, contentType}
  PUT   /services/data/vXX.X/jobs/ingest/{id}/batches        the job's CSV (text/csv): 201, no body
  PATCH /services/data/vXX.X/jobs/ingest/{id}                {"state": "UploadComplete"} (runs it) or "Aborted"
  GET   /services/data/vXX.X/jobs/ingest/{id}                job info: state, numberRecordsProcessed/Failed
  GET   /services/data/vXX.X/jobs/ingest/{id}/successfulResults | failedResults   CSV with sf__Id, sf__Error

Only `update` of picklist fields the record sets hold per slot (stages, statuses, lifecycle fields) is served: that
is what a record move sends. A row with an unknown Id or a value the picklist lacks fails with Salesforce's error
code in failedResults; the job still completes. Values are kept like the HubSpot batch update's (hubspot_batch:
per record, and the slot's value once the whole slot moved). `by_method` counts every API request by HTTP method,
so a test proves a count sent no write.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from .hubspot_batch import SlotMoves, known_option
from .server import Request, Response
from .sfschema import parse_sf_id, sf_id

if TYPE_CHECKING:
    from .salesforce import SalesforceSandbox

CREATED = "2026-01-01T00:00:00.000+0000"


def _error(status: int, code: str, message: str) -> Response:
    return Response.json([{"errorCode": code, "message": message}], status)


class SalesforceBulk:
    def __init__(self, server: SalesforceSandbox) -> None:
        self.server = server
        self.jobs: dict[str, dict[str, Any]] = {}
        self.by_method: Counter[str] = Counter()
        self.moves = SlotMoves()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def answer(self, req: Request) -> Response | None:
        if req.path.startswith("/services/data/"):
            self.by_method[req.method] += 1
        parts = req.path.strip("/").split("/")
        if parts[:2] != ["services", "data"] or parts[3:5] != ["jobs", "ingest"]:
            return None
        if not self.server._session_ok(req):
            return None  # the org answers 401 INVALID_SESSION_ID
        version, rest = parts[2][1:], parts[5:]
        with self._lock:
            if not rest:
                return self._create(req, version) if req.method == "POST" else None
            job = self.jobs.get(rest[0])
            if job is None:
                return _error(404, "NOT_FOUND", f"Job {rest[0]} does not exist")
            if len(rest) == 1 and req.method == "GET":
                return Response.json(self._info(job, detail=True))
            if len(rest) == 1 and req.method == "PATCH":
                return self._state(req, job)
            if rest[1:] == ["batches"] and req.method == "PUT":
                if job["state"] != "Open":
                    return _error(409, "INVALIDJOBSTATE", f"Job {job['id']} is not open for uploads")
                job["csv"] = req.body.decode("utf-8")
                return Response(201)
            if rest[1:] in (["successfulResults"], ["failedResults"]) and req.method == "GET":
                return self._results(job, rest[1])
        return _error(404, "NOT_FOUND", f"{req.method} {req.path} is not served")

    def _create(self, req: Request, version: str) -> Response:
        try:
            body = req.json() or {}
        except json.JSONDecodeError:
            return _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        obj = self.server.objects.get(str(body.get("object") or ""))
        if body.get("operation") != "update" or obj is None or not obj.table:
            return _error(400, "INVALIDJOB", "sandbox: only update jobs on record objects are served")
        if body.get("contentType", "CSV") != "CSV":
            return _error(400, "INVALIDJOB", "Only CSV content is supported")
        job_id = sf_id("750", next(self._ids))
        self.jobs[job_id] = {
            "id": job_id,
            "object": obj.name,
            "version": version,
            "lineEnding": body.get("lineEnding", "LF"),
            "columnDelimiter": body.get("columnDelimiter", "COMMA"),
            "state": "Open",
            "csv": "",
            "ok": [],
            "failed": [],
        }
        return Response.json(self._info(self.jobs[job_id]))

    def _info(self, job: dict[str, Any], detail: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": job["id"],
            "operation": "update",
            "object": job["object"],
            "createdById": "0055g00000SandbAAA",
            "createdDate": CREATED,
            "systemModstamp": CREATED,
            "state": job["state"],
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(job["version"]),
            "contentUrl": f"services/data/v{job['version']}/jobs/ingest/{job['id']}/batches",
            "lineEnding": job["lineEnding"],
            "columnDelimiter": job["columnDelimiter"],
        }
        if detail:
            info |= {
                "jobType": "V2Ingest",
                "numberRecordsProcessed": len(job["ok"]) + len(job["failed"]),
                "numberRecordsFailed": len(job["failed"]),
                "retries": 0,
                "totalProcessingTime": 0,
                "apiActiveProcessingTime": 0,
                "apexProcessingTime": 0,
            }
        return info

    def _state(self, req: Request, job: dict[str, Any]) -> Response:
        try:
            state = (req.json() or {}).get("state")
        except (json.JSONDecodeError, AttributeError):
            return _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        if state == "Aborted" and job["state"] in ("Open", "UploadComplete"):
            job["state"] = "Aborted"
        elif state == "UploadComplete" and job["state"] == "Open":
            if not job["csv"]:
                return _error(400, "INVALIDJOBSTATE", "No data was uploaded for this job")
            self._run(job)
        else:
            return _error(409, "INVALIDJOBSTATE", f"Job {job['id']} cannot go from {job['state']} to {state}")
        response = Response.json(self._info(job))
        job["state"] = "JobComplete" if job["state"] == "UploadComplete" else job["state"]
        return response

    def _run(self, job: dict[str, Any]) -> None:
        """Apply the CSV's rows: each row succeeds or fails on its own, as Salesforce processes them."""
        obj = self.server.objects[job["object"]]
        table = self.server.model.sets[obj.table]
        delimiter = {"COMMA": ",", "TAB": "\t", "SEMICOLON": ";", "PIPE": "|"}.get(job["columnDelimiter"], ",")
        rows = list(csv.DictReader(io.StringIO(job["csv"]), delimiter=delimiter))
        changes = []
        for row in rows:
            index = parse_sf_id(obj.prefix, row.get("Id") or "")
            error = "" if index is not None and index < table.size else "INVALID_CROSS_REFERENCE_KEY:invalid id:--"
            for name, value in row.items():
                if error or name == "Id":
                    continue
                f = obj.field(name)
                allowed = (
                    {o.label for o in f.options} | set(f.labels) | {v["value"] for v in f.configured or []}
                    if f is not None and f.static and f.type == "picklist"
                    else set()
                )
                if not allowed:
                    error = f"INVALID_FIELD:sandbox: {name} cannot be updated in bulk here:--"
                elif value not in allowed:
                    error = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: "
                    error += f"{value}:{name} --"
                else:
                    changes.append((index, (f.static, known_option(table, f.static, f.to_sf, value, value))))
            (job["failed"] if error else job["ok"]).append((row, error))
        self.moves.set(table, changes)
        job["state"] = "UploadComplete"

    def _results(self, job: dict[str, Any], which: str) -> Response:
        out = io.StringIO()
        rows = job["ok"] if which == "successfulResults" else job["failed"]
        columns = list(rows[0][0]) if rows else ["Id"]
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["sf__Id", "sf__Created" if which == "successfulResults" else "sf__Error", *columns])
        for row, error in rows:
            writer.writerow([row.get("Id", ""), "false" if which == "successfulResults" else error, *row.values()])
        return Response.text(out.getvalue(), 200, "text/csv")
