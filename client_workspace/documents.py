"""Documents a consultant shares to the client's portal: rendered deliverables and links (the intro video)."""

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from accounts import activity
from accounts.models import DomainError
from deliverables.models import Artifact, ArtifactStatus
from engagements.models import Engagement

from .models import SharedDocument


@transaction.atomic
def share(
    *, engagement: Engagement, actor, title: str = "", artifact: Artifact | None = None, url: str = "", request=None
) -> SharedDocument:
    title, url = title.strip(), url.strip()
    if artifact is not None:
        if artifact.engagement_id != engagement.pk or artifact.status != ArtifactStatus.DONE:
            raise DomainError("Only a rendered deliverable of this engagement can be shared.")
        url = ""
        title = title or str(artifact)
    else:
        try:
            URLValidator(schemes=["https", "http"])(url)
        except ValidationError:
            raise DomainError(f"“{url or 'the link'}” is not a web address (https://…).") from None
        if not title:
            raise DomainError("Give the link a title the client will recognise (“GTM Lifecycle intro video”).")
    document = SharedDocument.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        title=title[:200],
        artifact=artifact,
        url=url,
        shared_by=actor,
    )
    activity.record(
        organization=engagement.organization,
        actor=actor,
        verb="document.shared",
        target=engagement,
        request=request,
        data={"title": document.title},
    )
    return document


@transaction.atomic
def unshare(*, document: SharedDocument, actor, request=None) -> None:
    document.delete()
    activity.record(
        organization=document.organization,
        actor=actor,
        verb="document.unshared",
        target=document.engagement,
        request=request,
        data={"title": document.title},
    )
