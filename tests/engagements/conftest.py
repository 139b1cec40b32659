"""The engagements every test module here starts from."""

from datetime import date

import pytest

from engagements import progression
from engagements.models import Stakeholder


@pytest.fixture
def engagement(cast, library, settings, tmp_path):
    """A GTM Lifecycle engagement for Acme, Carl consulting, Maya approving; its files kept apart."""
    settings.MEDIA_ROOT = tmp_path
    return progression.create_engagement(
        client=cast.client,
        playbook_version=library["gtm-lifecycle"],
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Approver")],
    )


@pytest.fixture
def approvers_engagement(cast, library, settings, tmp_path):
    """A GTM Lifecycle engagement whose definitions two people approve: Maya for marketing and Tom Becker (VP
    Sales) for sales; Carl is the architect. `.cast` and `.tom` reach the people; its files are kept apart."""
    settings.MEDIA_ROOT = tmp_path
    tom = Stakeholder.objects.create(
        organization=cast.org,
        client=cast.client,
        name="Tom Becker",
        email="tom@acme.example",
        title="VP Sales",
        department="sales",
    )
    e = progression.create_engagement(
        client=cast.client,
        playbook_version=library["gtm-lifecycle"],
        name="Lifecycle",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        team=[(cast.consultant, "architect")],
        stakeholders=[(cast.stakeholder, "Marketing approver"), (tom, "Sales approver")],
    )
    e.cast, e.tom = cast, tom
    return e
