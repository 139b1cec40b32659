from datetime import date

from django.urls import reverse

from accounts.models import ActivityEntry
from engagements.models import ClientAccount, Stakeholder


def test_consultant_adds_client_and_stakeholder(cast, client):
    client.force_login(cast.consultant)
    response = client.post(reverse("engagements:client-list", args=[cast.org.slug]), {"name": "Umbrella"})
    new = ClientAccount.objects.for_org(cast.org).get(name="Umbrella")
    assert response["Location"] == reverse("engagements:client-detail", args=[cast.org.slug, new.uuid])
    response = client.post(
        reverse("engagements:stakeholder-add", args=[cast.org.slug, new.uuid]),
        {
            "name": "Alice Wesker",
            "email": "Alice@Umbrella.example",
            "title": "CRO",
            "department": "executive",
            "portal_enabled": "on",
        },
    )
    assert response.status_code == 302
    person = Stakeholder.objects.for_org(cast.org).get(client=new)
    assert person.email == "alice@umbrella.example" and person.get_department_display() == "Executive"
    verbs = set(ActivityEntry.objects.for_org(cast.org).values_list("verb", flat=True))
    assert {"client.created", "stakeholder.created"} <= verbs


def test_bad_stakeholder_input_says_what_and_where(cast, client):
    client.force_login(cast.consultant)
    url = reverse("engagements:stakeholder-add", args=[cast.org.slug, cast.client.uuid])
    response = client.post(url, {"name": "", "email": "maya@acme.example", "department": "sales"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "This field is required" in body
    assert "already has a stakeholder with this email" in body
    assert Stakeholder.objects.for_org(cast.org).filter(client=cast.client).count() == 1


def test_duplicate_client_name_is_refused(cast, client):
    client.force_login(cast.consultant)
    response = client.post(reverse("engagements:client-list", args=[cast.org.slug]), {"name": "acme robotics"})
    assert response.status_code == 200 and b"already exists" in response.content
    # Another organization may use the same name.
    client.force_login(cast.outsider)
    client.post(reverse("engagements:client-list", args=[cast.other_org.slug]), {"name": "Acme Robotics"})
    assert ClientAccount.objects.for_org(cast.other_org).filter(name="Acme Robotics").exists()


def test_removing_a_stakeholder_needs_confirmation(cast, client):
    client.force_login(cast.consultant)
    url = reverse("engagements:stakeholder-remove", args=[cast.org.slug, cast.client.uuid, cast.stakeholder.uuid])
    assert b"Remove Maya Patel?" in client.get(url).content
    assert Stakeholder.objects.across_tenants("test").filter(pk=cast.stakeholder.pk).exists()
    client.post(url)
    assert not Stakeholder.objects.across_tenants("test").filter(pk=cast.stakeholder.pk).exists()


def test_client_list_query_count_is_constant(cast, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(cast.consultant)
    url = reverse("engagements:client-list", args=[cast.org.slug])

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx)

    queries()  # the first visit also stores the current organization in the session
    few = queries()
    for n in range(30):
        client_account = ClientAccount.objects.create(organization=cast.org, name=f"Client {n}")
        Stakeholder.objects.create(organization=cast.org, client=client_account, name="X", email=f"x{n}@x.example")
    assert queries() == few


def test_client_page_lists_its_engagements_connection_and_latest_audit(cast, client, settings, tmp_path):
    from crm_connectors.models import AuditRun
    from crm_sandbox import SalesforceSandbox
    from engagements import progression
    from playbooks.models import Playbook
    from tests.conftest import ensure_library
    from tests.crm_connectors.test_audit import KEY, UNLIMITED, audit, connect

    settings.CRM_ALLOW_HTTP, settings.CRM_SECRET_KEY, settings.CRM_RATE_LIMITS = True, KEY, UNLIMITED
    settings.MEDIA_ROOT = tmp_path
    ensure_library()
    version = Playbook.objects.library().get(key="gtm-lifecycle").latest_version()
    for name, client_account in (("Acme rebuild", cast.client), ("Initech reset", cast.sibling_client)):
        progression.create_engagement(
            client=client_account, playbook_version=version, name=name, start_date=date(2026, 11, 2), actor=cast.owner
        )
    page = reverse("engagements:client-detail", args=[cast.org.slug, cast.client.uuid])
    client.force_login(cast.consultant)
    body = client.get(page).content.decode()
    assert "Acme rebuild" in body and "Initech reset" not in body
    assert "No CRM connected." in body and "No audit yet." in body
    with SalesforceSandbox(profile="demo", seed=3, size=1_000) as sandbox:
        connect(cast, sandbox)
        audit(cast)
        latest = audit(cast)
    body = client.get(page).content.decode()
    findings = AuditRun.objects.for_org(cast.org).get(pk=latest.pk).findings.count()
    assert "Salesforce" in body and "No CRM connected." not in body
    assert f"{latest.created_at:%-d %b %Y %H:%M}</a> · Succeeded · {findings} findings" in body and findings > 1
