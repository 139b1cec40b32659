"""Record moves for the Salesforce connector: find the records holding a value (SOQL for their Ids, paged) and set
a field on them through a Bulk API 2.0 ingest job (simple-salesforce's `bulk2`: create the job, upload the CSV,
close it, poll it), every request through the connector's Guard like the reads: counted, budgeted and retried."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from simple_salesforce.exceptions import SalesforceOperationError

from .base import CrmError, CrmQueryError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from simple_salesforce import Salesforce

POLL_SECONDS = 1  # simple-salesforce waits this long before it asks for the job's state, and between asks
JOB_RECORDS = 10_000  # records per ingest job


class SalesforceMoves:
    """Mixed into SalesforceConnector: the record-move half of the CrmConnector interface."""

    if TYPE_CHECKING:

        def _client(self) -> Salesforce: ...
        def _translate(self) -> AbstractContextManager[None]: ...
        def _query(self, soql: str) -> dict[str, Any]: ...
        def _query_more(self, next_records_url: str) -> dict[str, Any]: ...

    def _move_field(self, kind: str, field: str, pipeline: str | None) -> tuple[str, str]:
        from .salesforce import OBJECTS, STAGE_FIELD  # the connector module imports this one

        return OBJECTS[kind], STAGE_FIELD[kind] if pipeline is not None and kind in STAGE_FIELD else field

    def records_holding(self, kind: str, field: str, value: str, pipeline: str | None, limit: int) -> list[str]:
        from .salesforce import soql_string

        name, field = self._move_field(kind, field, pipeline)
        if not field.isidentifier():
            raise CrmQueryError(f"{field!r} is not a Salesforce field name.", platform="salesforce")
        soql = f"SELECT Id FROM {name} WHERE {field} = {soql_string(value)}"  # noqa: S608 - names checked, value quoted
        if pipeline not in (None, "master"):
            soql += f" AND RecordTypeId = {soql_string(pipeline)}"
        page = self._query(f"{soql} ORDER BY Id LIMIT {max(0, int(limit))}")
        ids = [r["Id"] for r in page["records"]]
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            page = self._query_more(page["nextRecordsUrl"])
            ids += [r["Id"] for r in page["records"]]
        return ids[:limit]

    def unlisted_values(
        self, kind: str, field: str, listed: Sequence[str], pipeline: str | None, limit: int
    ) -> tuple[dict[str, int], int]:
        """One GROUP BY count of the field (within the pipeline's record type, for a stage): every value is named,
        so `limit` bounds nothing here. Picklist values compare without case, as Salesforce stores them."""
        from .salesforce import soql_string

        name, field = self._move_field(kind, field, pipeline)
        if not field.isidentifier():
            raise CrmQueryError(f"{field!r} is not a Salesforce field name.", platform="salesforce")
        where = f" WHERE RecordTypeId = {soql_string(pipeline)}" if pipeline not in (None, "master") else ""
        rows = self._query(f"SELECT {field}, COUNT(Id) FROM {name}{where} GROUP BY {field}")["records"]  # noqa: S608
        known = {v.lower() for v in listed}
        found = {
            str(r[field]): int(r["expr0"])
            for r in rows
            if r.get(field) not in (None, "") and str(r[field]).lower() not in known
        }
        return found, sum(found.values())

    def move_records(self, kind: str, field: str, ids: Sequence[str], new_value: str) -> int:
        from .salesforce import OBJECTS

        name = OBJECTS[kind]
        records = [{"Id": i, field: new_value} for i in ids]
        if not records:
            return 0
        try:
            with self._translate():
                objects = getattr(self._client().bulk2, name)
                jobs = objects.update(records=records, batch_size=JOB_RECORDS, wait=POLL_SECONDS)
                failed = sum(int(j["numberRecordsFailed"]) for j in jobs)
                moved = sum(int(j["numberRecordsProcessed"]) for j in jobs) - failed
                if not failed:
                    return moved
                job = next(j["job_id"] for j in jobs if int(j["numberRecordsFailed"]))
                reasons = list(csv.DictReader(io.StringIO(objects.get_failed_records(job))))
        except SalesforceOperationError as exc:
            raise CrmError(f"Salesforce's Bulk API refused the move of {name} records ({exc}).") from None
        reason = reasons[0].get("sf__Error", "") if reasons else ""
        raise CrmError(
            f"Salesforce moved {moved} of {len(records)} {name} records; {failed} failed (the first: {reason}).",
            platform="salesforce",
        )
