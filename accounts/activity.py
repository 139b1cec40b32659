"""The one way the activity log is written. Services call `record` inside their transaction."""

import ipaddress

from django.conf import settings
from django.db import models

from . import data_version
from .models import ActivityEntry, Organization


def client_ip(request) -> str | None:
    """The address the request came from: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies stand in front.

    Each proxy appends the address it received the request from to X-Forwarded-For, so with N trusted proxies the
    client is the N-th address from the right. Anything further left was written by the client and proves nothing.
    """
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:  # not an address (a misconfigured proxy): record nothing rather than fail the request
        return None


def record(
    *,
    organization: Organization,
    verb: str,
    actor=None,
    actor_label: str = "",
    target: models.Model | None = None,
    request=None,
    data: dict | None = None,
) -> ActivityEntry:
    if not actor_label:
        actor_label = actor.get_username() if actor is not None else "system"
    data_version.bump(organization)  # every recorded change retires the cached pages of its data
    return ActivityEntry.objects.create(
        organization=organization,
        actor=actor,
        actor_label=actor_label[:200],  # the column's length: a long stakeholder name must not fail a sign-in
        verb=verb,
        target_type=target._meta.verbose_name if target is not None else "",
        target_uuid=getattr(target, "uuid", None),
        target_label=str(target)[:300] if target is not None else "",
        ip=client_ip(request),
        data=data or {},
    )
