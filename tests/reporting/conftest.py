"""Helpers of the health-check tests."""

from datetime import date

import pytest

from crm_sandbox.connection import sandbox_connection
from engagements import definitions, progression
from engagements.models import StageDefinition
from playbooks.models import Playbook
from reporting import schedules
from tests.conftest import ensure_library


@pytest.fixture
def engagement(cast, library, settings, tmp_path):
    """A dedicated Revenue Intelligence engagement for Acme (Carl architect, Maya RevOps lead) whose monthly health
    checks run since August 2026; its files kept apart."""
    settings.MEDIA_ROOT = tmp_path
    e = progression.create_engagement(
        client=cast.client,
        playbook_version=library["revenue-intelligence"],
        name="Forecasting",
        start_date=date(2026, 6, 1),
        actor=cast.consultant,
        engagement_type="dedicated",
        team=[(cast.consultant, "architect")],
        stakeholders=[(cast.stakeholder, "RevOps lead")],
    )
    schedules.start_schedule(engagement=e, actor=cast.consultant, live_since=date(2026, 8, 1))
    return e


def lifecycle_engagement(cast, crm, stages: dict, *, start: bool = True):
    """A GTM Lifecycle engagement whose stage architecture is signed, its stages mapped to the CRM by `stages`
    ({(domain, stage name): (object, field, values)}), connected to the sandbox `crm`; live since August 2026."""
    ensure_library()
    version = Playbook.objects.library().get(key="gtm-lifecycle").latest_version()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=version,
        name="Lifecycle rebuild",
        start_date=date(2026, 3, 1),
        actor=cast.consultant,
        engagement_type="dedicated",
        team=[(cast.consultant, "architect")],
        stakeholders=[(cast.stakeholder, "Approver")],
    )
    for stage in StageDefinition.objects.filter(engagement=engagement):
        stage.crm_object, stage.crm_field, stage.crm_values = stages.get((stage.domain, stage.name), ("", "", []))
        stage.save(update_fields=["crm_object", "crm_field", "crm_values"])
    signed = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    definitions.sign(
        version=signed, stakeholder=cast.stakeholder, decisions={key: "yes" for key, _ in signed.items}, comments={}
    )
    sandbox_connection(client=cast.client, sandbox=crm, actor=cast.owner)
    if start:
        schedules.start_schedule(engagement=engagement, actor=cast.consultant, live_since=date(2026, 8, 1))
    return engagement


def entered_in_month(model, kind: str, value_key: str, period: date) -> int:
    """Records of `kind` ("lead", "contact") that entered the lifecycle value `value_key` ("mql", "sql") in the
    month, read off the sandbox generator's own model (`sandbox.truth`), independently of any connector or of the
    health check."""
    from crm_sandbox import truth

    start, end = truth.month_window(period)
    return truth.entries(model, kind=kind, path="lifecycle", value=value_key, start=start, end=end)


def average_stay_days(model, kind: str, value_key: str, period: date, *, began_in_month: bool = False) -> float | None:
    """Average days records of `kind` stayed in the lifecycle value `value_key`, over the stays that ended in the
    month (the record moved on to its next value then) and, with `began_in_month`, began in it too; read off the
    generator's own model: each record's path and entry times."""
    from crm_sandbox import truth
    from crm_sandbox.dates import DAY_MS

    start, end = truth.month_window(period)
    table = model.sets[kind]
    stays: list[float] = []
    for rank, slot in enumerate(table.slots):
        path = slot.paths.get("lifecycle") or []
        pairs = [(path[i][1], path[i + 1][1]) for i in range(len(path) - 1) if path[i][0].key == value_key]
        if not pairs:
            continue
        first, last = table.k_range(rank)
        for k in range(first, last):
            created = table.created(rank, k)
            for came, left in pairs:
                if start <= left(created) < end and (not began_in_month or came(created) >= start):
                    stays.append((left(created) - came(created)) / DAY_MS)
    return sum(stays) / len(stays) if stays else None
