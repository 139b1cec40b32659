"""Sign-off in the client portal: pending versions first, the Yes/No form, contested items, read-only
versions, the wall between clients, and deliverables to download.

Real views, real services, a real SMTP server on loopback; the stakeholder's portal session is set as the
magic link would set it (tests/engagements/test_portal.py covers the link itself).
"""

from datetime import date

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deliverables.models import Artifact, ArtifactStatus
from engagements import definitions, progression
from engagements.models import (
    DecisionLogEntry,
    DefinitionTerm,
    EngagementStakeholder,
    Signature,
    StageDefinition,
    Stakeholder,
)
from engagements.portal_access import SESSION_KEY
from engagements.views.portal_signoff import pending_signoffs
from tests.conftest import body_text

# Signing notifies consultants by email in transaction.on_commit callbacks: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def engagement(approvers_engagement):
    return approvers_engagement


@pytest.fixture
def published(engagement):
    cast = engagement.cast
    return definitions.publish(engagement=engagement, signers=[cast.stakeholder, engagement.tom], actor=cast.consultant)


def portal_client(stakeholder):
    from django.test import Client

    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Mobile Safari")
    session = client.session
    session[SESSION_KEY] = str(stakeholder.uuid)
    session.save()
    return client


def signoff_url(version) -> str:
    return reverse("portal:signoff", kwargs={"definition_version_uuid": version.uuid})


def answers(version, value="yes", **overrides):
    return {key: overrides.get(key, value) for key, _ in version.items}


def done_artifact(engagement, version, number=1) -> Artifact:
    cast = engagement.cast
    artifact = Artifact(
        organization=cast.org,
        engagement=engagement,
        kind="definition_alignment",
        number=number,
        source_version=version,
        status=ArtifactStatus.DONE,
        progress=100,
        pages=1,
        created_by=cast.consultant,
    )
    artifact.file.save(artifact.filename, ContentFile(b"%PDF-1.7 portal test"), save=False)
    artifact.save()
    return artifact


def test_the_signer_sees_the_pending_version_first_and_approves_every_item(smtp, engagement, published):
    cast = engagement.cast
    smtp.wait_for(2)  # the two sign-off requests
    maya = portal_client(cast.stakeholder)
    listing = maya.get(reverse("portal:signoff-list")).content.decode()
    assert listing.index("Waiting for you") < listing.index("Lifecycle</strong> · definitions v1")
    assert listing.index(signoff_url(published)) < listing.index("Signed definitions")
    assert f"{len(published.items)} items to answer" in listing

    form = maya.get(signoff_url(published))
    body = form.content.decode()
    assert form.status_code == 200 and 'id="signoff-form"' in body
    assert f"0 of {len(published.items)} answered" in body
    assert body.count('type="radio"') == 2 * len(published.items)
    assert "<legend>" in body and 'name="term:mql" value="no"' in body and 'name="comment:term:mql"' in body

    response = maya.post(signoff_url(published), answers(published))
    assert response.status_code == 302 and response["Location"] == signoff_url(published)
    done = maya.get(signoff_url(published)).content.decode()
    assert "your answers are recorded" in done and published.content_hash in done
    assert f"you approved all {len(published.items)} items" in done and "Waiting for 1 other signer" in done
    signature = Signature.objects.get(version=published, stakeholder=cast.stakeholder)
    assert signature.approved_all and signature.user_agent.startswith("Mozilla/5.0 (iPhone")
    assert signature.ip == "127.0.0.1"
    listing = maya.get(reverse("portal:signoff-list")).content.decode()
    assert "Nothing needs your sign-off right now." in listing and "Your answers, waiting on others" in listing

    tom = portal_client(engagement.tom)
    assert tom.post(signoff_url(published), answers(published)).status_code == 302
    published.refresh_from_db()
    assert published.signed_at is not None
    signed_mail = smtp.wait_for(3)[2]
    assert (
        "signed the definitions (v1)" in signed_mail["Subject"] and "carl@alpha.example" in signed_mail["X-Envelope-To"]
    )
    listing = tom.get(reverse("portal:signoff-list")).content.decode()
    assert "Nothing needs your sign-off right now." in listing and "Signed definitions" in listing
    assert f'title="{published.content_hash}"' in listing
    assert "Everyone has signed." in tom.get(signoff_url(published)).content.decode()


