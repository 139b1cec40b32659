"""Helpers of the health-check tests."""

from datetime import date

from crm_connectors import services as crm_services
from engagements import definitions, progression
from engagements.models import StageDefinition
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks
from reporting import health


def lifecycle_engagement(cast, crm, stages: dict, *, start: bool = True):
    """A GTM Lifecycle engagement whose stage architecture is signed, its stages mapped to the CRM by `stages`
    ({(domain, stage name): (object, field, values)}), connected to the sandbox `crm`; live since August 2026."""
    load_library_playbooks()
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
    crm_services.sandbox_connection(client=cast.client, sandbox=crm, actor=cast.owner)
    if start:
        health.start_schedule(engagement=engagement, actor=cast.consultant, live_since=date(2026, 8, 1))
    return engagement


def month_window_ms(period: date) -> tuple[int, int]:
    """[first day of the month, first day of the next) in epoch milliseconds, as the sandbox keeps time."""
    from crm_connectors.sandbox.dates import to_ms

    following = date(period.year + period.month // 12, period.month % 12 + 1, 1)
    return to_ms(period), to_ms(following)


def entered_in_month(model, kind: str, value_key: str, period: date) -> int:
    """Records of `kind` ("lead", "contact") whose lifecycle path entered the value `value_key` ("mql", "sql") in
    the month: read off the sandbox generator's own model (each record's path and entry times), independently of
    any connector or of the health check."""
    start, end = month_window_ms(period)
    table = model.table(kind)
    count = 0
    for rank, slot in enumerate(table.slots):
        rules = [rule for option, rule in slot.paths.get("lifecycle") or [] if option.key == value_key]
        if not rules:
            continue
        first, last = table.k_range(rank)
        for k in range(first, last):
            created = table.created(rank, k)
            if created < end and any(start <= rule(created) < end for rule in rules):
                count += 1
    return count
