"""The one way the activity log is written. Services call `record` inside their transaction."""

from django.db import models

from . import data_version
from .models import ActivityEntry, Organization


def client_ip(request) -> str | None:
    if request is None:
        return None
    # Behind the proxy in docker-compose the first X-Forwarded-For hop is the client.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return (forwarded.split(",")[0].strip() or request.META.get("REMOTE_ADDR")) or None


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
        actor_label=actor_label,
        verb=verb,
        target_type=target._meta.verbose_name if target is not None else "",
        target_uuid=getattr(target, "uuid", None),
        target_label=str(target)[:300] if target is not None else "",
        ip=client_ip(request),
        data=data or {},
    )
