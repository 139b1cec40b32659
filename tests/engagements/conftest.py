from datetime import date

import pytest

from engagements import progression
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks


@pytest.fixture
def library(db) -> dict:
    """The library's playbooks, loaded: {key: latest version}."""
    load_library_playbooks()
    return {p.key: p.latest_version() for p in Playbook.objects.library()}


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
