"""Runs parsed SOQL against an OrgModel and answers in Salesforce's JSON shapes.

Errors a real org would give (unknown object or column, grouping or filtering an anyType field,
a dateTime compared with a date) use Salesforce's codes and texts. Valid SOQL the sandbox does not
implement answers MALFORMED_QUERY with a message starting "sandbox:", so it is never mistaken for a
real limitation.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .dates import DAY_MS
from .orgmodel import OrgModel
from .query import MATCH_ALL, Condition, DateNull, DateRange, Filter, MatchSet, Static
from .sfschema import SfField, SfObject, parse_sf_id, sf_id
from .soql import (
    Aggregate,
    BoolOp,
    Comparison,
    FieldRef,
    Literal,
    SoqlError,
    SoqlQuery,
    constant_range,
    parse,
)

MAX_CURSORS = 500
_FLIP = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">", "IN": "NOT IN", "NOT IN": "IN"}


class RowsTable:
    """A small static sObject (OpportunityStage, RecordType...) seen through the engine's Table protocol."""

    def __init__(self, rows: list[dict[str, Any]], date_fields: set[str]) -> None:
        self.rows = rows
        self.nslots = self.width = len(rows)
        self.date_fields = date_fields

    def k_count(self, rank: int) -> int:
        return 1

    def k_range(self, rank: int) -> tuple[int, int]:
        return 0, 1

    def base(self, rank: int) -> int:
        return rank

    def static(self, rank: int) -> Mapping[str, Any]:
        return self.rows[rank]

    def date_fn(self, rank: int, name: str) -> Callable[[int], int] | None:
        value = self.rows[rank].get(name)
        return None if value is None else (lambda k, v=value: v)

    def row(self, rank: int, k: int) -> dict[str, Any]:
        return {**self.rows[rank], "index": rank}


def _err(code: str, text: str, q: SoqlQuery, pos: int) -> SoqlError:
    return SoqlError(code, text, q.text, pos)


def _unsupported(q: SoqlQuery, pos: int, what: str) -> SoqlError:
    return _err("MALFORMED_QUERY", f"sandbox: {what} is not supported", q, pos)


