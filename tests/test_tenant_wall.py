"""The tenant wall, by construction: every URL pattern of the project is requested as the wrong person.

The test walks the URL resolver, so a URL added later is covered without editing this file. Each URL's
parameters are filled with organization A's objects (by parameter name: a new parameter name fails
loudly until a filler is added below). Then:
  - the owner of A (or A's own stakeholder, for portal URLs) must reach it: proves the filling is right;
  - an anonymous visitor, a member of organization B, a portal stakeholder of another organization and
    a portal stakeholder of A's other client get nothing but a login redirect, 401/403/404/405;
  - a viewer of A attempting writes is refused and nothing is written;
  - a member of B on B's own slug (past the membership check) with A's objects' UUIDs gets nothing of A's: only the
    scoping of each object lookup stands in the way there.
URLs that show no tenant data by design (sign-in pages, API schema) may answer 200, but must not leak A's
data to anyone.
"""

from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token

from accounts.models import ActivityEntry, Invitation, Membership
from engagements.portal_access import SESSION_KEY

# Pages that hold no tenant data and must work for anonymous visitors.
PUBLIC = {
    "login",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "accounts:invitation-accept",
    "portal:login",
    "portal:redeem",
    "portal:logout",
    "api:api-root",
    "api:schema",
    "api:docs",
    "api:token",
    "healthz",
    "readyz",
    "portal:unsubscribe",
}
# Pages about the signed-in user themselves (their organizations, their API token), not about organization A.
USER_SCOPED = {"home", "accounts:org-list", "accounts:api-token", "api:organization-list"}
DENIED = {401, 403, 404, 405}
# The wall test counts every tenant's rows: a refused request must write nothing anywhere.
EVERY = "the wall test counts every tenant's rows"

WRITE_METHODS = ("post", "put", "patch", "delete")


@dataclass
class Route:
    name: str
    params: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        return self.name.startswith("api:")

    @property
    def is_portal(self) -> bool:
        return self.name.startswith("portal:")


def _params(pattern) -> set[str]:
    converters = getattr(pattern.pattern, "converters", None)
    if converters is not None and not hasattr(pattern.pattern, "_regex"):
        return set(converters)
    return set(pattern.pattern.regex.groupindex)


def all_routes(resolver=None, namespace="", params=frozenset()) -> list[Route]:
    resolver = resolver or get_resolver()
    routes = []
    for entry in resolver.url_patterns:
        here = params | _params(entry)
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            routes += all_routes(entry, ns, here)
        elif isinstance(entry, URLPattern):
            assert entry.name, f"URL pattern {entry.pattern} has no name; every URL must be named"
            routes.append(Route(f"{namespace}{entry.name}", tuple(sorted(here))))
    return routes


ROUTES = all_routes()


def fill(route: Route, cast) -> dict:
    values = {
        "org_slug": cast.org.slug,
        "client_uuid": cast.client.uuid,
        "stakeholder_uuid": cast.stakeholder.uuid,
        "member_uuid": cast.extra["membership"].uuid,
        "invitation_uuid": cast.extra["invitation"].uuid,
        "token": "not-a-real-token",
        "uidb64": "MQ",
        "format": "json",
    }
    values.update(cast.extra.get("params", {}))
    missing = [p for p in route.params if p not in values]
    assert not missing, f"{route.name}: add a filler for URL parameter(s) {missing} in tests/test_tenant_wall.py"
    return {p: values[p] for p in route.params}


def url_of(route: Route, cast) -> str:
    return reverse(route.name, kwargs=fill(route, cast))


