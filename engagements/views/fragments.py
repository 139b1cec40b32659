"""The data-derived part of a page, rendered once and cached for every member who sees the same thing.

A fragment's key holds everything its HTML depends on: the organization (uuid and slug, which its URLs carry) and
its data version (accounts/data_version.py: every recorded change bumps it; org_view has loaded it), the viewer's
role (it decides which controls show), time zone and today's date there, and the page's own parts (an engagement,
the query string). Forms in a fragment carry CSRF_PLACEHOLDER instead of a CSRF token, which belongs to one visitor;
each response puts in its own.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

CSRF_PLACEHOLDER = "csrf-token-placeholder"
# What {% csrf_token %} renders. Replacing the whole tag, never the bare placeholder, leaves any text that happens to
# contain the placeholder alone: escaped text has no raw tag in it.
_CSRF_INPUT = '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
_PLACEHOLDER_INPUT = _CSRF_INPUT.format(CSRF_PLACEHOLDER)
# Keys change with the data, the date and the viewer; the timeout only lets unused fragments go (0: no caching, as
# bench/portfolio_board.py measures the pages on a miss).
DEFAULT_TIMEOUT = 24 * 60 * 60


def fragment_key(request, name: str, *parts) -> str:
    org = request.org
    viewer = (request.membership.role, timezone.get_current_timezone_name(), timezone.localdate().isoformat())
    digest = hashlib.sha256(repr((*viewer, *parts)).encode()).hexdigest()[:32]
    return f"fragment:{name}:{org.uuid}:{org.slug}:{org.data_version}:{digest}"


def render_fragment(request, template_name: str, context: dict) -> str:
    """The template rendered for caching: with the placeholder where {% csrf_token %} puts the visitor's token."""
    return render_to_string(template_name, {**context, "csrf_token": CSRF_PLACEHOLDER}, request)


def cached_fragment(request, name: str, *parts, build) -> dict:
    """The cached value of `build()` (a dict whose "html" render_fragment rendered), built on a miss; its "html"
    comes back with this visitor's CSRF token in place, ready for the page."""
    key = fragment_key(request, name, *parts)
    value = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, getattr(settings, "FRAGMENT_CACHE_TIMEOUT", DEFAULT_TIMEOUT))
    html = value["html"]
    if _PLACEHOLDER_INPUT in html:
        html = html.replace(_PLACEHOLDER_INPUT, _CSRF_INPUT.format(get_token(request)))
    return {**value, "html": mark_safe(html)}  # noqa: S308 - HTML our templates rendered, escaping included
