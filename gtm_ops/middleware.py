"""Response headers: nothing personal is kept by a cache, and every response carries the Content-Security-Policy."""

from django.conf import settings
from django.urls import reverse
from django.utils.cache import patch_cache_control


def private_responses(get_response):
    def middleware(request):
        response = get_response(request)
        personal = (
            request.user.is_authenticated  # consultant pages (a session)
            or "HTTP_AUTHORIZATION" in request.META  # the API with a token
            or request.path.startswith(reverse("portal:home"))  # a stakeholder's portal, links included
            or response.has_header("Content-Disposition")  # every download: PDFs, exports
        )
        if personal:
            patch_cache_control(response, private=True, no_store=True)
        return response

    return middleware


def content_security_policy(get_response):
    # A view that needs another policy (the portal's CRM access page) sets its own header; it is kept.
    def middleware(request):
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response

    return middleware
