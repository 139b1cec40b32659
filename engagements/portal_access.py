"""The portal door: emailed, signed, single-use sign-in links for client stakeholders."""

from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts import activity
from accounts.activity import client_ip
from accounts.models import DomainError
from accounts.throttling import PORTAL_LINK_REQUESTS

from .models import PortalLink, Stakeholder

SESSION_KEY = "portal_stakeholder"
# A sign-off request waits in an inbox for days, where a requested link is used within minutes: the link in a
# sign-off email lasts seven days. Like every link it works once, and a newer link (requested or emailed) replaces it.
SIGNOFF_LINK_MAX_AGE = 7 * 24 * 60 * 60
BROKER_ERRORS = (OperationalError,)  # what queuing a task raises while the broker is down (kombu wraps the cause)
_SALT = "engagements.portal-link"


_SIGNOFF_SALT = "engagements.portal-link.signoff"  # its own salt: a token says which lifetime it may have


def link_path(link: PortalLink, *, salt: str = _SALT) -> str:
    token = signing.TimestampSigner(salt=salt).sign(str(link.nonce))
    return reverse("portal:redeem", kwargs={"token": token})


@transaction.atomic
def issue_portal_link(*, stakeholder: Stakeholder, request=None) -> PortalLink:
    """Make a fresh link; every older unused link of this stakeholder stops working."""
    now = timezone.now()
    PortalLink.objects.filter(stakeholder=stakeholder).usable().update(superseded_at=now)
    return PortalLink.objects.create(
        organization_id=stakeholder.organization_id,
        stakeholder=stakeholder,
        expires_at=now + timedelta(seconds=settings.PORTAL_LINK_MAX_AGE),
        requested_ip=client_ip(request),
    )


def emailed_link_path(stakeholder: Stakeholder, target: str) -> str:
    """A sign-in link of its own for an email we send (a sign-off request, the overdue-task digest), landing on
    `target`: single use, SIGNOFF_LINK_MAX_AGE, and it supersedes the stakeholder's older links.

    Made when the email is sent, so the newest email carries the working link; it does not count against the
    stakeholder's hourly link requests (PORTAL_LINKS_PER_STAKEHOLDER), which limit what a visitor can ask for.
    """
    with transaction.atomic():
        now = timezone.now()
        PortalLink.objects.filter(stakeholder=stakeholder).usable().update(superseded_at=now)
        link = PortalLink.objects.create(
            organization_id=stakeholder.organization_id,
            stakeholder=stakeholder,
            expires_at=now + timedelta(seconds=SIGNOFF_LINK_MAX_AGE),
        )
    return f"{link_path(link, salt=_SIGNOFF_SALT)}?next={target}"


def signoff_link_path(signoff_request) -> str:
    """The sign-off request email's link, landing on the version to sign."""
    target = reverse("portal:signoff", kwargs={"definition_version_uuid": signoff_request.version.uuid})
    return emailed_link_path(signoff_request.stakeholder, target)


def _lifetime(link: PortalLink) -> str:
    seconds = (link.expires_at - link.created_at).total_seconds()
    return f"{round(seconds / 86400)} days" if seconds >= 86400 else f"{round(seconds / 60)} minutes"


class LinkNotQueued(DomainError):
    """The broker is down: no link was kept and older links still work."""


def send_portal_link(*, stakeholder: Stakeholder, request=None) -> PortalLink:
    """Email a fresh link; older unused links stop working once its email is queued, not before.

    Call it outside a transaction: the worker must be able to read the link it is asked to send. If the email
    cannot be queued (the broker is down) the new link is deleted, older links keep working, and LinkNotQueued
    says to try again.
    """
    from .tasks import send_portal_link as send_task

    link = PortalLink.objects.create(
        organization_id=stakeholder.organization_id,
        stakeholder=stakeholder,
        expires_at=timezone.now() + timedelta(seconds=settings.PORTAL_LINK_MAX_AGE),
        requested_ip=client_ip(request),
    )
    try:
        send_task.delay(link.pk)
    except BROKER_ERRORS as exc:
        link.delete()
        raise LinkNotQueued(
            "We could not send a sign-in link just now. Nothing has changed: try again in a minute."
        ) from exc
    PortalLink.objects.filter(stakeholder=stakeholder).usable().exclude(pk=link.pk).update(
        superseded_at=timezone.now()
    )
    return link


