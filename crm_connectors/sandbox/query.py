"""Counting and paging over records that are never stored.

A record table is split into `nslots` slots; record `k` of slot `rank` sits at flat position
`k * nslots + rank`. Everything that can be filtered or grouped on is either
- static: the same for every record of a slot (picklist values, "has an email", owner), or
- a date that, within one slot, never decreases as `k` grows (created, entered stage X, modified).
So a filter matches, in each slot, a few runs of `k` that binary search finds, and a count is a sum
of run lengths: O(slots * log records) whatever the org size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Interval = tuple[int, int]


class Table(Protocol):
    nslots: int

    def k_count(self, rank: int) -> int: ...

    def static(self, rank: int) -> Mapping[str, Any]: ...

    def date_fn(self, rank: int, field: str) -> Callable[[int], int] | None: ...


@dataclass(frozen=True)
class Static:
    """Match when `test(value)` holds for the slot's static value of `field`."""

    field: str
    test: Callable[[Any], bool]


@dataclass(frozen=True)
class DateRange:
    """Match non-null dates in [lo, hi); `negate` matches everything else, nulls included."""

    field: str
    lo: int | None = None
    hi: int | None = None
    negate: bool = False


@dataclass(frozen=True)
class DateNull:
    field: str
    is_null: bool


Condition = Static | DateRange | DateNull
# OR of AND-groups; [[]] matches everything.
Filter = Sequence[Sequence[Condition]]
MATCH_ALL: Filter = ((),)


def first_k(fn: Callable[[int], int], x: int, count: int) -> int:
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        if fn(mid) < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _complement(ivs: list[Interval], count: int) -> list[Interval]:
    out, at = [], 0
    for lo, hi in ivs:
        if lo > at:
            out.append((at, lo))
        at = max(at, hi)
    if at < count:
        out.append((at, count))
    return out


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _union(parts: list[list[Interval]]) -> list[Interval]:
    flat = sorted(iv for part in parts for iv in part)
    out: list[Interval] = []
    for lo, hi in flat:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _cond_intervals(table: Table, rank: int, cond: Condition, count: int) -> list[Interval]:
    everything = [(0, count)]
    if isinstance(cond, Static):
        return everything if cond.test(table.static(rank).get(cond.field)) else []
    fn = table.date_fn(rank, cond.field)
    if isinstance(cond, DateNull):
        return everything if (fn is None) == cond.is_null else []
    if fn is None:
        return everything if cond.negate else []
    lo = 0 if cond.lo is None else first_k(fn, cond.lo, count)
    hi = count if cond.hi is None else first_k(fn, cond.hi, count)
    ivs = [(lo, hi)] if lo < hi else []
    return _complement(ivs, count) if cond.negate else ivs


class MatchSet:
    """The records of `table` matching a filter, as runs of k per slot."""

    def __init__(self, table: Table, flt: Filter = MATCH_ALL) -> None:
        self.table = table
        self.entries: list[tuple[int, list[Interval]]] = []
        for rank in range(table.nslots):
            count = table.k_count(rank)
            if count <= 0:
                continue
            parts = []
            for group in flt:
                ivs = [(0, count)]
                for cond in group:
                    ivs = _intersect(ivs, _cond_intervals(table, rank, cond, count))
                    if not ivs:
                        break
                parts.append(ivs)
            ivs = _union(parts)
            if ivs:
                self.entries.append((rank, ivs))
        self.total = sum(hi - lo for _, ivs in self.entries for lo, hi in ivs)

    def count_below(self, position: int) -> int:
        width = self.table.nslots
        n = 0
        for rank, ivs in self.entries:
            ks = max(0, -(-(position - rank) // width))  # k values with k*width + rank < position
            for lo, hi in ivs:
                if ks <= lo:
                    break
                n += min(hi, ks) - lo
        return n

    def position_of(self, j: int) -> int:
        """Flat position of the j-th match (0-based)."""
        lo = 0
        hi = max((ivs[-1][1] - 1) * self.table.nslots + rank for rank, ivs in self.entries) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.count_below(mid + 1) > j:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def iter_from(self, j: int) -> Iterator[tuple[int, int]]:
        """Yield (rank, k) of matches in position order, starting with the j-th."""
        if j >= self.total:
            return
        width = self.table.nslots
        k, first_rank = divmod(self.position_of(j), width)
        cursors = [0] * len(self.entries)
        while True:
            next_k = None
            for e, (rank, ivs) in enumerate(self.entries):
                c = cursors[e]
                while c < len(ivs) and ivs[c][1] <= k:
                    c += 1
                cursors[e] = c
                if c == len(ivs):
                    continue
                lo = ivs[c][0]
                if lo <= k:
                    if rank >= first_rank:
                        yield rank, k
                    candidate = k + 1
                else:
                    candidate = lo
                if next_k is None or candidate < next_k:
                    next_k = candidate
            if next_k is None:
                return
            k, first_rank = next_k, 0

    def page(self, start: int, size: int, descending: bool = False) -> list[tuple[int, int]]:
        if descending:
            first = max(0, self.total - start - size)
            last = self.total - start
            if last <= 0:
                return []
            rows = self.take(first, last - first)
            rows.reverse()
            return rows
        return self.take(start, size)

    def take(self, start: int, size: int) -> list[tuple[int, int]]:
        out = []
        for item in self.iter_from(start):
            out.append(item)
            if len(out) >= size:
                break
        return out

    def group_counts(self, key: Callable[[Mapping[str, Any]], Any]) -> dict[Any, int]:
        counts: dict[Any, int] = {}
        for rank, ivs in self.entries:
            g = key(self.table.static(rank))
            counts[g] = counts.get(g, 0) + sum(hi - lo for lo, hi in ivs)
        return counts

    def slot_sizes(self) -> Iterator[tuple[Mapping[str, Any], int]]:
        for rank, ivs in self.entries:
            yield self.table.static(rank), sum(hi - lo for lo, hi in ivs)
