from celery import shared_task
from django.conf import settings

from accounts.emails import send_email
from accounts.tasks import MAIL_ERRORS

from .models import PortalLink
from .portal_access import link_path


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=10, retry_jitter=True, max_retries=5, acks_late=True)
def send_portal_link(link_id: int) -> None:
    link = PortalLink.objects.usable().select_related("stakeholder__client", "organization").filter(pk=link_id).first()
    if link is None:  # used, superseded or expired before the worker got to it: nothing worth sending
        return
    send_email(
        "portal-link",
        to=link.stakeholder.email,
        context={
            "stakeholder": link.stakeholder,
            "path": link_path(link),
            "minutes": settings.PORTAL_LINK_MAX_AGE // 60,
        },
    )
