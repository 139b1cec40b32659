"""Definition alignment and client sign-off.

Consultants edit a draft (terms and stages), publish it as version vN sealed with a SHA-256 over a
canonical serialisation, and choose who must sign. Each signer approves ("yes") or contests ("no", with a
comment) every item in the portal. A version is signed when every required signer approved every item;
a "no" puts a "decision needed" card on the delivery board. Signatures never carry over to a new version.
"""

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError

from . import signoffs
from .models import (
    DefinitionTerm,
    DefinitionVersion,
    Engagement,
    EngagementStakeholder,
    Signature,
    SignoffRequest,
    StageDefinition,
    StageDomain,
)

TERM_FIELDS = ["key", "term", "definition", "notes", "stage_keys"]
STAGE_FIELDS = [
    "key",
    "name",
    "domain",
    "order",
    "entry_criteria",
    "exit_criteria",
    "transition_owner",
    "golden",
    "crm_object",
    "crm_field",
    "crm_values",
    "term_keys",
]
DOMAIN_WORDS = {
    "lead": StageDomain.LEAD,
    "contact": StageDomain.LEAD,
    "sales": StageDomain.SALES,
    "opportunit": StageDomain.SALES,
    "deal": StageDomain.SALES,
    "customer": StageDomain.CUSTOMER,
    "company": StageDomain.COMPANY,
    "account": StageDomain.COMPANY,
    "poc": StageDomain.POC,
    "pov": StageDomain.POC,
    "renewal": StageDomain.RENEWAL,
    "partner": StageDomain.PARTNER,
}


def canonical_json(content: dict) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def seal(content: dict) -> str:
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def _slug(text: str) -> str:
    from django.utils.text import slugify

    return slugify(text)[:80] or "item"


def _domain_of(text: str) -> str:
    lowered = text.lower()
    return next((domain for word, domain in DOMAIN_WORDS.items() if word in lowered), StageDomain.LEAD)


def prefill(engagement: Engagement) -> None:
    """Start the draft from the playbook's definition-alignment terms and prefilled stage groups."""
    alignment = engagement.spec.definition_alignment
    if alignment is None:
        return
    org = engagement.organization
    DefinitionTerm.objects.bulk_create(
        DefinitionTerm(
            organization=org,
            engagement=engagement,
            key=t.key,
            term=t.sign_off_label or t.term,
            definition=t.sign_off_definition or t.typical_definition or "",
            notes=t.notes or "",
            order=n,
        )
        for n, t in enumerate(alignment.terms, start=1)
    )
    stages, seen = [], set()
    for group in alignment.prefilled_stage_groups:
        for n, name in enumerate(group.stages, start=1):
            key = _slug(f"{group.domain}-{name}")
            if key in seen:
                continue
            seen.add(key)
            stages.append(
                StageDefinition(
                    organization=org,
                    engagement=engagement,
                    key=key,
                    name=name,
                    domain=_domain_of(group.domain),
                    order=n,
                )
            )
    StageDefinition.objects.bulk_create(stages)


# --------------------------------------------------------------------------------------------------
# Draft edits: the one place draft rows change, for the HTML pages and the API alike. Terms and stages refer
# to each other by key, so a renamed key is followed and a deleted one unlinked: publishing refuses a draft
# with a dangling reference, and an edit must never be what leaves one.

DraftItem = DefinitionTerm | StageDefinition


def _check_open(engagement: Engagement) -> None:
    if not engagement.is_open:
        raise DomainError("This engagement is closed; its definitions are read-only.")


def _kind(item: DraftItem) -> str:
    return "term" if isinstance(item, DefinitionTerm) else "stage"


def _rewrite_references(item: DraftItem, old_key: str, new_key: str | None) -> int:
    """Follow a renamed key (or drop a deleted one) in every row of the other kind that refers to it.
    Returns how many rows changed."""
    other: type[DraftItem] = StageDefinition if isinstance(item, DefinitionTerm) else DefinitionTerm
    field = "term_keys" if isinstance(item, DefinitionTerm) else "stage_keys"
    changed: list = []
    for row in other.objects.filter(organization_id=item.organization_id, engagement_id=item.engagement_id):
        keys = getattr(row, field) or []
        if old_key in keys:
            updated = [new_key if k == old_key else k for k in keys] if new_key else [k for k in keys if k != old_key]
            setattr(row, field, list(dict.fromkeys(updated)))
            changed.append(row)
    if changed:
        other.objects.bulk_update(changed, [field])
    return len(changed)


