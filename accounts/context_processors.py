from django.utils.functional import SimpleLazyObject

from .models import Membership


def navigation(request) -> dict:
    """The organization switcher: (slug, name) of every organization the signed-in user belongs to.

    Read only when a page shows the top bar, as plain values; the current organization is the one org_view
    already loaded (request.org).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    orgs = SimpleLazyObject(
        lambda: list(Membership.objects.filter(user=user).values_list("organization__slug", "organization__name"))
    )
    return {"nav_orgs": orgs, "current_org": getattr(request, "org", None)}