@pytest.fixture
def wall(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    cast.extra["membership"] = Membership.objects.get(organization=cast.org, user=cast.consultant)
    cast.extra["invitation"], _ = Invitation.new(
        organization=cast.org, email="new@alpha.example", role="consultant", invited_by=cast.owner
    )
    cast.extra["params"] = engagement_objects(cast)
    return cast


# A 1x1 PNG: organization A has a logo, so its logo URL answers the right person.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def engagement_objects(cast) -> dict:
    """One of everything an engagement holds, in organization A, keyed by the URL parameter naming it."""
    from datetime import date

    from engagements import cadence, enablement, progression, refinement
    from engagements.models import (
        CsvImport,
        DecisionLogEntry,
        FeedbackItem,
        ImportKind,
        KpiReading,
        Release,
        Risk,
        WorkItem,
    )
    from playbooks.models import Playbook
    from playbooks.services import clone_playbook
    from tests.conftest import ensure_library

    ensure_library()
    library = Playbook.objects.library().get(key="gtm-lifecycle")
    copy = clone_playbook(source=library, organization=cast.org, actor=cast.owner)
    engagement = progression.create_engagement(
        client=cast.client, playbook_version=copy.latest_version(), name="Lifecycle rebuild",
        start_date=date(2026, 11, 2), actor=cast.owner, stakeholders=[(cast.stakeholder, "Approver")],
    )
    phase = engagement.phases.get(key="strategy")
    gate = phase.gate
    for checkpoint in gate.checkpoints.all():
        progression.resolve_checkpoint(checkpoint=checkpoint, action="waive", actor=cast.owner, reason="wall test")
    gate_decision = progression.decide_gate(gate=gate, option_key="proceed-to-engineering", actor=cast.owner)
    org, actor = cast.org, cast.owner

    def board(model, **fields):
        return cadence.save_board_item(item=model(engagement=engagement, organization=org, **fields), actor=actor)

    meeting = refinement.record_meeting(engagement=engagement, type="kickoff", held_on=date(2026, 11, 3), actor=actor)
    version = refinement.start_version(engagement=engagement, actor=actor, meeting=meeting)
    assumption = refinement.add_item(version=version, key="sal", text="SAL within 48h", actor=actor)
    from deliverables import services as pipeline
    from engagements import definitions
    from engagements.deliverables import request_artifact

    definition_version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=actor)
    artifact = request_artifact(engagement=engagement, kind="stage_reference_card", actor=actor)
    pipeline.render(artifact.pk)  # rendered now: downloads must answer the right person
    training = enablement.record_training(
        engagement=engagement, training_type=engagement.spec.enablement.training_types[0].key,
        held_on=date(2026, 11, 20), actor=actor,
    )
    from django.core.files.base import ContentFile

    from crm_connectors.models import CrmConnection
    from reporting import runs, schedules
    from reporting.models import HealthResult
    from reporting.tasks import run_health_check

    # Before the CRM connection below exists (it has no secrets, so a run could not read the CRM).
    schedules.start_schedule(engagement=engagement, actor=actor, live_since=date(2026, 9, 1))
    health_run, _ = runs.create_run(engagement, date(2026, 10, 1))
    run_health_check(health_run.pk)  # evaluated, reported and emailed now: the report download answers
    from reporting.models import FlagExplanation

    flag = HealthResult.objects.filter(run=health_run).first()
    explanation = FlagExplanation.objects.create(
        organization=cast.org, engagement=engagement, source=flag, task_key=flag.task_key, task_name=flag.task_name,
        metric=flag.metric, key=flag.key, explanation="Known seasonal dip.", explained_by=actor,
        from_period=health_run.period, until_period=date(2027, 1, 1),
    )

    cast.org.logo.save("logo.png", ContentFile(_PNG), save=True)

    connection = CrmConnection.objects.create(
        organization=cast.org, client=cast.client, kind="salesforce", auth_method="password",
        base_url="https://login.salesforce.com", username="wall@alpha.example",
    )
    from crm_connectors.audit import services as audit_services
    from crm_connectors.models import AuditRun, Finding

    audit_run = AuditRun.objects.create(
        organization=cast.org, client=cast.client, engagement=engagement, connection=connection,
        platform="salesforce", status="succeeded", progress=100,
    )
    finding = Finding.objects.create(
        organization=cast.org, run=audit_run, rule_id="LC-NO-SAL", severity="high", domain="lead_lifecycle",
        object="lead", message="No SAL stage.", fingerprint="wall",
    )
    audit_report = audit_services.request_report(run=audit_run, actor=actor)
    pipeline.render(audit_report.pk)  # rendered now: the download must answer
    from django.core.files.uploadedfile import SimpleUploadedFile

    from client_workspace import documents, intake
    from client_workspace.files import store_intake_file

    intake_file = store_intake_file(
        form=intake.form_of(engagement), field_key="current_definitions",
        upload=SimpleUploadedFile("stages.csv", b"Stage\r\nMQL\r\n"), stakeholder=cast.stakeholder,
    )
    shared = documents.share(engagement=engagement, actor=actor, title="Intro video", url="https://example.com/v")
    return {
        "intake_form_uuid": intake_file.form.uuid,
        "intake_file_uuid": intake_file.uuid,
        "document_uuid": shared.uuid,
        "audit_run_uuid": audit_run.uuid,
        "finding_uuid": finding.uuid,
        "audit_artifact_uuid": audit_report.uuid,
        "connection_uuid": connection.uuid,
        "task_uuid": engagement.maintenance_schedule.tasks.first().uuid,
        "run_uuid": health_run.uuid,
        "result_uuid": HealthResult.objects.filter(run=health_run).first().uuid,
        "explanation_uuid": explanation.uuid,
        "engagement_uuid": engagement.uuid,
        "phase_uuid": phase.uuid,
        "sub_phase_uuid": engagement.sub_phases.first().uuid,
        "item_uuid": engagement.checklist.first().uuid,
        "gate_uuid": gate.uuid,
        "checkpoint_uuid": gate.checkpoints.first().uuid,
        "gate_decision_uuid": gate_decision.uuid,
        "work_uuid": board(WorkItem, title="Configure lead status").uuid,
        "decision_uuid": board(DecisionLogEntry, title="Who owns SAL", category="ownership").uuid,
        "risk_uuid": board(Risk, title="Data migration slips").uuid,
        "release_uuid": board(Release, title="Release 1").uuid,
        "feedback_uuid": board(FeedbackItem, title="Stage names confusing").uuid,
        "update_uuid": cadence.draft_weekly_update(engagement=engagement, actor=actor).uuid,
        "meeting_uuid": meeting.uuid,
        "version_uuid": version.uuid,
        "assumption_uuid": assumption.uuid,
        "training_uuid": training.uuid,
        "reading_uuid": KpiReading.objects.create(
            organization=org, engagement=engagement, kpi="adoption", measured_on=date(2026, 11, 20), value=50
        ).uuid,
        "import_uuid": CsvImport.objects.create(
            organization=org, engagement=engagement, kind=ImportKind.METRICS, text="metric,period,value\n", lines=0
        ).uuid,
        "term_uuid": engagement.terms.first().uuid,
        "stage_uuid": engagement.stages.first().uuid,
        "definition_version_uuid": definition_version.uuid,
        "artifact_uuid": artifact.uuid,
        "playbook_uuid": copy.uuid,
        "playbook_version_uuid": copy.latest_version().uuid,
    }


