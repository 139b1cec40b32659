"""Client accounts and stakeholders: every change writes the activity log in the same transaction."""

from django.db import transaction

from accounts import activity

from .models import ClientAccount, Stakeholder


@transaction.atomic
def save_client(*, client: ClientAccount, actor, request=None) -> ClientAccount:
    creating = client.pk is None
    client.save()
    activity.record(
        organization=client.organization,
        actor=actor,
        request=request,
        target=client,
        verb="client.created" if creating else "client.updated",
    )
    return client


@transaction.atomic
def save_stakeholder(*, stakeholder: Stakeholder, actor, request=None) -> Stakeholder:
    creating = stakeholder.pk is None
    stakeholder.organization_id = stakeholder.client.organization_id
    stakeholder.save()
    activity.record(
        organization=stakeholder.organization,
        actor=actor,
        request=request,
        target=stakeholder,
        verb="stakeholder.created" if creating else "stakeholder.updated",
    )
    return stakeholder


@transaction.atomic
def remove_stakeholder(*, stakeholder: Stakeholder, actor, request=None) -> None:
    activity.record(
        organization=stakeholder.organization,
        actor=actor,
        request=request,
        target=stakeholder,
        verb="stakeholder.removed",
        data={"email": stakeholder.email},
    )
    stakeholder.delete()