def test_a_no_without_a_comment_keeps_the_form_and_the_answers_with_an_error(engagement, published):
    maya = portal_client(engagement.cast.stakeholder)
    response = maya.post(signoff_url(published), answers(published, **{"term:mql": "no"}))
    body = response.content.decode()
    assert response.status_code == 400
    assert "Say what should change, so your consultant can fix it." in body
    assert "Your answers were not recorded yet:" in body and "still need" not in body
    assert '<li><a href="#item-4">MQL</a>: Say what should change' in body
    # The answers are kept: every Yes and the No are still checked, the comment box is required and linked.
    assert body.count('value="yes" required checked') == len(published.items) - 1
    assert 'name="term:mql" value="no" required checked' in body
    assert 'aria-invalid="true" aria-describedby="comment-' in body
    assert f"{len(published.items)} of {len(published.items)} answered</span>" in body
    assert '<span class="signoff-progress-no">1 change requested</span>' in body
    assert not Signature.objects.across_tenants("test").exists()

    partial = maya.post(signoff_url(published), {"term:mql": "yes"})
    body = partial.content.decode()
    assert partial.status_code == 400 and "Answer Yes or No." in body
    assert f"{len(published.items) - 1} items still need a Yes or No." in body
    assert "Go to the first, “Anonymous Visitor”" in body
    assert not Signature.objects.across_tenants("test").exists()


def test_a_no_with_a_comment_contests_the_version_and_puts_a_decision_card_up(smtp, engagement, published):
    smtp.wait_for(2)
    maya = portal_client(engagement.cast.stakeholder)
    data = answers(published, **{"term:mql": "no"})
    data["comment:term:mql"] = "Add a 90-day recency window."
    data["comment:term:sal"] = "Ignored: SAL is a Yes."
    assert maya.post(signoff_url(published), data).status_code == 302

    status = definitions.version_status(published)
    assert status.label == "contested"
    signature = Signature.objects.get(version=published)
    assert signature.comments == {"term:mql": "Add a 90-day recency window."}
    card = DecisionLogEntry.objects.get(engagement=engagement)
    assert card.status == "needed" and "MQL" in card.title and "90-day" in card.context
    mail = smtp.wait_for(3)[2]
    assert "asked for changes" in mail["Subject"] and "90-day" in body_text(mail)
    done = maya.get(signoff_url(published)).content.decode()
    assert "asked for a change on 1" in done and "Changes were requested" in done
    assert "You said No</span> “Add a 90-day recency window.”" in done


def test_answering_a_replaced_version_shows_why_at_the_top_and_keeps_the_answers(engagement, published):
    cast = engagement.cast
    maya = portal_client(cast.stakeholder)
    assert maya.get(signoff_url(published)).status_code == 200
    term = DefinitionTerm.objects.get(engagement=engagement, key="mql")
    term.definition += " Within 90 days."
    term.save()
    v2 = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)

    response = maya.post(signoff_url(published), answers(published, **{"term:sal": "no"}) | {"comment:term:sal": "x"})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Your answers were not recorded." in body and "v1 was replaced by v2" in body
    assert 'name="term:sal" value="no" required checked' in body and ">x</textarea>" in body
    assert not Signature.objects.across_tenants("test").exists()
    assert [v.pk for v in pending_signoffs(cast.stakeholder)] == [v2.pk]
    assert "This version was replaced by" in maya.get(signoff_url(published)).content.decode()


def test_stakeholders_of_another_client_or_organization_get_404(engagement, published):
    cast = engagement.cast
    artifact = done_artifact(engagement, published)
    for stakeholder in (cast.sibling_stakeholder, cast.other_stakeholder):
        client = portal_client(stakeholder)
        assert client.get(signoff_url(published)).status_code == 404
        assert client.post(signoff_url(published), answers(published)).status_code == 404
        download = reverse("portal:artifact-download", kwargs={"artifact_uuid": artifact.uuid})
        assert client.get(download).status_code == 404
        listing = client.get(reverse("portal:signoff-list")).content.decode()
        assert "Lifecycle" not in listing and cast.client.name not in listing
    assert not Signature.objects.across_tenants("test").exists()


