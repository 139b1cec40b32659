"""Weekly cadence pages: board, decision log, risks, releases, updates, refinement loop, enablement."""

from django.urls import path

from .views import cadence, enablement, imports, refinement

E = "o/<slug:org_slug>/engagements/<uuid:engagement_uuid>/"

# Where each kind of board item lives, below the engagement: (list path, item path prefix).
BOARD_PATHS = {
    "work": ("board/work/", "board/work/<uuid:work_uuid>/"),
    "decision": (None, "decisions/<uuid:decision_uuid>/"),
    "risk": ("risks/", "risks/<uuid:risk_uuid>/"),
    "release": ("releases/", "releases/<uuid:release_uuid>/"),
    "feedback": ("feedback/", "feedback/<uuid:feedback_uuid>/"),
}
ADD_PATHS = {
    "work": "board/work/new/",
    "decision": "decisions/new/",
    "risk": "risks/new/",
    "release": "releases/new/",
    "feedback": "feedback/new/",
}


def _board_item_urls() -> list:
    urls = []
    for kind, (list_path, item_path) in BOARD_PATHS.items():
        k = {"kind": kind}
        if list_path:
            urls.append(path(E + list_path, cadence.item_list, k, name=f"{kind}-list"))
        urls += [
            path(E + ADD_PATHS[kind], cadence.item_add, k, name=f"{kind}-add"),
            path(E + item_path, cadence.item_edit, k, name=f"{kind}-edit"),
            path(E + item_path + "delete/", cadence.item_delete, k, name=f"{kind}-delete"),
            path(E + item_path + "status/", cadence.item_status, k, name=f"{kind}-status"),
            path(E + item_path + "visibility/", cadence.item_visibility, k, name=f"{kind}-visibility"),
        ]
    return urls


urlpatterns = [
    path(E + "board/", cadence.board, name="board"),
    path(E + "decisions/", cadence.decision_log, name="decision-log"),
    *_board_item_urls(),
    path(E + "updates/", cadence.update_list, name="update-list"),
    path(E + "updates/draft/", cadence.update_draft, name="update-draft"),
    path(E + "updates/<uuid:update_uuid>/", cadence.update_edit, name="update-edit"),
    path(E + "updates/<uuid:update_uuid>/publish/", cadence.update_publish, name="update-publish"),
    path(E + "refinement/", refinement.refinement, name="refinement"),
    path(E + "meetings/new/", refinement.meeting_add, name="meeting-add"),
    path(E + "meetings/<uuid:meeting_uuid>/", refinement.meeting_detail, name="meeting-detail"),
    path(E + "versions/new/", refinement.version_start, name="version-start"),
    path(E + "versions/<uuid:version_uuid>/", refinement.version_detail, name="version-detail"),
    path(E + "versions/<uuid:version_uuid>/items/", refinement.assumption_add, name="assumption-add"),
    path(E + "assumptions/<uuid:assumption_uuid>/", refinement.assumption_status, name="assumption-status"),
    path(E + "enablement/", enablement.enablement, name="enablement"),
    path(E + "training/new/", enablement.training_add, name="training-add"),
    path(E + "training/<uuid:training_uuid>/", enablement.training_detail, name="training-detail"),
    path(E + "enablement/hypercare/", enablement.hypercare_set, name="hypercare-set"),
    path(E + "enablement/kpis/upload/", enablement.kpi_upload, name="kpi-upload"),
    path(E + "enablement/kpis.csv", enablement.kpi_download, name="kpi-download"),
    path(E + "imports/<uuid:import_uuid>/", imports.csv_import, name="csv-import"),
    path(E + "enablement/retention/", enablement.retention_add, name="retention-add"),
    path(E + "handoff/<uuid:item_uuid>/toggle/", enablement.handoff_item_toggle, name="handoff-item-toggle"),
]
