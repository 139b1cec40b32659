import contextlib
import re
from datetime import timedelta

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from engagements.models import PortalLink
from tests.conftest import body_text

# Emails leave in transaction.on_commit callbacks: these tests really commit.
pytestmark = pytest.mark.django_db(transaction=True)


def request_link(client, email):
    return client.post(reverse("portal:login"), {"email": email})


def link_path(message) -> str:
    return re.search(r"http://127\.0\.0\.1:8000(/portal/auth/\S+/)", body_text(message)).group(1)


def test_stakeholder_signs_in_with_an_emailed_link_once(cast, client, smtp):
    response = request_link(client, "Maya@Acme.example")
    assert b"Check your email" in response.content
    [message] = smtp.wait_for(1)
    assert message["To"] == "maya@acme.example"
    assert "Acme Robotics" in message["Subject"]
    assert "expires in 30 minutes" in body_text(message)
    path = link_path(message)

    # Opening the link does not use it (mail scanners prefetch links); the button does.
    assert client.get(path).status_code == 200
    response = client.post(path)
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")
    home = client.get(reverse("portal:home")).content.decode()
    assert "Welcome, Maya Patel" in home and "Acme Robotics" in home

    # The portal identity does not open consultant pages.
    assert client.get(f"/o/{cast.org.slug}/").status_code == 302

    other = client_factory_new()
    response = other.post(path)
    assert response.status_code == 400 and b"already been used" in response.content


def client_factory_new():
    from django.test import Client

    return Client()


def test_unknown_address_gets_the_same_answer_and_no_email(cast, client, smtp):
    response = request_link(client, "stranger@nowhere.example")
    assert b"Check your email" in response.content
    assert smtp.messages == []
    assert not PortalLink.objects.across_tenants("test").exists()


def test_a_new_request_invalidates_older_links(cast, client, smtp):
    request_link(client, cast.stakeholder.email)
    request_link(client, cast.stakeholder.email)
    first, second = smtp.wait_for(2)
    response = client.post(link_path(first))
    assert response.status_code == 400 and b"newer sign-in link" in response.content
    assert client.post(link_path(second)).status_code == 302


def test_expired_link_is_refused(cast, client, smtp):
    request_link(client, cast.stakeholder.email)
    [message] = smtp.wait_for(1)
    PortalLink.objects.across_tenants("test").update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(link_path(message))
    assert response.status_code == 400 and b"expired" in response.content
    assert client.get(reverse("portal:home")).status_code == 302


def test_signature_older_than_thirty_minutes_is_refused_even_if_the_row_says_otherwise(cast, client, settings):
    link = PortalLink.objects.create(
        organization=cast.org, stakeholder=cast.stakeholder, expires_at=timezone.now() + timedelta(hours=1)
    )
    signer = signing.TimestampSigner(salt="engagements.portal-link")
    stale = signer.sign(str(link.nonce))
    settings.PORTAL_LINK_MAX_AGE = -1  # every signature is now too old
    response = client.post(reverse("portal:redeem", args=[stale]))
    assert response.status_code == 400 and b"expired" in response.content


def test_tampered_link_is_refused(cast, client, smtp):
    request_link(client, cast.stakeholder.email)
    path = link_path(smtp.wait_for(1)[0])
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]
    response = client.post(tampered)
    assert response.status_code == 400 and b"not valid" in response.content
    assert PortalLink.objects.across_tenants("test").get().used_at is None


def test_consultant_emails_a_portal_link(cast, client, smtp):
    client.force_login(cast.consultant)
    url = reverse("engagements:stakeholder-send-link", args=[cast.org.slug, cast.client.uuid, cast.stakeholder.uuid])
    assert client.post(url).status_code == 302
    [message] = smtp.wait_for(1)
    assert message["To"] == cast.stakeholder.email


def test_disabled_stakeholder_gets_no_link(cast, client, smtp):
    cast.stakeholder.portal_enabled = False
    cast.stakeholder.save()
    request_link(client, cast.stakeholder.email)
    assert smtp.messages == []


