"""An approver role left unassigned when a version was published is settled afterwards, on the page and through
the API: assigning it asks the holder to sign (a real email), waiving it needs a reason; the sign-off checkpoint
follows. The API's publish takes the same role mapping as the page.

The roles come from the playbook's YAML (ROLES in test_signoff_enforcement), not from the code under test.
"""

import re

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ActivityEntry
from engagements import definitions
from engagements.models import CheckpointStatus, DefinitionTerm, DefinitionVersion, VersionApprover

from . import test_signoff_enforcement as enforcement
from .test_signoff_enforcement import ROLES, checkpoint, yes

pytestmark = pytest.mark.django_db(transaction=True)

engagement = enforcement.engagement  # the same fixture: Acme with the four approver roles' holders


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_an_unassigned_role_is_assigned_on_the_version_page_and_its_holder_is_asked_to_sign(
    client, engagement, smtp
):
    cast, people = engagement.cast, engagement.people
    # Published as scripts do: only Maya asked, so the three other roles are unassigned.
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    smtp.wait_for(1)
    definitions.sign(version=version, stakeholder=cast.stakeholder, decisions=yes(version), comments={})
    version.refresh_from_db()
    assert version.signed_at is not None and checkpoint(engagement).status == CheckpointStatus.OPEN

    client.force_login(cast.consultant)
    page_url = reverse("engagements:definition-version", args=[cast.org.slug, engagement.uuid, version.uuid])
    shown = text(client.get(page_url))
    for role in set(ROLES) - {"VP Marketing"}:
        assert f"{role} : Not assigned" in shown, role
    assert "VP Marketing : Maya Patel" in shown

    url = reverse("engagements:definition-approver", args=[cast.org.slug, engagement.uuid, version.uuid])
    refused = client.post(url, {"role": "VP CS", "holder": "waive", "reason": "  "}, follow=True)
    assert "Say why VP CS is waived." in text(refused)
    waived = client.post(url, {"role": "VP CS", "holder": "waive", "reason": "CS joins at enablement."})
    assert waived.status_code == 302
    client.post(url, {"role": "VP Sales", "holder": str(people["VP Sales"].uuid)})
    # Maya's request, the consultants' "signed" notice, then the new holder's sign-off request.
    assert [m["To"] for m in smtp.wait_for(3)].count("tom@acme.example") == 1
    version.refresh_from_db()
    assert version.signed_at is None  # one more person must now sign
    again = client.post(url, {"role": "VP Sales", "holder": str(people["VP CS"].uuid)}, follow=True)
    assert "VP Sales is already held by Tom Becker." in text(again)

    client.post(url, {"role": "VP RevOps", "holder": str(people["VP RevOps"].uuid)})
    for role in ("VP Sales", "VP RevOps"):
        assert checkpoint(engagement).status == CheckpointStatus.OPEN
        definitions.sign(version=version, stakeholder=people[role], decisions=yes(version), comments={})
    assert checkpoint(engagement).status == CheckpointStatus.CHECKED
    mapped = {a.role: (a.stakeholder, a.waiver_reason) for a in VersionApprover.objects.filter(version=version)}
    assert mapped["VP CS"] == (None, "CS joins at enablement.")
    assert mapped["VP Sales"] == (people["VP Sales"], "")
    verbs = set(ActivityEntry.objects.for_org(cast.org).values_list("verb", flat=True))
    assert {"definitions.approver_assigned", "definitions.approver_waived"} <= verbs


def test_an_older_version_cannot_be_settled(client, engagement):
    cast, people = engagement.cast, engagement.people
    v1 = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    term = DefinitionTerm.objects.filter(engagement=engagement).first()
    term.notes = "Changed for v2."
    term.save()
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    client.force_login(cast.consultant)
    url = reverse("engagements:definition-approver", args=[cast.org.slug, engagement.uuid, v1.uuid])
    refused = client.post(url, {"role": "VP Sales", "holder": str(people["VP Sales"].uuid)}, follow=True)
    assert "v1 is not the current version" in text(refused)
    assert not VersionApprover.objects.filter(version=v1, role="VP Sales").exclude(stakeholder=None).exists()


def test_the_api_publishes_with_a_role_mapping_and_settles_a_role_later(engagement, smtp):
    cast, people = engagement.cast, engagement.people
    client = api(cast.consultant)
    publish = f"/api/v1/o/{cast.org.slug}/definition-versions/publish/"
    body = {"engagement": str(engagement.uuid), "signers": [str(cast.stakeholder.uuid)]}

    incomplete = client.post(publish, {**body, "approvers": [
        {"role": "VP Marketing", "stakeholder": str(cast.stakeholder.uuid)}]}, format="json")
    assert incomplete.status_code == 400
    assert "choose the stakeholder who holds it, or waive it with a reason" in str(incomplete.json())
    both = client.post(publish, {**body, "approvers": [
        {"role": "VP CS", "stakeholder": str(people["VP CS"].uuid), "waiver_reason": "Both"}]}, format="json")
    assert both.status_code == 400
    assert "either the stakeholder who holds the role or a waiver reason" in both.json()["detail"]
    assert not DefinitionVersion.objects.across_tenants("test").exists()

    mapping = [
        {"role": "VP RevOps", "stakeholder": str(people["VP RevOps"].uuid)},
        {"role": "VP Marketing", "stakeholder": str(cast.stakeholder.uuid)},
        {"role": "VP Sales", "stakeholder": str(people["VP Sales"].uuid)},
        {"role": "VP CS", "waiver_reason": "CS joins at enablement."},
    ]
    published = client.post(publish, {**body, "approvers": mapping}, format="json")
    assert published.status_code == 201, published.json()
    roles = {a["role"]: a for a in published.json()["approvers"]}
    assert roles["VP Sales"]["stakeholder"] == str(people["VP Sales"].uuid)
    assert roles["VP CS"] == {"role": "VP CS", "stakeholder": None, "name": None,
                              "waiver_reason": "CS joins at enablement."}
    # Holders were added to the signers: three requests, three emails.
    assert sorted(m["To"] for m in smtp.wait_for(3)) == ["maya@acme.example", "rita@acme.example",
                                                         "tom@acme.example"]

    # A role already held cannot be settled again through the API either.
    version = published.json()["uuid"]
    settle = f"/api/v1/o/{cast.org.slug}/definition-versions/{version}/approvers/"
    again = client.post(settle, {"role": "VP CS", "stakeholder": str(people["VP CS"].uuid)}, format="json")
    assert again.status_code == 400 and "VP CS is already waived." in str(again.json())


def test_the_api_settles_an_unassigned_role(engagement, smtp):
    cast, people = engagement.cast, engagement.people
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    smtp.wait_for(1)
    settle = f"/api/v1/o/{cast.org.slug}/definition-versions/{version.uuid}/approvers/"
    client = api(cast.consultant)
    assert client.post(settle, {"role": "Chief Vibes", "waiver_reason": "x"}, format="json").status_code == 400
    answer = client.post(settle, {"role": "VP Sales", "stakeholder": str(people["VP Sales"].uuid)}, format="json")
    assert answer.status_code == 200, answer.json()
    assert {r["email"] for r in answer.json()["required_signers"]} == {"maya@acme.example", "tom@acme.example"}
    assert [m["To"] for m in smtp.wait_for(2)][1:] == ["tom@acme.example"]