@transaction.atomic
def save_draft_item(*, item: DraftItem, actor, request=None, previous_key: str = "") -> DraftItem:
    """Add or change a term or a stage of the draft (`item` unsaved or changed in memory). `previous_key` is the
    key the row had before this edit: when it differs, every row that referred to it follows the new key."""
    _check_open(item.engagement)
    creating = item.pk is None
    if item.order is None:
        siblings = type(item).objects.filter(organization_id=item.organization_id, engagement_id=item.engagement_id)
        if isinstance(item, StageDefinition):
            siblings = siblings.filter(domain=item.domain)
        item.order = (siblings.aggregate(n=Max("order"))["n"] or 0) + 1
    item.save()
    if previous_key and previous_key != item.key:
        _rewrite_references(item, previous_key, item.key)
    activity.record(
        organization=item.engagement.organization,
        actor=actor,
        request=request,
        target=item.engagement,
        verb=f"definitions.{_kind(item)}_{'added' if creating else 'changed'}",
        data={"key": item.key, "label": str(item)},
    )
    return item


@transaction.atomic
def delete_draft_item(*, item: DraftItem, actor, request=None) -> int:
    """Remove a term or a stage from the draft and from the references of the other kind; published versions
    keep it. Returns how many rows of the other kind referred to it."""
    _check_open(item.engagement)
    unlinked = _rewrite_references(item, item.key, None)
    activity.record(
        organization=item.engagement.organization,
        actor=actor,
        request=request,
        target=item.engagement,
        verb=f"definitions.{_kind(item)}_removed",
        data={"key": item.key, "label": str(item)},
    )
    item.delete()
    return unlinked


def draft_content(engagement: Engagement) -> dict:
    org = engagement.organization
    terms = DefinitionTerm.objects.for_org(org).filter(engagement=engagement).order_by("order", "id")
    stages = StageDefinition.objects.for_org(org).filter(engagement=engagement)
    return {
        "terms": [{f: getattr(t, f) for f in TERM_FIELDS} for t in terms],
        "stages": [{f: getattr(s, f) for f in STAGE_FIELDS} for s in stages.order_by("domain", "order", "id")],
    }


def latest_version(engagement: Engagement) -> DefinitionVersion | None:
    return (
        DefinitionVersion.objects.for_org(engagement.organization)
        .filter(engagement=engagement)
        .order_by("-number")
        .first()
    )


def has_unpublished_changes(engagement: Engagement) -> bool:
    latest = latest_version(engagement)
    return latest is None or seal(draft_content(engagement)) != latest.content_hash


def _check_crm_values(content: dict) -> None:
    """Two stages cannot claim the same CRM value of the same field: the audit could not tell them apart."""
    owners: dict[tuple[str, str, str], str] = {}
    for stage in content["stages"]:
        for value in stage["crm_values"]:
            key = (stage["crm_object"].lower(), stage["crm_field"].lower(), str(value).lower())
            if key in owners:
                raise DomainError(f"Stages “{owners[key]}” and “{stage['name']}” both map to {stage['crm_object']}."
                                  f"{stage['crm_field']} = {value!r}; give each value to one stage.")
            owners[key] = stage["name"]


def _check_references(content: dict) -> None:
    terms = {t["key"] for t in content["terms"]}
    stages = {s["key"] for s in content["stages"]}
    for t in content["terms"]:
        missing = set(t["stage_keys"]) - stages
        if missing:
            raise DomainError(f"Term “{t['term']}” refers to stage(s) that do not exist: {', '.join(sorted(missing))}.")
    for s in content["stages"]:
        missing = set(s["term_keys"]) - terms
        if missing:
            raise DomainError(f"Stage “{s['name']}” refers to term(s) that do not exist: {', '.join(sorted(missing))}.")


