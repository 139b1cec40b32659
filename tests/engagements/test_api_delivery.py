"""The delivery API: engagements driven through their gates, the board and weekly updates, over HTTP."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ActivityEntry, Membership
from engagements import cadence, progression
from engagements.models import (
    ChecklistItem,
    DecisionLogEntry,
    Engagement,
    EngagementStatus,
    GateDecision,
    Release,
    Risk,
    WeeklyUpdate,
    WorkItem,
)
from playbooks.services import clone_playbook

API = "/api/v1/o/alpha"


def api_as(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(cast):
    return api_as(cast.consultant)


def start(cast, library, key="gtm-lifecycle", client=None, actor=None, **kwargs) -> Engagement:
    client = client or cast.client
    return progression.create_engagement(
        client=client,
        playbook_version=library[key],
        name=kwargs.pop("name", f"{key} for {client.name}"),
        start_date=date(2026, 11, 2),
        actor=actor or cast.consultant,
        **kwargs,
    )


def activity_count(cast) -> int:
    return ActivityEntry.objects.for_org(cast.org).count()


def test_create_engagement_and_drive_it_through_the_1d_gate(cast, library, api):
    owner_membership = Membership.objects.get(organization=cast.org, user=cast.owner)
    response = api.post(
        f"{API}/engagements/",
        {
            "client": str(cast.client.uuid),
            "playbook_version": str(library["gtm-lifecycle"].uuid),
            "name": "  Lifecycle rebuild ",
            "engagement_type": "dedicated",
            "methodology_option": "foundation-all-depth",
            "start_date": "2026-11-02",
            "target_date": "2027-03-31",
            "team": [
                {"email": "CARL@alpha.example", "role": "architect"},
                {"membership": str(owner_membership.uuid), "role": "engineer"},
            ],
            "stakeholders": [{"stakeholder": str(cast.stakeholder.uuid), "role": "Approver"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Lifecycle rebuild" and body["status"] == "active"
    assert body["current_phase"]["key"] == "strategy" and body["playbook"] == "gtm-lifecycle"
    assert {(m["email"], m["role"]) for m in body["team"]} == {
        ("carl@alpha.example", "architect"),
        ("alice@alpha.example", "engineer"),
    }
    assert body["stakeholders"][0]["email"] == "maya@acme.example"
    engagement = Engagement.objects.across_tenants("test").get(uuid=body["uuid"])
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="engagement.created").count() == 1

    listed = api.get(f"{API}/engagements/").json()["results"]
    assert [(e["uuid"], e["status"], e["current_phase"]["key"]) for e in listed] == [
        (body["uuid"], "active", "strategy")
    ]
    phases = api.get(f"{API}/phases/", {"engagement": body["uuid"]}).json()["results"]
    assert [p["key"] for p in phases] == ["strategy", "engineering", "enablement", "handoff"]
    assert [s["key"] for s in phases[0]["sub_phases"]] == ["1a", "1b", "1c", "1d"]
    assert phases[0]["gate"] and phases[3]["gate"] is None

    gates = api.get(f"{API}/gates/", {"engagement": body["uuid"], "status": "open"}).json()["results"]
    assert [g["key"] for g in gates] == ["strategic-sign-off"]
    gate_url = f"{API}/gates/{gates[0]['uuid']}/"
    gate = api.get(gate_url).json()
    assert gate["round"] == 1 and gate["status"] == "open" and gate["sub_phase_key"] == "1d"
    assert {o["key"] for o in gate["options"]} == {"proceed-to-engineering", "project-complete"}
    assert gate["blockers"] and "checkpoint(s)" in gate["blockers"][0]

    # Deciding too early is refused, with the state machine's reason.
    early = api.post(f"{gate_url}decide/", {"option": "proceed-to-engineering"}, format="json")
    assert early.status_code == 400 and "neither checked nor waived" in early.json()["detail"]

    auto = next(c for c in gate["checkpoints"] if c["auto"] == "definitions_signed")
    auto_url = f"{gate_url}checkpoints/{auto['uuid']}/"
    assert api.get(auto_url).json()["status"] == "open"
    refused = api.post(auto_url, {"action": "check"}, format="json")
    assert refused.status_code == 400 and "cannot be ticked by hand" in refused.json()["detail"]
    no_reason = api.post(auto_url, {"action": "waive", "reason": "  "}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    waived = api.post(
        auto_url, {"action": "waive", "reason": "Signed on paper at the workshop; portal follows."}, format="json"
    )
    assert waived.status_code == 200, waived.json()
    assert waived.json()["status"] == "waived" and waived.json()["resolved_by"] == "carl@alpha.example"
    for checkpoint in gate["checkpoints"]:
        if checkpoint["uuid"] != auto["uuid"]:
            response = api.post(f"{gate_url}checkpoints/{checkpoint['uuid']}/", {"action": "check"}, format="json")
            assert response.status_code == 200 and response.json()["status"] == "checked"
    assert api.get(gate_url).json()["blockers"] == []

    unknown = api.post(f"{gate_url}decide/", {"option": "launch-rockets"}, format="json")
    assert unknown.status_code == 400 and "proceed-to-engineering" in unknown.json()["option"][0]
    decided = api.post(
        f"{gate_url}decide/", {"option": "proceed-to-engineering", "note": "Signed off at 1d."}, format="json"
    )
    assert decided.status_code == 201, decided.json()
    decision = decided.json()
    assert (decision["option_key"], decision["effect"], decision["round"]) == ("proceed-to-engineering", "proceed", 1)
    assert decision["decided_by"] == "carl@alpha.example" and decision["engagement"] == body["uuid"]

    after = api.get(f"{API}/engagements/{body['uuid']}/").json()
    assert after["current_phase"]["key"] == "engineering"
    assert api.get(gate_url).json()["status"] == "decided"
    log = api.get(f"{API}/gate-decisions/", {"engagement": body["uuid"]}).json()["results"]
    assert [d["uuid"] for d in log] == [decision["uuid"]]
    assert api.get(f"{API}/gate-decisions/{decision['uuid']}/").json()["note"] == "Signed off at 1d."

    # The strategy checklist is closed now; the engineering one is open.
    strategy_item = engagement.checklist.filter(phase__key="strategy").first()
    closed = api.patch(f"{API}/checklist-items/{strategy_item.uuid}/", {"done": True}, format="json")
    assert closed.status_code == 400 and "is complete" in closed.json()["detail"]
    item = engagement.checklist.filter(phase__key="engineering", sub_phase__skipped=False).first()
    ticked = api.patch(f"{API}/checklist-items/{item.uuid}/", {"done": True}, format="json")
    assert ticked.status_code == 200, ticked.json()
    assert ticked.json()["done"] is True and ticked.json()["done_by"] == "carl@alpha.example"
    done = api.get(f"{API}/checklist-items/", {"engagement": body["uuid"], "done": "true"}).json()
    assert [i["uuid"] for i in done["results"]] == [str(item.uuid)]
    open_items = api.get(f"{API}/checklist-items/", {"phase": str(item.phase.uuid), "done": "false"}).json()
    assert open_items["count"] == item.phase.checklist.count() - 1


def test_refused_moves_are_400_with_the_message_and_write_nothing(cast, library, api):
    engagement = start(cast, library)
    strategy, engineering = engagement.phases.get(key="strategy"), engagement.phases.get(key="engineering")
    item = engagement.checklist.filter(phase=strategy).first()
    before = activity_count(cast)

    cases = [
        (f"{API}/engagements/{engagement.uuid}/resume/", {}, "Only an engagement on hold can be resumed."),
        (f"{API}/phases/{strategy.uuid}/complete/", {}, "ends at its decision gate"),
        (f"{API}/phases/{engineering.uuid}/complete/", {}, "is not the phase in progress"),
        (
            f"{API}/gates/{engineering.gate.uuid}/checkpoints/{engineering.gate.checkpoints.first().uuid}/",
            {"action": "check"},
            "is not open",
        ),
    ]
    for url, data, message in cases:
        response = api.post(url, data, format="json")
        assert response.status_code == 400, url
        assert message in response.json()["detail"], response.json()

    # Only `done` can change on a checklist item, and it must be a boolean.
    response = api.patch(f"{API}/checklist-items/{item.uuid}/", {"done": True, "text": "Rewritten"}, format="json")
    assert response.status_code == 400 and "text" in response.json()
    response = api.patch(f"{API}/checklist-items/{item.uuid}/", {"done": "maybe"}, format="json")
    assert response.status_code == 400 and "done" in response.json()
    response = api.post(
        f"{API}/gates/{strategy.gate.uuid}/checkpoints/{strategy.gate.checkpoints.first().uuid}/",
        {"action": "tick"},
        format="json",
    )
    assert response.status_code == 400 and "action" in response.json()
    assert api.put(f"{API}/checklist-items/{item.uuid}/", {"done": True}, format="json").status_code == 405

    # On hold, the checklist is frozen until the engagement is resumed through the API.
    engagement.status = EngagementStatus.ON_HOLD
    engagement.save(update_fields=["status"])
    response = api.patch(f"{API}/checklist-items/{item.uuid}/", {"done": True}, format="json")
    assert response.status_code == 400 and "on hold" in response.json()["detail"]
    assert activity_count(cast) == before
    item.refresh_from_db()
    assert not item.done
    resumed = api.post(f"{API}/engagements/{engagement.uuid}/resume/")
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    on_hold = api.get(f"{API}/engagements/", {"status": "on_hold"}).json()
    assert on_hold["count"] == 0
    assert api.get(f"{API}/engagements/", {"status": "paused"}).status_code == 400


def test_bad_engagement_input_gets_field_messages_and_writes_nothing(cast, library, api):
    other_copy = clone_playbook(
        source=library["gtm-lifecycle"].playbook, organization=cast.other_org, actor=cast.outsider
    )
    before = (Engagement.objects.across_tenants("test").count(), activity_count(cast))
    response = api.post(
        f"{API}/engagements/",
        {
            "client": str(cast.other_client.uuid),
            "playbook_version": str(other_copy.latest_version().uuid),
            "name": "",
            "engagement_type": "forever",
            "start_date": "next week",
            "team": [{"email": "bob@beta.example", "role": "architect"}, {"role": "engineer"}],
            "stakeholders": [{"stakeholder": str(cast.other_stakeholder.uuid)}],
        },
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()
    assert {"client", "playbook_version", "name", "engagement_type", "start_date", "team", "stakeholders"} <= set(
        errors
    )
    assert "does not exist" in errors["client"][0]
    assert "does not exist" in errors["playbook_version"][0]  # another organization's copy
    assert "does not exist" in errors["team"]["0"]["email"][0]
    assert "exactly one" in errors["team"]["1"]["non_field_errors"][0]
    assert "does not exist" in errors["stakeholders"]["0"]["stakeholder"][0]

    valid = {
        "client": str(cast.client.uuid),
        "playbook_version": str(library["gtm-lifecycle"].uuid),
        "name": "Lifecycle",
        "start_date": "2026-11-02",
    }
    for extra, field in [
        ({"methodology_option": "everything"}, "methodology_option"),
        ({"shape": "audit"}, "shape"),  # a delivery-model shape, not offered by gtm-lifecycle
        ({"target_date": "2026-01-01"}, "target_date"),
        ({"stakeholders": [{"stakeholder": str(cast.sibling_stakeholder.uuid)}]}, "stakeholders"),
        ({"team": [{"email": "carl@alpha.example", "role": "sme"}] * 2}, "team"),
    ]:
        response = api.post(f"{API}/engagements/", {**valid, **extra}, format="json")
        assert response.status_code == 400 and field in response.json(), (extra, response.json())
    assert (Engagement.objects.across_tenants("test").count(), activity_count(cast)) == before

    # This organization's own copy of a playbook can be used.
    own_copy = clone_playbook(source=library["gtm-lifecycle"].playbook, organization=cast.org, actor=cast.owner)
    response = api.post(
        f"{API}/engagements/", {**valid, "playbook_version": str(own_copy.latest_version().uuid)}, format="json"
    )
    assert response.status_code == 201, response.json()


def test_another_tenants_uuids_read_as_not_existing(cast, library, api):
    theirs = start(cast, library, "delivery-model", client=cast.other_client, actor=cast.outsider)
    their_release = cadence.save_board_item(
        item=Release(engagement=theirs, organization=cast.other_org, title="Their release"), actor=cast.outsider
    )
    their_gate = theirs.gates.first()
    for url in (
        f"{API}/engagements/{theirs.uuid}/",
        f"{API}/phases/{theirs.current_phase.uuid}/",
        f"{API}/checklist-items/{theirs.checklist.first().uuid}/",
        f"{API}/gates/{their_gate.uuid}/",
        f"{API}/releases/{their_release.uuid}/",
    ):
        assert api.get(url).status_code == 404, url
    assert api.get(f"{API}/phases/", {"engagement": str(theirs.uuid)}).json()["count"] == 0
    assert api.post(f"{API}/engagements/{theirs.uuid}/resume/").status_code == 404

    ours = start(cast, library, "delivery-model")
    before = (
        DecisionLogEntry.objects.across_tenants("test").count(),
        WeeklyUpdate.objects.across_tenants("test").count(),
        activity_count(cast),
    )
    response = api.post(
        f"{API}/decisions/",
        {"engagement": str(theirs.uuid), "title": "Who owns SAL", "category": "ownership"},
        format="json",
    )
    assert response.status_code == 400 and "does not exist" in response.json()["engagement"][0]
    response = api.post(
        f"{API}/decisions/",
        {"engagement": str(ours.uuid), "title": "Who owns SAL", "category": "ownership", "gate": str(their_gate.uuid)},
        format="json",
    )
    assert response.status_code == 400 and "does not exist" in response.json()["gate"][0]
    response = api.post(f"{API}/updates/", {"engagement": str(theirs.uuid)}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["engagement"][0]
    assert (
        DecisionLogEntry.objects.across_tenants("test").count(),
        WeeklyUpdate.objects.across_tenants("test").count(),
        activity_count(cast),
    ) == before

    # A per-release gate approves a release of this organization's engagement, never another tenant's.
    for phase in ("discover", "design"):
        gate = ours.phases.get(key=phase).gate
        for checkpoint in gate.checkpoints.all():
            progression.resolve_checkpoint(checkpoint=checkpoint, action="check", actor=cast.consultant)
        progression.decide_gate(gate=gate, option_key="proceed", actor=cast.consultant)
    build_gate = ours.phases.get(key="build").gate
    for checkpoint in build_gate.checkpoints.all():
        api.post(f"{API}/gates/{build_gate.uuid}/checkpoints/{checkpoint.uuid}/", {"action": "check"}, format="json")
    decide_url = f"{API}/gates/{build_gate.uuid}/decide/"
    response = api.post(decide_url, {"option": "release-approved", "release": str(their_release.uuid)}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["release"][0]
    other_engagement = start(cast, library, "delivery-model", name="Second")
    sibling_release = api.post(
        f"{API}/releases/", {"engagement": str(other_engagement.uuid), "title": "Elsewhere"}, format="json"
    ).json()
    response = api.post(decide_url, {"option": "release-approved", "release": sibling_release["uuid"]}, format="json")
    assert response.status_code == 400 and "another engagement" in response.json()["release"][0]
    assert not GateDecision.objects.filter(gate=build_gate).exists()

    release = api.post(f"{API}/releases/", {"engagement": str(ours.uuid), "title": "Release 1"}, format="json").json()
    response = api.post(decide_url, {"option": "release-approved", "release": release["uuid"]}, format="json")
    assert response.status_code == 201, response.json()
    approved = api.get(f"{API}/releases/{release['uuid']}/").json()
    assert approved["status"] == "released" and approved["gate_decision"] == response.json()["uuid"]
    assert api.get(f"{API}/gates/{build_gate.uuid}/").json()["round"] == 2


def test_viewer_reads_but_every_write_is_403(cast, library):
    engagement = start(cast, library)
    gate = engagement.phases.get(key="strategy").gate
    item = engagement.checklist.first()
    decision = cadence.save_board_item(
        item=DecisionLogEntry(engagement=engagement, title="Stage names", category="pipeline_stages"),
        actor=cast.consultant,
    )
    viewer = api_as(cast.viewer)
    assert viewer.get(f"{API}/engagements/").json()["count"] == 1
    assert viewer.get(f"{API}/gates/{gate.uuid}/").status_code == 200
    before = (
        activity_count(cast),
        Engagement.objects.across_tenants("test").count(),
        DecisionLogEntry.objects.across_tenants("test").count(),
    )
    writes = [
        ("post", f"{API}/engagements/", {"name": "Sneaky"}),
        ("post", f"{API}/engagements/{engagement.uuid}/resume/", {}),
        ("patch", f"{API}/checklist-items/{item.uuid}/", {"done": True}),
        ("post", f"{API}/gates/{gate.uuid}/decide/", {"option": "proceed-to-engineering"}),
        ("post", f"{API}/gates/{gate.uuid}/checkpoints/{gate.checkpoints.first().uuid}/", {"action": "check"}),
        ("post", f"{API}/decisions/", {"engagement": str(engagement.uuid), "title": "X", "category": "ownership"}),
        ("patch", f"{API}/decisions/{decision.uuid}/", {"title": "Renamed"}),
        ("delete", f"{API}/decisions/{decision.uuid}/", None),
        ("post", f"{API}/updates/", {"engagement": str(engagement.uuid)}),
    ]
    for method, url, data in writes:
        response = getattr(viewer, method)(url, data, format="json")
        assert response.status_code == 403, (method, url, response.status_code)
    assert (
        activity_count(cast),
        Engagement.objects.across_tenants("test").count(),
        DecisionLogEntry.objects.across_tenants("test").count(),
    ) == before
    item.refresh_from_db()
    assert not item.done


def test_decision_log_crud_logs_activity(cast, library, api):
    engagement = start(cast, library)
    gate = engagement.phases.get(key="strategy").gate

    def verbs():
        return list(
            ActivityEntry.objects.for_org(cast.org)
            .filter(verb__startswith="decisionlogentry.")
            .order_by("id")
            .values_list("verb", flat=True)
        )

    created = api.post(
        f"{API}/decisions/",
        {
            "engagement": str(engagement.uuid),
            "title": "Who owns SAL follow-up",
            "category": "ownership",
            "context": "SDRs and AEs both claim it.",
            "gate": str(gate.uuid),
            "client_visible": True,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    entry = created.json()
    assert (
        entry["status"] == "needed" and entry["gate"] == str(gate.uuid) and entry["engagement"] == str(engagement.uuid)
    )
    assert verbs() == ["decisionlogentry.created"]

    url = f"{API}/decisions/{entry['uuid']}/"
    patched = api.patch(url, {"status": "decided", "decision": "AEs own SAL follow-up."}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["decided_on"] is not None  # the service stamps the day it was decided
    moved = api.patch(url, {"engagement": str(start(cast, library, name="Another").uuid)}, format="json")
    assert moved.status_code == 400 and "engagement" in moved.json()
    bad = api.patch(url, {"category": "vibes"}, format="json")
    assert bad.status_code == 400 and "category" in bad.json()
    assert verbs() == ["decisionlogentry.created", "decisionlogentry.updated"]

    listed = api.get(f"{API}/decisions/", {"engagement": str(engagement.uuid), "status": "decided"}).json()
    assert [d["uuid"] for d in listed["results"]] == [entry["uuid"]]
    assert api.get(f"{API}/decisions/", {"status": "needed"}).json()["count"] == 0

    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert verbs() == ["decisionlogentry.created", "decisionlogentry.updated", "decisionlogentry.deleted"]


@pytest.mark.parametrize(
    "path, model, fields, change",
    [
        ("risks", Risk, {"title": "Data migration slips", "likelihood": "high"}, {"status": "mitigated"}),
        ("releases", Release, {"title": "Release 1: lead routing"}, {"status": "released"}),
        ("work-items", WorkItem, {"title": "Configure lead status", "owner": "Carl"}, {"status": "in_progress"}),
    ],
)
def test_board_items_crud_through_the_cadence_service(cast, library, api, path, model, fields, change):
    engagement = start(cast, library)
    name = model._meta.model_name
    created = api.post(f"{API}/{path}/", {"engagement": str(engagement.uuid), **fields}, format="json")
    assert created.status_code == 201, created.json()
    url = f"{API}/{path}/{created.json()['uuid']}/"
    updated = api.patch(url, change, format="json")
    assert updated.status_code == 200 and updated.json()["status"] == change["status"]
    assert api.get(f"{API}/{path}/", {"engagement": str(engagement.uuid)}).json()["count"] == 1
    assert api.delete(url).status_code == 204
    assert not model.objects.for_org(cast.org).exists()
    verbs = ActivityEntry.objects.for_org(cast.org).filter(verb__startswith=f"{name}.").values_list("verb", flat=True)
    assert sorted(verbs) == sorted([f"{name}.created", f"{name}.updated", f"{name}.deleted"])
    missing = api.post(f"{API}/{path}/", {"title": "No engagement"}, format="json")
    assert missing.status_code == 400 and "engagement" in missing.json()


def test_weekly_update_draft_patch_publish_then_frozen(cast, library, api):
    engagement = start(cast, library, stakeholders=[(cast.stakeholder, "Approver")])
    cadence.save_board_item(
        item=WorkItem(engagement=engagement, title="Configure lead status", status="in_progress", client_visible=True),
        actor=cast.consultant,
    )
    drafted = api.post(
        f"{API}/updates/", {"engagement": str(engagement.uuid), "week_start": "2026-11-05"}, format="json"
    )
    assert drafted.status_code == 201, drafted.json()
    update = drafted.json()
    assert update["week_start"] == "2026-11-02" and update["status"] == "draft"
    assert "Configure lead status" in update["what_happens_next"]
    again = api.post(f"{API}/updates/", {"engagement": str(engagement.uuid), "week_start": "2026-11-02"}, format="json")
    assert again.status_code == 200 and again.json()["uuid"] == update["uuid"]

    url = f"{API}/updates/{update['uuid']}/"
    patched = api.patch(url, {"what_changed": "- Lead status configured.", "needs_decision": ""}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["what_changed"] == "- Lead status configured." and patched.json()["needs_decision"] == ""
    refused = api.patch(url, {"status": "published"}, format="json")
    assert refused.status_code == 400 and "status" in refused.json()

    published = api.post(f"{url}publish/")
    assert published.status_code == 200, published.json()
    assert published.json()["status"] == "published" and published.json()["published_by"] == "carl@alpha.example"
    assert api.post(f"{url}publish/").json()["detail"] == "This update is already published."
    frozen = api.patch(url, {"what_changed": "- Rewritten history."}, format="json")
    assert frozen.status_code == 400 and "published" in frozen.json()["detail"]
    assert (
        WeeklyUpdate.objects.across_tenants("test").get(uuid=update["uuid"]).what_changed == "- Lead status configured."
    )
    listed = api.get(f"{API}/updates/", {"engagement": str(engagement.uuid), "status": "published"}).json()
    assert [u["uuid"] for u in listed["results"]] == [update["uuid"]]
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="update.published").count() == 1


def test_schema_lists_every_delivery_path(cast, client):
    text = client.get("/api/v1/schema/").content.decode()
    for path in (
        "engagements/",
        "engagements/{engagement_uuid}/",
        "engagements/{engagement_uuid}/resume/",
        "phases/",
        "phases/{phase_uuid}/",
        "phases/{phase_uuid}/complete/",
        "checklist-items/",
        "checklist-items/{item_uuid}/",
        "gates/",
        "gates/{gate_uuid}/",
        "gates/{gate_uuid}/decide/",
        "gates/{gate_uuid}/checkpoints/{checkpoint_uuid}/",
        "gate-decisions/",
        "gate-decisions/{gate_decision_uuid}/",
        "decisions/",
        "decisions/{decision_uuid}/",
        "risks/",
        "risks/{risk_uuid}/",
        "releases/",
        "releases/{release_uuid}/",
        "work-items/",
        "work-items/{work_uuid}/",
        "updates/",
        "updates/{update_uuid}/",
        "updates/{update_uuid}/publish/",
    ):
        assert f"/api/v1/o/{{org_slug}}/{path}:" in text, path
    for component in (
        "EngagementCreate",
        "GateDecide",
        "CheckpointResolve",
        "GateOption",
        "PatchedWeeklyUpdateSections",
        "PatchedChecklistItemDone",
    ):
        assert f"    {component}:" in text, component


def _queries(api, url, params=None) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url, params or {})
    assert response.status_code == 200
    return len(queries), len(response.json()["results"])


def test_engagement_list_query_count_is_constant(cast, library, api):
    for n in range(2):
        start(cast, library, name=f"Engagement {n}", team=[(cast.consultant, "architect")])
    few, rows = _queries(api, f"{API}/engagements/")
    assert rows == 2
    owner = cast.owner
    for n in range(2, 6):
        start(
            cast,
            library,
            name=f"Engagement {n}",
            team=[(cast.consultant, "architect"), (owner, "engineer")],
            stakeholders=[(cast.stakeholder, "Approver")],
        )
    many, rows = _queries(api, f"{API}/engagements/")
    assert rows == 6 and many == few


def test_checklist_list_query_count_is_constant(cast, library, api):
    engagement = start(cast, library)
    items = list(ChecklistItem.objects.filter(engagement=engagement).order_by("order")[:12])
    for item in items[:2]:
        progression.set_checklist_item(item=item, done=True, actor=cast.consultant)
    params = {"engagement": str(engagement.uuid), "done": "true"}
    few, rows = _queries(api, f"{API}/checklist-items/", params)
    assert rows == 2
    for item in items[2:]:
        progression.set_checklist_item(item=item, done=True, actor=cast.owner)
    many, rows = _queries(api, f"{API}/checklist-items/", params)
    assert rows == 12 and many == few
