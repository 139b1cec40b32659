"""Membership changes: invitations, roles, removal. Each writes the activity log in its transaction."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from . import activity, tasks
from .models import DomainError, Invitation, Membership, Organization, Role


@transaction.atomic
def create_organization(*, name: str, owner, request=None) -> Organization:
    org = Organization.objects.create(name=name, slug=Organization.unique_slug(name))
    Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
    activity.record(organization=org, actor=owner, verb="organization.created", target=org, request=request)
    return org


@transaction.atomic
def save_organization(*, organization: Organization, actor, request=None) -> Organization:
    organization.save(update_fields=["name", "logo"])
    activity.record(organization=organization, actor=actor, verb="organization.updated", target=organization,
                    request=request)
    return organization


@transaction.atomic
def invite_member(*, organization: Organization, email: str, role: str, invited_by, request=None) -> Invitation:
    email = email.strip().lower()
    if Membership.objects.for_org(organization).filter(user__email__iexact=email).exists():
        raise DomainError(f"{email} is already a member of {organization}.")
    if Invitation.objects.for_org(organization).pending().filter(email=email).exists():
        raise DomainError(f"{email} already has a pending invitation; revoke it first to send a new one.")
    invitation, token = Invitation.new(organization=organization, email=email, role=role, invited_by=invited_by)
    activity.record(
        organization=organization,
        actor=invited_by,
        verb="member.invited",
        target=invitation,
        request=request,
        data={"email": email, "role": role},
    )
    path = reverse("accounts:invitation-accept", kwargs={"token": token})
    transaction.on_commit(lambda: tasks.send_invitation.delay(invitation.pk, path))
    return invitation


@transaction.atomic
def revoke_invitation(*, invitation: Invitation, actor, request=None) -> None:
    if invitation.status != "pending":
        raise DomainError(f"This invitation is already {invitation.status}.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    activity.record(
        organization=invitation.organization,
        actor=actor,
        verb="member.invitation_revoked",
        target=invitation,
        request=request,
    )


@transaction.atomic
def accept_invitation(*, token: str, user, request=None) -> Membership:
    invitation = Invitation.find(token)
    if invitation is None:
        raise DomainError("This invitation link is not valid. Ask for a new invitation.")
    # Lock the row so two clicks on the same link cannot both succeed.
    invitation = Invitation.objects.for_org(invitation.organization_id).select_for_update().get(pk=invitation.pk)
    if invitation.status != "pending":
        raise DomainError(
            f"This invitation has {'been ' if invitation.status != 'expired' else ''}"
            f"{invitation.status}. Ask the organization's owner for a new one."
        )
    org = invitation.organization
    if Membership.objects.for_org(org).filter(user=user).exists():
        raise DomainError(f"You are already a member of {org}.")
    membership = Membership.objects.create(organization=org, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    activity.record(
        organization=org,
        actor=user,
        verb="member.joined",
        target=membership,
        request=request,
        data={"role": invitation.role, "email": invitation.email},
    )
    return membership


def _refuse_losing_last_owner(membership: Membership) -> None:
    if membership.is_owner:
        # Lock the owner rows so two concurrent demotions cannot leave the organization ownerless.
        owners = list(Membership.objects.for_org(membership.organization).owners().select_for_update())
        if len(owners) <= 1:
            raise DomainError("An organization needs at least one owner: make someone else an owner first.")


@transaction.atomic
def change_role(*, membership: Membership, role: str, actor, request=None) -> Membership:
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}.")
    if role == membership.role:
        return membership
    if role != Role.OWNER:
        _refuse_losing_last_owner(membership)
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    activity.record(
        organization=membership.organization,
        actor=actor,
        verb="member.role_changed",
        target=membership,
        request=request,
        data={"from": old, "to": role},
    )
    return membership


@transaction.atomic
def remove_member(*, membership: Membership, actor, request=None) -> None:
    _refuse_losing_last_owner(membership)
    activity.record(
        organization=membership.organization,
        actor=actor,
        verb="member.removed",
        target=membership,
        request=request,
        data={"email": membership.user.email},
    )
    membership.delete()


def get_or_create_user(*, email: str, password: str | None = None, **fields):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=email.lower(), defaults={"email": email.lower(), **fields})
    if created and password:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user, created