def test_a_stakeholder_not_asked_to_sign_reads_the_version_and_cannot_post(engagement, published):
    cast = engagement.cast
    ann = Stakeholder.objects.create(
        organization=cast.org, client=cast.client, name="Ann Other", email="ann@acme.example"
    )
    # Not on the engagement at all: the version does not exist for her.
    assert portal_client(ann).get(signoff_url(published)).status_code == 404
    EngagementStakeholder.objects.create(organization=cast.org, engagement=engagement, stakeholder=ann, role="Observer")
    client = portal_client(ann)
    response = client.get(signoff_url(published))
    body = response.content.decode()
    assert response.status_code == 200 and "you are not asked to sign it" in body
    assert 'id="signoff-form"' not in body and 'type="radio"' not in body
    assert "The handoff point from Marketing to Sales" in body
    assert client.post(signoff_url(published), answers(published)).status_code == 403
    assert not Signature.objects.across_tenants("test").exists()
    assert "Nothing needs your sign-off right now." in client.get(reverse("portal:signoff-list")).content.decode()


def test_done_deliverables_of_the_own_client_are_listed_and_downloaded(engagement, published):
    cast = engagement.cast
    artifact = done_artifact(engagement, published)
    queued = Artifact.objects.create(
        organization=cast.org,
        engagement=engagement,
        kind="stage_reference_card",
        number=1,
        source_version=published,
        created_by=cast.consultant,
    )
    maya = portal_client(cast.stakeholder)
    listing = maya.get(reverse("portal:signoff-list")).content.decode()
    url = reverse("portal:artifact-download", kwargs={"artifact_uuid": artifact.uuid})
    assert url in listing and "Definition Alignment Document" in listing and "Stage Reference Card" not in listing
    response = maya.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="Acme-Robotics-definition-alignment-1.pdf"'
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    assert maya.get(reverse("portal:artifact-download", kwargs={"artifact_uuid": queued.uuid})).status_code == 404


def test_pending_signoffs_match_definitions_awaiting(engagement, published):
    cast = engagement.cast
    assert pending_signoffs(cast.stakeholder) == definitions.awaiting(cast.stakeholder) == [published]
    definitions.sign(version=published, stakeholder=cast.stakeholder, decisions=answers(published), comments={})
    assert pending_signoffs(cast.stakeholder) == definitions.awaiting(cast.stakeholder) == []
    assert pending_signoffs(engagement.tom) == definitions.awaiting(engagement.tom) == [published]
    assert pending_signoffs(cast.sibling_stakeholder) == []


def _count(client, path) -> int:
    client.get(path)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(ctx.captured_queries)


def test_portal_query_counts_do_not_grow_with_items_or_versions(engagement, cast):
    def shape(e, n, versions):
        DefinitionTerm.objects.filter(engagement=e).delete()
        StageDefinition.objects.filter(engagement=e).delete()
        for i in range(n):
            DefinitionTerm.objects.create(
                organization=cast.org, engagement=e, key=f"t{i}", term=f"T{i}", definition="D", order=i
            )
            StageDefinition.objects.create(
                organization=cast.org, engagement=e, key=f"s{i}", name=f"S{i}", domain="lead", order=i
            )
        result = []
        for v in range(versions):
            DefinitionTerm.objects.filter(engagement=e, key="t0").update(definition=f"D{v}")
            version = definitions.publish(engagement=e, signers=[cast.stakeholder], actor=cast.consultant)
            done_artifact(e, version, number=v + 1)
            result.append(version)
        return result

    maya = portal_client(cast.stakeholder)
    small = shape(engagement, 2, 1)
    few = [_count(maya, reverse("portal:signoff-list")), _count(maya, signoff_url(small[-1]))]
    big_engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=engagement.playbook_version,
        name="Big",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Approver")],
    )
    big_engagement.cast = cast
    big = shape(big_engagement, 30, 5)
    for v in big[:-1]:  # answered versions, each replaced by the next
        Signature.objects.create(
            organization=cast.org,
            version=v,
            stakeholder=cast.stakeholder,
            version_hash=v.content_hash,
            decisions=answers(v),
        )
    many = [_count(maya, reverse("portal:signoff-list")), _count(maya, signoff_url(big[-1]))]
    assert many == few, f"portal pages ran {few} queries for 4 items and 1 version, {many} for 60 items and 5"
    for version in (small[-1], big[-1]):  # the confirmation page too
        definitions.sign(version=version, stakeholder=cast.stakeholder, decisions=answers(version), comments={})
    assert _count(maya, signoff_url(small[-1])) == _count(maya, signoff_url(big[-1]))


