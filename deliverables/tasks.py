from celery import shared_task

from . import services


@shared_task(acks_late=True)
def render_artifact(artifact_id: int) -> None:
    services.render(artifact_id)
