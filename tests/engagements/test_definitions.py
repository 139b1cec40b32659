"""Definition alignment: versions sealed by hash, sign-off, contested items, the gate link, tamper evidence."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts.models import DomainError
from engagements import definitions
from engagements.models import (
    CheckpointStatus,
    DecisionLogEntry,
    DefinitionTerm,
    DefinitionVersion,
    Signature,
    SignoffRequest,
    StageDefinition,
)
from engagements.tasks import send_signoff_reminders
from tests.conftest import body_text

# Emails leave in transaction.on_commit callbacks: these tests really commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def engagement(approvers_engagement):
    return approvers_engagement


def answers(version, value="yes", **overrides):
    return {key: overrides.get(key, value) for key, _ in version.items}


def test_draft_is_prefilled_from_the_playbook(engagement):
    terms = list(DefinitionTerm.objects.for_org(engagement.organization).filter(engagement=engagement))
    assert [t.term for t in terms][:3] and any(t.term.startswith("MQL") or "MQL" in t.term for t in terms)
    assert all(t.definition for t in terms)
    assert StageDefinition.objects.filter(engagement=engagement).exists()


def test_publish_seals_a_version_with_a_hash_over_canonical_content(engagement):
    cast = engagement.cast
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    assert version.number == 1 and len(version.content_hash) == 64
    assert version.content_hash == definitions.seal(definitions.draft_content(engagement))
    with pytest.raises(DomainError, match="Nothing changed since v1"):
        definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    with pytest.raises(DomainError, match="never changes"):
        version.content["terms"][0]["definition"] = "changed"
        version.save()


def test_signers_approve_every_item_then_the_gate_checkpoint_checks_itself(engagement, smtp):
    cast = engagement.cast
    version = definitions.publish(
        engagement=engagement,
        signers=[cast.stakeholder, engagement.tom],
        actor=cast.consultant,
        approvers={
            "VP Marketing": cast.stakeholder,
            "VP Sales": engagement.tom,
            "VP RevOps": "Acme has no RevOps lead yet.",
            "VP CS": "CS joins at enablement.",
        },
    )
    requests = smtp.wait_for(2)
    assert {m["To"] for m in requests} == {"maya@acme.example", "tom@acme.example"}
    assert version.content_hash in body_text(requests[0])

    definitions.sign(version=version, stakeholder=cast.stakeholder, decisions=answers(version), comments={})
    assert not definitions.definitions_signed(engagement)
    definitions.sign(version=version, stakeholder=engagement.tom, decisions=answers(version), comments={})
    assert definitions.definitions_signed(engagement)

    checkpoint = engagement.phases.get(key="strategy").gate.checkpoints.get(auto="definitions_signed")
    assert checkpoint.status == CheckpointStatus.CHECKED
    signed_mail = smtp.wait_for(3)[2]
    assert "signed the definitions (v1)" in signed_mail["Subject"]
    assert "carl@alpha.example" in signed_mail["X-Envelope-To"]

    signature = Signature.objects.get(version=version, stakeholder=engagement.tom)
    assert signature.version_hash == version.content_hash
    with pytest.raises(DomainError, match="append-only"):
        signature.save()
    with pytest.raises(DomainError, match="append-only"):
        Signature.objects.filter(pk=signature.pk).update(decisions={})


def test_a_no_contests_the_item_and_puts_a_decision_card_on_the_board(engagement, smtp):
    cast = engagement.cast
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    first_key, first_label = version.items[0]
    with pytest.raises(DomainError, match="Say what should change"):
        definitions.sign(
            version=version, stakeholder=cast.stakeholder, decisions=answers(version, **{first_key: "no"}), comments={}
        )
    definitions.sign(
        version=version,
        stakeholder=cast.stakeholder,
        decisions=answers(version, **{first_key: "no"}),
        comments={first_key: "Add a 90-day recency window."},
    )
    status = definitions.version_status(version)
    assert status.label == "contested" and status.items[0].contested
    card = DecisionLogEntry.objects.get(engagement=engagement)
    assert card.status == "needed" and first_label in card.title and "90-day" in card.context
    contested_mail = smtp.wait_for(2)[1]
    assert "asked for changes" in contested_mail["Subject"] and "90-day" in body_text(contested_mail)
    with pytest.raises(DomainError, match="already answered"):
        definitions.sign(version=version, stakeholder=cast.stakeholder, decisions=answers(version), comments={})


def test_a_new_version_needs_new_signatures_and_the_old_one_cannot_be_signed(engagement, smtp):
    cast = engagement.cast
    v1 = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    definitions.sign(version=v1, stakeholder=cast.stakeholder, decisions=answers(v1), comments={})
    assert definitions.definitions_signed(engagement)

    term = DefinitionTerm.objects.filter(engagement=engagement).first()
    term.definition += " Re-scored every 30 days."
    term.save()
    assert definitions.has_unpublished_changes(engagement)
    v2 = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    assert not definitions.definitions_signed(engagement)
    assert definitions.awaiting(cast.stakeholder) == [v2]
    [change] = definitions.diff(v1.content, v2.content)
    assert (change.kind, change.key, change.change) == ("term", term.key, "changed")
    assert change.fields[0][0] == "definition" and "30 days" in change.fields[0][2]


def test_only_required_signers_of_this_client_may_sign(engagement):
    cast = engagement.cast
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    with pytest.raises(DomainError, match="not asked"):
        definitions.sign(version=version, stakeholder=engagement.tom, decisions=answers(version), comments={})
    with pytest.raises(DomainError, match="Answer every item"):
        definitions.sign(version=version, stakeholder=cast.stakeholder, decisions={}, comments={})
    with pytest.raises(DomainError, match="not a stakeholder"):
        definitions.publish(engagement=engagement, signers=[cast.sibling_stakeholder], actor=cast.consultant)
    assert not Signature.objects.across_tenants("test").exists()


def test_broken_references_are_refused(engagement):
    cast = engagement.cast
    term = DefinitionTerm.objects.filter(engagement=engagement).first()
    term.stage_keys = ["no-such-stage"]
    term.save()
    with pytest.raises(DomainError, match="no-such-stage"):
        definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    assert not DefinitionVersion.objects.across_tenants("test").exists()


def test_verify_signoffs_reports_tampering(engagement):
    cast = engagement.cast
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    definitions.sign(version=version, stakeholder=cast.stakeholder, decisions=answers(version), comments={})
    out = StringIO()
    call_command("verify_signoffs", stdout=out)
    assert "All 1 versions and 1 signatures verify" in out.getvalue()

    # Someone edits the signed definitions behind the application's back.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE engagements_definitionversion SET content = %s WHERE id = %s",
            ['{"terms": [], "stages": []}', version.pk],
        )
    err = StringIO()
    with pytest.raises(CommandError, match="mismatch"):
        call_command("verify_signoffs", stdout=StringIO(), stderr=err)
    assert "Lifecycle v1" in err.getvalue() and "not the sealed" in err.getvalue()


def test_unanswered_signers_get_one_reminder_after_three_days(engagement, smtp):
    cast = engagement.cast
    version = definitions.publish(
        engagement=engagement, signers=[cast.stakeholder, engagement.tom], actor=cast.consultant
    )
    smtp.wait_for(2)
    definitions.sign(version=version, stakeholder=engagement.tom, decisions=answers(version), comments={})
    send_signoff_reminders()
    assert len(smtp.messages) == 2  # too early
    SignoffRequest.objects.across_tenants("test").update(created_at=timezone.now() - timedelta(days=3, minutes=1))
    send_signoff_reminders()
    send_signoff_reminders()  # a duplicate beat tick
    reminders = [m for m in smtp.wait_for(3) if m["Subject"].startswith("Reminder")]
    assert [m["To"] for m in reminders] == ["maya@acme.example"]
    assert len(smtp.messages) == 3


CONTENT = {
    "terms": [{"key": "mql", "term": "MQL", "definition": "Score ≥ 60 and ICP fit", "notes": "", "stage_keys": []}],
    "stages": [
        {
            "key": "lead-mql",
            "name": "MQL",
            "domain": "lead",
            "order": 3,
            "entry_criteria": "Score ≥ 60",
            "exit_criteria": "",
            "transition_owner": "Marketing",
            "golden": True,
            "crm_object": "Lead",
            "crm_field": "Status",
            "crm_values": ["MQL"],
            "term_keys": ["mql"],
        }
    ],
}
# The seal of CONTENT. If this changes, every signature ever collected stops verifying: the canonical
# serialisation (sorted keys, compact separators, UTF-8) must stay as it is across runs and databases.
CONTENT_SEAL = "0b13eaad97bb54173e37a8ce17db5faf05c9ca61388cb0d2bd297413c5ac49af"


def test_the_seal_is_stable_across_runs_and_databases(engagement):
    import json

    assert definitions.seal(CONTENT) == CONTENT_SEAL  # the same bytes in every run, on every machine
    assert definitions.seal(CONTENT) == definitions.seal(json.loads(json.dumps(CONTENT)))  # a JSON round trip
    reordered = {"stages": [dict(reversed(list(CONTENT["stages"][0].items())))], "terms": CONTENT["terms"]}
    assert definitions.seal(reordered) == definitions.seal(CONTENT)  # key order does not matter
    # What the database gives back (jsonb reorders keys) seals the same as what was published.
    cast = engagement.cast
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    version.refresh_from_db()
    assert definitions.seal(version.content) == version.content_hash


def test_the_seal_changes_with_any_change(engagement):
    import copy

    base = definitions.seal(CONTENT)
    for path, value in [
        (("terms", 0, "definition"), "Score ≥ 61 and ICP fit"),
        (("terms", 0, "notes"), " "),
        (("stages", 0, "crm_values"), ["MQL", "Marketing Qualified"]),
        (("stages", 0, "golden"), False),
        (("stages", 0, "order"), 4),
    ]:
        changed = copy.deepcopy(CONTENT)
        changed[path[0]][path[1]][path[2]] = value
        assert definitions.seal(changed) != base, path


def test_two_stages_cannot_claim_the_same_crm_value(engagement):
    cast = engagement.cast
    stages = list(StageDefinition.objects.filter(engagement=engagement)[:2])
    for stage in stages:
        stage.crm_object, stage.crm_field, stage.crm_values = "Lead", "Status", ["Working"]
        stage.save()
    with pytest.raises(DomainError, match="both map to Lead.Status = 'Working'"):
        definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    assert not DefinitionVersion.objects.across_tenants("test").exists()


def test_signing_a_superseded_version_is_refused(engagement):
    cast = engagement.cast
    v1 = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    term = DefinitionTerm.objects.filter(engagement=engagement).first()
    term.notes = "Reviewed with Sales"
    term.save()
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    with pytest.raises(DomainError, match="replaced by v2"):
        definitions.sign(version=v1, stakeholder=cast.stakeholder, decisions=answers(v1), comments={})
    assert not Signature.objects.across_tenants("test").exists()