def _norm(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return _norm(str(a)) == _norm(str(b))


@dataclass
class Compiled:
    query: SoqlQuery
    obj: SfObject
    table: Any
    fields: list[SfField]
    flt: Filter
    ids: list[int] | None  # explicit record indices when the WHERE pins Ids
    descending: bool


class SoqlEngine:
    def __init__(self, model: OrgModel, objects: dict[str, SfObject]) -> None:
        self.model = model
        self.objects = {name.lower(): obj for name, obj in objects.items()}
        self._cursors: OrderedDict[str, tuple[Compiled, Any, int, int]] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # ---- entry points ----

    def query(self, text: str, version: str, batch_size: int = 2000) -> dict[str, Any]:
        q = parse(text)
        obj = self.objects.get(q.sobject.lower())
        if obj is None or self.model.profile.refuses(obj.name):
            raise _err(
                "INVALID_TYPE",
                f"sObject type '{q.sobject}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name. Please reference your "
                "WSDL or the describe call for the appropriate names.",
                q,
                q.sobject_pos,
            )
        table = (
            self.model.table(obj.table)
            if obj.table
            else RowsTable(obj.rows or [], {f.name for f in obj.fields.values() if f.date})
        )
        if q.offset > 2000:
            raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        flt, ids = self._where(q, obj)
        if obj.hidden_history:
            unseen = Static("field", lambda v, h=obj.hidden_history: v not in h)
            flt = [[*group, unseen] for group in flt]
        if q.is_aggregate:
            return self._aggregate(q, obj, table, flt, ids)
        fields = [self._field(q, obj, ref) for ref in q.fields]  # type: ignore[arg-type]
        descending = self._order(q, obj)
        compiled = Compiled(q, obj, table, fields, flt, ids, descending)
        source: Any
        if ids is not None:
            ms = MatchSet(table, flt)
            source = [table.locate(i) for i in ids if self._contains(ms, table, i)]
        elif obj.table is None:
            source = self._sorted_static(q, obj, table, MatchSet(table, flt))
        else:
            source = MatchSet(table, flt)
        total = len(source) if isinstance(source, list) else source.total
        total = max(0, total - q.offset)
        if q.limit is not None:
            total = min(total, q.limit)
        return self._page(compiled, source, total, 0, version, batch_size)

    def more(self, locator: str, version: str) -> dict[str, Any]:
        cursor, _, position = locator.rpartition("-")
        with self._lock:
            entry = self._cursors.get(cursor)
        if entry is None or not position.isdigit():
            raise SoqlError("INVALID_QUERY_LOCATOR", "invalid query locator")
        compiled, source, total, batch = entry
        return self._page(compiled, source, total, int(position), version, batch, cursor=cursor)

    # ---- paging ----

    def _page(
        self,
        c: Compiled,
        source: Any,
        total: int,
        start: int,
        version: str,
        batch: int,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        size = max(0, min(batch, total - start))
        offset = c.query.offset + start
        if isinstance(source, list):
            items = source[offset : offset + size]
        else:
            items = source.page(offset, size, c.descending)
        records = [self._record(c, c.table.row(rank, k), version) for rank, k in items]
        body: dict[str, Any] = {"totalSize": total, "done": start + size >= total}
        if not body["done"]:
            if cursor is None:
                cursor = "01g" + sf_id("000", next(self._ids))[6:15]
                with self._lock:
                    self._cursors[cursor] = (c, source, total, batch)
                    while len(self._cursors) > MAX_CURSORS:
                        self._cursors.popitem(last=False)
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor}-{start + size}"
        body["records"] = records
        return body

    def _record(self, c: Compiled, row: Mapping[str, Any], version: str) -> dict[str, Any]:
        id_field = c.obj.fields.get("Id")
        rid = id_field.get(row) if id_field else None
        out: dict[str, Any] = {
            "attributes": {
                "type": c.obj.name,
                "url": f"/services/data/v{version}/sobjects/{c.obj.name}/{rid}",
            }
        }
        for f in c.fields:
            out[f.name] = f.get(row)
        return out

    def _contains(self, ms: MatchSet, table: Any, index: int) -> bool:
        if index >= getattr(table, "size", 0):
            return False
        rank, k = table.locate(index)
        return any(r == rank and any(lo <= k < hi for lo, hi in ivs) for r, ivs in ms.entries)

    def _sorted_static(
        self, q: SoqlQuery, obj: SfObject, table: RowsTable, ms: MatchSet
    ) -> list[tuple[int, int]]:
        items = [(rank, 0) for rank, _ in ms.entries]
        for item in reversed(q.order_by):
            if isinstance(item.target, Aggregate):
                raise _unsupported(q, item.target.pos, "ordering by an aggregate here")
            f = self._field(q, obj, item.target)
            items.sort(
                key=lambda rk, f=f: (f.get(table.rows[rk[0]]) is None, f.get(table.rows[rk[0]])),
                reverse=item.descending,
            )
        return items

    def _order(self, q: SoqlQuery, obj: SfObject) -> bool:
        if obj.table is None or not q.order_by:
            return False
        descending = None
        for item in q.order_by:
            if isinstance(item.target, Aggregate):
                raise _err(
                    "MALFORMED_QUERY", "Ordered field must be grouped or aggregated", q, item.target.pos
                )
            f = self._field(q, obj, item.target)
            if f.type == "anyType":
                raise _err(
                    "INVALID_FIELD", f"field '{f.name}' can not be sorted in a query call", q, item.target.pos
                )
            natural = f.name == "Id" or (f.name == "CreatedDate" and not obj.table.endswith("history"))
            if not natural and self._history_order(q, obj):
                natural = True
            if not natural:
                raise _unsupported(q, item.target.pos, f"ORDER BY {f.name} (only Id and CreatedDate)")
            if descending is not None and descending != item.descending:
                raise _unsupported(q, item.target.pos, "mixed ORDER BY directions")
            descending = item.descending
        return bool(descending)

    def _history_order(self, q: SoqlQuery, obj: SfObject) -> bool:
        """ORDER BY <parent id>[, CreatedDate] on a history object: the rows' natural order (by record, then each
        field's changes in time). A field history tracks several fields per record, their changes one field after
        the other, so the sandbox needs the query pinned to one field (Field = '...') to keep that order true."""
        if not obj.table.endswith("history"):
            return False
        parents = [
            f.name
            for f in obj.fields.values()
            if f.type == "reference" and f.name not in ("CreatedById",) and f.name.endswith("Id")
        ]
        names = [getattr(item.target, "name", None) for item in q.order_by]
        if not parents or names not in ([parents[0]], [parents[0], "CreatedDate"]):
            return False
        if any(item.descending for item in q.order_by):
            raise _unsupported(q, q.order_by[0].target.pos, "ORDER BY a history's record DESC")
        if "Field" in obj.fields and not _pins(q.where, "Field"):
            raise _unsupported(q, q.order_by[0].target.pos, f"ORDER BY {parents[0]} without Field = '...'")
        return True

    # ---- fields and filters ----

    def _field(self, q: SoqlQuery, obj: SfObject, ref: FieldRef) -> SfField:
        if "." in ref.name:
            raise _unsupported(q, ref.pos, f"relationship field {ref.name}")
        f = obj.field(ref.name)
        if f is None:
            raise _err(
                "INVALID_FIELD",
                f"No such column '{ref.name}' on entity '{obj.name}'. If you are attempting "
                "to use a custom field, be sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
                q,
                ref.pos,
            )
        return f

    def _where(self, q: SoqlQuery, obj: SfObject) -> tuple[Filter, list[int] | None]:
        if q.where is None:
            return MATCH_ALL, None
        groups = _dnf(q.where, False)
        if len(groups) > 64:
            raise _unsupported(q, 0, "a WHERE clause this complex")
        flt: list[list[Condition]] = []
        id_sets: list[set[int] | None] = []
        for group in groups:
            conds: list[Condition] = []
            pinned: set[int] | None = None
            for cmp in group:
                f = self._field(q, obj, cmp.field)
                if f.type == "id" and obj.table in self.model.sets:
                    indices = self._id_values(q, obj, cmp)
                    pinned = indices if pinned is None else pinned & indices
                    continue
                conds.extend(self._condition(q, f, cmp))
            flt.append(conds)
            id_sets.append(pinned)
        if all(s is None for s in id_sets):
            return flt, None
        if any(s is None for s in id_sets):
            raise _unsupported(q, 0, "OR between Id and non-Id conditions")
        ids = sorted(set().union(*id_sets))  # type: ignore[arg-type]
        return flt if len(flt) == 1 else [[]], ids

    def _id_values(self, q: SoqlQuery, obj: SfObject, cmp: Comparison) -> set[int]:
        if cmp.op not in ("=", "IN"):
            raise _unsupported(q, cmp.field.pos, f"Id {cmp.op}")
        values = cmp.value if isinstance(cmp.value, list) else [cmp.value]
        out = set()
        for lit in values:
            if lit.kind != "string":
                raise _err("INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: " + str(lit.value), q, lit.pos)
            n = parse_sf_id(obj.prefix, lit.value)
            if n is None:
                if len(lit.value) not in (15, 18):
                    raise _err("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}", q, lit.pos)
                continue
            out.add(n)
        return out

    def _condition(self, q: SoqlQuery, f: SfField, cmp: Comparison) -> list[Condition]:
        if not f.filterable:
            raise _err(
                "INVALID_FIELD", f"field '{f.name}' can not be filtered in query call", q, cmp.field.pos
            )
        values = cmp.value if isinstance(cmp.value, list) else [cmp.value]
        if f.date:
            return [self._date_condition(q, f, cmp, values)]
        if f.static:
            return [Static(f.static, _static_test(f, cmp.op, [self._plain(q, f, v) for v in values]))]
        if f.nullness and len(values) == 1 and values[0].kind == "null" and cmp.op in ("=", "!="):
            want_present = cmp.op == "!="
            return [Static(f.nullness, lambda v, w=want_present: bool(v) == w)]
        raise _unsupported(q, cmp.field.pos, f"filtering on {f.name} (only = null / != null)")

    def _plain(self, q: SoqlQuery, f: SfField, lit: Literal) -> Any:
        if lit.kind in ("date", "datetime", "constant"):
            raise _err(
                "INVALID_FIELD",
                f"value of filter criterion for field '{f.name}' must be of type "
                f"{_kind_name(f.type)} and should be enclosed in quotes",
                q,
                lit.pos,
            )
        if f.type == "boolean" and lit.kind != "boolean":
            raise _err(
                "INVALID_FIELD",
                f"value of filter criterion for field '{f.name}' must be of type boolean "
                "and should not be enclosed in quotes",
                q,
                lit.pos,
            )
        return lit.value

    def _date_condition(self, q: SoqlQuery, f: SfField, cmp: Comparison, values: list[Literal]) -> Condition:
        assert f.date is not None
        if len(values) != 1 or cmp.op in ("IN", "NOT IN"):
            raise _unsupported(q, cmp.field.pos, f"IN on date field {f.name}")
        lit = values[0]
        if lit.kind == "null":
            if cmp.op not in ("=", "!="):
                raise _err("MALFORMED_QUERY", "invalid operator on null", q, lit.pos)
            return DateNull(f.date, cmp.op == "=")
        if lit.kind == "constant":
            word, n = lit.value
            lo, hi = constant_range(word, n, self.model.as_of, q.text, lit.pos)
        elif lit.kind == "datetime" and f.type == "datetime":
            lo, hi = lit.value, lit.value + 1
        elif lit.kind == "date" and f.type == "date":
            lo, hi = lit.value, lit.value + DAY_MS
        else:
            raise _err(
                "INVALID_FIELD",
                f"value of filter criterion for field '{f.name}' must be of type "
                f"{_kind_name(f.type)} and should not be enclosed in quotes",
                q,
                lit.pos,
            )
        op = cmp.op
        if op == "=":
            return DateRange(f.date, lo, hi)
        if op == "!=":
            return DateRange(f.date, lo, hi, negate=True)
        if op == "<":
            return DateRange(f.date, None, lo)
        if op == "<=":
            return DateRange(f.date, None, hi)
        if op == ">":
            return DateRange(f.date, hi, None)
        return DateRange(f.date, lo, None)

    # ---- aggregates ----

    def _aggregate(
        self, q: SoqlQuery, obj: SfObject, table: Any, flt: Filter, ids: list[int] | None
    ) -> dict[str, Any]:
        if ids is not None:
            raise _unsupported(q, 0, "aggregates filtered by Id")
        groups = []
        for ref in q.group_by:
            f = self._field(q, obj, ref)
            if not f.groupable:
                raise _err(
                    "INVALID_FIELD", f"field '{f.name}' can not be grouped in a query call", q, ref.pos
                )
            if not f.static:
                raise _unsupported(q, ref.pos, f"GROUP BY {f.name}")
            groups.append(f)
        group_names = {f.name for f in groups}
        aggs: list[tuple[str, Aggregate, SfField | None]] = []
        unnamed = 0
        for item in q.fields:
            if isinstance(item, FieldRef):
                f = self._field(q, obj, item)
                if f.name not in group_names:
                    raise _err(
                        "MALFORMED_QUERY", f"Field must be grouped or aggregated: {f.name}", q, item.pos
                    )
                continue
            target = self._field(q, obj, FieldRef(item.field, item.pos)) if item.field else None
            if item.func in ("SUM", "AVG") and (
                target is None or target.type not in ("currency", "double", "percent", "int")
            ):
                raise _err(
                    "MALFORMED_QUERY",
                    f"field {item.field} does not support aggregate operator {item.func}",
                    q,
                    item.pos,
                )
            if item.alias:
                name = item.alias
            else:
                name = f"expr{unnamed}"
                unnamed += 1
            aggs.append((name, item, target))
        ms = MatchSet(table, flt)
        if q.is_count_only:
            total = max(0, ms.total - q.offset)
            total = total if q.limit is None else min(total, q.limit)
            return {"totalSize": total, "done": True, "records": []}
        buckets: dict[tuple[Any, ...], list[tuple[int, list[tuple[int, int]]]]] = {}
        for rank, ivs in ms.entries:
            values = table.static(rank)
            key = tuple(f.to_sf(values.get(f.static)) for f in groups)
            buckets.setdefault(key, []).append((rank, ivs))
        if not groups and not buckets:
            buckets[()] = []
        rows = []
        for key, entries in buckets.items():
            row: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
            for f, value in zip(groups, key, strict=True):
                row[f.name] = value
            for name, agg, target in aggs:
                row[name] = self._reduce(q, table, agg, target, entries)
            rows.append(row)
        rows = self._order_aggregates(q, obj, rows, groups, aggs)
        rows = rows[q.offset :]
        if q.limit is not None:
            rows = rows[: q.limit]
        return {"totalSize": len(rows), "done": True, "records": rows}

    def _reduce(
        self,
        q: SoqlQuery,
        table: Any,
        agg: Aggregate,
        f: SfField | None,
        entries: list[tuple[int, list[tuple[int, int]]]],
    ) -> Any:
        sizes = [(rank, ivs, sum(hi - lo for lo, hi in ivs)) for rank, ivs in entries]
        if agg.func in ("COUNT", "COUNT_DISTINCT") and (f is None or f.type == "id"):
            if agg.func == "COUNT_DISTINCT" and f is None:
                raise _unsupported(q, agg.pos, "COUNT_DISTINCT()")
            return sum(n for _, _, n in sizes)
        assert f is not None
        if agg.func == "COUNT":
            n = 0
            for rank, _, size in sizes:
                if f.static:
                    present = f.to_sf(table.static(rank).get(f.static)) is not None
                elif f.date:
                    present = table.date_fn(rank, f.date) is not None
                elif f.nullness:
                    present = bool(table.static(rank).get(f.nullness))
                else:
                    present = True
                n += size if present else 0
            return n
        if agg.func == "COUNT_DISTINCT":
            if not f.static:
                raise _unsupported(q, agg.pos, f"COUNT_DISTINCT({f.name})")
            return len({_norm(f.to_sf(table.static(rank).get(f.static))) for rank, _, _ in sizes} - {None})
        if f.date and agg.func in ("MIN", "MAX"):
            ends = []
            for rank, ivs, _ in sizes:
                fn = table.date_fn(rank, f.date)
                if fn is not None:
                    ends.append(fn(ivs[0][0]) if agg.func == "MIN" else fn(ivs[-1][1] - 1))
            if not ends:
                return None
            return f.get(
                {
                    "created": (v := min(ends) if agg.func == "MIN" else max(ends)),
                    "dates": {f.date: v},
                    f.date: v,
                }
            )
        if not f.static:
            raise _unsupported(q, agg.pos, f"{agg.func}({f.name})")
        pairs = [(f.to_sf(table.static(rank).get(f.static)), n) for rank, _, n in sizes]
        pairs = [(v, n) for v, n in pairs if v is not None and n]
        if not pairs:
            return None
        if agg.func == "SUM":
            return float(sum(v * n for v, n in pairs))
        if agg.func == "AVG":
            return sum(v * n for v, n in pairs) / sum(n for _, n in pairs)
        return (min if agg.func == "MIN" else max)(v for v, _ in pairs)

    def _order_aggregates(
        self,
        q: SoqlQuery,
        obj: SfObject,
        rows: list[dict[str, Any]],
        groups: list[SfField],
        aggs: list[tuple[str, Aggregate, SfField | None]],
    ) -> list[dict[str, Any]]:
        def sort_key(value: Any) -> tuple[bool, Any]:
            return (value is None, _norm(value) if value is not None else 0)

        rows.sort(key=lambda r: tuple(sort_key(r[f.name]) for f in groups))
        for item in reversed(q.order_by):
            target = item.target
            if isinstance(target, Aggregate):
                match = [
                    name
                    for name, a, _ in aggs
                    if a.func == target.func and (a.field or "").lower() == (target.field or "").lower()
                ]
                if not match:
                    raise _err(
                        "MALFORMED_QUERY", "Ordered field must be grouped or aggregated", q, target.pos
                    )
                name = match[0]
            else:
                f = self._field(q, obj, target)
                if f.name not in {g.name for g in groups}:
                    raise _err(
                        "MALFORMED_QUERY",
                        f"Ordered field must be grouped or aggregated: {f.name}",
                        q,
                        target.pos,
                    )
                name = f.name
            rows.sort(key=lambda r, n=name: sort_key(r[n]), reverse=item.descending)
        return rows


def _kind_name(t: str) -> str:
    return {"datetime": "dateTime", "date": "date", "boolean": "boolean"}.get(t, "string")


def _static_test(f: SfField, op: str, values: list[Any]) -> Callable[[Any], bool]:
    to_sf = f.to_sf
    if op in ("=", "IN"):
        return lambda v: any(_eq(to_sf(v), x) for x in values)
    if op in ("!=", "NOT IN"):
        return lambda v: not any(_eq(to_sf(v), x) for x in values)
    x = values[0]

    def compare(v: Any) -> bool:
        value = to_sf(v)
        if value is None or x is None:
            return False
        if isinstance(value, str) or isinstance(x, str):
            value, other = _norm(str(value)), _norm(str(x))
        else:
            other = x
        return {"<": value < other, "<=": value <= other, ">": value > other, ">=": value >= other}[op]

    return compare


def _dnf(node: Any, negate: bool) -> list[list[Comparison]]:
    if isinstance(node, Comparison):
        if negate:
            node = Comparison(node.field, _FLIP[node.op], node.value)
        return [[node]]
    assert isinstance(node, BoolOp)
    if node.op == "NOT":
        return _dnf(node.items[0], not negate)
    parts = [_dnf(item, negate) for item in node.items]
    is_and = (node.op == "AND") != negate
    if not is_and:
        return [group for part in parts for group in part]
    out: list[list[Comparison]] = [[]]
    for part in parts:
        out = [a + b for a in out for b in part]
        if len(out) > 256:
            break
    return out


def _pins(where: Any, name: str) -> bool:
    """The WHERE clause fixes `name` to one value (a top-level `name = '...'` among ANDed conditions)."""
    if isinstance(where, Comparison):
        return where.field.name == name and where.op == "="
    if isinstance(where, BoolOp) and where.op == "AND":
        return any(_pins(item, name) for item in where.items)
    return False