@pytest.fixture
def fresh_counts():
    """Link requests are counted in the cache too, which outlives each test's database; start and end empty."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def test_the_fourth_request_in_an_hour_sends_nothing_and_the_latest_link_still_works(cast, client, smtp, fresh_counts):
    for _ in range(3):
        request_link(client, cast.stakeholder.email)
    assert len(smtp.wait_for(3)) == 3
    response = request_link(client, cast.stakeholder.email)
    assert response.status_code == 200 and b"Check your email" in response.content  # the same neutral page
    assert len(smtp.messages) == 3 and PortalLink.objects.across_tenants("test").count() == 3  # no email, no link
    assert client.post(link_path(smtp.messages[-1])).status_code == 302
    # Another stakeholder has links of their own.
    request_link(client, cast.sibling_stakeholder.email)
    assert smtp.wait_for(4)[-1]["To"] == cast.sibling_stakeholder.email


@contextlib.contextmanager
def broker_down():
    """Queuing a task fails as it does when Redis, the broker, is down: nothing listens at the broker's address."""
    from gtm_ops.celery import app
    from tests.conftest import free_port

    def fresh_pools():  # the app keeps its pools of the broker address it first used: look them up again
        app._pool = None
        app.amqp._producer_pool = None

    working = app.conf.broker_url
    fresh_pools()
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    app.conf.task_always_eager = False
    try:
        yield
    finally:
        app.conf.task_always_eager = True
        app.conf.broker_url = working
        fresh_pools()


def test_with_the_broker_down_nothing_changes_and_the_page_says_to_try_again(cast, client, smtp, fresh_counts):
    request_link(client, cast.stakeholder.email)
    [message] = smtp.wait_for(1)

    with broker_down():
        for _ in range(3):
            response = request_link(client, cast.stakeholder.email)
            assert response.status_code == 503 and b"try again in a minute" in response.content
    assert PortalLink.objects.across_tenants("test").count() == 1  # no new link was kept...
    assert len(smtp.messages) == 1
    assert client.post(link_path(message)).status_code == 302  # ...the one already emailed still works...
    # ...and the failed requests did not use up the hour's three.
    request_link(client, cast.stakeholder.email)
    request_link(client, cast.stakeholder.email)
    assert len(smtp.wait_for(3)) == 3
    assert client.post(link_path(smtp.messages[-1])).status_code == 302


class _DaysAgoSigner(signing.TimestampSigner):
    """Signs as if it were `days` ago: how an old emailed link looks when it is finally clicked."""

    def __init__(self, days, **kwargs):
        super().__init__(**kwargs)
        self.days = days

    def timestamp(self):
        import time

        return signing.b62_encode(int(time.time() - self.days * 86400))


def test_the_signoff_email_signs_in_once_straight_to_the_version_for_seven_days(cast, client, smtp):
    from datetime import date

    from engagements import definitions, progression
    from playbooks.models import Playbook
    from tests.conftest import ensure_library

    ensure_library()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Approver")],
    )
    requested = PortalLink.objects.create(
        organization=cast.org, stakeholder=cast.stakeholder, expires_at=timezone.now() + timedelta(minutes=30)
    )
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    [message] = smtp.wait_for(1)
    body = body_text(message)
    assert "/portal/login/" not in body.split("Review and sign", 1)[1].split("\n", 1)[0]
    path = re.search(r"http://127\.0\.0\.1:8000(/portal/auth/\S+)", body).group(1)
    target = reverse("portal:signoff", kwargs={"definition_version_uuid": version.uuid})
    assert path.endswith(f"?next={target}")
    assert "works once, for 7 days" in body

    link = PortalLink.objects.across_tenants("test").exclude(pk=requested.pk).get()
    assert abs(link.expires_at - link.created_at - timedelta(days=7)) < timedelta(seconds=5)
    requested.refresh_from_db()
    assert requested.superseded_at is not None  # the newest link is the one that works

    response = client.post(path)
    assert response.status_code == 302 and response["Location"] == target
    assert "Sign off Lifecycle v1" in client.get(target).content.decode()
    again = client_factory_new().post(path)
    assert again.status_code == 400 and b"already been used" in again.content

    # Three days after it was emailed, an unused sign-off link still works; a requested link of that age does not.
    old = PortalLink.objects.create(
        organization=cast.org, stakeholder=cast.stakeholder, expires_at=timezone.now() + timedelta(days=4)
    )
    token = _DaysAgoSigner(3, salt="engagements.portal-link.signoff").sign(str(old.nonce))
    stale_request = _DaysAgoSigner(3, salt="engagements.portal-link").sign(str(old.nonce))
    assert client_factory_new().post(reverse("portal:redeem", args=[stale_request])).status_code == 400
    assert client_factory_new().post(reverse("portal:redeem", args=[token])).status_code == 302
    # Eight days is past the lifetime the token itself carries.
    expired = _DaysAgoSigner(8, salt="engagements.portal-link.signoff").sign(str(old.nonce))
    response = client_factory_new().post(reverse("portal:redeem", args=[expired]))
    assert response.status_code == 400 and b"expired" in response.content
