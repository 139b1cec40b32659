"""The client workspace's portal pages; gtm_ops/urls.py serves them in the portal's namespace."""

from django.urls import path

from . import views_portal

urlpatterns = [
    path("intake/<uuid:engagement_uuid>/", views_portal.intake_form, name="intake"),
    path("intake/<uuid:engagement_uuid>/save/", views_portal.intake_save, name="intake-save"),
    path("intake/<uuid:engagement_uuid>/upload/", views_portal.intake_upload, name="intake-upload"),
    path("intake/<uuid:engagement_uuid>/submit/", views_portal.intake_submit, name="intake-submit"),
    path("files/<uuid:intake_file_uuid>/", views_portal.intake_file, name="intake-file"),
    path("files/<uuid:intake_file_uuid>/remove/", views_portal.intake_file_remove, name="intake-file-remove"),
    path("documents/", views_portal.documents, name="documents"),
]
