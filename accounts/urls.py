from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("orgs/", views.org_list, name="org-list"),
    path("account/api-token/", views.api_token, name="api-token"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("o/<slug:org_slug>/members/", views.members, name="members"),
    path("o/<slug:org_slug>/members/<uuid:member_uuid>/role/", views.member_role, name="member-role"),
    path("o/<slug:org_slug>/members/<uuid:member_uuid>/remove/", views.member_remove, name="member-remove"),
    path(
        "o/<slug:org_slug>/invitations/<uuid:invitation_uuid>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path("o/<slug:org_slug>/activity/", views.activity_log, name="activity"),
    path("o/<slug:org_slug>/settings/", views.org_settings, name="org-settings"),
    path("o/<slug:org_slug>/logo/", views.org_logo, name="org-logo"),
]
