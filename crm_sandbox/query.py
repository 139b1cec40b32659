"""Counting and paging over records that are never stored.

A record table is split into `nslots` slots; record `k` of slot `rank` sits at flat position
`k * nslots + rank`. Everything that can be filtered or grouped on is either
- static: the same for every record of a slot (picklist values, "has an email", owner), or
- a date that, within one slot, never decreases as `k` grows (created, entered stage X, modified).
So a filter matches, in each slot, a few runs of `k` that binary search finds, and a count is a sum
of run lengths: O(slots * log records) whatever the org size.

A table may split its positions into eras (see `orgmodel.RecordSet`): then a slot `rank` holds only the
records `k` in `k_range(rank)`, and its records sit at `k * width + base(rank)`. Tables without eras
have width == nslots, base(rank) == rank and k_range(rank) == (0, k_count(rank)).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Interval = tuple[int, int]


class Table(Protocol):
    nslots: int
    width: int

    def k_count(self, rank: int) -> int: ...

    def k_range(self, rank: int) -> tuple[int, int]: ...

    def base(self, rank: int) -> int: ...

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


def first_k(fn: Callable[[int], int], x: int, count: int, start: int = 0) -> int:
    """The first k in [start, count) with fn(k) >= x (count when there is none)."""
    lo, hi = start, count
    while lo < hi:
        mid = (lo + hi) // 2
        if fn(mid) < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _complement(ivs: list[Interval], count: int, start: int = 0) -> list[Interval]:
    out, at = [], start
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


def _cond_intervals(table: Table, rank: int, cond: Condition, count: int, start: int = 0) -> list[Interval]:
    everything = [(start, count)]
    if isinstance(cond, Static):
        return everything if cond.test(table.static(rank).get(cond.field)) else []
    fn = table.date_fn(rank, cond.field)
    if isinstance(cond, DateNull):
        return everything if (fn is None) == cond.is_null else []
    if fn is None:
        return everything if cond.negate else []
    lo = start if cond.lo is None else first_k(fn, cond.lo, count, start)
    hi = count if cond.hi is None else first_k(fn, cond.hi, count, start)
    ivs = [(lo, hi)] if lo < hi else []
    return _complement(ivs, count, start) if cond.negate else ivs


class MatchSet:
    """The records of `table` matching a filter, as runs of k per slot."""

    def __init__(self, table: Table, flt: Filter = MATCH_ALL) -> None:
        self.table = table
        self.width = table.width
        self.entries: list[tuple[int, list[Interval]]] = []
        # A slot's static values are a dict lookup, its dates a binary search: test the statics first, so most
        # slots are ruled out before any search (the intervals are intersected, in any order alike).
        flt = [sorted(group, key=lambda cond: not isinstance(cond, Static)) for group in flt]
        for rank in range(table.nslots):
            start, count = table.k_range(rank)
            if count <= start:
                continue
            parts = []
            for group in flt:
                ivs = [(start, count)]
                for cond in group:
                    ivs = _intersect(ivs, _cond_intervals(table, rank, cond, count, start))
                    if not ivs:
                        break
                parts.append(ivs)
            ivs = _union(parts)
            if ivs:
                self.entries.append((rank, ivs))
        if self.width != table.nslots:
            # in position order within one k; two eras of a base never hold the same k
            self.entries.sort(key=lambda e: table.base(e[0]))
            self.bases = [table.base(rank) for rank, _ in self.entries]
        else:
            self.bases = [rank for rank, _ in self.entries]
        self.total = sum(hi - lo for _, ivs in self.entries for lo, hi in ivs)
        self._resume: tuple[int, list[tuple[int, int, int, int]]] | None = None

    def count_below(self, position: int) -> int:
        width = self.width
        n = 0
        for base, (_, ivs) in zip(self.bases, self.entries, strict=True):
            ks = max(0, -(-(position - base) // width))  # k values with k*width + base < position
            for lo, hi in ivs:
                if ks <= lo:
                    break
                n += min(hi, ks) - lo
        return n

    def position_of(self, j: int) -> int:
        """Flat position of the j-th match (0-based)."""
        lo = 0
        hi = max((ivs[-1][1] - 1) * self.width + b for b, (_, ivs) in zip(self.bases, self.entries, strict=True)) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.count_below(mid + 1) > j:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _heap_at(self, j: int) -> list[tuple[int, int, int, int]]:
        """Each matching slot's next record from the j-th match on, as a heap of (k, base, entry, interval):
        position order is (k, base), so popping it yields matches in order at O(log slots) each."""
        k0, b0 = divmod(self.position_of(j), self.width) if j else (0, 0)
        heap = []
        for e, (base, (_, ivs)) in enumerate(zip(self.bases, self.entries, strict=True)):
            k = k0 if base >= b0 else k0 + 1
            for i, (lo, hi) in enumerate(ivs):
                if hi > k:
                    heap.append((max(k, lo), base, e, i))
                    break
        heapq.heapify(heap)
        return heap

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
        """`size` matches from the start-th, in position order. A cursor reads pages one after the other: the
        heap where a page stopped is kept, so the next page starts there instead of searching its start again."""
        if start >= self.total or size <= 0:
            return []
        resume, self._resume = self._resume, None  # one reader at a time may continue it; another starts afresh
        heap = resume[1] if resume is not None and resume[0] == start else self._heap_at(start)
        out: list[tuple[int, int]] = []
        entries = self.entries
        while heap and len(out) < size:
            k, base, e, i = heap[0]
            ivs = entries[e][1]
            out.append((entries[e][0], k))
            if k + 1 < ivs[i][1]:
                heapq.heapreplace(heap, (k + 1, base, e, i))
            elif i + 1 < len(ivs):
                heapq.heapreplace(heap, (ivs[i + 1][0], base, e, i + 1))
            else:
                heapq.heappop(heap)
        self._resume = (start + len(out), heap)
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
