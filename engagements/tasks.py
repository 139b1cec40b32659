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


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=10, retry_jitter=True, max_retries=5, acks_late=True)
def send_weekly_update(update_id: int, stakeholder_id: int) -> None:
    from django.urls import reverse

    from .models import Stakeholder, UpdateStatus, WeeklyUpdate

    update = (
        WeeklyUpdate.objects.select_related("engagement__client", "organization")
        .filter(pk=update_id, status=UpdateStatus.PUBLISHED)
        .first()
    )
    stakeholder = Stakeholder.objects.filter(pk=stakeholder_id, portal_enabled=True).first()
    if update is None or stakeholder is None or stakeholder.organization_id != update.organization_id:
        return
    send_email(
        "weekly-update",
        to=stakeholder.email,
        context={
            "update": update,
            "engagement": update.engagement,
            "stakeholder": stakeholder,
            "path": reverse("portal:login"),
        },
    )


@shared_task(expires=3600)
def send_check_in_reminders() -> None:
    """Daily: queue one reminder per engagement whose refinement check-in is two weeks away."""
    from .enablement import check_ins_due

    for engagement_id in check_ins_due().values_list("pk", flat=True):
        remind_check_in.delay(engagement_id)


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=30, retry_jitter=True, max_retries=5, acks_late=True)
def remind_check_in(engagement_id: int) -> None:
    from django.db.models import Q
    from django.utils import timezone

    from accounts.models import Membership, Role

    from .models import Engagement

    # Claim the reminder first so a duplicate tick sends nothing; give the claim back if sending fails.
    claimed = Engagement.objects.filter(pk=engagement_id, check_in_reminder_sent_at=None).update(
        check_in_reminder_sent_at=timezone.now()
    )
    if not claimed:
        return
    engagement = Engagement.objects.select_related("client", "organization").get(pk=engagement_id)
    team = Membership.objects.for_org(engagement.organization).filter(
        Q(user__in=engagement.team.values("user")) | Q(role=Role.OWNER)
    ).select_related("user")
    try:
        send_email("check-in-reminder", to=sorted({m.user.email for m in team}), context={
            "engagement": engagement,
            "path": f"/o/{engagement.organization.slug}/engagements/{engagement.uuid}/",
        })
    except MAIL_ERRORS:
        Engagement.objects.filter(pk=engagement_id).update(check_in_reminder_sent_at=None)
        raise
