"""The spec's PDFs, registered with the deliverables pipeline (which renders them in a worker): the CRM
Configuration Spec with its latest change plan, and the Partnership playbook's CRM Field Mapping Sheet."""

from django.utils import timezone

from accounts.models import DomainError
from deliverables import registry

from .models import ChangePlan, ConfigurationSpec, SpecKind

PLATFORMS = {"salesforce": "Salesforce", "hubspot": "HubSpot"}
SECTION_TITLES = {
    "salesforce": {
        "lifecycle": "Lifecycle stage fields (Lead, custom Contact lifecycle)",
        "status": "Lead Status and Contact Status values (working state, apart from lifecycle)",
        "pipeline": "Opportunity Stage values with probabilities",
        "customer": "Customer lifecycle stages",
        "company": "Account-level lifecycle field (rolls up from Contacts)",
        "drop_off": "Drop-off reason picklists (Lead, Opportunity)",
    },
    "hubspot": {
        "lifecycle": "Lifecycle Stage property configuration",
        "status": "Lead Status property values (working state, apart from lifecycle)",
        "pipeline": "Deal pipeline stages with probabilities",
        "customer": "Customer lifecycle stages",
        "company": "Company lifecycle (Contact-to-Company sync)",
        "drop_off": "Drop-off reason properties (Contacts, Deals)",
    },
}


def sections(spec: ConfigurationSpec) -> list[dict]:
    """The spec's fields grouped under the platform's headings, in the document's order."""
    titles = SECTION_TITLES.get(spec.platform, SECTION_TITLES["salesforce"])
    out: dict[str, dict] = {}
    for f in spec.document.get("fields", []):
        out.setdefault(f["section"], {"key": f["section"], "title": titles[f["section"]], "fields": []})[
            "fields"
        ].append(f)
    return list(out.values())


def spec_context(artifact) -> dict:
    spec = (
        ConfigurationSpec.objects.for_org(artifact.organization_id)
        .select_related("engagement__client", "source_version", "approved_by")
        .filter(pdf=artifact)
        .first()
    )
    if spec is None:
        raise DomainError(f"{artifact} names no spec to render.")
    plan = ChangePlan.objects.for_org(artifact.organization_id).filter(spec=spec, spec_sha256=spec.sha256).first()
    return {
        "organization": artifact.organization,
        "engagement": spec.engagement,
        "client": spec.engagement.client,
        "spec": spec,
        "platform": PLATFORMS.get(spec.platform, spec.platform),
        "doc": spec.document,
        "sections": sections(spec),
        "notes": list(spec.notes.select_related("author")),
        "plan": plan,
        "generated_at": timezone.now(),
    }


registry.register(SpecKind.CONFIGURATION_SPEC, template="reports/crm_configuration_spec.html", context=spec_context)
registry.register(SpecKind.FIELD_MAPPING_SHEET, template="reports/crm_field_mapping_sheet.html", context=spec_context)
