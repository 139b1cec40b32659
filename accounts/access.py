"""Resolve the organization and the membership once per request: the consultant side of the wall."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Membership

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def membership_for(user, org_slug: str) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("organization").filter(organization__slug=org_slug, user=user).first()


def memberships_of(user) -> list[Membership]:
    """Every membership of the user with its organization, by organization name: one query (sorted here: the
    model's ordering joins the users table, and a handful of rows sort faster in Python than in the query)."""
    memberships = list(Membership.objects.of_user(user).select_related("organization").order_by())
    return sorted(memberships, key=lambda m: m.organization.name)


def org_view(view=None, *, owner_only: bool = False):
    """Decorate a view under /o/<org_slug>/.

    Sets request.org and request.membership. A non-member gets 404 (the organization's existence is
    not revealed); a viewer gets 403 on any method that writes; owner_only pages refuse everyone else.
    """

    def decorator(view_func):
        @login_required
        @wraps(view_func)
        def wrapper(request, org_slug: str, *args, **kwargs):
            # All the user's memberships at once: this page's, and the organization switcher's list (a user
            # belongs to a handful), so the top bar costs no second query (accounts.context_processors).
            memberships = memberships_of(request.user)
            membership = next((m for m in memberships if m.organization.slug == org_slug), None)
            if membership is None:
                raise Http404("No organization with that address, or you are not a member of it.")
            if request.method not in SAFE_METHODS and not membership.can_write:
                raise PermissionDenied("Viewers can look but not change anything.")
            if owner_only and not membership.is_owner:
                raise PermissionDenied("Only owners of this organization can open this page.")
            request.org = membership.organization
            request.membership = membership
            request.nav_orgs = [(m.organization.slug, m.organization.name) for m in memberships]
            if request.session.get("current_org") != org_slug:
                request.session["current_org"] = org_slug
            return view_func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator
