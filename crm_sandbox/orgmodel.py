"""A deterministic synthetic CRM org that is computed, never stored.

`OrgModel(profile, seed, size)` describes leads, contacts, companies, deals and tickets (plus their
field histories) for orgs of any size. Each record set is cut into at most `period` slots
(see `query.py`): a slot fixes a record's picklist values, stage path and data-quality flags; the
record's position inside the slot fixes its creation time; names, emails and ids come from a hash of
(seed, object, index). So counts are arithmetic, any page can be rebuilt from its index, and the
same (profile, seed, size, as_of) always gives the same org.

Time: the org's clock is frozen at `as_of` (default: today, 00:00 UTC). Records are created evenly
over `span_days` before it; every stage a record entered is at or before `as_of`.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .dates import DAY_MS, day_start, to_ms
from .orgschema import Option, OrgSchema, Pipeline, build_schema
from .profiles import Profile, get_profile
from .query import MATCH_ALL, DateRange, Filter, MatchSet, Static, first_k

Rule = Callable[[int], int]  # created ms -> ms, never decreasing in created

FIRST = (
    "Ada Ben Cara Dev Eli Fay Gus Hana Ivan Jo Kai Lena Milo Nia Omar Pia Quin Rosa Sam Tara Uma Vik Wen Yara Zoe"
).split()
LAST = (
    "Adams Brown Chen Diaz Evans Fischer Garcia Haddad Ito Jensen Khan Lopez Meyer Nowak Okafor Patel Quinn "
    "Rossi Silva Tanaka Ueda Varga Weber Young"
).split()
WORDS = (
    "Acme Blue Cedar Delta Ember Flux Granite Harbor Iris Juniper Kite Lumen Maple Nova Orbit Pine Quartz "
    "River Summit Tidal Umber Vertex Willow Zenith"
).split()
SUFFIX = "Labs Systems Group Health Capital Logistics Software Foods Energy Media".split()
TITLES = [
    "VP Sales",
    "Head of Marketing",
    "RevOps Manager",
    "CFO",
    "CTO",
    "Sales Director",
    "Operations Lead",
]

# share of each object relative to `size` (the number of leads, and of contacts)
RATIOS = {"lead": 1.0, "contact": 1.0, "company": 0.25, "deal": 0.2, "ticket": 0.1}


def _hash(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class Slot:
    values: dict[str, Any] = field(default_factory=dict)
    dates: dict[str, Rule] = field(default_factory=dict)
    paths: dict[str, list[tuple[Option, Rule]]] = field(default_factory=dict)


def _entered(as_of: int, offset: int, fraction: float) -> Rule:
    # Old records keep their real durations; records younger than their path squeeze it in
    # proportionally, so no stage is ever entered after `as_of` and the value stays monotone.
    def rule(c: int) -> int:
        return c + min(offset, int(fraction * (as_of - c)))

    return rule


def _identity(c: int) -> int:
    return c


def _between(first: Rule, second: Rule, fraction: float) -> Rule:
    def rule(c: int) -> int:
        a = first(c)
        return a + int((second(c) - a) * fraction)

    return rule


class RecordSet:
    """One object's records: `size` of them in `width` slots (times `eras`, see below).

    Record `index` is `base + k * width`: slot `base`, its k-th record, created at `created(index)`.
    A profile's `trend` may do two things from its start month on:
    - volume: records are created `volume_drop_pct`% less often (the clock runs slower past that position);
    - conversion: every slot of leads and contacts gets a second version (rank `base + width`, era 1)
      whose lifecycle path stops early (at MQL or SQL) for a share of slots. It holds the slot's records
      that would have entered the dropped stage from the start month on (records of an unchanged slot:
      those created from then on), so conversions fall from that month, not months later.
      `k_range(rank)` says which k each era holds, so every index still belongs to exactly one slot.
    """

    def __init__(self, model: OrgModel, name: str, size: int, build: Callable[[RecordSet, int], Slot]) -> None:
        self.model = model
        self.name = name
        self.size = size
        self.width = max(1, min(model.period, size)) if size else 0
        self.dt = max(1, model.span_ms // max(size, 1))
        self.t0 = model.as_of - self.dt * size
        self.cut = size  # first index created at or after the trend's start
        self.dt_after = self.dt
        trend = model.profile.trend
        if trend is not None and size and self.t0 < to_ms(trend.start) < model.as_of:
            start = to_ms(trend.start)
            if trend.volume_drop_pct:
                self.dt_after = max(1, int(self.dt / (1 - trend.volume_drop_pct / 100)))
                after = min(size, -(-max(0, model.as_of - start) // self.dt_after))
                self.cut = size - after
                self.t0 = start - self.cut * self.dt
            else:
                self.cut = min(size, max(0, -(-(start - self.t0) // self.dt)))
        self.eras = 2 if self._split(trend) else 1
        self.nslots = self.width * self.eras
        self.slots: list[Slot] = []
        for s in range(self.nslots):
            # appended one by one: a duplicate slot marks its (earlier) original while building
            self.slots.append(build(self, s))
        self._cuts = [self._cut_k(base) for base in range(self.width)] if self.eras > 1 else []

    def _cut_k(self, base: int) -> int:
        """The first k of `base` in the trend's era: the first record that would enter the dropped stage
        (SQL or Opportunity) on or after the trend's start; for an unchanged slot, the first created then."""
        total = self._k_total(base)
        before = self.slots[base].paths.get("lifecycle") or []
        after = self.slots[base + self.width].paths.get("lifecycle") or []
        if len(after) < len(before):
            rule = before[len(after)][1]
            start = to_ms(self.model.profile.trend.start)
            return first_k(lambda k: rule(self.at(base + k * self.width)), start, total)
        return min(total, max(0, -(-(self.cut - base) // self.width)))

    def _split(self, trend: Any) -> bool:
        return bool(
            trend is not None
            and trend.conversion_drop_pp
            and self.name in ("lead", "contact")
            and 0 < self.cut < self.size
        )

    def era(self, rank: int) -> tuple[int, int]:
        """(base slot, era) of a slot rank."""
        return rank % self.width, rank // self.width

    def base(self, rank: int) -> int:
        return rank % self.width

    def _k_total(self, base: int) -> int:
        return (self.size - base + self.width - 1) // self.width if base < self.size else 0

    def _k_cut(self, base: int) -> int:
        return self._cuts[base]

    def k_range(self, rank: int) -> tuple[int, int]:
        base, era = self.era(rank)
        if self.eras == 1:
            return 0, self._k_total(base)
        cut = self._k_cut(base)
        return (0, cut) if era == 0 else (cut, self._k_total(base))

    def k_count(self, rank: int) -> int:
        lo, hi = self.k_range(rank)
        return max(0, hi - lo)

    def locate(self, index: int) -> tuple[int, int]:
        k, base = divmod(index, self.width)
        if self.eras > 1 and k >= self._k_cut(base):
            return base + self.width, k
        return base, k

    def at(self, index: int) -> int:
        """When record `index` was created (epoch ms)."""
        if index < self.cut:
            return self.t0 + index * self.dt
        return self.t0 + self.cut * self.dt + (index - self.cut) * self.dt_after

    def created(self, rank: int, k: int) -> int:
        return self.at(self.base(rank) + k * self.width)

    def static(self, rank: int) -> Mapping[str, Any]:
        return self.slots[rank].values

    def created_fn(self, rank: int) -> Callable[[int], int]:
        """k -> when record k of slot `rank` was created: `created` as one closure, since a query's binary searches
        call it for every slot (thousands of times a request)."""
        base, width, t0, dt = self.base(rank), self.width, self.t0, self.dt
        if self.cut >= self.size:  # one clock for every record
            start, step = t0 + base * dt, width * dt
            return lambda k: start + k * step
        cut, after, dt_after = self.cut, self.t0 + self.cut * self.dt, self.dt_after

        def created(k: int) -> int:
            index = base + k * width
            return t0 + index * dt if index < cut else after + (index - cut) * dt_after

        return created

    def date_fn(self, rank: int, name: str) -> Callable[[int], int] | None:
        if name == "created":
            return self.created_fn(rank)
        if name == "index":  # record index, for id-range filters (HubSpot hs_object_id paging)
            return lambda k: self.base(rank) + k * self.width
        rule = self.slots[rank].dates.get(name)
        if rule is None:
            return None
        created = self.created_fn(rank)
        return lambda k: rule(created(k))

    def row(self, rank: int, k: int) -> dict[str, Any]:
        row = Row(self.slots[rank].values)
        row.update(index=self.base(rank) + k * self.width, rank=rank, k=k, created=self.created(rank, k))
        row.source, row.detailed = (self, rank), False
        return row

    def row_at(self, index: int) -> dict[str, Any]:
        rank, k = self.locate(index)
        return self.row(rank, k)


class Row(dict):
    """A record: its slot's values, index and creation first; its dates, stage paths and details (names, emails,
    company...) computed when first read. An answer reads a few fields of thousands of records (a page of 2,000
    leads for their Id and stage), and computing every date and detail of each was most of its cost."""

    __slots__ = ("source", "detailed")

    def __missing__(self, key: str) -> Any:
        table, rank = self.source
        if key == "dates":
            value = self[key] = {name: rule(self["created"]) for name, rule in table.slots[rank].dates.items()}
            return value
        if key == "paths":
            c = self["created"]
            value = self[key] = {
                name: [(o, rule(c)) for o, rule in path] for name, path in table.slots[rank].paths.items()
            }
            return value
        if not self.detailed:
            self.detailed = True
            table.model.add_details(table, self)
            if key in self:
                return self[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


class HistorySet:
    """Field-history rows derived from the stage paths of a parent record set.

    `tracked` maps the history's Field value to the parent's path name. In `snapshot` mode
    (OpportunityHistory) every step, the first included, is a row; otherwise each change is a row
    and a 'created' row marks the record's creation.
    """

    def __init__(self, parent: RecordSet, tracked: list[tuple[str, str]], snapshot: bool = False) -> None:
        self.parent = parent
        self.name = f"{parent.name}_history"
        self.map: list[tuple[int, str, int]] = []
        self._static: list[dict[str, Any]] = []
        for pr, slot in enumerate(parent.slots):
            if not snapshot:
                self._add(pr, "created", -1, None, None)
            for field_name, path_name in tracked:
                path = slot.paths.get(path_name) or []
                steps = list(range(0 if snapshot else 1, len(path)))
                tied = slot.values.get("ties", {}).get(path_name)
                if tied in steps and tied - 1 in steps:  # same instant: stored later step first
                    at = steps.index(tied)
                    steps[at - 1], steps[at] = steps[at], steps[at - 1]
                for t in steps:
                    old = path[t - 1][0] if t > 0 else None
                    self._add(pr, field_name, t, old, path[t][0], path_name)
        self.nslots = self.width = len(self.map)

    def _add(
        self, pr: int, field_name: str, step: int, old: Option | None, new: Option | None, path_name: str = ""
    ) -> None:
        self.map.append((pr, path_name, step))
        self._static.append(
            {
                "field": field_name,
                "old": old,
                "new": new,
                "parent_rank": pr,
                **{k: v for k, v in self.parent.slots[pr].values.items() if k in ("pipeline", "amount")},
            }
        )

    @property
    def size(self) -> int:
        return sum(self.k_count(r) for r in range(self.nslots))

    def k_count(self, rank: int) -> int:
        return self.parent.k_count(self.map[rank][0])

    def k_range(self, rank: int) -> tuple[int, int]:
        return self.parent.k_range(self.map[rank][0])

    def base(self, rank: int) -> int:
        return rank

    def static(self, rank: int) -> Mapping[str, Any]:
        return self._static[rank]

    def _rule(self, rank: int) -> Rule:
        pr, path_name, step = self.map[rank]
        if step < 0:
            return _identity
        return self.parent.slots[pr].paths[path_name][step][1]

    def date_fn(self, rank: int, name: str) -> Callable[[int], int] | None:
        if name != "created":
            return None
        rule, created = self._rule(rank), self.parent.created_fn(self.map[rank][0])
        return lambda k: rule(created(k))

    def row(self, rank: int, k: int) -> dict[str, Any]:
        pr = self.map[rank][0]
        parent_created = self.parent.created(pr, k)
        row = dict(self._static[rank])
        row.update(
            index=k * self.nslots + rank,
            rank=rank,
            k=k,
            parent_index=self.parent.base(pr) + k * self.parent.width,
            created=self._rule(rank)(parent_created),
        )
        return row


class OrgModel:
    def __init__(
        self,
        profile: str | Profile = "healthy",
        seed: int = 0,
        size: int | None = None,
        as_of: datetime | date | None = None,
        period: int = 1024,
        span_days: int = 3 * 365,
    ) -> None:
        self.profile = get_profile(profile)
        self.schema: OrgSchema = build_schema(self.profile)
        self.seed = seed
        self.size = self.profile.default_size if size is None else int(size)
        if self.size < 0:
            raise ValueError("size must be >= 0")
        self.as_of = to_ms(as_of) if as_of is not None else day_start(int(time.time() * 1000))
        self.period = period
        self.span_ms = span_days * DAY_MS
        self.gen = _Generator(self)
        self.sets: dict[str, RecordSet] = {
            name: RecordSet(
                self,
                name,
                max(1, int(self.size * ratio)) if self.size else 0,
                getattr(self.gen, f"{name}_slot"),
            )
            for name, ratio in RATIOS.items()
        }
        if self.schema.customer_stages:  # customer_stages_on_custom_object: one health record per 20 people
            n = max(1, int(self.size * 0.05)) if self.size else 0
            self.sets["customer_health"] = RecordSet(self, "customer_health", n, self.gen.customer_health_slot)
        self._histories: dict[str, HistorySet] = {}
        self._lock = threading.Lock()  # history tables are built on first use, maybe by two server threads

    def has(self, gotcha: str) -> bool:
        return self.profile.has(gotcha)

    def rng(self, *parts: object) -> random.Random:
        return random.Random(f"{self.seed}:{':'.join(map(str, parts))}")

    def table(self, name: str) -> RecordSet | HistorySet:
        if name in self.sets:
            return self.sets[name]
        with self._lock:
            return self._history(name)

    def _history(self, name: str) -> HistorySet:
        if name not in self._histories:
            specs = {
                "customer_health_history": ("customer_health", [("Stage__c", "stage")], False),
                "lead_history": ("lead", [("Status", "status"), ("Lifecycle_Stage__c", "lifecycle")], False),
                "contact_history": ("contact", [("Lifecycle_Stage__c", "lifecycle")], False),
                "deal_field_history": ("deal", [("StageName", "stage")], False),
                "deal_history": ("deal", [("StageName", "stage")], True),
                "ticket_history": ("ticket", [("Status", "stage")], False),
            }
            parent, tracked, snapshot = specs[name]
            self._histories[name] = HistorySet(self.sets[parent], tracked, snapshot)
        return self._histories[name]

    # ---- questions the tests and the control endpoint ask ----

    def count(self, name: str, flt: Filter = MATCH_ALL) -> int:
        return MatchSet(self.table(name), flt).total

    def counts_by(self, name: str, attr: str, flt: Filter = MATCH_ALL, by: str = "key") -> dict[Any, int]:
        """Record counts per value of a static attribute (None for empty).

        `by` names the Option attribute used as the key: "key" (abstract), "label" (the Salesforce
        value) or "hs" (the HubSpot value). Pipelines are keyed by their key, label or hs_id.
        """

        def key(values: Mapping[str, Any]) -> Any:
            v = values.get(attr)
            if v is None or not hasattr(v, "key"):
                return v
            if by == "hs":
                return getattr(v, "hs", None) or getattr(v, "hs_id", None)
            return getattr(v, by)

        return MatchSet(self.table(name), flt).group_counts(key)

    def transitions_into(self, name: str, path: str, option_key: str, start: int, end: int) -> int:
        """Records whose `path` entered `option_key` in [start, end) (epoch ms)."""
        history = {
            "lead": "lead_history",
            "contact": "contact_history",
            "deal": "deal_history",
            "ticket": "ticket_history",
        }[name]
        field_name = {"status": "Status", "lifecycle": "Lifecycle_Stage__c", "stage": "StageName"}[path]
        if name == "ticket":
            field_name = "Status"
        flt = [
            [
                Static("field", lambda v: v == field_name),
                Static("new", lambda v: v is not None and v.key == option_key),
                DateRange("created", start, end),
            ]
        ]
        return self.count(history, flt)

    def stale_count(self, name: str, days: int = 180) -> int:
        return self.count(name, [[DateRange("last_modified", None, self.as_of - days * DAY_MS)]])

    def missing_count(self, name: str, attr: str) -> int:
        return self.count(name, [[Static(attr, lambda v: not v)]])

    def duplicate_groups(self, name: str) -> int:
        """Groups of records sharing an email (people) or a domain (companies)."""
        table = self.sets[name]
        return sum(table.k_count(r) for r, slot in enumerate(table.slots) if slot.values.get("dup_of") is not None)

    def summary(self) -> dict[str, Any]:
        def by(name: str, attr: str) -> dict[str, int]:
            return {str(k): v for k, v in sorted(self.counts_by(name, attr).items(), key=lambda kv: str(kv[0]))}

        people = {}
        for name in ("lead", "contact"):
            people[name] = {
                "count": self.sets[name].size,
                "by_lifecycle": by(name, "lifecycle"),
                "by_status": by(name, "status"),
                "missing_email": self.missing_count(name, "has_email"),
                "missing_phone": self.missing_count(name, "has_phone"),
                "missing_source": self.count(name, [[Static("source", lambda v: v is None)]]),
                "duplicate_email_groups": self.duplicate_groups(name),
                "stale_180d": self.stale_count(name),
            }
        return {
            "profile": self.profile.name,
            "gotchas": sorted(self.profile.gotchas),
            "seed": self.seed,
            "size": self.size,
            "as_of": self.as_of,
            **people,
            "company": {
                "count": self.sets["company"].size,
                "by_type": by("company", "type"),
                "duplicate_domain_groups": self.duplicate_groups("company"),
                "stale_180d": self.stale_count("company"),
            },
            "deal": {
                "count": self.sets["deal"].size,
                "by_stage": by("deal", "stage"),
                "by_pipeline": by("deal", "pipeline"),
                "open_without_next_step": self.count(
                    "deal",
                    [
                        [
                            Static("stage", lambda v: v is not None and not v.closed),
                            Static("has_next_step", lambda v: not v),
                        ]
                    ],
                ),
                "stale_180d": self.stale_count("deal"),
            },
            "ticket": {"count": self.sets["ticket"].size, "by_stage": by("ticket", "stage")},
            **({"customer_health": self._custom_summary(by)} if "customer_health" in self.sets else {}),
            "knobs": {
                "hidden_fields": sorted(self.profile.hidden_fields),
                "refused_objects": sorted(self.profile.refused_objects),
                "trend": None
                if self.profile.trend is None
                else {
                    "start": self.profile.trend.start.isoformat(),
                    "conversion_drop_pp": self.profile.trend.conversion_drop_pp,
                    "volume_drop_pct": self.profile.trend.volume_drop_pct,
                },
                "style": self.profile.style,
            },
        }

    def _custom_summary(self, by: Callable[[str, str], dict[str, int]]) -> dict[str, Any]:
        return {"count": self.sets["customer_health"].size, "by_stage": by("customer_health", "stage")}

    def add_details(self, table: RecordSet, row: dict[str, Any]) -> None:
        getattr(self.gen, f"{table.name}_details")(table, row)


def _weighted(rng: random.Random, pairs: list[tuple[Any, float]]) -> Any:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


class _Generator:
    """Per-slot decisions and per-record details, driven by the profile's gotchas."""

    def __init__(self, model: OrgModel) -> None:
        self.m = model
        self.s = model.schema

    def rate(self, gotcha: str, messy: float, clean: float = 0.0) -> float:
        return messy if self.m.has(gotcha) else clean

    # ---- paths ----

    def path(
        self, rng: random.Random, options: list[Option], step_days: tuple[int, int] = (3, 45)
    ) -> list[tuple[Option, Rule]]:
        offsets, total = [], 0
        for i in range(len(options)):
            if i:
                total += rng.randint(*step_days) * DAY_MS + rng.randint(0, DAY_MS - 1)
            offsets.append(total)
        grace = 30 * DAY_MS
        return [
            (opt, _entered(self.m.as_of, off, off / (total + grace))) for opt, off in zip(options, offsets, strict=True)
        ]

    def finish(self, rng: random.Random, slot: Slot, main_path: str | None, stale_rate: float) -> None:
        path = slot.paths.get(main_path) if main_path else None
        last = path[-1][1] if path else _identity
        for opt, rule in path or []:
            slot.dates[f"entered:{opt.key}"] = rule  # a later re-entry overwrites, like hs_date_entered
        for (opt, _), (_, nxt) in zip(path or [], (path or [])[1:], strict=False):
            slot.dates[f"exited:{opt.key}"] = nxt
        as_of = self.m.as_of
        stale = rng.random() < stale_rate
        slot.values["stale"] = stale
        if stale:
            slot.dates["last_modified"] = lambda c: min(last(c) + DAY_MS, as_of)
        else:
            recency = rng.randint(0, 30 * DAY_MS)
            slot.dates["last_modified"] = lambda c: max(last(c), as_of - recency)

    def lifecycle_path(self, rng: random.Random, target_weights: dict[str, float]) -> list[Option]:
        prog = list(self.s.progression)
        weights = [(k, w) for k, w in target_weights.items() if k in prog]
        target = _weighted(rng, weights)
        start = 0 if rng.random() < 0.3 else 1
        keys = prog[start : prog.index(target) + 1] or [target]
        if self.m.has("status_values_in_lifecycle") and "working" in keys and rng.random() < 0.5:
            keys.remove("working")
        if self.m.has("stage_skips_and_backward_moves") and len(keys) > 3:
            roll = rng.random()
            if roll < 0.15:
                del keys[rng.randrange(1, len(keys) - 1)]
            elif roll < 0.22:
                at = rng.randrange(2, len(keys))
                keys[at:at] = [keys[at - 2], keys[at - 1]]
        if self.m.has("status_values_in_lifecycle") and keys[-1] in ("mql", "lead") and rng.random() < 0.2:
            keys.append("nurture")
        if self.m.has("deal_outcomes_in_lifecycle") and keys[-1] in ("sql", "opportunity") and rng.random() < 0.3:
            keys.append("closed_lost")
        path = [self.s.lifecycle_option(k) for k in keys]
        if self.m.has("rogue_picklist_values") and rng.random() < 0.04:
            path.append(self.s.lifecycle_option(rng.choice(["rogue_recycled", "rogue_mql_legacy"])))
        return path

    def skip_or_return(self, rng: random.Random, path: list[tuple[Option, Rule]]) -> list[tuple[Option, Rule]]:
        """A deal that jumps over an open stage (15%), or goes back one stage and forward again (10%)."""
        opens = next((i for i, (opt, _) in enumerate(path) if opt.closed), len(path))
        if opens < 3:
            return path
        path = list(path)
        roll = rng.random()
        if roll < 0.15:
            del path[rng.randrange(1, opens - 1)]
        elif roll < 0.25:
            at = rng.randrange(2, opens)
            before, after = path[at - 1][1], path[at][1]
            path[at:at] = [
                (path[at - 2][0], _between(before, after, 1 / 3)),
                (path[at - 1][0], _between(before, after, 2 / 3)),
            ]
        return path

    def dup(self, table: RecordSet, rng: random.Random, s: int, rate: float) -> int | None:
        """Pick an earlier slot whose records this slot's records duplicate, one to one."""
        if s == 0 or rng.random() >= rate:
            return None
        orig = rng.randrange(0, s)
        taken = self._taken(table)
        if orig in taken or table.slots[orig].values.get("dup_of") is not None:
            return None
        taken.add(orig)
        return orig

    def segmentation(
        self, table: RecordSet, s: int, slot: Slot, *, industry: bool = False, segment: bool = False
    ) -> None:
        """Region (and Industry on contacts, Segment on deals), drawn from a stream of their own: adding them left
        every other value of the org as it was."""
        rng = self.m.rng(table.name, table.base(s), "segmentation")
        v = slot.values
        v["region"] = rng.choice(self.s.regions) if self.s.regions else None
        if segment:
            v["segment"] = rng.choice(self.s.segments) if self.s.segments else None
        if industry:
            blank = 0.7 if self.m.has("no_segment_fields") else self.rate("missing_required_fields", 0.25, 0.05)
            v["industry"] = None if rng.random() < blank else rng.choice(self.s.industry)

    # ---- people ----

    def _person(self, table: RecordSet, s: int, targets: dict[str, float]) -> Slot:
        base, era = table.era(s)
        rng = self.m.rng(table.name, base)
        slot = Slot()
        v = slot.values
        if rng.random() < self.rate("records_without_stage", 0.08):
            lifecycle: list[Option] = []
        else:
            lifecycle = self.lifecycle_path(rng, targets)
            slot.paths["lifecycle"] = self.path(rng, lifecycle)
            if era:  # the trend's version of the slot stops earlier; the rest of the slot stays the same
                cut = self.trend_cut(table, base, lifecycle, targets)
                lifecycle, slot.paths["lifecycle"] = lifecycle[:cut], slot.paths["lifecycle"][:cut]
            self.tie(table, base, slot, "lifecycle")
        v["lifecycle"] = lifecycle[-1] if lifecycle else None
        missing = self.m.has("missing_required_fields")
        v["has_email"] = rng.random() >= (0.12 if missing else 0.0)
        v["has_phone"] = rng.random() >= (0.4 if missing else 0.1)
        v["has_title"] = rng.random() >= (0.3 if missing else 0.1)
        v["source"] = None if rng.random() < (0.3 if missing else 0.02) else rng.choice(self.s.lead_source)
        v["owner"] = rng.randrange(len(self.s.owners))
        if lifecycle and self.s.lead_stage:
            key = {
                "lead": "raw",
                "engaged": "raw",
                "subscriber": "raw",
                "mql": "mql",
                "working": "mql",
                "nurture": "recycled",
            }.get(lifecycle[-1].key, "sql")
            v["lead_stage"] = self.s.option(self.s.lead_stage, key)
        else:
            v["lead_stage"] = None
        if era:  # the same people as the slot's first era: duplicates stay duplicates
            first = table.slots[base].values
            v["dup_of"], v["has_email"] = first["dup_of"], first["has_email"]
            return slot
        dup_of = self.dup(table, rng, s, self.rate("duplicate_records", 0.06))
        v["dup_of"] = dup_of
        if dup_of is not None:
            v["has_email"] = True
            table.slots[dup_of].values["has_email"] = True
        return slot

    def tie(self, table: RecordSet, base: int, slot: Slot, name: str) -> None:
        """same_timestamp_history: on 10% of slots a workflow sets two stages in a row at one instant.
        `ties[name] = t` says steps t-1 and t share a timestamp; histories store step t first."""
        path = slot.paths.get(name) or []
        rng = self.m.rng(table.name, base, "tie")
        roll, pick = rng.random(), rng.random()
        if not self.m.has("same_timestamp_history") or len(path) < 3 or roll >= 0.1:
            return
        t = 2 + int(pick * (len(path) - 2))  # 2 .. len - 1: both steps are changes with a history row
        path[t] = (path[t][0], path[t - 1][1])
        slot.values["ties"] = {**slot.values.get("ties", {}), name: t}

    def stop_odds(self, targets: dict[str, float]) -> tuple[float, float]:
        """Chances that a path past MQL stops at MQL, and one past SQL stops at SQL, under the trend.

        Conversion from MQL to SQL is the share of paths reaching MQL that reach SQL (q); stopping a
        share p of them lowers it to q * (1 - p), so p = drop / q gives a drop of `conversion_drop_pp`.
        """
        trend = self.m.profile.trend
        drop = (trend.conversion_drop_pp if trend else 0.0) / 100
        prog = list(self.s.progression)

        def reach(key: str) -> float:
            at = prog.index(key) if key in prog else len(prog)
            return sum(w for k, w in targets.items() if k in prog and prog.index(k) >= at)

        odds = []
        for earlier, later in (("mql", "sql"), ("sql", "opportunity")):
            q = reach(later) / reach(earlier) if reach(earlier) else 0.0
            odds.append(min(1.0, drop / q) if q else 0.0)
        return odds[0], odds[1]

    def trend_cut(self, table: RecordSet, base: int, path: list[Option], targets: dict[str, float]) -> int:
        """How much of a lifecycle path a record under the trend keeps: all, or up to the stage before SQL
        (or before Opportunity). Only stages it would enter from the trend's start on are dropped."""
        keys = [o.key for o in path]
        before_sql, before_opportunity = self._stops(table, targets)
        if base in before_sql:
            return keys.index("sql", keys.index("mql"))
        if base in before_opportunity:
            return keys.index("opportunity", keys.index("sql"))
        return len(keys)

    def _stops(self, table: RecordSet, targets: dict[str, float]) -> tuple[set[int], set[int]]:
        """The slots that stop before SQL, and before Opportunity: exactly the trend's share of the slots
        whose path goes that far (not a random draw per slot, which would miss the drop by points)."""
        cache = self.__dict__.setdefault("stops", {})
        if table.name not in cache:
            stop_mql, stop_sql = self.stop_odds(targets)

            def reaches(base: int, a: str, b: str) -> bool:
                keys = [o.key for o, _ in table.slots[base].paths.get("lifecycle") or []]
                return a in keys and b in keys[keys.index(a) :]

            order = sorted(range(table.width), key=lambda b: _hash(self.m.seed, table.name, b, "trend"))
            to_sql = [b for b in order if reaches(b, "mql", "sql")]
            first = set(to_sql[: round(stop_mql * len(to_sql))])
            to_opportunity = [b for b in order if b not in first and reaches(b, "sql", "opportunity")]
            cache[table.name] = (first, set(to_opportunity[: round(stop_sql * len(to_opportunity))]))
        return cache[table.name]

    def status_shapes(self, table: RecordSet, s: int, slot: Slot, opts: dict[str, Option]) -> None:
        """Retired status values still on records (5% of slots) and blank statuses (8%), each drawn from
        its own random stream so the rest of the slot stays as without them."""
        rng = self.m.rng(table.name, table.base(s), "status-shapes")
        retired, blank = rng.random(), rng.random()
        path = slot.paths["status"]
        if self.m.has("inactive_values_on_records") and retired < 0.05 and path[-1][0].key != "converted":
            path[-1] = (opts["contacted_retired"], path[-1][1])
            slot.values["status"] = opts["contacted_retired"]
        if self.m.has("blank_lead_status") and blank < 0.08:
            del slot.paths["status"]
            slot.values["status"] = None

    def _taken(self, table: RecordSet) -> set[int]:
        return self.__dict__.setdefault(f"taken_{table.name}", set())

    def lead_slot(self, table: RecordSet, s: int) -> Slot:
        slot = self._person(table, s, {"subscriber": 10, "lead": 45, "mql": 22, "working": 5, "sal": 8, "sql": 10})
        rng = self.m.rng(table.name, table.base(s), "status")
        v = slot.values
        life = v["lifecycle"].key if v["lifecycle"] else None
        opts = {o.key: o for o in self.s.lead_status}
        if life in ("sql", "opportunity", "customer", "evangelist", "sal"):
            final = "sql" if "sql" in opts and rng.random() < 0.4 else "converted"
        elif life == "closed_lost":
            final = "closed_lost" if "closed_lost" in opts else "unqualified"
        elif life in ("mql", "working"):
            final = "mql" if "mql" in opts and rng.random() < 0.5 else "working"
        else:
            final = _weighted(rng, [("new", 4), ("working", 3), ("nurturing", 2), ("unqualified", 1)])
        if self.m.has("deal_outcomes_in_lifecycle") and final == "converted" and rng.random() < 0.2:
            final = "closed_won"
        if self.m.has("rogue_picklist_values") and rng.random() < 0.03:
            final = "rogue_contacted_old"
        keys = ["new"] if final == "new" else (["new", final] if final == "working" else ["new", "working", final])
        slot.paths["status"] = self.path(rng, [opts[k] for k in keys], (1, 20))
        v["status"] = opts[final]
        self.status_shapes(table, s, slot, opts)
        v["converted"] = v["status"] is not None and v["status"].key == "converted"
        v["has_company"] = rng.random() >= self.rate("missing_required_fields", 0.06)
        blank = 0.7 if self.m.has("no_segment_fields") else self.rate("missing_required_fields", 0.25, 0.05)
        v["industry"] = None if rng.random() < blank else rng.choice(self.s.industry)
        self.segmentation(table, s, slot)
        self.finish(
            rng,
            slot,
            "lifecycle" if "lifecycle" in slot.paths else "status",
            self.rate("stale_records", 0.35, 0.04),
        )
        return slot

    def contact_slot(self, table: RecordSet, s: int) -> Slot:
        slot = self._person(
            table,
            s,
            {
                "subscriber": 8,
                "lead": 25,
                "mql": 12,
                "working": 4,
                "sal": 5,
                "sql": 7,
                "opportunity": 9,
                "customer": 25,
                "evangelist": 5,
            },
        )
        rng = self.m.rng(table.name, table.base(s), "status")
        v = slot.values
        if self.s.has_contact_status:
            life = v["lifecycle"].key if v["lifecycle"] else None
            opts = {o.key: o for o in self.s.contact_status}
            if life in ("opportunity", "customer", "evangelist"):
                final = "open_deal" if life == "opportunity" else "connected"
                if life == "customer" and "closed_won" in opts and rng.random() < 0.3:
                    final = "closed_won"
            elif life in ("sql", "sal"):
                final = "sql" if "sql" in opts and rng.random() < 0.5 else "in_progress"
            elif life in ("mql", "working"):
                final = "mql" if "mql" in opts and rng.random() < 0.5 else "attempted"
            else:
                final = _weighted(rng, [("new", 4), ("open", 3), ("unqualified", 1), ("bad_timing", 1)])
            keys = ["new"] if final == "new" else ["new", final]
            slot.paths["status"] = self.path(rng, [opts[k] for k in keys], (1, 20))
            v["status"] = opts[final]
            self.status_shapes(table, s, slot, opts)
        else:
            v["status"] = None
        v["company_slot"] = rng.random()
        self.segmentation(table, s, slot, industry=True)
        self.finish(
            rng,
            slot,
            "lifecycle" if "lifecycle" in slot.paths else None,
            self.rate("stale_records", 0.35, 0.04),
        )
        return slot

    def _person_details(self, table: RecordSet, row: dict[str, Any]) -> None:
        i = row["index"]
        # a duplicate is the same person (name, company, email) entered again
        person = i if row["dup_of"] is None else row["dup_of"] + row["k"] * table.width
        h = _hash(self.m.seed, table.name, person)
        row["first"] = FIRST[h % len(FIRST)]
        row["last"] = LAST[(h >> 8) % len(LAST)]
        companies = self.m.sets["company"]
        row["company_index"] = (h >> 16) % companies.size if companies.size else None
        domain = "example.com"
        if row["company_index"] is not None:
            domain = company_domain(self.m, row["company_index"])
        row["email"] = f"{row['first']}.{row['last']}{person}@{domain}".lower() if row["has_email"] else None
        own = _hash(self.m.seed, table.name, i, "contact")
        row["phone"] = f"+1 555 {own % 1000:03d} {(own >> 10) % 10000:04d}" if row["has_phone"] else None
        row["title"] = TITLES[(own >> 24) % len(TITLES)] if row["has_title"] else None

    def lead_details(self, table: RecordSet, row: dict[str, Any]) -> None:
        self._person_details(table, row)
        row["company_name"] = company_name(self.m, row["company_index"]) if row["has_company"] else None

    def contact_details(self, table: RecordSet, row: dict[str, Any]) -> None:
        self._person_details(table, row)

    # ---- companies ----

    def company_slot(self, table: RecordSet, s: int) -> Slot:
        rng = self.m.rng(table.name, s)
        slot = Slot()
        v = slot.values
        listed = [o for o in self.s.company_type if o.listed]
        v["type"] = rng.choice(listed)
        if self.m.has("rogue_picklist_values") and rng.random() < 0.03:
            v["type"] = self.s.option(self.s.company_type, "rogue_hot")
        if self.s.has_company_lifecycle:
            v["lifecycle"] = self.s.lifecycle_option(
                _weighted(rng, [("lead", 3), ("mql", 2), ("sql", 1), ("opportunity", 2), ("customer", 3)])
            )
        else:
            v["lifecycle"] = None
        v["industry"] = rng.choice(self.s.industry)
        v["employees"] = rng.choice([8, 25, 60, 150, 400, 1200, 5000])
        v["owner"] = rng.randrange(len(self.s.owners))
        v["has_domain"] = rng.random() >= self.rate("missing_required_fields", 0.1)
        v["dup_of"] = self.dup(table, rng, s, self.rate("duplicate_records", 0.05))
        if v["dup_of"] is not None:
            v["has_domain"] = True
            table.slots[v["dup_of"]].values["has_domain"] = True
        self.finish(rng, slot, None, self.rate("stale_records", 0.3, 0.05))
        return slot

    def company_details(self, table: RecordSet, row: dict[str, Any]) -> None:
        i = row["index"]
        source = row["dup_of"] + row["k"] * table.width if row["dup_of"] is not None else i
        row["name"] = company_name(self.m, i)
        row["domain"] = company_domain(self.m, source) if row["has_domain"] else None

    # ---- deals and tickets ----

    def _pipeline_path(self, rng: random.Random, pl: Pipeline, won: float, lost: float) -> list[Option]:
        opens = [o for o in pl.open_stages]
        ends = [o for o in opens if not o.sf_only]
        roll = rng.random()
        if roll < won or roll < won + lost:
            outcome = next(o for o in pl.stages if o.closed and (o.won == (roll < won)))
            depth = rng.randrange(1, len(opens) + 1)
            return opens[:depth] + [outcome]
        target = rng.choice(ends)
        path = opens[: opens.index(target) + 1]
        return path

    def deal_slot(self, table: RecordSet, s: int) -> Slot:
        rng = self.m.rng(table.name, s)
        slot = Slot()
        v = slot.values
        pl = _weighted(rng, [(p, p.weight) for p in self.s.deal_pipelines])
        stages = self._pipeline_path(rng, pl, 0.3, 0.25)
        if pl.key == "sales" and self.m.has("rogue_picklist_values") and not stages[-1].closed and rng.random() < 0.05:
            stages.append(self.s.option(pl.stages, "sales.rogue_verbal_commit"))
        path = self.path(rng, stages, (5, 40))
        if self.m.has("stage_skips_and_backward_moves"):
            # its own random stream: the rest of the slot (amount, next step...) stays as without the gotcha
            path = self.skip_or_return(self.m.rng(table.name, s, "skips"), path)
        slot.paths["stage"] = path
        v["pipeline"] = pl
        v["stage"] = stages[-1]
        missing = self.m.has("missing_required_fields")
        v["amount"] = None if rng.random() < (0.15 if missing else 0.01) else rng.randrange(10, 300) * 500
        is_open = not stages[-1].closed
        v["has_next_step"] = is_open and rng.random() < (0.3 if self.m.has("no_next_step") else 0.9)
        lost = stages[-1].closed and not stages[-1].won
        reasons = self.s.loss_reasons
        v["loss_reason"] = None
        # a well-built org makes the reason required on loss: only old records lack one
        if lost and reasons and rng.random() < (0.98 if self.m.profile.style == "wellbuilt" else 0.9):
            weights = self.s.loss_weights
            pairs = list(zip(reasons, weights, strict=True)) if weights else []
            v["loss_reason"] = _weighted(rng, pairs) if pairs else rng.choice(reasons)
        v["source"] = None if rng.random() < (0.3 if missing else 0.02) else rng.choice(self.s.lead_source)
        v["owner"] = rng.randrange(len(self.s.owners))
        self.segmentation(table, s, slot, segment=True)
        last = path[-1][1]
        remaining = 0 if stages[-1].closed else rng.randint(10, 120) * DAY_MS
        slot.dates["close_date"] = lambda c: day_start(last(c) + remaining)
        self.finish(rng, slot, "stage", self.rate("stale_records", 0.35, 0.05))
        return slot

    def deal_details(self, table: RecordSet, row: dict[str, Any]) -> None:
        h = _hash(self.m.seed, table.name, row["index"])
        companies = self.m.sets["company"]
        row["company_index"] = h % companies.size if companies.size else None
        base = company_name(self.m, row["company_index"]) if row["company_index"] is not None else "Deal"
        row["name"] = f"{base} - {row['pipeline'].label} {row['index']}"
        row["next_step"] = "Follow-up call booked" if row["has_next_step"] else None

    def ticket_slot(self, table: RecordSet, s: int) -> Slot:
        rng = self.m.rng(table.name, s)
        slot = Slot()
        v = slot.values
        pl = _weighted(rng, [(p, p.weight) for p in self.s.ticket_pipelines])
        opens = [o for o in pl.stages if not o.closed]
        closed = [o for o in pl.stages if o.closed]
        if rng.random() < 0.55:
            stages = opens + closed[:1]
        else:
            stages = opens[: rng.randrange(1, len(opens) + 1)]
        slot.paths["stage"] = self.path(rng, stages, (1, 30))
        v["pipeline"] = pl
        v["stage"] = stages[-1]
        v["priority"] = _weighted(rng, [("LOW", 3), ("MEDIUM", 4), ("HIGH", 2)])
        v["owner"] = rng.randrange(len(self.s.owners))
        self.finish(rng, slot, "stage", self.rate("stale_records", 0.3, 0.05))
        return slot

    def customer_health_slot(self, table: RecordSet, s: int) -> Slot:
        """A customer's health record on the custom object: Onboarding -> Adopting -> Mature Adoption ->
        Renewal, or Onboarding -> Adopting -> Churn Risk."""
        rng = self.m.rng(table.name, s)
        slot = Slot()
        stages = list(self.s.customer_stages or ())
        target = _weighted(rng, list(zip(stages, (3, 4, 3, 1.5, 1), strict=True)))
        at = stages.index(target)
        path = stages[:2] + [target] if target.key == "customer.churn_risk" else stages[: at + 1]
        slot.paths["stage"] = self.path(rng, path, (10, 60))
        slot.values.update(stage=target, owner=rng.randrange(len(self.s.owners)))
        self.finish(rng, slot, "stage", self.rate("stale_records", 0.3, 0.05))
        return slot

    def customer_health_details(self, table: RecordSet, row: dict[str, Any]) -> None:
        h = _hash(self.m.seed, table.name, row["index"])
        companies = self.m.sets["company"]
        row["company_index"] = h % companies.size if companies.size else None
        base = company_name(self.m, row["company_index"]) if row["company_index"] is not None else "Customer"
        row["name"] = f"{base} health"

    def ticket_details(self, table: RecordSet, row: dict[str, Any]) -> None:
        h = _hash(self.m.seed, table.name, row["index"])
        companies = self.m.sets["company"]
        row["company_index"] = h % companies.size if companies.size else None
        row["subject"] = f"{row['pipeline'].label}: request {row['index']}"


def company_name(model: OrgModel, index: int) -> str:
    h = _hash(model.seed, "company", index)
    return f"{WORDS[h % len(WORDS)]} {WORDS[(h >> 8) % len(WORDS)]} {SUFFIX[(h >> 16) % len(SUFFIX)]}"


def company_domain(model: OrgModel, index: int) -> str:
    h = _hash(model.seed, "company", index)
    return f"{WORDS[h % len(WORDS)]}{WORDS[(h >> 8) % len(WORDS)]}{index}.example".lower()
