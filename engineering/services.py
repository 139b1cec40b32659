"""Work on the spec that spans models: generate a version, annotate and adjust a draft, approve it (a recorded
decision), ask for its PDF, and plan the change against the live CRM. Views and tests call these, nothing else."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from crm_connectors.base import CrmError
from crm_connectors.mapping import ConnectorCatalog
from crm_connectors.models import CrmConnection
from deliverables import services as pipeline
from engagements.cadence import save_board_item
from engagements.models import DecisionCategory, DecisionLogEntry, DecisionStatus, DefinitionVersion, Engagement

from . import mapping_sheet, schema, verification
from . import plan as plans
from . import spec as specs
from .models import ChangePlan, ConfigurationSpec, SpecKind, SpecNote, SpecStatus

# What a consultant may adjust on a value of a draft, and how the text they type becomes the document's value.
ADJUSTABLE = {"label": str, "probability": int, "maps_to": str}


def kind_for(engagement: Engagement) -> str:
    """The Partnership playbook's Phase 2 document is the Field Mapping Sheet; every other playbook's is the spec."""
    return (
        SpecKind.FIELD_MAPPING_SHEET if engagement.spec.key.startswith("partnership") else SpecKind.CONFIGURATION_SPEC
    )


def signed_version(engagement: Engagement) -> DefinitionVersion | None:
    return (
        DefinitionVersion.objects.for_org(engagement.organization_id)
        .filter(engagement=engagement, signed_at__isnull=False)
        .order_by("-number")
        .first()
    )


def connection_of(engagement: Engagement) -> CrmConnection | None:
    """The client's active connection, when it holds credentials to read with."""
    connection = (
        CrmConnection.objects.for_org(engagement.organization_id)
        .active()
        .filter(client_id=engagement.client_id)
        .first()
    )
    return connection if connection is not None and connection.secret_names else None


def specs_of(engagement: Engagement):
    return ConfigurationSpec.objects.for_org(engagement.organization_id).filter(
        engagement=engagement, kind=kind_for(engagement)
    )


def latest(engagement: Engagement) -> ConfigurationSpec | None:
    return specs_of(engagement).order_by("-number").first()


def _connector(connection: CrmConnection, options: dict[str, Any] | None):
    return connection.connector(**(options or {}))


def generate(*, engagement: Engagement, actor, request=None, connector_options=None) -> ConfigurationSpec:
    """A new spec version from the latest signed definitions and the CRM's metadata now; refused when neither
    changed since the latest version (it would be the same document)."""
    version = signed_version(engagement)
    if version is None:
        raise DomainError("No definitions version is signed yet: the spec is generated from a signed version.")
    connection = connection_of(engagement)
    if connection is None:
        raise DomainError(f"{engagement.client} has no CRM connection with credentials: connect the CRM first.")
    kind = kind_for(engagement)
    try:
        with _connector(connection, connector_options) as connector:
            catalog = ConnectorCatalog(connector)
            metadata_hash = specs.digest(specs.metadata(catalog))
            source: dict[str, Any] = {
                "content": version.content,
                "version_number": version.number,
                "version_hash": version.content_hash,
                "platform": connection.kind,
                "catalog": catalog,
                "metadata_hash": metadata_hash,
            }
            if kind == SpecKind.FIELD_MAPPING_SHEET:
                document = mapping_sheet.build(**source)
            else:
                document = specs.build(**source, unlisted=plans.unlisted_reader(connector))
    except CrmError as exc:
        raise DomainError(f"The CRM could not be read: {exc}") from None
    schema.validate(document)
    previous = latest(engagement)
    if previous is not None and (previous.source_hash, previous.metadata_hash) == (version.content_hash, metadata_hash):
        raise DomainError(
            f"Nothing changed since {previous}: the signed definitions and the CRM's metadata are the same."
        )
    with transaction.atomic():  # the CRM is read above, outside any transaction
        number = (specs_of(engagement).aggregate(n=Max("number"))["n"] or 0) + 1
        made = ConfigurationSpec.objects.create(
            organization_id=engagement.organization_id,
            engagement=engagement,
            kind=kind,
            number=number,
            platform=connection.kind,
            source_version=version,
            source_hash=version.content_hash,
            metadata_hash=metadata_hash,
            document=document,
            sha256=specs.digest(document),
            created_by=actor,
        )
        activity.record(
            organization=engagement.organization,
            actor=actor,
            request=request,
            target=made,
            verb="crm_spec.generated",
            data={"engagement": str(engagement.uuid), "version": version.number, "sha256": made.sha256},
        )
    return made


