from django.urls import path

from .views import clients

app_name = "engagements"

urlpatterns = [
    path("o/<slug:org_slug>/clients/", clients.client_list, name="client-list"),
    path("o/<slug:org_slug>/clients/<uuid:client_uuid>/", clients.client_detail, name="client-detail"),
    path("o/<slug:org_slug>/clients/<uuid:client_uuid>/stakeholders/", clients.stakeholder_add, name="stakeholder-add"),
    path(
        "o/<slug:org_slug>/clients/<uuid:client_uuid>/stakeholders/<uuid:stakeholder_uuid>/",
        clients.stakeholder_edit,
        name="stakeholder-edit",
    ),
    path(
        "o/<slug:org_slug>/clients/<uuid:client_uuid>/stakeholders/<uuid:stakeholder_uuid>/remove/",
        clients.stakeholder_remove,
        name="stakeholder-remove",
    ),
    path(
        "o/<slug:org_slug>/clients/<uuid:client_uuid>/stakeholders/<uuid:stakeholder_uuid>/send-link/",
        clients.stakeholder_send_link,
        name="stakeholder-send-link",
    ),
]

# Delivery and cadence pages live in their own modules; they share this app's namespace.
from . import urls_cadence, urls_definitions, urls_delivery  # noqa: E402

urlpatterns += urls_delivery.urlpatterns + urls_cadence.urlpatterns + urls_definitions.urlpatterns
