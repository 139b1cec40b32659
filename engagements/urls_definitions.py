"""Definition alignment pages: the draft, versions, diffs, sign-off status and deliverables."""

from django.urls import path

from .views import definitions

E = "o/<slug:org_slug>/engagements/<uuid:engagement_uuid>/"
D = E + "definitions/"

urlpatterns = [
    path(D, definitions.definitions_page, name="definitions"),
    path(D + "terms/new/", definitions.term_add, name="term-add"),
    path(D + "terms/<uuid:term_uuid>/", definitions.term_edit, name="term-edit"),
    path(D + "terms/<uuid:term_uuid>/delete/", definitions.term_delete, name="term-delete"),
    path(D + "stages/new/", definitions.stage_add, name="stage-add"),
    path(D + "stages/<uuid:stage_uuid>/", definitions.stage_edit, name="stage-edit"),
    path(D + "stages/<uuid:stage_uuid>/delete/", definitions.stage_delete, name="stage-delete"),
    path(D + "publish/", definitions.definitions_publish, name="definitions-publish"),
    path(D + "versions/<uuid:definition_version_uuid>/", definitions.definition_version, name="definition-version"),
    path(
        D + "versions/<uuid:definition_version_uuid>/approvers/",
        definitions.definition_approver,
        name="definition-approver",
    ),
    path(D + "diff/", definitions.definition_diff, name="definition-diff"),
    path(E + "artifacts/", definitions.artifact_request, name="artifact-request"),
    path(E + "artifacts/<uuid:artifact_uuid>/status/", definitions.artifact_status, name="artifact-status"),
    path(E + "artifacts/<uuid:artifact_uuid>/download/", definitions.artifact_download, name="artifact-download"),
    path(E + "artifacts/<uuid:artifact_uuid>/retry/", definitions.artifact_retry, name="artifact-retry"),
]
