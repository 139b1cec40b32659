"""Maintenance schedules and health checks: per engagement, and the portfolio health page."""

app_name = "reporting"

urlpatterns = []
