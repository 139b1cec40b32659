from django.urls import path

from . import views

app_name = "crm_connectors"

urlpatterns = [
    path("o/<slug:org_slug>/clients/<uuid:client_uuid>/crm/", views.connection_edit, name="connection-edit"),
    path(
        "o/<slug:org_slug>/clients/<uuid:client_uuid>/crm/<uuid:connection_uuid>/test/",
        views.connection_test,
        name="connection-test",
    ),
]
