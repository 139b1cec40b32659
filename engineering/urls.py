from django.urls import path

from . import views

app_name = "engineering"

E = "o/<slug:org_slug>/engagements/<uuid:engagement_uuid>/engineering/"

urlpatterns = [
    path(E, views.spec_page, name="spec"),
    path(E + "generate/", views.spec_generate, name="spec-generate"),
    path(E + "notes/", views.spec_annotate, name="spec-annotate"),
    path(E + "targets/", views.spec_targets, name="spec-targets"),
    path(E + "approve/", views.spec_approve, name="spec-approve"),
    path(E + "pdf/", views.spec_pdf, name="spec-pdf"),
    path(E + "plan/", views.plan_page, name="plan"),
    path(E + "plan/make/", views.plan_make, name="plan-make"),
    path(E + "plan/verify/", views.plan_verify, name="plan-verify"),
    path(E + "plan/apply/", views.plan_apply, name="plan-apply"),
    path(E + "plan/moves/", views.plan_moves, name="plan-moves"),
    path(E + "status/", views.work_status, name="work-status"),
]
