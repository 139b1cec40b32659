from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts import api as accounts_api
from accounts import urls as accounts_urls
from accounts import views as accounts_views
from accounts.forms import EmailAuthenticationForm
from client_workspace import api as workspace_api
from client_workspace import portal_urls as workspace_portal_urls
from crm_connectors import api as crm_api
from crm_connectors import portal_urls as crm_portal_urls
from engagements import api as engagements_api
from engagements import api_definitions as definitions_api
from engagements import api_delivery as delivery_api
from engagements import api_kpis as kpis_api
from engagements import portal_urls
from reporting import views_home

ORG = r"o/(?P<org_slug>[-a-zA-Z0-9_]+)"

router = DefaultRouter()
router.register("organizations", accounts_api.OrganizationViewSet, basename="organization")
router.register(f"{ORG}/members", accounts_api.MemberViewSet, basename="member")
router.register(f"{ORG}/clients", engagements_api.ClientAccountViewSet, basename="client")
router.register(f"{ORG}/stakeholders", engagements_api.StakeholderViewSet, basename="stakeholder")
router.register(f"{ORG}/engagements", delivery_api.EngagementViewSet, basename="engagement")
router.register(f"{ORG}/phases", delivery_api.PhaseViewSet, basename="phase")
router.register(f"{ORG}/checklist-items", delivery_api.ChecklistItemViewSet, basename="checklist-item")
router.register(f"{ORG}/client-tasks", delivery_api.ClientTaskViewSet, basename="client-task")
router.register(f"{ORG}/gates", delivery_api.GateViewSet, basename="gate")
router.register(f"{ORG}/gate-decisions", delivery_api.GateDecisionViewSet, basename="gate-decision")
router.register(f"{ORG}/decisions", delivery_api.DecisionLogEntryViewSet, basename="decision")
router.register(f"{ORG}/risks", delivery_api.RiskViewSet, basename="risk")
router.register(f"{ORG}/releases", delivery_api.ReleaseViewSet, basename="release")
router.register(f"{ORG}/work-items", delivery_api.WorkItemViewSet, basename="work-item")
router.register(f"{ORG}/updates", delivery_api.WeeklyUpdateViewSet, basename="update")
router.register(
    rf"{ORG}/engagements/(?P<engagement_uuid>[^/.]+)/kpi-readings", kpis_api.KpiReadingViewSet, basename="kpi-reading"
)
router.register(f"{ORG}/terms", definitions_api.TermViewSet, basename="term")
router.register(f"{ORG}/stages", definitions_api.StageViewSet, basename="stage")
router.register(f"{ORG}/definition-versions", definitions_api.VersionViewSet, basename="definition-version")
router.register(f"{ORG}/artifacts", definitions_api.ArtifactViewSet, basename="artifact")
router.register(f"{ORG}/audit-runs", crm_api.AuditRunViewSet, basename="audit-run")
router.register(f"{ORG}/findings", crm_api.FindingViewSet, basename="finding")
router.register(f"{ORG}/intake-forms", workspace_api.IntakeFormViewSet, basename="intake-form")
router.register(f"{ORG}/intake-files", workspace_api.IntakeFileViewSet, basename="intake-file")

api_urls = [
    path("", include(router.urls)),
    path("auth/token/", accounts_api.ObtainTokenView.as_view(), name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its init script from a URL, not inline: the CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]

auth_urls = [
    path("login/", auth_views.LoginView.as_view(authentication_form=EmailAuthenticationForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            html_email_template_name="emails/password-reset-body-html.html",
            email_template_name="emails/password-reset-body-text.html",
            subject_template_name="emails/password-reset-subject.html",
        ),
        name="password_reset",
    ),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"
    ),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]

# The organization's home shows every app's work, so reporting builds it; it keeps its name in accounts' namespace
# (`accounts:org-home`, reversed all over) and is routed here, at the top, because accounts may not import reporting.
accounts_patterns = [path("o/<slug:org_slug>/", views_home.org_home, name="org-home"), *accounts_urls.urlpatterns]

urlpatterns = [
    path("", accounts_views.home, name="home"),
    path("healthz/", accounts_views.healthz, name="healthz"),
    path("readyz/", accounts_views.readyz, name="readyz"),
    path("accounts/", include(auth_urls)),
    path("", include((accounts_patterns, accounts_urls.app_name))),
    path("", include("engagements.urls")),
    path("", include("playbooks.urls")),
    path("", include("crm_connectors.urls")),
    path("", include("engineering.urls")),
    path("", include("reporting.urls")),
    path("", include("client_workspace.urls")),
    # One "portal" namespace: the client workspace's pages sit beside engagements' (which may not import it).
    path(
        "portal/",
        include((portal_urls.urlpatterns + workspace_portal_urls.urlpatterns + crm_portal_urls.urlpatterns, "portal")),
    ),
    path("api/v1/", include((api_urls, "api"))),
]