def _as_user(client, user):
    client.force_login(user)
    token, _ = Token.objects.get_or_create(user=user)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    return client


def _as_stakeholder(client, stakeholder):
    session = client.session
    session[SESSION_KEY] = str(stakeholder.uuid)
    session.save()
    return client


def _assert_refused(response, route, who, url, markers):
    status = response.status_code
    if status in (301, 302):
        location = response["Location"]
        if route.name in USER_SCOPED:  # e.g. "/" sends a member of B to B's home: fine, as long as not into A
            assert "/o/alpha/" not in location, f"{who} {url} redirected into organization A: {location}"
        else:
            assert location.startswith(("/accounts/login/", "/portal/login/")), (
                f"{who} {url} redirected to {location}, not to a sign-in page"
            )
        return
    if status in DENIED:
        return
    body = response.content.decode(errors="replace")
    leaked = [m for m in markers if m in body]
    assert not route.params or route.params == ("token",) or route.params == ("format",), (
        f"{who} got {status} on {url} which names organization A's objects"
    )
    assert not leaked, f"{who} got {status} on {url} and saw {leaked}"


def _personas(wall, client_factory):
    strangers = [wall.org.name, wall.client.name, wall.stakeholder.email]
    return [
        ("anonymous", client_factory(), strangers),
        ("member of B", _as_user(client_factory(), wall.outsider), strangers),
        ("stakeholder of B's client", _as_stakeholder(client_factory(), wall.other_stakeholder), strangers),
        (
            "stakeholder of A's other client",
            _as_stakeholder(client_factory(), wall.sibling_stakeholder),
            [wall.client.name, wall.stakeholder.email],
        ),
    ]


def test_every_url_is_named_and_covered():
    names = {r.name for r in ROUTES}
    assert {"accounts:org-home", "engagements:client-detail", "portal:home", "api:client-detail"} <= names
    assert len(ROUTES) > 20