@transaction.atomic
def publish(
    *, engagement: Engagement, signers: list, actor, approvers: dict | None = None, request=None
) -> DefinitionVersion:
    """`approvers` maps the playbook's approver roles to stakeholders or waiver reasons (signoffs.map_approvers)."""
    from .tasks import send_signoff_request

    Engagement.objects.for_org(engagement.organization_id).select_for_update().get(pk=engagement.pk)
    if not engagement.is_open:
        raise DomainError("This engagement is closed.")
    content = draft_content(engagement)
    if not content["terms"] and not content["stages"]:
        raise DomainError("There is nothing to publish: add terms or stages first.")
    _check_references(content)
    _check_crm_values(content)
    if not signers:
        raise DomainError("Choose at least one stakeholder who must sign this version.")
    approver_rows, signers = signoffs.map_approvers(engagement, signers, approvers)
    foreign = [s for s in signers if s.client_id != engagement.client_id]
    if foreign:
        raise DomainError(f"{foreign[0].name} is not a stakeholder of {engagement.client}.")
    digest = seal(content)
    latest = latest_version(engagement)
    if latest is not None and latest.content_hash == digest:
        raise DomainError(f"Nothing changed since v{latest.number}; edit the draft before publishing again.")
    number = (DefinitionVersion.objects.filter(engagement=engagement).aggregate(n=Max("number"))["n"] or 0) + 1
    version = DefinitionVersion.objects.create(
        organization=engagement.organization,
        engagement=engagement,
        number=number,
        content=content,
        content_hash=digest,
        published_by=actor,
    )
    signoffs.record_approvers(version, approver_rows, actor)
    for stakeholder in signers:
        asked = SignoffRequest.objects.create(
            organization=engagement.organization, version=version, stakeholder=stakeholder, requested_by=actor
        )
        transaction.on_commit(partial(send_signoff_request.delay, asked.pk))
    activity.record(
        organization=engagement.organization,
        actor=actor,
        request=request,
        target=engagement,
        verb="definitions.published",
        data={"version": number, "hash": digest, "signers": [s.email for s in signers]},
    )
    signoffs.sync_checkpoints(engagement)  # a checkpoint the previous version checked waits for this one
    return version


# --------------------------------------------------------------------------------------------------
# Status


@dataclass
class ItemState:
    key: str
    label: str
    approvals: list = field(default_factory=list)
    objections: list = field(default_factory=list)  # (stakeholder, comment)

    @property
    def contested(self) -> bool:
        return bool(self.objections)


@dataclass
class VersionStatus:
    version: DefinitionVersion
    required: list
    signatures: dict  # stakeholder id -> Signature
    items: list[ItemState]

    @property
    def pending(self) -> list:
        return [s for s in self.required if s.pk not in self.signatures]

    @property
    def contested(self) -> bool:
        return any(item.contested for item in self.items)

    @property
    def signed(self) -> bool:
        return bool(self.required) and not self.pending and not self.contested

    @property
    def label(self) -> str:
        if self.signed:
            return "signed"
        return "contested" if self.contested else "awaiting signatures"


def version_status(version: DefinitionVersion) -> VersionStatus:
    requests = list(version.requests.select_related("stakeholder"))
    signatures = {s.stakeholder_id: s for s in version.signatures.select_related("stakeholder")}
    items = [ItemState(key, label) for key, label in version.items]
    for signature in signatures.values():
        for item in items:
            if signature.decisions.get(item.key) == "yes":
                item.approvals.append(signature.stakeholder)
            else:
                item.objections.append((signature.stakeholder, signature.comments.get(item.key, "")))
    return VersionStatus(version, [r.stakeholder for r in requests], signatures, items)


def definitions_signed(engagement: Engagement) -> bool:
    """The latest published version exists and is fully signed."""
    latest = latest_version(engagement)
    return latest is not None and latest.signed_at is not None


def awaiting(stakeholder) -> list[DefinitionVersion]:
    """Versions this stakeholder must still sign: latest of their engagement, not yet answered by them."""
    versions = (
        DefinitionVersion.objects.for_stakeholder(stakeholder)
        .filter(requests__stakeholder=stakeholder)
        .exclude(signatures__stakeholder=stakeholder)
        .select_related("engagement")
    )
    return [v for v in versions if latest_version(v.engagement) == v]


# --------------------------------------------------------------------------------------------------
# Signing


