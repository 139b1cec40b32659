from .models import Membership


def navigation(request) -> dict:
    """The organization switcher: every organization the signed-in user belongs to."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    memberships = list(Membership.objects.filter(user=user).select_related("organization"))
    return {"nav_memberships": memberships, "current_org": getattr(request, "org", None)}
