"""The playbook browser: library and organization playbooks, cloning and editing an organization's copy."""

from django.urls import path

from . import views

app_name = "playbooks"

PLAYBOOK = "o/<slug:org_slug>/playbooks/<uuid:playbook_uuid>/"

urlpatterns = [
    path("o/<slug:org_slug>/playbooks/", views.playbook_list, name="playbook-list"),
    path(PLAYBOOK, views.playbook_detail, name="playbook-detail"),
    path(f"{PLAYBOOK}versions/<uuid:playbook_version_uuid>/", views.playbook_version, name="playbook-version"),
    path(f"{PLAYBOOK}clone/", views.playbook_clone, name="playbook-clone"),
    path(f"{PLAYBOOK}edit/", views.playbook_edit, name="playbook-edit"),
]
