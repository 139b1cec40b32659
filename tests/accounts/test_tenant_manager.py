"""The ORM's half of the tenant wall: a tenant-owned model's default manager refuses a query that does not say
whose rows it wants.

The models are enumerated from the app registry, so a model added later is covered by construction: a model is
tenant-owned when it has an `organization`, or a required foreign key to a tenant-owned model (a row owned
through its parent, such as a playbook's versions).
"""

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db.models import Count, Q

from accounts.models import DomainError, Organization
from accounts.tenancy import UnscopedQuery, crossing_tenants
from engagements.models import ClientAccount, Stakeholder


def tenant_owned_models() -> list:
    owned = {m for m in apps.get_models() if any(f.name == "organization" for f in m._meta.fields)}
    while True:  # rows owned through a parent: a required foreign key to a tenant-owned model
        through_parent = {
            m
            for m in apps.get_models()
            if m not in owned
            and m is not Organization
            and any(f.many_to_one and not f.null and f.related_model in owned for f in m._meta.fields)
        }
        if not through_parent:
            return sorted(owned, key=lambda m: m._meta.label)
        owned |= through_parent


TENANT_MODELS = tenant_owned_models()


def test_the_enumeration_finds_the_tenant_models():
    labels = {m._meta.label for m in TENANT_MODELS}
    expected = {
        "accounts.Membership",
        "engagements.Engagement",
        "engagements.GateCheckpoint",
        "crm_connectors.Finding",
        "reporting.HealthResult",
        "playbooks.Playbook",
        "playbooks.PlaybookVersion",
        "deliverables.Artifact",
    }
    assert expected <= labels, expected - labels
    assert not labels & {"accounts.Organization", "auth.User", "accounts.LimitHit"}


def _every_way_to_run(queryset):
    first_field = queryset.model._meta.pk.name
    return {
        "list": lambda: list(queryset),
        "filter by pk": lambda: list(queryset.filter(pk=1)),
        "get": lambda: queryset.get(pk=1),
        "first": lambda: queryset.first(),
        "count": lambda: queryset.count(),
        "exists": lambda: queryset.exists(),
        "aggregate": lambda: queryset.aggregate(n=Count(first_field)),
        "iterator": lambda: list(queryset.iterator()),
        "values_list": lambda: list(queryset.values_list(first_field, flat=True)),
        "update": lambda: queryset.filter(pk=0).update(pk=0),
        "delete": lambda: queryset.filter(pk=0).delete(),
    }


@pytest.mark.django_db
def test_every_tenant_model_refuses_an_unscoped_query():
    failures = []
    for model in TENANT_MODELS:
        for way, run in _every_way_to_run(model._default_manager.all()).items():
            try:
                run()
            except UnscopedQuery as error:
                assert model.__name__ in str(error) and "across_tenants" in str(error)
            except DomainError as error:  # append-only rows (activity, signatures) refuse writes outright
                assert way in ("update", "delete") and "append-only" in str(error)
            else:
                failures.append(f"{model._meta.label}.{way}")
    assert not failures, "ran without an organization: " + ", ".join(failures)


def _names(queryset) -> set[str]:
    return set(queryset.values_list("name", flat=True))


def test_scoped_queries_see_one_tenant(cast):
    mine = {cast.client.name, cast.sibling_client.name}
    assert _names(ClientAccount.objects.for_org(cast.org)) == mine
    assert _names(ClientAccount.objects.filter(organization=cast.org)) == mine
    assert _names(ClientAccount.objects.filter(organization_id=cast.org.pk)) == mine
    assert _names(ClientAccount.objects.filter(organization__slug=cast.org.slug)) == mine
    assert _names(ClientAccount.objects.filter(Q(organization=cast.org) & Q(name=cast.client.name))) == {
        cast.client.name
    }
    # Narrowing a scoped queryset keeps it scoped, whatever follows.
    assert ClientAccount.objects.for_org(cast.other_org).exclude(name="x").order_by("name").count() == 1
    assert list(ClientAccount.objects.none()) == []


def test_a_filter_that_does_not_pin_the_organization_is_refused(cast):
    refused = [
        ClientAccount.objects.exclude(organization=cast.org),
        ClientAccount.objects.filter(Q(organization=cast.org) | Q(name=cast.other_client.name)),
        ClientAccount.objects.filter(organization__isnull=False),
        ClientAccount.objects.filter(name=cast.other_client.name),
        ClientAccount.objects.for_org(cast.org) | ClientAccount.objects.filter(name=cast.other_client.name),
    ]
    for queryset in refused:
        with pytest.raises(UnscopedQuery):
            list(queryset)


def test_rows_reached_from_a_loaded_row_are_scoped(cast):
    assert {s.email for s in cast.client.stakeholders.all()} == {cast.stakeholder.email}
    assert Stakeholder.objects.filter(client=cast.other_client).get().email == cast.other_stakeholder.email
    clients = ClientAccount.objects.for_org(cast.org)
    assert {s.email for s in Stakeholder.objects.filter(client__in=clients)} == {
        cast.stakeholder.email,
        cast.sibling_stakeholder.email,
    }
    loaded = ClientAccount.objects.for_org(cast.org).prefetch_related("stakeholders").get(pk=cast.client.pk)
    assert [s.email for s in loaded.stakeholders.all()] == [cast.stakeholder.email]


def test_the_base_manager_follows_rows_in_hand(cast):
    stakeholder = Stakeholder.objects.for_org(cast.org).get(pk=cast.stakeholder.pk)
    assert stakeholder.client.name == cast.client.name  # forward relations use _base_manager
    stakeholder.title = "CMO"
    stakeholder.save()
    stakeholder.refresh_from_db()
    assert stakeholder.title == "CMO"
    cast.sibling_client.delete()  # cascades to its stakeholder through _base_manager
    assert not Stakeholder.objects.for_org(cast.org).filter(email=cast.sibling_stakeholder.email).exists()


def test_crossing_tenants_is_explicit_and_named(cast):
    everyone = {cast.client.name, cast.sibling_client.name, cast.other_client.name}
    assert _names(ClientAccount.objects.across_tenants("test: every tenant's clients")) == everyone
    with crossing_tenants("test: a block that builds its own querysets"):
        assert _names(ClientAccount.objects.all()) == everyone
    with pytest.raises(UnscopedQuery):
        list(ClientAccount.objects.all())  # the block ended
    assert ClientAccount.objects.for_task(cast.other_client.pk).get().organization_id == cast.other_org.pk
    for reason in ("", "   ", None):
        with pytest.raises(ValueError, match="reason"):
            ClientAccount.objects.across_tenants(reason)


def test_bulk_update_of_rows_in_hand(cast):
    rows = list(ClientAccount.objects.for_org(cast.org))
    for row in rows:
        row.website = "https://example.com"
    ClientAccount.objects.bulk_update(rows, ["website"])
    websites = ClientAccount.objects.across_tenants("test: read back").values_list("name", "website")
    assert dict(websites) == {
        cast.client.name: "https://example.com",
        cast.sibling_client.name: "https://example.com",
        cast.other_client.name: "",
    }


def test_the_uniqueness_check_sees_every_tenant(cast):
    """A UUID is unique across tenants: a row of A reusing B's UUID must fail validation, not pass unseen."""
    clash = Stakeholder(
        organization=cast.org,
        client=cast.client,
        name="Clash",
        email="clash@acme.example",
        uuid=cast.other_stakeholder.uuid,
    )
    with pytest.raises(ValidationError) as error:
        clash.full_clean()
    assert "uuid" in error.value.message_dict
