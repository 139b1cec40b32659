from datetime import date

import pytest

from engagements import progression
from engagements.portal_access import SESSION_KEY


@pytest.fixture
def engagement(cast, library, settings, tmp_path):
    """A GTM Lifecycle engagement for Acme with Maya named; client uploads kept in the test's own directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return progression.create_engagement(
        client=cast.client,
        playbook_version=library["gtm-lifecycle"],
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Approver")],
    )


def as_stakeholder(client, stakeholder):
    session = client.session
    session[SESSION_KEY] = str(stakeholder.uuid)
    session.save()
    return client
