"""A real Celery worker process consuming from Redis sends an invitation through a real SMTP server."""

import re

from django.urls import reverse

from accounts.models import Invitation
from tests.conftest import body_text


def test_worker_sends_the_invitation_email(cast, client, celery_worker, smtp):
    client.force_login(cast.owner)
    response = client.post(
        reverse("accounts:members", args=[cast.org.slug]), {"email": "worker@alpha.example", "role": "viewer"}
    )
    assert response.status_code == 302
    [message] = smtp.wait_for(1, timeout=60)
    assert message["To"] == "worker@alpha.example"
    token = re.search(r"/invitations/([^/\s]+)/", body_text(message)).group(1)
    assert Invitation.find(token).email == "worker@alpha.example"
