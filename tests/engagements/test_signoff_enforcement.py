"""Sign-off enforces what it promises: the sign-off checkpoint waits for every approver role the playbook names,
the gate panel lists who signed and who is missing, a later signed version resolves a contest, and publishing
asks for a confirmation that names the signers and the item count.

Real views and services on PostgreSQL, a real SMTP server on loopback. The roles expected below are read from
the playbook's YAML file, not from the code under test.
"""

import re
from datetime import date
from pathlib import Path

import pytest
import yaml
from django.urls import reverse

from accounts.models import DomainError
from engagements import definitions, progression
from engagements.models import (
    CheckpointStatus,
    Contest,
    DecisionLogEntry,
    DefinitionTerm,
    DefinitionVersion,
    StageDefinition,
    Stakeholder,
    VersionApprover,
)
from playbooks.models import Playbook
from tests.conftest import ensure_library

pytestmark = pytest.mark.django_db(transaction=True)

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks" / "library"
ROLES = yaml.safe_load((LIBRARY / "gtm-lifecycle.yaml").read_text())["definition_alignment"]["approvers"]


@pytest.fixture
def engagement(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    ensure_library()
    people = {
        "VP Sales": Stakeholder.objects.create(
            organization=cast.org, client=cast.client, name="Tom Becker", email="tom@acme.example", title="VP Sales"
        ),
        "VP RevOps": Stakeholder.objects.create(
            organization=cast.org, client=cast.client, name="Rita Ops", email="rita@acme.example", title="VP RevOps"
        ),
        "VP CS": Stakeholder.objects.create(
            organization=cast.org, client=cast.client, name="Cas Success", email="cas@acme.example", title="VP CS"
        ),
        "VP Marketing": cast.stakeholder,  # Maya Patel, VP Marketing
    }
    e = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        team=[(cast.consultant, "architect")],
        stakeholders=[(s, role) for role, s in people.items()],
    )
    e.cast, e.people = cast, people
    return e


def yes(version, **overrides):
    return {key: overrides.get(key, "yes") for key, _ in version.items}


def checkpoint(engagement):
    return engagement.phases.get(key="strategy").gate.checkpoints.get(auto="definitions_signed")


def page(client, engagement) -> str:
    org = engagement.cast.org.slug
    html = client.get(reverse("engagements:engagement-detail", args=[org, engagement.uuid])).content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_playbook_names_four_approver_roles():
    assert ROLES == ["VP RevOps", "VP Marketing", "VP Sales", "VP CS"]


def test_one_of_four_approvers_signing_keeps_the_checkpoint_open_and_lists_the_missing_three(client, engagement):
    cast, people = engagement.cast, engagement.people
    version = definitions.publish(
        engagement=engagement, signers=list(people.values()), approvers=dict(people), actor=cast.consultant
    )
    assert {a.role: a.stakeholder for a in VersionApprover.objects.filter(version=version)} == people

    definitions.sign(version=version, stakeholder=people["VP Marketing"], decisions=yes(version), comments={})
    assert checkpoint(engagement).status == CheckpointStatus.OPEN
    with pytest.raises(DomainError, match="every approver role the playbook names"):
        progression.resolve_checkpoint(checkpoint=checkpoint(engagement), action="check", actor=cast.consultant)

    client.force_login(cast.consultant)
    text = page(client, engagement)
    assert "1 of 4 approvers signed" in text
    assert "Signed: VP Marketing (Maya Patel)" in text
    missing = text[text.index("Missing:"):]
    for role in ("VP RevOps", "VP Sales", "VP CS"):
        assert f"{role} ({people[role].name}) — not answered" in missing

    for role in ("VP RevOps", "VP Sales", "VP CS"):
        definitions.sign(version=version, stakeholder=people[role], decisions=yes(version), comments={})
    assert checkpoint(engagement).status == CheckpointStatus.CHECKED
    assert "signed by every approver" in page(client, engagement)