def request_portal_links(*, email: str, request=None) -> int:
    """Email a sign-in link to every portal-enabled stakeholder with this address; returns how many were sent.

    Says nothing to the requester about whether the address is known, nor whether a stakeholder has had their
    links for the hour (PORTAL_LINKS_PER_STAKEHOLDER): then nothing is sent and their latest link keeps working.
    """
    by_email = Stakeholder.objects.across_tenants("portal sign-in: one email may be a stakeholder of several tenants")
    stakeholders = by_email.filter(email=email.strip().lower(), portal_enabled=True).select_related(
        "client", "organization"
    )
    sent = 0
    for stakeholder in stakeholders:
        counted = PORTAL_LINK_REQUESTS.take(str(stakeholder.pk))  # counted first: parallel requests see each other
        if counted is None:
            continue
        try:
            send_portal_link(stakeholder=stakeholder, request=request)
        except LinkNotQueued:
            PORTAL_LINK_REQUESTS.give_back(str(stakeholder.pk), counted)  # nothing was sent
            raise
        sent += 1
    return sent


def _unsign(token: str) -> str:
    """The nonce of a requested link (30 minutes) or of a sign-off email's link (7 days)."""
    try:
        return signing.TimestampSigner(salt=_SALT).unsign(token, max_age=settings.PORTAL_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise
    except signing.BadSignature:
        return signing.TimestampSigner(salt=_SIGNOFF_SALT).unsign(token, max_age=SIGNOFF_LINK_MAX_AGE)


def redeem_portal_link(*, token: str, request) -> Stakeholder:
    try:
        nonce = _unsign(token)
    except signing.SignatureExpired as exc:
        raise DomainError("This sign-in link has expired. Request a new one.") from exc
    except signing.BadSignature as exc:
        raise DomainError(
            "This sign-in link is not valid: it may have been cut off or altered. Request a new one."
        ) from exc
    with transaction.atomic():
        # A conditional UPDATE claims the link: of two concurrent clicks only one can win.
        by_nonce = PortalLink.objects.across_tenants("a link's nonce names its organization").filter(nonce=nonce)
        claimed = by_nonce.usable().update(used_at=timezone.now())
        link = by_nonce.select_related("stakeholder__client", "organization").first()
        if link is None:
            raise DomainError("This sign-in link is not valid. Request a new one.")
        if not claimed:
            if link.superseded_at:
                raise DomainError(
                    "A newer sign-in link has been sent to you: use the latest email, or request another link."
                )
            if link.used_at:
                raise DomainError("This sign-in link has already been used. Request a new one.")
            raise DomainError(f"This sign-in link has expired (it lasted {_lifetime(link)}). Request a new one.")
        stakeholder = link.stakeholder
        if not stakeholder.portal_enabled:
            raise DomainError("Portal access is switched off for your address. Contact your consultant.")
        stakeholder.last_portal_login_at = timezone.now()
        stakeholder.save(update_fields=["last_portal_login_at"])
        activity.record(
            organization=link.organization,
            actor_label=f"{stakeholder.name} <{stakeholder.email}>",
            verb="portal.signed_in",
            target=stakeholder,
            request=request,
        )
    request.session.cycle_key()
    request.session[SESSION_KEY] = str(stakeholder.uuid)
    return stakeholder


def portal_view(view_func):
    """Decorate a /portal/ view: sets request.stakeholder (with its client and organization) or
    sends the visitor to the link request page. Portal identity never grants consultant access."""

    @wraps(view_func)
    def wrapper(request, *args, **kwargs):
        stakeholder_uuid = request.session.get(SESSION_KEY)
        stakeholder = None
        if stakeholder_uuid:
            stakeholder = (
                Stakeholder.objects.across_tenants("the portal session names its stakeholder, who names the tenant")
                .select_related("client", "organization")
                .filter(uuid=stakeholder_uuid, portal_enabled=True)
                .first()
            )
        if stakeholder is None:
            return redirect(f"{reverse('portal:login')}?next={request.path}")
        request.stakeholder = stakeholder
        request.org = stakeholder.organization
        return view_func(request, *args, **kwargs)

    return wrapper
