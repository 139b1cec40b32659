import pytest
from django.urls import reverse

from accounts import activity
from accounts.models import ActivityEntry, DomainError


def test_activity_log_is_append_only(cast):
    entry = activity.record(organization=cast.org, actor=cast.owner, verb="test.done", target=cast.client)
    entry.verb = "changed"
    with pytest.raises(DomainError):
        entry.save()
    with pytest.raises(DomainError):
        entry.delete()
    with pytest.raises(DomainError):
        ActivityEntry.objects.filter(pk=entry.pk).update(verb="changed")
    with pytest.raises(DomainError):
        ActivityEntry.objects.filter(pk=entry.pk).delete()
    assert ActivityEntry.objects.for_org(entry.organization).get(pk=entry.pk).verb == "test.done"


def test_owners_list_activity_with_filters(cast, client):
    client.force_login(cast.owner)
    client.post(reverse("engagements:client-list", args=[cast.org.slug]), {"name": "Umbrella Corp"})
    activity.record(organization=cast.other_org, actor=cast.outsider, verb="client.created", actor_label="bob")
    page = client.get(reverse("accounts:activity", args=[cast.org.slug]), {"verb": "client.created"})
    body = page.content.decode()
    assert "Umbrella Corp" in body and "alice@alpha.example" in body
    assert "bob" not in body  # another organization's entry
    empty = client.get(reverse("accounts:activity", args=[cast.org.slug]), {"actor": "nobody-like-this"})
    assert "No activity matches" in empty.content.decode()


def test_consultants_cannot_read_the_activity_log(cast, client):
    client.force_login(cast.consultant)
    assert client.get(reverse("accounts:activity", args=[cast.org.slug])).status_code == 403