def test_the_consultants_chosen_signers_alone_do_not_satisfy_unassigned_roles(engagement):
    cast = engagement.cast
    # The case: only VP Marketing is asked (no mapping given); she approves everything.
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    definitions.sign(version=version, stakeholder=cast.stakeholder, decisions=yes(version), comments={})
    version.refresh_from_db()
    assert version.signed_at is not None  # every asked signer approved...
    assert checkpoint(engagement).status == CheckpointStatus.OPEN  # ...but three roles were never assigned
    unassigned = VersionApprover.objects.filter(version=version, stakeholder=None, waiver_reason="")
    assert sorted(unassigned.values_list("role", flat=True)) == sorted(set(ROLES) - {"VP Marketing"})


def test_a_waived_role_needs_a_reason_and_counts_as_settled(engagement):
    cast, people = engagement.cast, engagement.people
    with pytest.raises(DomainError, match="VP CS: choose the stakeholder who holds it, or waive it"):
        definitions.publish(
            engagement=engagement,
            signers=[cast.stakeholder],
            approvers={**{r: people[r] for r in ("VP RevOps", "VP Marketing", "VP Sales")}, "VP CS": "  "},
            actor=cast.consultant,
        )
    assert not DefinitionVersion.objects.across_tenants("test").exists()
    approvers = {**{r: people[r] for r in ("VP RevOps", "VP Marketing", "VP Sales")}, "VP CS": "CS starts in Q2."}
    version = definitions.publish(
        engagement=engagement, signers=[cast.stakeholder], approvers=approvers, actor=cast.consultant
    )
    # Role holders are asked to sign even when the consultant did not tick them.
    assert {r.stakeholder for r in version.requests.all()} == {people[r] for r in ("VP RevOps", "VP Marketing",
                                                                                     "VP Sales")}
    waived = VersionApprover.objects.get(version=version, role="VP CS")
    assert waived.waiver_reason == "CS starts in Q2." and waived.waived_by == cast.consultant
    for role in ("VP RevOps", "VP Marketing", "VP Sales"):
        definitions.sign(version=version, stakeholder=people[role], decisions=yes(version), comments={})
    assert checkpoint(engagement).status == CheckpointStatus.CHECKED


def test_a_new_version_reopens_the_checkpoint_the_previous_one_checked(engagement):
    cast, people = engagement.cast, engagement.people
    v1 = definitions.publish(
        engagement=engagement, signers=list(people.values()), approvers=dict(people), actor=cast.consultant
    )
    for s in people.values():
        definitions.sign(version=v1, stakeholder=s, decisions=yes(v1), comments={})
    assert checkpoint(engagement).status == CheckpointStatus.CHECKED
    term = DefinitionTerm.objects.filter(engagement=engagement).first()
    term.definition += " Within 90 days."
    term.save()
    definitions.publish(engagement=engagement, signers=list(people.values()), approvers=dict(people),
                        actor=cast.consultant)
    assert checkpoint(engagement).status == CheckpointStatus.OPEN


