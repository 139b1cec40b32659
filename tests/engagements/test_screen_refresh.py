"""Fragments that show derived state change with the action that changed it (htmx requests, Django test client)."""

import re
import subprocess

import pytest
from django.urls import reverse

from crm_connectors.audit import services as audit_services
from crm_connectors.http import LocalStore
from crm_sandbox import SalesforceSandbox
from crm_sandbox.connection import sandbox_connection
from deliverables.models import ArtifactStatus
from engagements import progression
from engagements.models import ArchitectureVersion, ChecklistItem, StageDefinition

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def consultant(client, cast):
    client.force_login(cast.consultant)
    return client


def url(name, e, *args):
    return reverse(f"engagements:{name}", args=[e.organization.slug, e.uuid, *args])


def test_ticking_items_updates_the_sub_phase_counter(engagement, consultant):
    section = ChecklistItem.objects.filter(engagement=engagement, phase__key="strategy", sub_phase__key="1a")
    items = list(section.order_by("order"))
    assert len(items) >= 3 and not any(i.done for i in items)
    page = consultant.get(url("engagement-detail", engagement)).content.decode()
    assert f">0/{len(items)}<" in page

    for ticked, item in enumerate(items[:3], start=1):
        body = consultant.post(url("checklist-toggle", engagement, item.uuid), {"done": "1"}, **HTMX).content.decode()
        # The ticked item comes back, and the counter of its own section is swapped out of band.
        assert f'id="item-{item.uuid}"' in body
        counter = re.search(r'<span class="count" hx-swap-oob="outerHTML:([^"]+)">(\d+)/(\d+)</span>', body)
        assert counter is not None, body
        assert f"#item-{item.uuid}" in counter.group(1)
        assert (int(counter.group(2)), int(counter.group(3))) == (ticked, len(items))

    body = consultant.post(url("checklist-toggle", engagement, items[0].uuid), {"done": "0"}, **HTMX).content.decode()
    assert f">2/{len(items)}</span>" in body
    assert f">2/{len(items)}<" in consultant.get(url("engagement-detail", engagement)).content.decode()


def pass_strategy_gate(engagement, actor):
    gate = engagement.gates.get(key="strategic-sign-off")
    for checkpoint in gate.checkpoints.all():
        progression.resolve_checkpoint(checkpoint=checkpoint, action="waive", actor=actor, reason="agreed in the room")
    progression.decide_gate(gate=gate, option_key="proceed-to-engineering", actor=actor)


def test_the_refinement_banner_stops_claiming_a_block_once_the_gate_is_decided(engagement, consultant, cast):
    consultant.post(url("version-start", engagement), {"notes": "Team assumptions"})
    v0 = ArchitectureVersion.objects.get(engagement=engagement)
    consultant.post(url("assumption-add", engagement, v0.uuid), {"key": "sal", "text": "SAL in 48h", "critical": "on"})
    assert "These block the strategy sign-off gate" in consultant.get(url("refinement", engagement)).content.decode()

    # The critical item is confirmed, the gate is passed, then a later version reopens an assumption.
    sal = v0.items.get(key="sal")
    consultant.post(url("assumption-status", engagement, sal.uuid), {"status": "confirmed"}, **HTMX)
    pass_strategy_gate(engagement, cast.consultant)
    consultant.post(url("version-start", engagement), {"notes": "After go-live"})
    v1 = ArchitectureVersion.objects.get(engagement=engagement, number=1)
    consultant.post(url("assumption-add", engagement, v1.uuid), {"key": "plg", "text": "PLG trials", "critical": "on"})

    for page in (url("refinement", engagement), url("version-detail", engagement, v1.uuid)):
        text = consultant.get(page).content.decode()
        assert "Still assumed: 1 critical item" in text
        assert "block the strategy sign-off gate" not in text
        assert "already been decided" in text


def stage_row(body: str, stage) -> str:
    match = re.search(rf'<tr id="stage-{stage.uuid}".*?</tr>', body, re.S)
    assert match is not None, body
    return match.group(0)


def test_a_term_linked_to_a_stage_shows_in_that_stages_terms_column(engagement, consultant):
    consultant.post(url("stage-add", engagement), {"name": "Expansion Ready", "domain": "customer"}, **HTMX)
    stage = StageDefinition.objects.get(engagement=engagement, name="Expansion Ready")
    body = consultant.post(
        url("term-add", engagement),
        {"term": "Upsell Qualified", "definition": "A customer ready to buy more.", "stage_keys": [stage.key]},
        **HTMX,
    ).content.decode()
    assert '<span class="tag">Upsell Qualified</span>' in stage_row(body, stage)
    page = consultant.get(url("definitions", engagement)).content.decode()
    assert '<span class="tag">Upsell Qualified</span>' in stage_row(page, stage)
    stage.refresh_from_db()
    assert stage.term_keys == []  # shown from the term's side; the stage itself was not rewritten


# --------------------------------------------------------------------------------------------------
# Words


def test_the_checklist_recommends_in_the_organizations_own_name(engagement, consultant, cast):
    page = consultant.get(url("engagement-detail", engagement)).content.decode()
    assert f"pre-filled with {cast.org.name}-recommended stage" in " ".join(page.split())
    assert "LeanScale" not in page
    item = ChecklistItem.objects.get(engagement=engagement, key="review-definition-alignment-doc")
    body = consultant.post(url("checklist-toggle", engagement, item.uuid), {"done": "1"}, **HTMX).content.decode()
    assert f"{cast.org.name}-recommended" in body and "LeanScale" not in body


def test_playbook_names_are_not_doubled(library):
    assert library["partnership-success"].playbook.name == "Partnership Success Platform Implementation"
    assert not any(v.playbook.name.endswith("Implementation — Implementation") for v in library.values())


def test_source_references_stay_in_the_consultants_audit_page_not_the_clients_pdf(
    engagement, client, cast, crm_sandbox_settings, django_capture_on_commit_callbacks
):
    with SalesforceSandbox(profile="demo", seed=3, size=1_000) as sandbox:
        sandbox_connection(client=cast.client, sandbox=sandbox, actor=cast.owner)
        run, _ = audit_services.start_audit(client=cast.client, actor=cast.owner, queue=False)
        run = audit_services.execute_run(
            run.pk, connector_options={"sleep": lambda s: None, "store": LocalStore()}, heartbeat=False
        )
    refs = [ref for ref in run.findings.values_list("seed_ref", flat=True) if ref]
    assert refs
    client.force_login(cast.consultant)
    args = {"org_slug": cast.org.slug, "client_uuid": cast.client.uuid, "audit_run_uuid": run.uuid}
    page = client.get(reverse("crm_connectors:audit-run", kwargs=args)).content.decode()
    assert f"Source: {refs[0]}" in page  # the consultant sees where a rule comes from

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("crm_connectors:audit-pdf", kwargs=args))
    artifact = run.reports.get()
    assert artifact.status == ArtifactStatus.DONE
    download = client.get(
        reverse("crm_connectors:audit-pdf-download", kwargs={**args, "audit_artifact_uuid": artifact.uuid})
    )
    data = b"".join(download.streaming_content)
    text = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()
    flat = " ".join(text.split()).replace("- ", "-")  # long ids may wrap at a hyphen
    assert all(rule_id in flat for rule_id in run.findings.values_list("rule_id", flat=True))
    assert "Source:" not in flat and not any(ref in flat for ref in refs)
