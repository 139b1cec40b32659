"""2d read from the CRM: against a spec the Salesforce sandbox already matches (written here from the sandbox's own
generator schema), the CRM-decidable engineering checks tick themselves; against the generated spec, which the
sandbox does not match yet, they untick what the read had ticked and say what differs."""

import pytest

from crm_sandbox import SalesforceSandbox
from crm_sandbox.connection import sandbox_connection
from engagements.models import ChecklistItem, CheckpointStatus, GateCheckpoint
from engineering import services
from engineering.models import ConfigurationSpec, SpecKind, SpecStatus
from engineering.schema import validate
from engineering.spec import digest
from tests.crm_connectors.test_audit import make_engagement

pytestmark = pytest.mark.django_db
CHECKLIST = ("stage-values-appear", "probability-weightings", "drop-off-required")


def value(v: str, order: int, probability=None, closed=False, won=False) -> dict:
    return {
        "id": f"v:{v}",
        "value": v,
        "label": v,
        "stage": None,
        "order": order,
        "action": "keep",
        "current_label": v,
        "probability": probability,
        "closed": closed,
        "won": won,
        "maps_to": None,
    }


def pipeline_field(section: str, obj: str, holder: str, pipeline, probabilities: bool) -> dict:
    stages = [
        value(
            s.label,
            n,
            round(s.probability * 100) if probabilities and s.probability is not None else None,
            s.closed,
            s.won,
        )
        for n, s in enumerate(pipeline.stages, start=1)
        if s.listed and s.active
    ]
    return {
        "id": f"f:{pipeline.label}",
        "section": section,
        "object": obj,
        "object_label": obj,
        "field": holder,
        "field_label": holder,
        "pipeline": pipeline.sf_record_type_id,
        "pipeline_label": pipeline.label,
        "action": "update",
        "type": "picklist",
        "values": stages,
    }


def matching_document(schema, version) -> dict:
    """What the sandbox org holds today, as a spec: the New Business and Customer Onboarding pipelines and the loss
    reason picklist, read off the generator's schema (not off the CRM's answers the code under test reads)."""
    new_business = next(p for p in schema.deal_pipelines if p.label == "New Business")
    onboarding = next(p for p in schema.ticket_pipelines if p.label == "Customer Onboarding")
    reasons = [value(o.label, n) for n, o in enumerate(schema.loss_reasons, start=1) if o.active and o.listed]
    return {
        "schema_version": 1,
        "kind": "crm_configuration_spec",
        "platform": "salesforce",
        "source": {
            "definition_version": version.number,
            "definition_hash": version.content_hash,
            "metadata_hash": "0" * 64,
        },
        "fields": [
            pipeline_field("pipeline", "deal", "StageName", new_business, True),
            pipeline_field("customer", "ticket", "Status", onboarding, False),
            {
                "id": "f:loss",
                "section": "drop_off",
                "object": "deal",
                "object_label": "Opportunity",
                "field": "Loss_Reason__c",
                "field_label": "Loss Reason",
                "pipeline": None,
                "pipeline_label": None,
                "action": "update",
                "type": "picklist",
                "values": reasons,
            },
        ],
        "unplaced": [],
        "validation_rules": [],
        "automation": [],
        "reports": [],
        "warnings": [],
        "build_order": ["Test with sample records"],
    }


def states(engagement):
    checkpoint = GateCheckpoint.objects.for_org(engagement.organization).get(
        gate__engagement=engagement, key="matches-architecture"
    )
    items = ChecklistItem.objects.for_org(engagement.organization).filter(engagement=engagement, key__in=CHECKLIST)
    return checkpoint, {i.key: i.done for i in items}


def test_zero_drift_ticks_the_checks_and_drift_says_what_differs(cast, crm_sandbox_settings):
    engagement = make_engagement(cast)
    version = engagement.definition_versions.get()
    with SalesforceSandbox(profile="demo", seed=3, size=300) as sf:
        sandbox_connection(client=cast.client, sandbox=sf, actor=cast.owner)
        document = matching_document(sf.model.schema, version)
        validate(document)
        built = ConfigurationSpec.objects.create(
            organization=cast.org,
            engagement=engagement,
            kind=SpecKind.CONFIGURATION_SPEC,
            number=1,
            platform="salesforce",
            source_version=version,
            source_hash=version.content_hash,
            metadata_hash="0" * 64,
            document=document,
            sha256=digest(document),
            status=SpecStatus.APPROVED,
            created_by=cast.owner,
        )

        checks = services.verify(spec=built, actor=cast.owner)

        assert [(c.key, c.differences) for c in checks if not c.passed] == []
        checkpoint, items = states(engagement)
        assert checkpoint.status == CheckpointStatus.CHECKED and checkpoint.resolved_by is None
        assert items == dict.fromkeys(CHECKLIST, True)

        spec = services.generate(engagement=engagement, actor=cast.consultant)
        spec = services.approve(spec=spec, actor=cast.owner)
        checks = {c.key: c for c in services.verify(spec=spec, actor=cast.owner)}

    assert not checks["matches-architecture"].passed
    assert "lead Status: Engaged is missing" in checks["stage-values-appear"].differences
    assert "lead Drop_Off_Reason__c: the field does not exist" in checks["drop-off-required"].differences
    assert any(
        d.startswith("deal StageName (") and "stage SAO is missing" in d
        for d in checks["probability-weightings"].differences
    )
    checkpoint, items = states(engagement)
    assert checkpoint.status == CheckpointStatus.OPEN  # the read had ticked it: the read unticks it
    assert items == dict.fromkeys(CHECKLIST, False)
