"""Maintenance schedules and health checks: per engagement, and the portfolio health page."""

from django.urls import path

from . import views

app_name = "reporting"

H = "o/<slug:org_slug>/engagements/<uuid:engagement_uuid>/health/"

urlpatterns = [
    path("o/<slug:org_slug>/health/", views.portfolio_health, name="portfolio-health"),
    path(H, views.health_page, name="health"),
    path(H + "start/", views.schedule_start, name="schedule-start"),
    path(H + "tasks/<uuid:task_uuid>/", views.task_adjust, name="task-adjust"),
    path(H + "baselines/", views.baseline_set, name="baseline-set"),
    path(H + "figures/", views.metric_add, name="metric-add"),
    path(H + "figures/upload/", views.metrics_upload, name="metrics-upload"),
    path(H + "run-now/", views.run_now, name="run-now"),
    path(H + "runs/<uuid:run_uuid>/", views.run_detail, name="run-detail"),
    path(H + "runs/<uuid:run_uuid>/report/", views.report_download, name="report-download"),
    path(H + "runs/<uuid:run_uuid>/resend/", views.run_resend, name="run-resend"),
    path(H + "results/<uuid:result_uuid>/", views.result_action, name="result-action"),
    path(H + "results/<uuid:result_uuid>/review/", views.review_record, name="review-record"),
    path(
        H + "explanations/<uuid:explanation_uuid>/withdraw/",
        views.explanation_withdraw,
        name="explanation-withdraw",
    ),
]
