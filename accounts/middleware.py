import zoneinfo

from django.utils import timezone


class BrowserTimezoneMiddleware:
    """Show times in the visitor's own time zone, which app.js stores in the `tz` cookie."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.COOKIES.get("tz", "")
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        return self.get_response(request)
