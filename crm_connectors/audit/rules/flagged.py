"""The loop most rules share: one finding per field (or per deal pipeline) whose values (or stages) a test flags,
naming the flagged ones. A rule says what it flags and how the finding reads; the object, field, values and count
are filled in here, the same way for every rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .lexicon import COMPANY_LIFECYCLE, shown
from .registry import Hit, Rule
from .snapshot import Snapshot


def per_field(
    r: Rule,
    fields: Iterable[tuple[str, dict]],
    flagged: Callable[[dict, dict], bool],
    details: Callable[[str, dict, list[dict]], dict[str, Any]],
) -> list[Hit]:
    """A hit for each (kind, field) holding values `flagged(field, value)` picks; `details(kind, field, flagged
    values)` gives the message and anything else the finding carries. A company field's finding is in the company
    lifecycle domain."""
    hits = []
    for kind, f in fields:
        bad = [v for v in f["values"] if flagged(f, v)]
        if not bad:
            continue
        found: dict[str, Any] = {"object": kind, "field": f["name"], "values": [shown(v) for v in bad]}
        if kind == "company":
            found["domain"] = COMPANY_LIFECYCLE
        hits.append(r.hit(**found, count=len(bad), **details(kind, f, bad)))
    return hits


def per_pipeline(
    r: Rule,
    snap: Snapshot,
    flagged: Callable[[dict], bool],
    message: Callable[[dict, list[str]], str],
    *,
    open_only: bool = True,
    evidence: bool = True,
) -> list[Hit]:
    """A hit for each active deal pipeline with stages `flagged` picks (open stages only unless `open_only` is
    False), keyed by the pipeline so a renamed pipeline stays the same finding; `message(pipeline, labels)`."""
    hits = []
    for p in snap.active_pipelines("deal"):
        bad = [s["label"] for s in p["stages"] if (not open_only or not s.get("is_closed")) and flagged(s)]
        if bad:
            hits.append(
                r.hit(
                    object="deal",
                    field=p["label"],
                    key=f"pipeline:{p['id']}",
                    values=bad,
                    count=len(bad),
                    **({"evidence": {"pipeline_id": p["id"]}} if evidence else {}),
                    message=message(p, bad),
                )
            )
    return hits
