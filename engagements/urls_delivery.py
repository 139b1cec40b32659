"""Engagement delivery pages: portfolio, engagement, phases, checklists, gates."""

from django.urls import path

from .views import client_tasks, delivery

ENGAGEMENT = "o/<slug:org_slug>/engagements/<uuid:engagement_uuid>/"

urlpatterns = [
    path("o/<slug:org_slug>/engagements/", delivery.portfolio, name="portfolio"),
    path("o/<slug:org_slug>/engagements/new/", delivery.engagement_create, name="engagement-create"),
    path(ENGAGEMENT, delivery.engagement_detail, name="engagement-detail"),
    path(f"{ENGAGEMENT}resume/", delivery.engagement_resume, name="engagement-resume"),
    path(f"{ENGAGEMENT}phases/<uuid:phase_uuid>/", delivery.phase_detail, name="phase-detail"),
    path(f"{ENGAGEMENT}phases/<uuid:phase_uuid>/complete/", delivery.phase_complete, name="phase-complete"),
    path(f"{ENGAGEMENT}items/<uuid:item_uuid>/toggle/", delivery.checklist_toggle, name="checklist-toggle"),
    path(f"{ENGAGEMENT}items/<uuid:item_uuid>/due/", client_tasks.due_date, name="client-task-due"),
    path(
        f"{ENGAGEMENT}gates/<uuid:gate_uuid>/checkpoints/<uuid:checkpoint_uuid>/",
        delivery.checkpoint_resolve,
        name="checkpoint-resolve",
    ),
    path(f"{ENGAGEMENT}gates/<uuid:gate_uuid>/decide/", delivery.gate_decide, name="gate-decide"),
    path(
        f"{ENGAGEMENT}gate-decisions/<uuid:gate_decision_uuid>/",
        delivery.gate_decision_detail,
        name="gate-decision-detail",
    ),
]