def find_item(document: dict, item: str) -> dict:
    for f in document.get("fields", []):
        for v in f["values"]:
            if v["id"] == item:
                return v
        if f["id"] == item:
            return f
    for section in ("rows", "validation_rules", "automation", "reports"):
        for entry in document.get(section, []):
            if entry.get("id") == item:
                return entry
    raise DomainError(f"The spec has no item {item!r}.")


@transaction.atomic
def annotate(
    *, spec: ConfigurationSpec, item: str, text: str = "", attribute: str = "", value: str = "", actor, request=None
) -> SpecNote:
    """A note on one item of a draft and, with `attribute`, an adjustment of it (label, probability or the mapping
    target of a retired value). The document is re-validated and re-hashed: the approved hash is what was read."""
    spec = ConfigurationSpec.objects.for_org(spec.organization_id).select_for_update().get(pk=spec.pk)
    if not spec.is_draft:
        raise DomainError(f"{spec} is approved: generate a new version to change it.")
    entry = find_item(spec.document, item)
    before = after = None
    if attribute:
        if attribute not in ADJUSTABLE or attribute not in entry:
            raise DomainError(f"{attribute!r} cannot be adjusted on {item} (only {', '.join(ADJUSTABLE)} of a value).")
        try:
            after = ADJUSTABLE[attribute](value.strip()) if value.strip() else None
        except ValueError:
            raise DomainError(f"{attribute} of {item}: {value!r} is not a whole number.") from None
        if (
            attribute == "maps_to"
            and after is not None
            and after
            not in {
                v["value"]
                for f in spec.document["fields"]
                for v in f["values"]
                if entry in f["values"] and v["action"] not in specs.MOVED_OFF
            }
        ):
            raise DomainError(
                f"{after!r} is not a kept value of the same field: a retired or unlisted value's records move there."
            )
        if attribute == "label" and not after:
            raise DomainError(f"The label of {item} cannot be empty.")
        before, entry[attribute] = entry[attribute], after
        try:
            schema.validate(spec.document)
        except schema.InvalidDocument as exc:  # e.g. a probability of 150: the row is locked, nothing saved
            raise DomainError(f"{attribute} of {item}: {exc}") from None
        spec.sha256 = specs.digest(spec.document)
        spec.save(update_fields=["document", "sha256"])
    elif not text.strip():
        raise DomainError("Write a note, or choose what to adjust.")
    note = SpecNote.objects.create(
        organization_id=spec.organization_id,
        spec=spec,
        item=item,
        text=text.strip(),
        attribute=attribute,
        before=before,
        after=after,
        author=actor,
    )
    activity.record(
        organization=spec.organization,
        actor=actor,
        request=request,
        target=spec,
        verb="crm_spec.adjusted" if attribute else "crm_spec.annotated",
        data={"item": item, "attribute": attribute, "before": before, "after": after},
    )
    return note


@transaction.atomic
def choose_targets(*, spec: ConfigurationSpec, chosen: dict[str, str], actor, request=None) -> int:
    """Where the records of several retired or unlisted values move, chosen in one go from the spec's tables; each
    change is its own recorded adjustment, and one refused choice saves none. Returns how many changed."""
    changed = 0
    for item, value in chosen.items():
        entry = find_item(spec.document, item)
        if entry.get("action") not in specs.MOVED_OFF:
            raise DomainError(f"{item} is not a retired or unlisted value: only those records move.")
        if (entry.get("maps_to") or "") == value.strip():
            continue
        annotate(spec=spec, item=item, attribute="maps_to", value=value, actor=actor, request=request)
        spec.refresh_from_db(fields=["document"])
        changed += 1
    return changed


