"""The CRM access pages of the portal; gtm_ops/urls.py serves them in the portal's namespace."""

from django.urls import path

from . import views_portal

urlpatterns = [
    path("crm/<uuid:engagement_uuid>/", views_portal.crm_access, name="crm-access"),
    path("crm/<uuid:engagement_uuid>/connect/", views_portal.crm_connect, name="crm-connect"),
    path("crm/<uuid:engagement_uuid>/token/", views_portal.crm_token, name="crm-token"),
    path("crm/<uuid:engagement_uuid>/disconnect/", views_portal.crm_disconnect, name="crm-disconnect"),
    path("crm/callback/", views_portal.crm_callback, name="crm-callback"),
]
