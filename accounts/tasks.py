import smtplib

from celery import shared_task

from .emails import send_email
from .models import Invitation

MAIL_ERRORS = (smtplib.SMTPException, OSError)


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=10, retry_jitter=True, max_retries=5, acks_late=True)
def send_invitation(invitation_id: int, path: str) -> None:
    invitation = Invitation.objects.for_task(invitation_id).select_related("organization", "invited_by").first()
    if invitation is None or invitation.status != "pending":
        return
    send_email(
        "invitation",
        to=invitation.email,
        context={
            "invitation": invitation,
            "inviter": invitation.invited_by,
            "path": path,
        },
    )
