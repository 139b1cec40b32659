from django.utils.functional import SimpleLazyObject

from .models import Membership


def navigation(request) -> dict:
    """The organization switcher: (slug, name) of every organization the signed-in user belongs to.

    Read only when a page shows the top bar, as plain values; on an organization's pages org_view has already read
    them with the membership (request.nav_orgs), and the current organization is the one it loaded (request.org).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    orgs = getattr(request, "nav_orgs", None)  # org_view has read them already
    if orgs is None:
        orgs = SimpleLazyObject(
            lambda: list(
                Membership.objects.of_user(user)
                .order_by("organization__name")
                .values_list("organization__slug", "organization__name")
            )
        )
    return {"nav_orgs": orgs, "current_org": getattr(request, "org", None)}
