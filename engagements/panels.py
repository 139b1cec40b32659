"""Panels the apps above engagements add to its pages: the client's intake answers beside the draft definitions,
the CRM connection on the client page, the client's forms on the portal home.

engagements cannot import those apps, so each hands its panel down at start-up (its AppConfig.ready), as document
kinds register with deliverables, and the page asks for its panels by the page's name:
`{% load panels %}{% panels "definitions" engagement %}`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

# The pages that take panels, and what each passes its panels.
PAGES = {"definitions": "the engagement", "client": "the client", "portal_home": "the stakeholder"}


@dataclass(frozen=True)
class Panel:
    template: str
    context: Callable  # (request, the page's object) -> the template's context, or None when there is nothing to show


_panels: dict[str, list[Panel]] = {}


def register(page: str, *, template: str, context: Callable) -> None:
    if page not in PAGES:
        raise ValueError(f"No page “{page}” takes panels; the pages that do: {', '.join(PAGES)}.")
    panels = _panels.setdefault(page, [])
    if all(p.template != template for p in panels):  # ready() may run twice (tests, reloads)
        panels.append(Panel(template, context))


def render(page: str, request, subject) -> SafeString:
    if page not in PAGES:
        raise ValueError(f"No page “{page}” takes panels; the pages that do: {', '.join(PAGES)}.")
    pieces = []
    for panel in _panels.get(page, []):
        context = panel.context(request, subject)
        if context is not None:
            pieces.append((render_to_string(panel.template, {"request": request, **context}),))
    return format_html_join("", "{}", pieces)  # each piece is already safe: a template of ours, autoescaped
