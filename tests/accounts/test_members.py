import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ActivityEntry, Invitation, Membership, Role
from tests.conftest import body_text


def invite(client, cast, email="newbie@alpha.example", role="consultant"):
    client.force_login(cast.owner)
    return client.post(reverse("accounts:members", args=[cast.org.slug]), {"email": email, "role": role})


# Emails leave in transaction.on_commit callbacks: these tests really commit.
pytestmark = pytest.mark.django_db(transaction=True)


def link_in(message) -> str:
    return re.search(r"http://\S+", body_text(message)).group(0)


def test_owner_invites_by_email_and_the_invitee_joins(cast, client, smtp):
    response = invite(client, cast)
    assert response.status_code == 302
    [message] = smtp.wait_for(1)
    assert message["To"] == "newbie@alpha.example"
    assert "Alpha Advisory" in message["Subject"]
    path = link_in(message).removeprefix("http://127.0.0.1:8000")

    client.logout()
    page = client.get(path)
    assert page.status_code == 200 and b"Create your account" in page.content
    secret = "a-long-passphrase-9"
    response = client.post(path, {"name": "Nina", "password1": secret, "password2": secret})
    assert response.status_code == 302
    membership = Membership.objects.get(organization=cast.org, user__email="newbie@alpha.example")
    assert membership.role == Role.CONSULTANT
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="member.joined").exists()

    # The link works once.
    client.logout()
    assert client.get(path).status_code == 410


def test_invitation_to_an_existing_member_is_refused_and_nothing_is_written(cast, client, smtp):
    before = Invitation.objects.for_org(cast.org).count()
    response = invite(client, cast, email="CARL@alpha.example")
    assert response.status_code == 200
    assert b"already a member" in response.content
    assert Invitation.objects.for_org(cast.org).count() == before
    assert smtp.messages == []


def test_expired_and_tampered_invitations(cast, client):
    invitation, token = Invitation.new(
        organization=cast.org, email="late@alpha.example", role="viewer", invited_by=cast.owner
    )
    Invitation.objects.for_org(cast.org).filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = client.get(reverse("accounts:invitation-accept", args=[token]))
    assert response.status_code == 410 and b"expired" in response.content
    response = client.get(reverse("accounts:invitation-accept", args=[token[:-2] + "xx"]))
    assert response.status_code == 404 and b"not valid" in response.content


def test_existing_user_signs_in_then_accepts(cast, client):
    invitation, token = Invitation.new(
        organization=cast.org, email=cast.outsider.email, role="viewer", invited_by=cast.owner
    )
    path = reverse("accounts:invitation-accept", args=[token])
    assert b"Sign in to accept" in client.get(path).content
    client.force_login(cast.outsider)
    assert client.post(path).status_code == 302
    assert Membership.objects.get(organization=cast.org, user=cast.outsider).role == Role.VIEWER
    # The outsider now belongs to two organizations and can switch between them.
    assert client.get(reverse("accounts:org-home", args=[cast.org.slug])).status_code == 200
    assert client.get(reverse("accounts:org-home", args=[cast.other_org.slug])).status_code == 200
    orgs = client.get(reverse("accounts:org-list")).content.decode()
    assert "Alpha Advisory" in orgs and "Beta Partners" in orgs


def test_last_owner_cannot_be_removed_or_demoted(cast, client):
    client.force_login(cast.owner)
    owner = Membership.objects.get(organization=cast.org, user=cast.owner)
    response = client.post(
        reverse("accounts:member-role", args=[cast.org.slug, owner.uuid]), {"role": "viewer"}, follow=True
    )
    assert b"at least one owner" in response.content
    response = client.post(reverse("accounts:member-remove", args=[cast.org.slug, owner.uuid]), follow=True)
    assert b"at least one owner" in response.content
    owner.refresh_from_db()
    assert owner.role == Role.OWNER

    # With a second owner, the first may step down.
    carl = Membership.objects.get(organization=cast.org, user=cast.consultant)
    client.post(reverse("accounts:member-role", args=[cast.org.slug, carl.uuid]), {"role": "owner"})
    client.post(reverse("accounts:member-role", args=[cast.org.slug, owner.uuid]), {"role": "consultant"})
    owner.refresh_from_db()
    assert owner.role == Role.CONSULTANT


def test_remove_member_asks_for_confirmation(cast, client):
    client.force_login(cast.owner)
    carl = Membership.objects.get(organization=cast.org, user=cast.consultant)
    url = reverse("accounts:member-remove", args=[cast.org.slug, carl.uuid])
    page = client.get(url)
    assert b"Remove carl@alpha.example?" in page.content
    assert Membership.objects.for_org(cast.org).filter(pk=carl.pk).exists()
    client.post(url)
    assert not Membership.objects.for_org(cast.org).filter(pk=carl.pk).exists()


@pytest.mark.parametrize("who", ["consultant", "viewer"])
def test_only_owners_manage_members(cast, client, who):
    client.force_login(getattr(cast, who))
    carl = Membership.objects.get(organization=cast.org, user=cast.consultant)
    response = client.post(reverse("accounts:member-role", args=[cast.org.slug, carl.uuid]), {"role": "owner"})
    assert response.status_code == 403
    carl.refresh_from_db()
    assert carl.role == Role.CONSULTANT


def test_unknown_org_slug_and_malformed_uuid_are_404(cast, client):
    client.force_login(cast.owner)
    assert client.get("/o/no-such-org/").status_code == 404
    assert client.get(f"/o/{cast.org.slug}/clients/not-a-uuid/").status_code == 404
    assert client.get(f"/o/{cast.org.slug}/clients/{cast.other_client.uuid}/").status_code == 404


def test_password_reset_by_email(cast, client, smtp):
    response = client.post(reverse("password_reset"), {"email": cast.owner.email})
    assert response.status_code == 302
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "Reset your GTM Ops password"
    path = re.search(r"http://testserver(\S+)", body_text(message)).group(1)
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0],
        {
            "new_password1": "brand-new-secret-42",
            "new_password2": "brand-new-secret-42",
        },
    )
    assert response.status_code == 302
    assert client.login(username=cast.owner.email, password="brand-new-secret-42")


def test_login_with_email(cast, client):
    response = client.post(reverse("login"), {"username": "ALICE@alpha.example", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert client.get("/", follow=True).redirect_chain[-1][0] == f"/o/{cast.org.slug}/"
