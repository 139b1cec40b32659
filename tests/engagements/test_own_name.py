"""An engagement speaks in the name of the organization running it, never of the consultancy whose method
document the playbook was written from (seed 001 says "LeanScale-recommended", "LeanScale → Customer")."""

from datetime import date

import pytest
from django.db import models

from accounts.models import Membership, Organization, Role
from engagements import progression
from engagements.models import ChecklistItem, ClientAccount, Gate, GateCheckpoint, PhaseState, SubPhaseState
from playbooks.loader import load_library
from reporting import schedules
from reporting.models import ScheduledTask

# The consultancies the library's seeds were written by.
SOURCE_NAMES = ("LeanScale", "prospr")
# Where an engagement stores text, and the lookup from each row to its engagement.
STORED = {
    PhaseState: "engagement",
    SubPhaseState: "engagement",
    ChecklistItem: "engagement",
    Gate: "engagement",
    GateCheckpoint: "gate__engagement",
    ScheduledTask: "schedule__engagement",
}


def texts(model, **scope) -> list[str]:
    """Every text the engagement stored in `model`: each char and text field of each of its rows."""
    fields = [f.name for f in model._meta.get_fields() if isinstance(f, models.CharField | models.TextField)]
    return [value for row in model.objects.filter(**scope).values_list(*fields) for value in row if value]


def routes():
    """Every way a library playbook is instantiated: each shape (or none) and each engagement type."""
    for pb in load_library():
        for shape in [""] + [s.key for s in pb.engagement_shapes]:
            for engagement_type in ("single_project", "dedicated"):
                route = f"{pb.key}-{shape or 'no-shape'}-{engagement_type}"
                yield pytest.param(pb.key, shape, engagement_type, id=route)


@pytest.fixture
def northwind(db, cast):
    org = Organization.objects.create(name="Northwind Advisory", slug="northwind")
    Membership.objects.create(organization=org, user=cast.consultant, role=Role.CONSULTANT)
    return ClientAccount.objects.create(organization=org, name="Contoso")


@pytest.mark.parametrize(("playbook", "shape", "engagement_type"), list(routes()))
def test_no_engagement_text_names_the_methods_source_consultancy(
    cast, library, northwind, playbook, shape, engagement_type
):
    engagement = progression.create_engagement(
        client=northwind,
        playbook_version=library[playbook],
        name="Northwind for Contoso",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        shape=shape,
        engagement_type=engagement_type,
    )
    if engagement.spec.maintenance is not None:
        schedules.start_schedule(engagement=engagement, actor=cast.consultant, live_since=date(2026, 11, 1))
    stored = [text for model, lookup in STORED.items() for text in texts(model, **{lookup: engagement})]
    assert len(stored) > 50  # the enumeration read the engagement's texts
    named = [text for text in stored if any(name.lower() in text.lower() for name in SOURCE_NAMES)]
    assert named == []


def test_the_seeds_words_say_the_organizations_name_where_the_source_said_its_own(cast, library, northwind):
    engagement = progression.create_engagement(
        client=northwind,
        playbook_version=library["gtm-lifecycle"],
        name="Lifecycle",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    assert engagement.sub_phases.get(key="4c").name == "External Handoff (Northwind Advisory → Customer)"
    item = engagement.checklist.get(key="review-definition-alignment-doc")
    assert "pre-filled with Northwind Advisory-recommended stage definitions" in " ".join(item.text.split())
