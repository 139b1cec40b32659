"""Saving and testing CRM connections. Every change writes the activity log, never a secret."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import activity

from .base import STAGE_OBJECTS, CrmConnector, CrmError, CrmQueryError, CrmUnsupported, as_json
from .crypto import SecretUnreadable
from .http import check_url
from .models import DEFAULT_BASE_URLS, CrmConnection


@transaction.atomic
def save_connection(
    *, connection: CrmConnection, secrets: dict[str, str] | None = None, actor, request=None
) -> CrmConnection:
    """Create or update a connection. Blank secrets keep the stored ones.

    Raises CrmConfigurationError for a base URL that cannot work (plain http without CRM_ALLOW_HTTP)
    and crypto.SecretKeyMissing when secrets cannot be stored.
    """
    creating = connection.pk is None
    connection.base_url = check_url(
        connection.base_url or DEFAULT_BASE_URLS.get(connection.kind, ""), connection.get_kind_display()
    )
    connection.organization_id = connection.client.organization_id
    changed = connection.set_secrets(**(secrets or {}))
    if connection.is_active:
        # one active connection per client: a new one replaces the old
        CrmConnection.objects.filter(client=connection.client, is_active=True).exclude(pk=connection.pk).update(
            is_active=False
        )
    connection.save()
    activity.record(
        organization=connection.organization,
        actor=actor,
        request=request,
        target=connection,
        verb="crm_connection.created" if creating else "crm_connection.updated",
        data={
            "kind": connection.kind,
            "auth_method": connection.auth_method,
            "base_url": connection.base_url,
            "secrets_changed": changed,  # names only
        },
    )
    return connection


def test_connection(*, connection: CrmConnection, actor=None, request=None, **options: Any) -> dict[str, Any]:
    """Read what the connection can see (objects, fields, pipelines, lifecycle fields, API budget).

    Stores the summary on the connection and returns it; a failure is stored and returned as
    {"ok": False, "error": <plain words>}, never raised.
    """
    started = timezone.now()
    clock = time.monotonic()
    summary: dict[str, Any] = {"ok": False, "tested_at": started.isoformat(), "platform": connection.kind}
    connector: CrmConnector | None = None
    try:
        connector = connection.connector(**options)
        summary.update(read_summary(connector))
        summary["ok"] = True
    except CrmError as exc:
        summary.update(error=str(exc), error_kind=type(exc).__name__)
    except SecretUnreadable as exc:
        summary.update(error=str(exc), error_kind="SecretUnreadable")
    finally:
        summary["calls_spent"] = connector.calls_spent if connector is not None else 0
        summary["duration_ms"] = int((time.monotonic() - clock) * 1000)
        if connector is not None:
            connector.close()
    with transaction.atomic():
        connection.last_tested_at = started
        connection.last_test_ok = summary["ok"]
        connection.last_test_summary = summary
        connection.save(update_fields=["last_tested_at", "last_test_ok", "last_test_summary", "updated_at"])
        activity.record(
            organization=connection.organization,
            actor=actor,
            request=request,
            target=connection,
            verb="crm_connection.tested",
            data={"ok": summary["ok"], "calls_spent": summary["calls_spent"], "error_kind": summary.get("error_kind")},
        )
    return summary


def read_summary(connector: CrmConnector) -> dict[str, Any]:
    """What the connection can see. One object, field list or pipeline the user cannot read is noted in words
    and the test goes on (a refused CaseStatus never fails it); an error that is not about one item (credentials,
    the CRM down) fails the test."""
    notes: list[str] = []

    def attempt(what: str, read: Any, default: Any) -> Any:
        try:
            return read()
        except (CrmQueryError, CrmUnsupported) as exc:
            notes.append(f"Could not read {what}: {exc}")
            return default

    objects = connector.objects()
    available = {o.kind for o in objects if o.available}
    rows = []
    for o in objects:
        fields = attempt(f"the {o.label} fields", lambda o=o: connector.fields(o.kind), None) if o.available else []
        rows.append(
            {
                "kind": o.kind,
                "api_name": o.api_name,
                "label": o.label,
                "available": o.available,
                "records": o.record_count,
                "fields": len(fields) if fields is not None else None,
            }
        )
    pipelines = []
    for kind in STAGE_OBJECTS:
        if kind in available:
            pipelines += [
                {"object": kind, "id": p.id, "label": p.label, "active": p.active, "stages": len(p.stages)}
                for p in attempt(f"the {kind} pipelines", lambda kind=kind: connector.pipelines(kind), [])
            ]
    lifecycle = [
        {"object": f.object, "field": f.api_name, "label": f.label, "role": f.role, "values": len(f.values)}
        for f in attempt("the lifecycle fields", connector.lifecycle_fields, [])
    ]
    budget = connector.api_budget()
    return {
        "objects": rows,
        "pipelines": pipelines,
        "lifecycle_fields": lifecycle,
        "budget": {**as_json(budget), "budget_remaining": budget.budget_remaining},
        "notes": list(dict.fromkeys([*connector.notes, *notes])),
    }
