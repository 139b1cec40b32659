"""What the consultant's home page reads from engagements: the engagements in view, the gates waiting for a decision
and the sign-offs still outstanding. A fixed number of queries whatever the number of engagements.
"""

from datetime import date, datetime

from django.db.models import Exists, F, OuterRef

from . import portfolio
from .models import (
    DefinitionVersion,
    Engagement,
    EngagementMember,
    EngagementStatus,
    Gate,
    GateStatus,
    Signature,
    SignoffRequest,
)

# Most pressing first: a target date already behind comes before one ahead, the furthest behind first.
_ORDER = [F("target_date").asc(nulls_last=True), F("name").asc(), F("id").asc()]


def in_view(organization, user) -> tuple[list[int], bool]:
    """The ids of the open engagements the person works on, and True; or, when they are on no engagement's team (an
    owner overseeing), every open engagement of the organization, and False."""
    open_ones = Engagement.objects.for_org(organization).open()
    mine = list(
        open_ones.filter(
            pk__in=EngagementMember.objects.for_org(organization).filter(user=user).values("engagement_id")
        ).values_list("pk", flat=True)
    )
    if mine:
        return mine, True
    return list(open_ones.values_list("pk", flat=True)), False


def engagements(organization, ids: list[int], today: date) -> list[Engagement]:
    """The engagements with phase, progress and health (the engagement list's columns)."""
    return portfolio.rows(organization, ids, order=_ORDER, today=today)


def gates_awaiting_decision(organization, ids: list[int]) -> list[Gate]:
    """Open gates of active engagements: every checkpoint work is done or not, a person has to decide."""
    return list(
        Gate.objects.for_org(organization)
        .filter(engagement_id__in=ids, status=GateStatus.OPEN, engagement__status=EngagementStatus.ACTIVE)
        .select_related("engagement__client", "phase")
        .order_by("engagement__name", "phase__order")
    )


def signoffs_outstanding(organization, ids: list[int], now: datetime) -> list[SignoffRequest]:
    """Requested signers who have not answered the version they were asked to sign, while it is the engagement's
    latest and not signed yet, longest waiting first; each with `days_waiting` since the request."""
    newer = DefinitionVersion.objects.filter(
        engagement_id=OuterRef("version__engagement_id"), number__gt=OuterRef("version__number")
    )
    answered = Signature.objects.filter(version_id=OuterRef("version_id"), stakeholder_id=OuterRef("stakeholder_id"))
    requests = list(
        SignoffRequest.objects.for_org(organization)
        .filter(version__engagement_id__in=ids, version__signed_at__isnull=True)
        .filter(~Exists(newer), ~Exists(answered))
        .select_related("version__engagement", "stakeholder")
        .order_by("created_at", "id")
    )
    for r in requests:
        days = (now - r.created_at).days
        # a request dated after now is a clock defect: said in words, not shown as a negative wait
        r.days_waiting = days if days >= 0 else None  # type: ignore[attr-defined]
        r.defect = "" if days >= 0 else "requested after now: the server clock is wrong"  # type: ignore[attr-defined]
    return requests
