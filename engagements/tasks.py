from celery import shared_task
from django.conf import settings
from django.urls import reverse

from accounts.emails import send_email
from accounts.tasks import MAIL_ERRORS

from . import definitions
from .models import PortalLink
from .portal_access import link_path, signoff_link_path


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=10, retry_jitter=True, max_retries=5, acks_late=True)
def send_portal_link(link_id: int) -> None:
    link = PortalLink.objects.for_task(link_id).usable().select_related("stakeholder__client", "organization").first()
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
    from .models import Stakeholder, UpdateStatus, WeeklyUpdate

    update = (
        WeeklyUpdate.objects.for_task(update_id)
        .select_related("engagement__client", "organization")
        .filter(status=UpdateStatus.PUBLISHED)
        .first()
    )
    stakeholder = Stakeholder.objects.for_task(stakeholder_id).filter(portal_enabled=True).first()
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
    from django.utils import timezone

    from .models import Engagement

    # Claim the reminder first so a duplicate tick sends nothing; give the claim back if sending fails.
    claimed = (
        Engagement.objects.for_task(engagement_id)
        .filter(check_in_reminder_sent_at=None)
        .update(check_in_reminder_sent_at=timezone.now())
    )
    if not claimed:
        return
    engagement = Engagement.objects.for_task(engagement_id).select_related("client", "organization").get()
    team = engagement.consultants_to_notify()
    try:
        send_email(
            "check-in-reminder",
            to=sorted({m.user.email for m in team}),
            context={
                "engagement": engagement,
                "path": reverse("engagements:engagement-detail", args=[engagement.organization.slug, engagement.uuid]),
            },
        )
    except MAIL_ERRORS:
        Engagement.objects.for_task(engagement_id).update(check_in_reminder_sent_at=None)
        raise


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=10, retry_jitter=True, max_retries=5, acks_late=True)
def send_signoff_request(request_id: int, reminder: bool = False) -> None:
    from .models import SignoffRequest

    signoff = (
        SignoffRequest.objects.for_task(request_id)
        .select_related("version__engagement__client", "stakeholder", "organization")
        .get()
    )
    send_email(
        "signoff-request",
        to=signoff.stakeholder.email,
        context={
            "signoff": signoff,
            "version": signoff.version,
            "engagement": signoff.version.engagement,
            "stakeholder": signoff.stakeholder,
            "reminder": reminder,
            "path": signoff_link_path(signoff),
            "items": len(signoff.version.items),
        },
    )


@shared_task(expires=3600)
def send_signoff_reminders() -> None:
    """Daily: remind signers who have not answered a version published three or more days ago, once."""
    from datetime import timedelta

    from django.db.models import F
    from django.utils import timezone

    from .models import SignoffRequest

    cutoff = timezone.now() - timedelta(days=3)
    due = (
        SignoffRequest.objects.across_tenants("beat: daily reminders for every tenant")
        .filter(created_at__lte=cutoff, reminded_at=None, version__signed_at=None)
        .exclude(version__signatures__stakeholder=F("stakeholder"))
        .select_related("version__engagement")
    )
    for signoff in due:
        if definitions.latest_version(signoff.version.engagement).pk != signoff.version_id:
            continue  # replaced by a newer version: that one has its own requests
        # Claim before queueing so a duplicate tick reminds nobody twice.
        if (
            SignoffRequest.objects.for_org(signoff.organization_id)
            .filter(pk=signoff.pk, reminded_at=None)
            .update(reminded_at=timezone.now())
        ):
            send_signoff_request.delay(signoff.pk, reminder=True)


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=10, retry_jitter=True, max_retries=5, acks_late=True)
def notify_consultants(version_id: int, kind: str, signature_id: int | None = None) -> None:

    from .models import DefinitionVersion, Signature

    version = DefinitionVersion.objects.for_task(version_id).select_related("engagement__client", "organization").get()
    engagement = version.engagement
    team = engagement.consultants_to_notify(also=[version.published_by_id])
    signature = (
        Signature.objects.for_org(version.organization).select_related("stakeholder").filter(pk=signature_id).first()
    )
    labels = dict(version.items)
    contested = (
        [(labels[k], signature.comments.get(k, "")) for k, v in sorted(signature.decisions.items()) if v == "no"]
        if signature
        else []
    )
    send_email(
        f"definitions-{kind}",
        to=sorted({m.user.email for m in team}),
        context={
            "version": version,
            "engagement": engagement,
            "signature": signature,
            "contested": contested,
            "path": reverse("engagements:definitions", args=[version.organization.slug, engagement.uuid]),
        },
    )


@shared_task(expires=3600)
def send_task_digests() -> None:
    """Beat, hourly: queue today's overdue-task digest for each stakeholder who has one due. A stakeholder already
    sent today's finds the day claimed and gets nothing more, so ticks may repeat."""
    from django.utils import timezone

    from .client_tasks import digest_recipients

    today = timezone.localdate()
    for stakeholder_id in digest_recipients(today):
        send_task_digest.delay(stakeholder_id, today.isoformat())


@shared_task(autoretry_for=MAIL_ERRORS, retry_backoff=30, retry_jitter=True, max_retries=5, acks_late=True)
def send_task_digest(stakeholder_id: int, day: str) -> None:
    from datetime import date

    from .client_tasks import send_digest

    send_digest(stakeholder_id, date.fromisoformat(day))
