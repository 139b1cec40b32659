"""What a definitions sign-off promises, enforced: approver roles, answers saved as given, contests resolved.

- The playbook names approver roles ("VP RevOps", "VP Sales"...). Publishing maps each role to one of the
  client's stakeholders, who is then asked to sign, or waives it with a recorded reason. The gate checkpoint
  that follows the sign-off (auto: definitions_signed) checks itself only when the current version is signed
  and every role was approved by its holder or waived; until then it lists who has signed and who is missing.
- A signer's answers are saved item by item as SignoffAnswer rows (append-only), so a reload or a new sign-in
  link loses nothing; submitting seals them into the Signature. Items whose text is unchanged since a version
  the same person approved can be approved together, each still with its own answer row.
- A No opens a Contest with a board card; the first later version that is fully signed resolves it.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError

from .models import (
    CheckpointStatus,
    Contest,
    DecisionCategory,
    DecisionLogEntry,
    DecisionStatus,
    DefinitionVersion,
    Engagement,
    GateCheckpoint,
    GateStatus,
    Signature,
    SignoffAnswer,
    SignoffRequest,
    Stakeholder,
    VersionApprover,
)

DEFINITIONS_SIGNED = "definitions_signed"
YES, NO = "yes", "no"
MAX_COMMENT = 2000


def approver_roles(engagement: Engagement) -> list[str]:
    alignment = engagement.spec.definition_alignment
    return list(alignment.approvers) if alignment is not None else []


# --------------------------------------------------------------------------------------------------
# Approver roles, mapped when publishing


def map_approvers(engagement: Engagement, signers: list, approvers: dict | None) -> tuple[list[dict], list]:
    """The role rows to record, and the signers with every assigned role holder added.

    `approvers` maps each role to a Stakeholder, or to a waiver reason (str). Given, it must cover every role;
    None (the API, scripts) maps a role to the chosen signer whose title is the role, and leaves the others
    unassigned: the checkpoint then waits for them, which says more than a silent pass.
    """
    roles = approver_roles(engagement)
    signers = list(signers)
    rows = []
    if approvers is None:
        by_title = {(s.title or "").strip().lower(): s for s in signers}
        approvers = {role: by_title.get(role.lower()) for role in roles}
    else:
        unknown = set(approvers) - set(roles)
        if unknown:
            raise DomainError(f"The playbook names no approver role {sorted(unknown)[0]!r}.")
        unmapped = [role for role in roles if not approvers.get(role) or (
            isinstance(approvers[role], str) and not approvers[role].strip())]
        if unmapped:
            raise DomainError(
                f"Approver role {', '.join(unmapped)}: choose the stakeholder who holds it, or waive it with a reason."
            )
    for n, role in enumerate(roles, start=1):
        holder = approvers.get(role)
        if isinstance(holder, Stakeholder):
            if holder.client_id != engagement.client_id or not holder.portal_enabled:
                raise DomainError(f"{holder.name} cannot approve as {role}: not a portal stakeholder of "
                                  f"{engagement.client}.")
            if holder not in signers:
                signers.append(holder)
            rows.append({"role": role, "order": n, "stakeholder": holder, "waiver_reason": ""})
        else:
            rows.append({"role": role, "order": n, "stakeholder": None, "waiver_reason": (holder or "").strip()})
    return rows, signers


def record_approvers(version: DefinitionVersion, rows: list[dict], actor) -> None:
    VersionApprover.objects.bulk_create(
        VersionApprover(
            organization_id=version.organization_id,
            version=version,
            waived_by=actor if row["waiver_reason"] else None,
            **row,
        )
        for row in rows
    )


def settle_approver(*, version: DefinitionVersion, role: str, holder, actor, request=None) -> VersionApprover:
    """Assign an approver role left unassigned at publishing to a stakeholder (who is then asked to sign this
    version), or waive it with a reason. Only the latest version of an open engagement, and only a role nobody
    holds yet: a holder who was asked stays asked, and a recorded waiver stays recorded."""
    from .tasks import send_signoff_request  # tasks import this module

    engagement = version.engagement
    org = engagement.organization
    if role not in approver_roles(engagement):
        raise DomainError(f"The playbook names no approver role {role!r}.")
    with transaction.atomic():
        locked = DefinitionVersion.objects.for_org(org).select_for_update().get(pk=version.pk)
        newest = DefinitionVersion.objects.for_org(org).filter(engagement=engagement).order_by("-number").first()
        if not engagement.is_open or newest is None or newest.pk != locked.pk:
            raise DomainError(f"v{locked.number} is not the current version: settle the role on the latest one.")
        approver, _ = VersionApprover.objects.for_org(org).get_or_create(
            version=locked, role=role,
            defaults={"organization": org, "order": approver_roles(engagement).index(role) + 1},
        )
        if approver.stakeholder_id or approver.waiver_reason:
            held = f"held by {approver.stakeholder.name}" if approver.stakeholder else "waived"
            raise DomainError(f"{role} is already {held}.")
        if isinstance(holder, Stakeholder):
            if holder.client_id != engagement.client_id or not holder.portal_enabled:
                raise DomainError(f"{holder.name} cannot approve as {role}: not a portal stakeholder of "
                                  f"{engagement.client}.")
            approver.stakeholder = holder
            approver.save(update_fields=["stakeholder"])
            if not locked.signatures.filter(stakeholder=holder).exists():
                asked, created = SignoffRequest.objects.for_org(org).get_or_create(
                    version=locked, stakeholder=holder, defaults={"organization": org, "requested_by": actor}
                )
                if created:
                    transaction.on_commit(lambda: send_signoff_request.delay(asked.pk))
                if locked.signed_at is not None:  # signed by everyone asked so far; now one more must sign
                    locked.signed_at = None
                    locked.save(update_fields=["signed_at"])
            verb, data = "definitions.approver_assigned", {"role": role, "stakeholder": holder.name}
        else:
            reason = (holder or "").strip()
            if not reason:
                raise DomainError(f"Say why {role} is waived.")
            approver.waiver_reason, approver.waived_by = reason[:500], actor
            approver.save(update_fields=["waiver_reason", "waived_by"])
            verb, data = "definitions.approver_waived", {"role": role, "reason": approver.waiver_reason}
        activity.record(organization=org, actor=actor, verb=verb, target=engagement, request=request,
                        data={"version": locked.number, **data})
        sync_checkpoints(engagement)
    return approver


# --------------------------------------------------------------------------------------------------
# Where the sign-off stands, for the gate checkpoint


@dataclass
class ApproverRow:
    role: str  # the playbook's role, or "Signer" for a signer who holds none
    stakeholder: Stakeholder | None
    state: str  # approved / changes requested / answering / not answered / not assigned / waived
    waiver_reason: str = ""
    answered: int = 0

    @property
    def signed(self) -> bool:
        return self.state in ("approved", "waived")

    @property
    def who(self) -> str:
        return f"{self.role} ({self.stakeholder.name})" if self.stakeholder else self.role


@dataclass
class SignoffState:
    version: DefinitionVersion | None
    rows: list[ApproverRow] = field(default_factory=list)
    contests: list[Contest] = field(default_factory=list)

    @property
    def signed(self) -> list[ApproverRow]:
        return [r for r in self.rows if r.state == "approved"]

    @property
    def waived(self) -> list[ApproverRow]:
        return [r for r in self.rows if r.state == "waived"]

    @property
    def missing(self) -> list[ApproverRow]:
        return [r for r in self.rows if not r.signed]

    @property
    def complete(self) -> bool:
        return self.version is not None and self.version.signed_at is not None and not self.missing

    @property
    def open_contests(self) -> list[Contest]:
        return [c for c in self.contests if c.resolved_by_id is None]


def signoff_state(engagement: Engagement) -> SignoffState:
    org = engagement.organization
    version = DefinitionVersion.objects.for_org(org).filter(engagement=engagement).order_by("-number").first()
    contests = list(
        Contest.objects.for_org(org)
        .filter(version__engagement=engagement)
        .select_related("version", "resolved_by", "stakeholder")
        .defer("version__content", "resolved_by__content")
    )
    if version is None:
        return SignoffState(None, [ApproverRow(role, None, "not assigned") for role in approver_roles(engagement)],
                            contests)
    signatures = {s.stakeholder_id: s for s in Signature.objects.for_org(org).filter(version=version)}
    answered: dict[int, set] = {}
    for stakeholder_id, key in SignoffAnswer.objects.for_org(org).filter(version=version).exclude(value="").values_list(
        "stakeholder_id", "item_key"
    ):
        answered.setdefault(stakeholder_id, set()).add(key)
    total = len(version.items)

    def state_of(stakeholder) -> tuple[str, int]:
        signature = signatures.get(stakeholder.pk)
        if signature is not None:
            return ("approved" if signature.approved_all else "changes requested"), total
        n = len(answered.get(stakeholder.pk, ()))
        return ("answering" if n else "not answered"), n

    approvers = VersionApprover.objects.for_org(org).filter(version=version).select_related("stakeholder")
    mapped = {a.role: a for a in approvers}
    rows, holders = [], set()
    for role in approver_roles(engagement):
        approver = mapped.get(role)
        if approver is not None and approver.waiver_reason:
            rows.append(ApproverRow(role, None, "waived", approver.waiver_reason))
        elif approver is not None and approver.stakeholder is not None:
            holders.add(approver.stakeholder_id)
            state, count = state_of(approver.stakeholder)
            rows.append(ApproverRow(role, approver.stakeholder, state, answered=count))
        else:
            rows.append(ApproverRow(role, None, "not assigned"))
    for request in version.requests.select_related("stakeholder").order_by("stakeholder__name"):
        if request.stakeholder_id not in holders:
            state, count = state_of(request.stakeholder)
            rows.append(ApproverRow("Signer", request.stakeholder, state, answered=count))
    return SignoffState(version, rows, contests)


def sync_checkpoints(engagement: Engagement) -> None:
    """Check the sign-off checkpoints of open gates when the sign-off is complete; reopen one it checked when
    a new version makes it incomplete again. A waiver stays: a consultant wrote it."""
    complete = signoff_state(engagement).complete
    checkpoints = GateCheckpoint.objects.for_org(engagement.organization).filter(
        gate__engagement=engagement, gate__status__in=[GateStatus.OPEN, GateStatus.PENDING], auto=DEFINITIONS_SIGNED
    )
    if complete:
        checkpoints.exclude(status=CheckpointStatus.CHECKED).update(
            status=CheckpointStatus.CHECKED, waiver_reason="", resolved_by=None, resolved_at=timezone.now()
        )
    else:
        checkpoints.filter(status=CheckpointStatus.CHECKED, resolved_by=None).update(
            status=CheckpointStatus.OPEN, resolved_at=None
        )


# --------------------------------------------------------------------------------------------------
# Contests


def open_contests(signature: Signature) -> None:
    """A board card and a Contest for every item the signer answered No on."""
    version, stakeholder = signature.version, signature.stakeholder
    labels = dict(version.items)
    for key in sorted(k for k, v in signature.decisions.items() if v == NO):
        card = DecisionLogEntry.objects.create(
            organization=version.organization,
            engagement=version.engagement,
            client_visible=True,
            category=DecisionCategory.LIFECYCLE_DEFINITIONS,
            title=f"Contested in v{version.number}: {labels[key]}",
            context=f"{stakeholder.name} ({stakeholder.title or stakeholder.get_department_display()}): "
            f"{signature.comments[key]}",
            owner=stakeholder.name,
        )
        Contest.objects.create(
            organization=version.organization,
            version=version,
            item_key=key,
            label=labels[key],
            stakeholder=stakeholder,
            comment=signature.comments[key],
            card=card,
        )


def resolve_contests(version: DefinitionVersion) -> int:
    """A fully signed version resolves every open contest of an earlier version: the signers approved what
    replaced the contested text. Returns how many were resolved."""
    now = timezone.now()
    contests = list(
        Contest.objects.for_org(version.organization)
        .filter(version__engagement_id=version.engagement_id, version__number__lt=version.number,
                resolved_by__isnull=True)
        .select_related("card")
    )
    for contest in contests:
        contest.resolved_by, contest.resolved_at = version, now
        contest.save(update_fields=["resolved_by", "resolved_at"])
        card = contest.card
        if card is not None and card.status == DecisionStatus.NEEDED:
            card.status, card.decided_on = DecisionStatus.DECIDED, now.date()
            card.decision = f"Resolved by v{version.number}, approved by every signer."
            card.save(update_fields=["status", "decided_on", "decision", "updated_at"])
    return len(contests)


# --------------------------------------------------------------------------------------------------
# Answers saved as they are given


def _check_answering(version: DefinitionVersion, stakeholder) -> None:
    if not version.requests.filter(stakeholder=stakeholder).exists():
        raise DomainError("You are not asked to sign this version.")
    if version.signatures.filter(stakeholder=stakeholder).exists():
        raise DomainError(f"You already submitted your answers to v{version.number}.")
    # definitions.latest_version's query, written here: definitions imports this module, not the other way round.
    latest = version.engagement.definition_versions.order_by("-number").first()
    if latest is not None and latest.pk != version.pk:
        raise DomainError(f"v{version.number} was replaced by v{latest.number}; please review the new version.")


def current_answers(version: DefinitionVersion, stakeholder) -> dict[str, SignoffAnswer]:
    """The latest saved answer per item (later rows win)."""
    rows = SignoffAnswer.objects.filter(
        organization_id=version.organization_id, version=version, stakeholder=stakeholder
    )
    return {a.item_key: a for a in rows}


def progress(version: DefinitionVersion, stakeholder) -> tuple[int, int]:
    """(items answered, changes requested) among the signer's saved answers, as the page shows them."""
    values = [a.value for a in current_answers(version, stakeholder).values()]
    answered = sum(1 for v in values if v in (YES, NO))
    if not 0 <= answered <= len(version.items):  # a count the signer reads: never past the item count
        raise ValueError(f"{answered} answers saved for {len(version.items)} items of v{version.number}")
    return answered, values.count(NO)


