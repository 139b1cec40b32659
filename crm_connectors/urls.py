from django.urls import path

from . import views, views_audit, views_oauth_apps

app_name = "crm_connectors"

urlpatterns = [
    path("o/<slug:org_slug>/clients/<uuid:client_uuid>/crm/", views.connection_edit, name="connection-edit"),
    path(
        "o/<slug:org_slug>/clients/<uuid:client_uuid>/crm/<uuid:connection_uuid>/test/",
        views.connection_test,
        name="connection-test",
    ),
    path("o/<slug:org_slug>/settings/crm-oauth/", views_oauth_apps.oauth_apps, name="oauth-apps"),
]

# The Current State Audit (crm_connectors/views_audit.py)
AUDIT = "o/<slug:org_slug>/clients/<uuid:client_uuid>/audit/"
urlpatterns += [
    path(AUDIT, views_audit.audit, name="audit"),
    path(f"{AUDIT}start/", views_audit.audit_start, name="audit-start"),
    path(f"{AUDIT}runs/<uuid:audit_run_uuid>/", views_audit.audit_run, name="audit-run"),
    path(f"{AUDIT}runs/<uuid:audit_run_uuid>/pdf/", views_audit.audit_pdf, name="audit-pdf"),
    path(
        f"{AUDIT}runs/<uuid:audit_run_uuid>/pdf/<uuid:audit_artifact_uuid>/",
        views_audit.audit_pdf_download,
        name="audit-pdf-download",
    ),
    path(f"{AUDIT}findings/<uuid:finding_uuid>/", views_audit.finding_update, name="finding-update"),
]