def check_all(routes, check) -> None:
    """Run `check(route)` for every route and report every failure at once (one fixture, many URLs)."""
    failures = []
    for route in routes:
        try:
            check(route)
        except Exception as exc:  # a crash is a failure of that URL, not a reason to skip the others
            failures.append(f"{route.name}: {type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} URL(s) failed:\n" + "\n".join(failures)


PROTECTED = [r for r in ROUTES if r.name not in PUBLIC]


def test_the_right_person_gets_in(wall, client_factory):
    """The filled URL is real: A's own people reach it. Without this the wall test could pass vacuously."""
    owner = _as_user(client_factory(), wall.owner)
    stakeholder = _as_stakeholder(client_factory(), wall.stakeholder)

    def check(route):
        url = url_of(route, wall)
        response = (stakeholder if route.is_portal else owner).get(url)
        assert response.status_code in (200, 302, 405), f"the right person got {response.status_code} on {url}"
        if response.status_code == 302:
            assert not response["Location"].startswith(("/accounts/login/", "/portal/login/")), url

    check_all(PROTECTED, check)


def test_wrong_people_are_refused(wall, client_factory):
    personas = _personas(wall, client_factory)

    def check(route):
        url = url_of(route, wall)
        before = ActivityEntry.objects.across_tenants(EVERY).count()
        methods = ("get",) if route.name in USER_SCOPED else ("get", *WRITE_METHODS)
        for who, client, markers in personas:
            for method in methods:
                response = getattr(client, method)(url)
                _assert_refused(response, route, f"{who} {method.upper()}", url, markers)
        assert ActivityEntry.objects.across_tenants(EVERY).count() == before, f"a refused request to {url} wrote"

    check_all(PROTECTED, check)


def test_viewer_cannot_write(wall, client_factory):
    viewer = _as_user(client_factory(), wall.viewer)

    def check(route):
        url = url_of(route, wall)
        before = _written()
        for method in WRITE_METHODS:
            response = getattr(viewer, method)(url, {}, content_type="application/json")
            if route.is_portal:
                assert response.status_code == 302 and response["Location"].startswith("/portal/login/"), url
            else:
                assert response.status_code in (403, 405), f"viewer {method.upper()} {url} -> {response.status_code}"
        assert _written() == before, f"viewer wrote via {url}"

    check_all([r for r in PROTECTED if r.name not in USER_SCOPED], check)


def _written() -> tuple[int, int]:
    return ActivityEntry.objects.across_tenants(EVERY).count(), Membership.objects.across_tenants(EVERY).count()


def test_member_of_b_on_own_slug_with_a_objects_is_refused(wall, client_factory):
    """B's owner passes B's membership check and may write in B: a view that looked A's objects up by UUID without
    the organization would answer them. Every URL naming an object is filled with A's, on B's slug."""
    member_of_b = _as_user(client_factory(), wall.outsider)
    markers = [wall.org.name, wall.client.name, wall.stakeholder.email]

    def check(route):
        url = reverse(route.name, kwargs={**fill(route, wall), "org_slug": wall.other_org.slug})
        before = _written()
        for method in ("get", *WRITE_METHODS):
            response = getattr(member_of_b, method)(url)
            _assert_refused(response, route, f"member of B on B's slug {method.upper()}", url, markers)
        assert _written() == before, f"a refused request to {url} wrote"

    names_an_object = [r for r in PROTECTED if "org_slug" in r.params and set(r.params) - {"org_slug", "format"}]
    assert len(names_an_object) > 50  # the walk found the object URLs; a broken filter would pass vacuously
    check_all(names_an_object, check)


def test_member_of_b_sees_none_of_a_on_own_pages(wall, client_factory):
    """B's own pages (lists, forms, exports) under B's slug answer B, and show nothing of A's."""
    member_of_b = _as_user(client_factory(), wall.outsider)
    markers = [wall.org.name, wall.client.name, wall.stakeholder.email]

    def check(route):
        url = reverse(route.name, kwargs={**fill(route, wall), "org_slug": wall.other_org.slug})
        response = member_of_b.get(url)
        assert response.status_code < 500, f"member of B GET {url} -> {response.status_code}"
        body = response.content.decode(errors="replace")
        assert not [m for m in markers if m in body], f"member of B saw A's data on {url}"

    check_all([r for r in PROTECTED if "org_slug" in r.params and set(r.params) <= {"org_slug", "format"}], check)


def test_public_pages_leak_nothing(wall, client_factory):
    personas = _personas(wall, client_factory)

    def check(route):
        url = url_of(route, wall)
        for who, client, markers in personas:
            response = client.get(url)
            assert response.status_code < 500, f"{who} GET {url} -> {response.status_code}"
            body = response.content.decode(errors="replace")
            if who != "stakeholder of A's other client":
                assert not [m for m in markers if m in body], f"{who} saw A's data on {url}"

    check_all([r for r in ROUTES if r.name in PUBLIC], check)


@pytest.fixture
def client_factory():
    from django.test import Client

    return Client
