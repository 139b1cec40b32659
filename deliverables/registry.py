"""Which document kinds exist: kind -> template + context builder, registered by the app that owns the data.

An owning app registers its kinds in its AppConfig.ready() (through its `deliverables.py` module), so this layer
renders documents of apps above it without importing any of them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DocumentKind:
    kind: str
    template: str
    # artifact -> the template's context; runs in the render worker, reads the owning app's data
    context: Callable[[Any], dict]
    # artifact -> the file name's tail after the client's slug, e.g. "health-check-2026-10"; None: "<kind>-<number>"
    name: Callable[[Any], str] | None = None
    # artifact -> None, after a render is done: the owner's next step (e.g. the emails that wait for a report)
    on_done: Callable[[Any], None] | None = None


_KINDS: dict[str, DocumentKind] = {}


def register(
    kind: str,
    *,
    template: str,
    context: Callable[[Any], dict],
    name: Callable[[Any], str] | None = None,
    on_done: Callable[[Any], None] | None = None,
) -> None:
    existing = _KINDS.get(kind)
    if existing is not None and existing.template != template:
        raise ValueError(f"Document kind {kind!r} is already registered with {existing.template}.")
    _KINDS[kind] = DocumentKind(kind, template, context, name, on_done)


def get(kind: str) -> DocumentKind:
    try:
        return _KINDS[kind]
    except KeyError:
        raise LookupError(
            f"No document kind {kind!r} is registered (known: {', '.join(sorted(_KINDS)) or 'none'}); "
            "the app that owns its data registers it in its AppConfig.ready()."
        ) from None


def kinds() -> list[str]:
    return sorted(_KINDS)
