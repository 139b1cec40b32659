"""A consultant shares rendered deliverables and links to the portal; the stakeholder sees them on the documents
page, and the home cards (a panel of the portal home) say what is waiting."""

import pytest
from django.urls import reverse

from client_workspace.models import SharedDocument
from deliverables import services as pipeline
from engagements import definitions
from engagements.deliverables import request_artifact
from tests.client_workspace.conftest import as_stakeholder


def share(client, engagement, org, **data):
    return client.post(reverse("client_workspace:document-share", args=[org.slug, engagement.uuid]), data)


def test_shared_documents_reach_the_stakeholder_and_only_them(cast, client, engagement):
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    artifact = request_artifact(
        engagement=engagement, kind="stage_reference_card", source_version=version, actor=cast.consultant
    )
    pipeline.render(artifact.pk)
    client.force_login(cast.consultant)
    share(client, engagement, cast.org, artifact=str(artifact.uuid))
    share(client, engagement, cast.org, title="GTM Lifecycle intro video", url="https://video.example/intro")
    response = share(client, engagement, cast.org, title="Broken", url="not a link")
    assert response.status_code == 302
    assert "“not a link” is not a web address" in client.get(response["Location"]).content.decode()
    assert SharedDocument.objects.for_org(cast.org).count() == 2

    maya = as_stakeholder(client.__class__(), cast.stakeholder)
    page = maya.get(reverse("portal:documents")).content.decode()
    assert "GTM Lifecycle intro video" in page and 'href="https://video.example/intro"' in page
    assert reverse("portal:artifact-download", args=[artifact.uuid]) in page
    download = maya.get(reverse("portal:artifact-download", args=[artifact.uuid]))
    assert download.status_code == 200
    sibling = as_stakeholder(client.__class__(), cast.sibling_stakeholder).get(reverse("portal:documents"))
    assert "GTM Lifecycle intro video" not in sibling.content.decode()

    document = SharedDocument.objects.for_org(cast.org).get(url="https://video.example/intro")
    client.post(reverse("client_workspace:document-unshare", args=[cast.org.slug, engagement.uuid, document.uuid]))
    assert "GTM Lifecycle intro video" not in maya.get(reverse("portal:documents")).content.decode()


def test_a_viewer_cannot_share(cast, client, engagement):
    client.force_login(cast.viewer)
    response = share(client, engagement, cast.org, title="Intro", url="https://video.example/intro")
    assert response.status_code == 403 and not SharedDocument.objects.for_org(cast.org).exists()


@pytest.mark.parametrize("answered", [0, 2])
def test_the_home_cards_count_the_required_answers(cast, client, engagement, answered):
    maya = as_stakeholder(client, cast.stakeholder)
    for field, value in [("pain_points", "Slow handoffs"), ("poc_pov", "no")][:answered]:
        maya.post(reverse("portal:intake-save", args=[engagement.uuid]), {"field": field, field: value})
    required = [f for f in engagement.spec.intake.fields if f.required]
    html = maya.get(reverse("portal:home")).content.decode()
    assert f"{answered} of {len(required)} answered" in html
    assert reverse("portal:intake", args=[engagement.uuid]) in html
    assert "Lifecycle Intake Form" in html