@transaction.atomic
def approve(*, spec: ConfigurationSpec, actor, request=None) -> ConfigurationSpec:
    """Approval is a decision: it goes to the engagement's decision log with the hash that was approved."""
    spec = ConfigurationSpec.objects.for_org(spec.organization_id).select_for_update().get(pk=spec.pk)
    if not spec.can_become(SpecStatus.APPROVED):
        raise DomainError(f"{spec} is already approved.")
    entry = save_board_item(
        item=DecisionLogEntry(
            engagement=spec.engagement,
            title=f"{spec} approved for the build",
            category=DecisionCategory.DATA_STANDARDS,
            context=f"Generated from the signed definitions v{spec.document['source']['definition_version']} and the "
            f"CRM's metadata; {spec.notes.count()} notes and adjustments.",
            decision=f"Build the {spec.platform} configuration from {spec} (SHA-256 {spec.sha256}).",
            owner=actor.get_full_name() or actor.email,
            status=DecisionStatus.DECIDED,
        ),
        actor=actor,
        request=request,
    )
    spec.status, spec.approved_by, spec.approved_at, spec.decision = SpecStatus.APPROVED, actor, timezone.now(), entry
    spec.save(update_fields=["status", "approved_by", "approved_at", "decision"])
    activity.record(
        organization=spec.organization,
        actor=actor,
        request=request,
        target=spec,
        verb="crm_spec.approved",
        data={"sha256": spec.sha256, "decision": str(entry.uuid)},
    )
    return spec


@transaction.atomic
def request_pdf(*, spec: ConfigurationSpec, actor, request=None):
    """The spec's PDF through the one render pipeline; the latest plan of the spec is printed with it."""
    artifact = pipeline.request(
        engagement=spec.engagement, kind=spec.kind, actor=actor, source_version=spec.source_version
    )
    ConfigurationSpec.objects.for_org(spec.organization_id).filter(pk=spec.pk).update(pdf=artifact)
    activity.record(
        organization=spec.organization,
        actor=actor,
        request=request,
        target=artifact,
        verb="artifact.requested",
        data={"kind": spec.kind, "spec": spec.number},
    )
    return artifact


def make_plan(
    *, spec: ConfigurationSpec, actor, request=None, connector_options=None, purpose: str = "plan"
) -> ChangePlan:
    """Read the CRM now and store the operations that would bring it to the spec."""
    if spec.kind != SpecKind.CONFIGURATION_SPEC:
        raise DomainError("A Field Mapping Sheet has no change plan: the PRM's integration settings hold the mapping.")
    connection = connection_of(spec.engagement)
    if connection is None:
        raise DomainError(f"{spec.engagement.client} has no CRM connection with credentials: connect the CRM first.")
    try:
        with _connector(connection, connector_options) as connector:
            result = plans.make(spec.document, connector, moves=purpose == "plan")
    except CrmError as exc:
        raise DomainError(f"The CRM could not be read: {exc}") from None
    with transaction.atomic():
        made = ChangePlan.objects.create(
            organization_id=spec.organization_id,
            spec=spec,
            spec_sha256=spec.sha256,
            metadata_hash=result["metadata_hash"],
            operations=result["operations"],
            held=result["held"],
            unlisted=result["unlisted"],
            unreadable=result["unreadable"],
            calls=result["calls"],
            created_by=actor,
            purpose=purpose,
        )
        activity.record(
            organization=spec.organization,
            actor=actor,
            request=request,
            target=spec,
            verb="crm_spec.planned",
            data={"operations": len(made.operations), "held": len(made.held)},
        )
    return made


def verify(*, spec: ConfigurationSpec, actor, request=None, connector_options=None) -> list[verification.Check]:
    """2d, read from the CRM: compare the approved spec with the CRM now; the checks with no difference tick
    themselves, the others say what still differs."""
    if spec.status != SpecStatus.APPROVED:
        raise DomainError(f"{spec} is not approved yet: the build is verified against the approved spec.")
    made = make_plan(spec=spec, actor=actor, request=request, connector_options=connector_options, purpose="verify")
    return verification.settle(made, actor=actor, request=request)


def latest_plan(spec: ConfigurationSpec | None, purpose: str = "plan") -> ChangePlan | None:
    if spec is None:
        return None
    return ChangePlan.objects.for_org(spec.organization_id).filter(spec=spec, purpose=purpose).first()
