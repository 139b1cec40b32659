"""Engagement delivery pages: portfolio, engagement, phases, checklists, gates."""

urlpatterns = []
