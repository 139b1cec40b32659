"""The intake form: copied from the playbook at engagement creation, answered field by field in the portal,
submitted when every required field is filled, which completes the customer's checklist item."""

import copy
from datetime import date

import pytest
import yaml
from django.urls import reverse

from accounts.models import ActivityEntry
from client_workspace import intake
from client_workspace.models import IntakeAnswer, IntakeForm
from engagements import progression
from playbooks.loader import LIBRARY_DIR, PlaybookFileError, load_playbook_file
from playbooks.models import Playbook
from playbooks.services import clone_playbook, save_edited_playbook
from tests.client_workspace.conftest import as_stakeholder

GTM = yaml.safe_load((LIBRARY_DIR / "gtm-lifecycle.yaml").read_text(encoding="utf-8"))


def loader_error(tmp_path, change) -> PlaybookFileError:
    data = copy.deepcopy(GTM)
    change(data["intake"])
    path = tmp_path / "gtm-lifecycle.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(PlaybookFileError) as info:
        load_playbook_file(path)
    return info.value


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda i: i["fields"][0].pop("choices"), "intake.fields[0]", "a 'choice' field needs 'choices'"),
        (lambda i: i["fields"][1].update(type="tabel"), "intake.fields[1].type", "'tabel'"),
        (
            lambda i: i["fields"][1]["columns"][1].update(type="choice"),
            "intake.fields[1].columns[1]",
            "a 'choice' column needs 'choices'",
        ),
        (
            lambda i: i["fields"][4].update(columns=[{"key": "a", "label": "A"}]),
            "intake.fields[4]",
            "a 'text' field takes no 'columns'",
        ),
        (lambda i: i["fields"][3].update(key="crm_platform"), "intake.fields[3].key", "duplicate key 'crm_platform'"),
        (lambda i: i.update(completes="fill-the-form"), "intake.completes", "unknown checklist item key"),
        (lambda i: i["fields"][4].update(feeds="pipelines"), "intake.fields[4].feeds", "already fed by"),
        (lambda i: i["fields"][2].update(requird=True), "intake.fields[2].requird", "unknown key 'requird'"),
        (lambda i: i.update(fields=[]), "intake.fields", "at least 1 item"),
    ],
    ids=[
        "choice-without-choices",
        "unknown-type",
        "column-choices",
        "text-with-columns",
        "duplicate-key",
        "unknown-checklist-item",
        "feed-twice",
        "typo",
        "no-fields",
    ],
)
def test_a_malformed_intake_block_names_the_file_and_the_path(tmp_path, change, path, message):
    error = loader_error(tmp_path, change)
    assert error.file.endswith("gtm-lifecycle.yaml")
    assert error.path == path
    assert message in error.message
    assert str(error).startswith(f"{error.file}: {path}: ")


def test_every_seeded_method_has_its_intake_form(library):
    forms = {key: version.spec.intake for key, version in library.items()}
    gtm = {f.key: f for f in forms["gtm-lifecycle"].fields}
    # The seed's list (001, Track A): CRM, teams and sizes, current definitions, pipelines, pain points, POC/POV,
    # renewal, lead scoring.
    assert list(gtm) == [
        "crm_platform",
        "gtm_teams",
        "current_definitions",
        "pipelines",
        "pain_points",
        "poc_pov",
        "renewal_process",
        "lead_scoring",
    ]
    assert gtm["current_definitions"].type == "file" and gtm["gtm_teams"].columns[1].type == "number"
    assert gtm["lead_scoring"].choices == ["None", "Action-based", "Simple scoring", "Matrix scoring"]
    ri = {f.key for f in forms["revenue-intelligence"].fields}
    assert {
        "tech_stack",
        "recording_tools",
        "crm_platform",
        "sales_stages",
        "team_roster",
        "recording_consent",
        "forecast_vs_actual",
    } <= ri
    partners = {f.key for f in forms["partnership-success"].fields}
    assert {"current_tools", "partner_tiers", "program_types", "commission_structures"} <= partners
    assert forms["delivery-model"] is None


def test_the_form_is_copied_at_creation_and_a_later_playbook_edit_leaves_it(cast, library, engagement):
    form = IntakeForm.objects.for_org(cast.org).get(engagement=engagement)
    assert [f.key for f in form.fields] == [f.key for f in library["gtm-lifecycle"].spec.intake.fields]

    copy_ = clone_playbook(
        source=Playbook.objects.library().get(key="gtm-lifecycle"), organization=cast.org, actor=cast.owner
    )
    running = progression.create_engagement(
        client=cast.client,
        playbook_version=copy_.latest_version(),
        name="Second",
        start_date=date(2026, 11, 9),
        actor=cast.owner,
        stakeholders=[(cast.stakeholder, "Approver")],
    )
    text = (LIBRARY_DIR / "gtm-lifecycle.yaml").read_text(encoding="utf-8")
    edited = text.replace("key: gtm-lifecycle", f"key: {copy_.key}", 1).replace(
        "      label: Known pain points\n", "      label: What hurts today\n", 1
    )
    save_edited_playbook(playbook=copy_, text=edited, actor=cast.owner)
    assert copy_.latest_version().spec.intake.fields[4].label == "What hurts today"
    labels = [f.label for f in IntakeForm.objects.for_org(cast.org).get(engagement=running).fields]
    assert "Known pain points" in labels and "What hurts today" not in labels


def answer(client, engagement, field, data):
    return client.post(reverse("portal:intake-save", args=[engagement.uuid]), {"field": field, **data})


