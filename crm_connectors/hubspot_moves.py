"""Record moves for the HubSpot connector: find the records holding a value (search API, paged by record id) and set
a property on them in batches of 100 (POST /crm/v3/objects/{objectType}/batch/update), through hubspot-api-client
and the connector's Guard like every other call: counted, budgeted, rate-limited and retried."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

from .base import CrmError, CrmMalformedResponse

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

BATCH = 100  # HubSpot's batch update limit
CEILING = 10_000  # the search API pages no further
BY_ID = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]  # a stable order for paging


class HubSpotMoves:
    """Mixed into HubSpotConnector: the record-move half of the CrmConnector interface."""

    if TYPE_CHECKING:

        def _api(self, name: str) -> Any: ...
        def _translate(self) -> AbstractContextManager[None]: ...
        def _object_type(self, kind: str) -> str: ...
        def _search_pages(
            self, kind: str, groups: list[list[dict[str, Any]]], *, limit: int, properties: list[str], sorts: list[dict]
        ) -> Iterator[Any]: ...
        def _not_in(self, name: str, values: list[str]) -> list[dict[str, Any]]: ...

    def _holding_filter(self, kind: str, field: str, value: str, pipeline: str | None) -> list[dict[str, Any]]:
        from .hubspot import PIPELINE_FIELDS  # the connector module imports this one

        if pipeline is not None and kind in PIPELINE_FIELDS:
            pipeline_prop, stage_prop = PIPELINE_FIELDS[kind]
            return [
                {"property_name": stage_prop, "operator": "EQ", "value": value},
                {"property_name": pipeline_prop, "operator": "EQ", "value": pipeline},
            ]
        return [{"property_name": field, "operator": "EQ", "value": value}]

    def records_holding(self, kind: str, field: str, value: str, pipeline: str | None, limit: int) -> list[str]:
        limit = max(0, min(limit, CEILING))
        if not limit:
            return []
        group = [self._holding_filter(kind, field, value, pipeline)]
        pages = self._search_pages(kind, group, limit=limit, properties=["hs_object_id"], sorts=BY_ID)
        return [str(r.id) for page in pages for r in page.results or []][:limit]

    def unlisted_values(
        self, kind: str, field: str, listed: Sequence[str], pipeline: str | None, limit: int
    ) -> tuple[dict[str, int], int]:
        """One search excluding the listed values (NOT_IN), read page by page by record id up to `limit` records:
        HubSpot has no GROUP BY, so the distinct values and their records are collected from the pages."""
        from .hubspot import PIPELINE_FIELDS

        prop = field
        group = []
        if pipeline is not None and kind in PIPELINE_FIELDS:
            pipeline_prop, prop = PIPELINE_FIELDS[kind]
            group.append({"property_name": pipeline_prop, "operator": "EQ", "value": pipeline})
        group += self._not_in(prop, list(dict.fromkeys(listed)))
        limit = max(0, min(limit, CEILING))
        found: Counter[str] = Counter()
        total = 0
        for page in self._search_pages(kind, [group], limit=limit, properties=[prop], sorts=BY_ID):
            total = int(page.total)
            for r in page.results or []:
                value = (r.properties or {}).get(prop)
                if value not in (None, ""):
                    found[str(value)] += 1
        return dict(found), total

    def move_records(self, kind: str, field: str, ids: Sequence[str], new_value: str) -> int:
        from .hubspot import PIPELINE_FIELDS

        prop = PIPELINE_FIELDS[kind][1] if kind in PIPELINE_FIELDS and field in PIPELINE_FIELDS[kind] else field
        object_type, moved = self._object_type(kind), 0
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            request = BatchInputSimplePublicObjectBatchInput(
                inputs=[SimplePublicObjectBatchInput(id=i, properties={prop: new_value}) for i in chunk]
            )
            try:
                with self._translate():
                    result = self._api("batch").update(
                        object_type, batch_input_simple_public_object_batch_input=request
                    )
            except CrmError as exc:
                exc.message = f"{exc.message} ({moved} of {len(ids)} records were moved before this batch)"
                raise
            if result is None or result.results is None:
                raise CrmMalformedResponse("HubSpot returned a batch update without results.", platform="hubspot")
            moved += len(result.results)
        return moved