def test_a_replaced_version_no_longer_waits_on_others(engagement, published):
    cast = engagement.cast
    first_key = published.items[0][0]
    definitions.sign(
        version=published,
        stakeholder=cast.stakeholder,
        decisions={k: ("no" if k == first_key else "yes") for k, _ in published.items},
        comments={first_key: "Needs a recency window"},
    )
    listing = portal_client(cast.stakeholder).get(reverse("portal:signoff-list")).content.decode()
    assert "Your answers, waiting on others" in listing
    term = DefinitionTerm.objects.filter(engagement=engagement).first()
    term.definition += " Within 90 days."
    term.save()
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    listing = portal_client(cast.stakeholder).get(reverse("portal:signoff-list")).content.decode()
    assert "Your answers, waiting on others" not in listing
    assert "v2" in listing  # the new version waits for Maya instead


# --------------------------------------------------------------------------------------------------
# Answers saved as they are given


def answer_url(version) -> str:
    return reverse("portal:signoff-answer", kwargs={"definition_version_uuid": version.uuid})


def test_answers_are_saved_as_given_survive_a_reload_and_are_sealed_at_submission(engagement, published):
    from engagements.models import SignoffAnswer

    maya = portal_client(engagement.cast.stakeholder)
    total = (DefinitionTerm.objects.filter(engagement=engagement).count()
             + StageDefinition.objects.filter(engagement=engagement).count())
    keys = [key for key, _ in published.items]
    htmx = {"HTTP_HX_REQUEST": "true"}
    for n, key in enumerate(keys[:12], start=1):
        saved = maya.post(answer_url(published), {"item": key, key: "yes"}, **htmx)
        assert saved.status_code == 200 and f"{n} of {total} answered" in saved.content.decode()
    # A changed mind is a new row; the latest answer counts.
    contested = keys[2]
    maya.post(answer_url(published), {"item": contested, contested: "no", f"comment:{contested}": "Too vague."}, **htmx)
    assert SignoffAnswer.objects.across_tenants("test").filter(item_key=contested).count() == 2
    with pytest.raises(Exception, match="append-only"):
        SignoffAnswer.objects.filter(item_key=contested).delete()
    refused = maya.post(answer_url(published), {"item": "term:nope", "term:nope": "yes"}, **htmx)
    assert refused.status_code == 400 and "has no item" in refused.content.decode()

    # A reload (or a new sign-in) shows every saved answer and the count.
    page = maya.get(signoff_url(published)).content.decode()
    assert f"12 of {total} answered" in page and "1 change requested" in page
    assert f'name="{keys[0]}" value="yes" required checked' in page
    assert f'name="{contested}" value="no" required checked' in page and "Too vague.</textarea>" in page
    assert not Signature.objects.across_tenants("test").exists()  # nothing is signed until submitted

    response = maya.post(signoff_url(published), {
        **answers(published), contested: "no", f"comment:{contested}": "Too vague."
    })
    assert response.status_code == 302
    signature = Signature.objects.get(stakeholder=engagement.cast.stakeholder)
    assert signature.version_hash == published.content_hash and signature.decisions[contested] == "no"
    late = maya.post(answer_url(published), {"item": keys[0], keys[0]: "no"}, **htmx)
    assert late.status_code == 400 and "already submitted" in late.content.decode()


def test_items_unchanged_since_a_version_the_signer_approved_are_approved_in_one_action(engagement, published):
    from engagements.models import SignoffAnswer

    cast = engagement.cast
    maya = portal_client(cast.stakeholder)
    definitions.sign(version=published, stakeholder=cast.stakeholder, decisions=answers(published), comments={})
    changed = DefinitionTerm.objects.filter(engagement=engagement).order_by("order").first()
    changed.definition += " Re-scored every 30 days."
    changed.save()
    v2 = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    total = (DefinitionTerm.objects.filter(engagement=engagement).count()
             + StageDefinition.objects.filter(engagement=engagement).count())

    page = maya.get(signoff_url(v2)).content.decode()
    assert page.count("Unchanged since v1, which you approved") == total - 1
    assert f"Approve all {total - 1} unchanged" in page
    response = maya.post(reverse("portal:signoff-approve-unchanged", kwargs={"definition_version_uuid": v2.uuid}))
    assert response.status_code == 302
    rows = SignoffAnswer.objects.filter(version=v2, stakeholder=cast.stakeholder)
    assert rows.count() == total - 1 and {r.unchanged_since_id for r in rows} == {published.pk}
    assert not rows.filter(item_key=f"term:{changed.key}").exists()  # the changed term waits for its own answer
    page = maya.get(signoff_url(v2)).content.decode()
    assert f"{total - 1} of {total} answered" in page and "Approve all" not in page