@transaction.atomic
def save_answer(*, version: DefinitionVersion, stakeholder, item_key: str, value: str, comment: str) -> SignoffAnswer:
    _check_answering(version, stakeholder)
    labels = dict(version.items)
    if item_key not in labels:
        raise DomainError(f"v{version.number} has no item {item_key!r}.")
    if value not in (YES, NO, ""):
        raise DomainError(f"“{labels[item_key]}”: the answer must be Yes or No, not {value!r}.")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise DomainError(f"“{labels[item_key]}”: keep the comment under {MAX_COMMENT} characters.")
    previous = current_answers(version, stakeholder).get(item_key)
    if previous is not None and (previous.value, previous.comment) == (value, comment):
        return previous  # the same answer sent twice (a change and a keyup): one row is enough
    return SignoffAnswer.objects.create(
        organization_id=version.organization_id,
        version=version,
        stakeholder=stakeholder,
        item_key=item_key,
        value=value,
        comment=comment,
    )


def _item_contents(content: dict) -> dict[str, dict]:
    return {f"term:{t['key']}": t for t in content["terms"]} | {f"stage:{s['key']}": s for s in content["stages"]}


def unchanged_since_approved(version: DefinitionVersion, stakeholder) -> dict[str, DefinitionVersion]:
    """Items whose text is identical to an earlier version of the engagement in which this stakeholder approved
    that item (their submitted Signature said Yes): item key -> the latest such version."""
    current = _item_contents(version.content)
    earlier = (
        Signature.objects.filter(
            organization_id=version.organization_id,
            version__engagement_id=version.engagement_id,
            version__number__lt=version.number,
            stakeholder=stakeholder,
        )
        .select_related("version")
        .order_by("version__number")
    )
    found = {}
    for signature in earlier:
        old = _item_contents(signature.version.content)
        for key, data in current.items():
            if signature.decisions.get(key) == YES and old.get(key) == data:
                found[key] = signature.version
    return found


@transaction.atomic
def approve_unchanged(*, version: DefinitionVersion, stakeholder) -> int:
    """Answer Yes, one row per item, for every unchanged item not answered yet. Returns how many."""
    _check_answering(version, stakeholder)
    answers = current_answers(version, stakeholder)
    rows = [
        SignoffAnswer(
            organization_id=version.organization_id,
            version=version,
            stakeholder=stakeholder,
            item_key=key,
            value=YES,
            unchanged_since=since,
        )
        for key, since in unchanged_since_approved(version, stakeholder).items()
        if not answers.get(key) or not answers[key].value
    ]
    SignoffAnswer.objects.bulk_create(rows)
    return len(rows)
