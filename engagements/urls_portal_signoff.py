"""Portal sign-off pages: versions awaiting the stakeholder, the sign-off form, signed versions, downloads."""

from django.urls import path

from .views import portal_signoff

urlpatterns = [
    path("signoffs/", portal_signoff.signoff_list, name="signoff-list"),
    path("signoffs/<uuid:definition_version_uuid>/", portal_signoff.signoff, name="signoff"),
    path("signoffs/<uuid:definition_version_uuid>/answer/", portal_signoff.signoff_answer, name="signoff-answer"),
    path(
        "signoffs/<uuid:definition_version_uuid>/approve-unchanged/",
        portal_signoff.signoff_approve_unchanged,
        name="signoff-approve-unchanged",
    ),
    path("artifacts/<uuid:artifact_uuid>/", portal_signoff.artifact_download, name="artifact-download"),
]