@transaction.atomic
def sign(*, version: DefinitionVersion, stakeholder, decisions: dict, comments: dict, request=None) -> Signature:
    from .tasks import notify_consultants

    version = DefinitionVersion.objects.for_org(version.organization_id).select_for_update().get(pk=version.pk)
    if not version.requests.filter(stakeholder=stakeholder).exists():
        raise DomainError("You are not asked to sign this version.")
    latest = latest_version(version.engagement) or version
    if latest.pk != version.pk:
        raise DomainError(f"v{version.number} was replaced by v{latest.number}; please review the new version.")
    if version.signatures.filter(stakeholder=stakeholder).exists():
        raise DomainError(f"You already answered v{version.number}.")
    expected = {key for key, _ in version.items}
    missing = expected - decisions.keys()
    if missing:
        raise DomainError(f"Answer every item: {len(missing)} still without Yes or No.")
    unknown = decisions.keys() - expected
    if unknown or any(v not in ("yes", "no") for v in decisions.values()):
        raise DomainError("Each answer must be Yes or No for an item of this version.")
    comments = {k: (comments.get(k) or "").strip() for k in expected if (comments.get(k) or "").strip()}
    no_reason = [k for k, v in decisions.items() if v == "no" and not comments.get(k)]
    if no_reason:
        labels = dict(version.items)
        raise DomainError(f"Say what should change for: {', '.join(labels[k] for k in sorted(no_reason))}.")

    signature = Signature.objects.create(
        organization=version.organization,
        version=version,
        stakeholder=stakeholder,
        version_hash=version.content_hash,
        decisions=decisions,
        comments=comments,
        ip=activity.client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:400],
    )
    engagement = version.engagement
    signoffs.open_contests(signature)
    activity.record(
        organization=version.organization,
        actor_label=f"{stakeholder.name} <{stakeholder.email}>",
        verb="definitions.signed" if signature.approved_all else "definitions.contested",
        target=engagement,
        request=request,
        data={
            "version": version.number,
            "hash": version.content_hash,
            "no": sorted(k for k, v in decisions.items() if v == "no"),
        },
    )
    status = version_status(version)
    if status.signed:
        version.signed_at = timezone.now()
        version.save(update_fields=["signed_at"])
        signoffs.resolve_contests(version)
        signoffs.sync_checkpoints(engagement)
        transaction.on_commit(lambda: notify_consultants.delay(version.pk, "signed"))
    elif not signature.approved_all:
        transaction.on_commit(lambda: notify_consultants.delay(version.pk, "contested", signature.pk))
    return signature


# --------------------------------------------------------------------------------------------------
# Diff and verification


@dataclass
class Difference:
    kind: str  # "term" or "stage"
    key: str
    label: str
    change: str  # added / removed / changed
    fields: list[tuple[str, object, object]] = field(default_factory=list)


def diff(older: dict, newer: dict) -> list[Difference]:
    result = []
    for kind, label_field in (("terms", "term"), ("stages", "name")):
        before = {i["key"]: i for i in older[kind]}
        after = {i["key"]: i for i in newer[kind]}
        for key in [*before, *[k for k in after if k not in before]]:
            b, a = before.get(key), after.get(key)
            name = (a or before[key])[label_field]
            if b is None:
                result.append(Difference(kind[:-1], key, name, "added"))
            elif a is None:
                result.append(Difference(kind[:-1], key, name, "removed"))
            else:
                changed = [(f, b.get(f), a.get(f)) for f in sorted(a.keys() | b.keys()) if a.get(f) != b.get(f)]
                if changed:
                    result.append(Difference(kind[:-1], key, name, "changed", changed))
    return result


def verify_all() -> list[str]:
    """Recompute every version's hash and compare it with the stored hash and each signature's quoted hash."""
    problems = []
    every_tenant = DefinitionVersion.objects.across_tenants("verify_signoffs checks every tenant's signed record")
    versions = every_tenant.select_related("engagement", "organization").prefetch_related(
        "signatures__stakeholder"
    )
    for version in versions.iterator(chunk_size=200):
        where = f"{version.organization.slug} / {version.engagement.name} v{version.number}"
        actual = seal(version.content)
        if actual != version.content_hash:
            problems.append(
                f"{where}: content hashes to {actual[:12]}…, not the sealed {version.content_hash[:12]}…"
            )
        for signature in version.signatures.all():
            if signature.version_hash != actual:
                problems.append(
                    f"{where}: the signature of {signature.stakeholder.email} quotes hash "
                    f"{signature.version_hash[:12]}…, content hashes to {actual[:12]}…"
                )
    return problems


def signers_for(engagement: Engagement):
    return (
        EngagementStakeholder.objects.for_org(engagement.organization)
        .filter(engagement=engagement)
        .select_related("stakeholder")
    )
