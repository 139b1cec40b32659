"""The rule catalogue: how a rule is declared (`@rule`), what it returns (`Hit`), and `evaluate`, which
runs every registered rule over a snapshot in the order the domain modules registered them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .lexicon import DOMAINS, SEVERITIES
from .snapshot import Context, Snapshot, unreadable_reason


@dataclass
class Hit:
    rule_id: str
    severity: str
    domain: str
    object: str
    field: str
    message: str
    values: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    count: int = 0
    key: str = ""  # what makes this finding the same one in a later run (with rule, object and field)
    evidence: dict[str, Any] = field(default_factory=dict)
    recommendation: str = ""
    seed: str = ""

    @property
    def fingerprint(self) -> str:
        raw = "|".join([self.rule_id, self.object, self.field, self.key])
        return hashlib.sha256(raw.encode()).hexdigest()[:40]

    def as_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity,
            "domain": self.domain,
            "object": self.object,
            "field": self.field,
            "values": self.values,
            "counts": self.counts,
            "count": self.count,
            "message": self.message,
            "recommendation": self.recommendation,
            "fingerprint": self.fingerprint,
        }


class NotEvaluated(Exception):
    """Raised by a rule that cannot judge anything without a field it could not read."""


def require(snap: Snapshot, rows: list[dict]) -> None:
    """Stop the rule as not evaluated when a field it needs could not be read."""
    if rows:
        snap.not_read(rows)
        raise NotEvaluated(f"not evaluated: {unreadable_reason(rows)}")


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    domain: str
    severity: str
    seed: str
    recommendation: str
    check: Callable[[Snapshot, Context], list[Hit]]
    needs: tuple[str, ...] = ("fields",)
    detects: str = ""

    @property
    def deep(self) -> bool:
        return "deep" in self.needs

    def hit(self, **kwargs: Any) -> Hit:
        kwargs.setdefault("severity", self.severity)
        kwargs.setdefault("domain", self.domain)
        kwargs.setdefault("recommendation", self.recommendation)
        kwargs.setdefault("seed", self.seed)
        # the finding row's columns (Finding.object 40, Finding.field 300): long lists stay whole in values/evidence
        kwargs["object"] = clip(kwargs.get("object", ""), 40)
        kwargs["field"] = clip(kwargs.get("field", ""), 300)
        return Hit(rule_id=self.id, **kwargs)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip(", ") + "…"


CATALOGUE: dict[str, Rule] = {}


def rule(
    rule_id: str,
    *,
    title: str,
    domain: str,
    severity: str,
    seed: str,
    recommendation: str,
    needs: tuple[str, ...] = ("fields",),
    detects: str = "",
) -> Callable[[Callable[[Rule, Snapshot, Context], list[Hit]]], Rule]:
    def register(fn: Callable[[Rule, Snapshot, Context], list[Hit]]) -> Rule:
        holder: dict[str, Rule] = {}

        def check(snap: Snapshot, ctx: Context) -> list[Hit]:
            return fn(holder["rule"], snap, ctx)

        made = Rule(rule_id, title, domain, severity, seed, recommendation, check, needs, detects or title)
        holder["rule"] = made
        CATALOGUE[rule_id] = made
        return made

    return register


@dataclass
class Evaluation:
    hits: list[Hit]
    evaluated: list[str]
    not_evaluated: dict[str, str]  # rule id -> why (a section could not be read)
    not_run: dict[str, str]  # rule id -> why it does not apply (deep mode off, nothing signed, no previous audit)
    partial: dict[str, str] = field(default_factory=dict)  # rule id -> fields it judged without (it ran on the rest)


def evaluate(snapshot: dict, ctx: Context | None = None) -> Evaluation:
    snap = Snapshot(snapshot)
    ctx = ctx or Context()
    hits: list[Hit] = []
    evaluated, not_evaluated, not_run, partial = [], {}, {}, {}
    for r in CATALOGUE.values():
        if "deep" in r.needs and not snap.deep:
            not_run[r.id] = "deep mode only (reads records)"
            continue
        if "signed" in r.needs and not ctx.signed:
            not_run[r.id] = "no signed stage architecture with CRM values"
            continue
        if "previous" in r.needs and ctx.previous is None:
            not_run[r.id] = "no earlier audit to compare with"
            continue
        sections = [n for n in r.needs if n not in ("signed", "previous")]
        missing = [n for n in sections if not snap.has(n)]
        if missing:
            not_evaluated[r.id] = f"could not read {', '.join(missing).replace('_', ' ')} from {snap.crm}"
            continue
        snap.unread = {}
        try:
            found = r.check(snap, ctx)
        except NotEvaluated as exc:
            not_evaluated[r.id] = str(exc)
            continue
        evaluated.append(r.id)
        if snap.unread:
            partial[r.id] = "judged without " + "; ".join(snap.unread[k] for k in sorted(snap.unread))
            for h in found:
                h.evidence.setdefault("not_read", sorted(snap.unread))
                h.message += f" Not read: {', '.join(sorted(snap.unread))} (missing or not readable by this user)."
        hits.extend(found)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    hits.sort(key=lambda h: (DOMAINS.index(h.domain), order[h.severity], h.rule_id, h.object, h.field))
    return Evaluation(hits, evaluated, not_evaluated, not_run, partial)


def catalogue_rows() -> list[dict[str, str]]:
    """The catalogue as documentation rows (id, domain, severity, what it detects, seed)."""
    return [
        {
            "id": r.id,
            "title": r.title,
            "domain": r.domain,
            "severity": r.severity,
            "detects": r.detects,
            "seed": r.seed,
            "deep": "yes" if r.deep else "",
        }
        for r in CATALOGUE.values()
    ]