HALF = {
    "crm_platform": {"crm_platform": "Salesforce"},
    "gtm_teams": {
        "gtm_teams__0__team": "Sales",
        "gtm_teams__0__size": "12",
        "gtm_teams__1__team": "CS",
        "gtm_teams__1__size": "4",
    },
    "pain_points": {"pain_points": "Nobody agrees what an MQL is."},
}
REST = {
    "pipelines__0__pipeline": "New business",
    "pipelines__0__stages": "Discovery, Demo, Proposal, Closed",
    "poc_pov": "no",
    "renewal_process": "yes",
    "lead_scoring": "Simple scoring",
}


def test_answers_are_saved_field_by_field_and_typed(cast, client, engagement):
    as_stakeholder(client, cast.stakeholder)
    for field, data in HALF.items():
        response = answer(client, engagement, field, data)
        assert response.status_code == 200 and b"Saved" in response.content
    form = intake.form_of(engagement)
    assert intake.answers_of(form) == {
        "crm_platform": "Salesforce",
        "gtm_teams": [{"team": "Sales", "size": 12}, {"team": "CS", "size": 4}],
        "pain_points": "Nobody agrees what an MQL is.",
    }
    # Bad input names the field (and the row and column) and changes nothing.
    response = answer(client, engagement, "gtm_teams", {"gtm_teams__0__team": "Sales", "gtm_teams__0__size": "-3"})
    assert response.status_code == 422
    assert "“GTM teams and their sizes”, row 1, People cannot be negative" in response.content.decode()
    response = answer(client, engagement, "crm_platform", {"crm_platform": "Pipedrive"})
    assert response.status_code == 422 and "“Pipedrive” is not one of the choices" in response.content.decode()
    assert intake.answers_of(intake.form_of(engagement))["gtm_teams"][0]["size"] == 12
    # Emptying a field removes its answer.
    answer(client, engagement, "pain_points", {"pain_points": "  "})
    assert "pain_points" not in intake.answers_of(intake.form_of(engagement))


def test_a_submission_with_missing_required_fields_names_them_and_keeps_every_answer(cast, client, engagement):
    as_stakeholder(client, cast.stakeholder)
    posted = {k: v for data in HALF.values() for k, v in data.items()}
    response = client.post(reverse("portal:intake-submit", args=[engagement.uuid]), posted)
    assert response.status_code == 400
    page = response.content.decode()
    required = [f for f in intake.form_of(engagement).fields if f.required]
    missing = [f.label for f in required if f.key not in HALF]
    assert f"{len(missing)} required fields still empty" in page
    for label in missing:
        assert f">{label}</a></li>" in page
    assert 'value="Sales"' in page and "Nobody agrees what an MQL is." in page  # given answers shown again
    assert IntakeAnswer.objects.for_org(cast.org).filter(form__engagement=engagement).count() == len(HALF)
    form = intake.form_of(engagement)
    assert not form.is_submitted
    assert not engagement.checklist.get(key="complete-intake-form").done


def test_a_complete_submission_completes_the_checklist_item(cast, client, engagement):
    as_stakeholder(client, cast.stakeholder)
    posted = {k: v for data in HALF.values() for k, v in data.items()} | REST
    response = client.post(reverse("portal:intake-submit", args=[engagement.uuid]), posted)
    assert response.status_code == 302
    form = intake.form_of(engagement)
    assert form.is_submitted and form.submitted_by == cast.stakeholder
    item = engagement.checklist.get(key="complete-intake-form")
    assert item.done and item.done_at is not None
    verbs = list(ActivityEntry.objects.for_org(cast.org).values_list("verb", "actor_label"))
    assert ("intake.submitted", "Maya Patel <maya@acme.example>") in verbs
    assert ("client_task.auto_completed", "system") in verbs
    # Submitted: the form no longer changes from the portal.
    response = answer(client, engagement, "pain_points", {"pain_points": "changed"})
    assert response.status_code == 422 and "was submitted on" in response.content.decode()
    assert intake.answers_of(form)["pain_points"] == "Nobody agrees what an MQL is."


def test_the_consultant_sees_the_answers_and_the_crm_suggestion(cast, client, engagement):
    stakeholder_client = as_stakeholder(client.__class__(), cast.stakeholder)
    for field, data in HALF.items():
        answer(stakeholder_client, engagement, field, data)
    client.force_login(cast.consultant)
    page = client.get(reverse("client_workspace:intake", args=[cast.org.slug, engagement.uuid])).content.decode()
    assert "Nobody agrees what an MQL is." in page and "<td>Sales</td><td>12</td>" in page
    empty = len([f for f in engagement.playbook_version.spec.intake.fields if f.required and f.key not in HALF])
    assert f"In progress: {empty} required fields empty" in page
    crm = client.get(reverse("crm_connectors:connection-edit", args=[cast.org.slug, cast.client.uuid]))
    assert "Suggested connector: Salesforce." in crm.content.decode()

    answer(stakeholder_client, engagement, "pipelines", {k: v for k, v in REST.items() if k.startswith("pipelines")})
    pipeline = "<td>New business</td><td>Discovery, Demo, Proposal, Closed</td>"
    definitions = client.get(reverse("engagements:definitions", args=[cast.org.slug, engagement.uuid]))
    assert pipeline in definitions.content.decode()
    audit = client.get(reverse("crm_connectors:audit", args=[cast.org.slug, cast.client.uuid])).content.decode()
    assert pipeline in audit and "From Acme Robotics's intake form" in audit
