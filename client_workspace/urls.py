from django.urls import path

from . import views

app_name = "client_workspace"

ENGAGEMENT = "o/<slug:org_slug>/engagements/<uuid:engagement_uuid>"

urlpatterns = [
    path(f"{ENGAGEMENT}/client/", views.intake_answers, name="intake"),
    path(f"{ENGAGEMENT}/client/intake/reopen/", views.intake_reopen, name="intake-reopen"),
    path(f"{ENGAGEMENT}/client/documents/", views.document_share, name="document-share"),
    path(
        f"{ENGAGEMENT}/client/documents/<uuid:document_uuid>/unshare/",
        views.document_unshare,
        name="document-unshare",
    ),
    path("o/<slug:org_slug>/intake-files/<uuid:intake_file_uuid>/", views.intake_file, name="intake-file"),
]
