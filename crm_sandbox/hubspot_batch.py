"""Batch update of records on the HubSpot sandbox, in the wire format hubspot-api-client speaks:

  POST /crm/v3/objects/{objectType}/batch/update   {"inputs": [{"id", "properties": {name: value}}, ...]} (<= 100)

Only enumeration properties that the record sets hold per slot (stages, lifecycle, lead status) can be set: that is
what a record move writes. Records are never stored (crm_sandbox/query.py), so a move is kept per record and becomes
the slot's value once every record of the slot was moved to the same value; searches and counts see it from then
on. A move of every record holding a value, which is what the engineering phase sends, always completes its slots.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from .orgschema import Option
from .server import Request, Response, SandboxError

if TYPE_CHECKING:
    from .hubspot import HubSpotSandbox

MOST = 100


def _bad(message: str) -> SandboxError:
    body = {"status": "error", "message": message, "correlationId": "sandbox", "category": "VALIDATION_ERROR"}
    return SandboxError(Response.json(body, 400))


class SlotMoves:
    """Record values set by a write, kept per record until a whole slot holds the same one (then it is the slot's
    value). Shared by the HubSpot batch update and the Salesforce Bulk API 2.0 ingest."""

    def __init__(self) -> None:
        self.moved: dict[tuple[str, str, int], dict[int, Option]] = {}  # (set, attr, slot) -> record index -> value
        self._lock = threading.Lock()

    def set(self, table: Any, changes: list[tuple[int, tuple[str, Option]]]) -> None:
        with self._lock:
            touched = set()
            for index, (attr, option) in changes:
                rank, _ = table.locate(index)
                self.moved.setdefault((table.name, attr, rank), {})[index] = option
                touched.add((attr, rank))
            for attr, rank in touched:
                self._settle(table, attr, rank)

    def _settle(self, table: Any, attr: str, rank: int) -> None:
        moved = self.moved[(table.name, attr, rank)]
        lo, hi = table.k_range(rank)
        values = {moved.get(table.base(rank) + k * table.width) for k in range(lo, hi)}
        if len(values) == 1 and None not in values:
            table.slots[rank].values[attr] = values.pop()


def known_option(table: Any, attr: str, spelled: Any, value: str, label: str) -> Option:
    """The option records of the table already hold for `value` (spelled by the platform), or a new one."""
    found = (s.values.get(attr) for s in table.slots)
    option = next((o for o in found if isinstance(o, Option) and spelled(o) == value), None)
    return option or Option(key=value, label=label, hs_value=value)


class HubSpotBatch:
    def __init__(self, server: HubSpotSandbox) -> None:
        self.server = server
        self.moves = SlotMoves()

    def answer(self, req: Request) -> Response | None:
        parts = req.path.strip("/").split("/")
        if req.method != "POST" or parts[:3] != ["crm", "v3", "objects"] or parts[4:] != ["batch", "update"]:
            return None
        if req.headers.get("authorization", "") != f"Bearer {self.server.access_token}":
            return None  # the portal answers 401
        if self.server.model.profile.read_only:
            return None  # the read-only portal refuses writes
        name = self.server._type(parts[3])
        try:
            body = req.json() or {}
        except json.JSONDecodeError:
            raise _bad("Invalid input JSON on line 1") from None
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise _bad("Invalid input JSON: expected an object with inputs")
        if len(inputs) > MOST:
            raise _bad(f"Batch update accepts at most {MOST} inputs, but got {len(inputs)}")
        table = self.server.model.sets[self.server.types[name]]
        changes = []
        for item in inputs:
            object_id, properties = str(item.get("id", "")), item.get("properties")
            if not object_id.isdigit() or not 1 <= int(object_id) <= table.size:
                raise _bad(f"Could not get some {name} objects, they may be deleted or not exist: {object_id}")
            if not isinstance(properties, dict) or not properties:
                raise _bad(f"Object {object_id}: properties must be a non-empty object")
            for prop_name, value in properties.items():
                changes.append((int(object_id) - 1, self._option(name, str(prop_name), str(value))))
        self.moves.set(table, changes)
        started = "2026-01-01T00:00:00.000Z"
        results = [self.server._body(name, table.row_at(int(i["id"]) - 1), list(i["properties"]), None) for i in inputs]
        return Response.json({"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": started})

    def _option(self, name: str, prop_name: str, value: str) -> tuple[str, Option]:
        prop = self.server.props[name].get(prop_name)
        if prop is None or prop_name in self.server.hidden[name]:
            raise _bad(f'Property "{prop_name}" does not exist')
        if prop.type != "enumeration" or not prop.static:
            raise _bad(f"sandbox: batch update sets enumeration properties only, not {prop_name}")
        labels = dict(prop.options)
        if prop_name == "dealstage":
            labels |= {s.hs: s.hs_text for p in self.server.model.schema.deal_pipelines for s in p.stages}
        if value not in labels:
            raise _bad(f"{value} was not one of the allowed options for {prop_name}")
        table = self.server.model.sets[self.server.types[name]]
        return prop.static, known_option(table, prop.static, lambda o: o.hs, value, labels[value])
