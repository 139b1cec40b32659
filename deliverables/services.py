"""The one request-and-render pipeline: template -> HTML -> WeasyPrint -> a stored file with its SHA-256.

- `request` creates the next version of a kind for an engagement (queued) and, by default, queues its render on
  commit. The app that owns the data checks its own preconditions first and records who asked.
- `render` claims a queued artifact through the run lifecycle (`gtm_ops.runs`: a conditional UPDATE and a lease
  its heartbeat extends), builds the context with the kind's registered builder and renders it. Any error ends
  in `failed` with the reason on the row; a render whose worker died is swept and rendered again (`RENDERS`).
- `retry` puts a failed artifact back in the queue (failed -> queued is the only way back).
Every other status change goes through `_move`, which only makes the moves `models.TRANSITIONS` allows.
"""

import hashlib
import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from . import registry
from .models import RENDERS, TRANSITIONS, Artifact, ArtifactStatus
from .pdf import render_pdf

logger = logging.getLogger(__name__)


def _move(artifact_id: int, old: str, new: str, **fields) -> bool:
    """old -> new if the row is still `old`: the conditional UPDATE is the claim."""
    if new not in TRANSITIONS[old]:
        raise ValueError(f"An artifact cannot go from {old} to {new}.")
    return bool(Artifact.objects.for_task(artifact_id).filter(status=old).update(status=new, **fields))


@transaction.atomic
def request(*, engagement, kind: str, actor, source_version=None, queue: bool = True) -> Artifact:
    """The next version (1, 2, ...) of `kind` for the engagement, queued; rendered by a worker after commit."""
    registry.get(kind)  # an unknown kind fails here, in the request, not later in a worker
    number = (Artifact.objects.filter(engagement=engagement, kind=kind).aggregate(n=Max("number"))["n"] or 0) + 1
    artifact = Artifact.objects.create(
        organization_id=engagement.organization_id,
        engagement=engagement,
        kind=kind,
        number=number,
        source_version=source_version,
        created_by=actor,
    )
    if queue:
        transaction.on_commit(lambda: _queue(artifact.pk))
    return artifact


def _queue(artifact_id: int) -> None:
    from .tasks import render_artifact  # the task module imports this one

    render_artifact.delay(artifact_id)


def render(artifact_id: int) -> Artifact | None:
    """Claim a queued artifact and render it. Returns it when done, None when claimed elsewhere or failed."""
    token = RENDERS.claim(artifact_id, started_at=timezone.now(), progress=10)
    if token is None:
        return None
    artifact = (
        Artifact.objects.for_task(artifact_id)
        .select_related("engagement__client", "organization", "source_version", "created_by")
        .get()
    )
    mine = RENDERS.held(artifact_id, token)
    try:
        with RENDERS.beating(artifact_id, token):
            kind = registry.get(artifact.kind)
            context = {**kind.context(artifact), "artifact": artifact}
            mine.update(progress=40)
            pdf, pages = render_pdf(kind.template, context)
            if pages < 1 or not pdf.startswith(b"%PDF"):  # a page count and size people read on the list
                raise ValueError(f"WeasyPrint produced no usable document ({pages} pages, {len(pdf)} bytes).")
            mine.update(progress=90)
            artifact.file.save(artifact.filename, ContentFile(pdf), save=False)
    except Exception as exc:  # the row must say why; a render never stays "rendering" forever
        logger.exception("Rendering artifact %s (%s) failed", artifact_id, artifact.kind)
        RENDERS.finish(artifact_id, token, ArtifactStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000])
        return None
    finished = RENDERS.finish(
        artifact_id,
        token,
        ArtifactStatus.DONE,
        file=artifact.file.name,
        sha256=hashlib.sha256(pdf).hexdigest(),
        size=len(pdf),
        pages=pages,
        progress=100,
    )
    if not finished:
        return None
    artifact.refresh_from_db()
    if kind.on_done is not None:
        kind.on_done(artifact)
    return artifact


def retry(artifact: Artifact) -> bool:
    """Send a failed render back to the queue; False when it is not failed (nothing to retry)."""
    with transaction.atomic():
        moved = _move(
            artifact.pk,
            ArtifactStatus.FAILED,
            ArtifactStatus.QUEUED,
            error="",
            progress=0,
            started_at=None,
            finished_at=None,
            recoveries=0,
        )
        if moved:
            transaction.on_commit(lambda: _queue(artifact.pk))
    return moved