def test_a_contest_is_resolved_by_the_next_signed_version_and_the_gate_panel_says_so(client, engagement):
    cast, people = engagement.cast, engagement.people
    v1 = definitions.publish(
        engagement=engagement, signers=list(people.values()), approvers=dict(people), actor=cast.consultant
    )
    sal_key, sal_label = next((k, label) for k, label in v1.items if label == "SAL")
    definitions.sign(version=v1, stakeholder=cast.stakeholder, decisions=yes(v1, **{sal_key: "no"}),
                     comments={sal_key: "SAL needs a 48-hour acceptance window."})
    card = DecisionLogEntry.objects.get(engagement=engagement)
    assert card.title == "Contested in v1: SAL" and card.status == "needed"
    client.force_login(cast.consultant)
    assert "Contested in v1: SAL (Maya Patel) — open until a later version is signed" in page(client, engagement)

    kind, key = sal_key.split(":", 1)
    if kind == "term":
        DefinitionTerm.objects.filter(engagement=engagement, key=key).update(definition="Accepted within 48 hours.")
    else:
        StageDefinition.objects.filter(engagement=engagement, key=key).update(entry_criteria="Accepted in 48 hours.")
    v2 = definitions.publish(
        engagement=engagement, signers=list(people.values()), approvers=dict(people), actor=cast.consultant
    )
    for s in list(people.values())[:-1]:
        definitions.sign(version=v2, stakeholder=s, decisions=yes(v2), comments={})
    assert Contest.objects.across_tenants("test").get().resolved_by is None  # not resolved until v2 is fully signed
    definitions.sign(version=v2, stakeholder=list(people.values())[-1], decisions=yes(v2), comments={})

    contest = Contest.objects.across_tenants("test").get()
    assert contest.resolved_by == v2 and contest.card == card
    card.refresh_from_db()
    assert card.status == "decided" and "Resolved by v2" in card.decision
    html = client.get(reverse("engagements:engagement-detail", args=[cast.org.slug, engagement.uuid])).content.decode()
    version_url = reverse("engagements:definition-version", args=[cast.org.slug, engagement.uuid, v2.uuid])
    assert f'resolved by <a href="{version_url}">v2</a>' in html
    assert sal_label == "SAL"


def test_publishing_asks_for_a_confirmation_naming_signers_and_item_count(client, engagement, smtp):
    cast, people = engagement.cast, engagement.people
    client.force_login(cast.consultant)
    url = reverse("engagements:definitions-publish", args=[cast.org.slug, engagement.uuid])
    items = (DefinitionTerm.objects.filter(engagement=engagement).count()
             + StageDefinition.objects.filter(engagement=engagement).count())

    # Each role is preselected by its holder's title; one is cleared: it must be assigned or waived.
    form = client.get(url).content.decode()
    for role in ROLES:
        assert f'<option value="{people[role].uuid}" selected>' in form, role
    data = {"signers": [str(cast.stakeholder.uuid)], "approver-1": "", "approver-2": str(people["VP Marketing"].uuid),
            "approver-3": str(people["VP Sales"].uuid), "approver-4": "waive", "waiver-4": ""}
    refused = client.post(url, data).content.decode()
    assert "Choose who holds this role, or waive it with a reason." in refused
    assert "Say why this role is waived." in refused

    data.update({"approver-1": str(people["VP RevOps"].uuid), "waiver-4": "CS joins at enablement."})
    confirm = client.post(url, data)
    body = re.sub(r"\s+", " ", confirm.content.decode())
    assert confirm.status_code == 200 and not DefinitionVersion.objects.across_tenants("test").exists()
    assert f"<strong>{items} items</strong> will be sealed and sent to <strong>3 signers</strong>" in body
    for role in ("VP RevOps", "VP Marketing", "VP Sales"):
        assert f'{people[role].name} <span class="tag">{role}</span>' in body
    assert "<strong>VP CS</strong>: CS joins at enablement." in body
    token = re.search(r'name="confirm" value="([0-9a-f]{64})"', body).group(1)

    # The draft changes in another tab: the confirmation no longer matches, nothing is published.
    term = DefinitionTerm.objects.filter(engagement=engagement).first()
    term.notes = "Edited in another tab."
    term.save()
    stale = client.post(url, {**data, "confirm": token})
    assert stale.status_code == 400 and "changed since you confirmed" in stale.content.decode()
    assert not DefinitionVersion.objects.across_tenants("test").exists()

    fresh = re.search(r'name="confirm" value="([0-9a-f]{64})"', stale.content.decode()).group(1)
    published = client.post(url, {**data, "confirm": fresh})
    version = DefinitionVersion.objects.across_tenants("test").get()
    assert published.status_code == 302
    assert {r.stakeholder.email for r in version.requests.all()} == {"maya@acme.example", "rita@acme.example",
                                                                     "tom@acme.example"}
    assert len(version.items) == items
    assert {m["To"] for m in smtp.wait_for(3)} == {"maya@acme.example", "rita@acme.example", "tom@acme.example"}
