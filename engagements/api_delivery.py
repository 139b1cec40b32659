"""The delivery API: engagements and their progression (phases, checklists, gates, decisions) and the
weekly cadence (decision log, risks, releases, work items, weekly updates).

Every viewset derives from OrgScopedViewSet, so it reads only the URL's organization. Every write goes
through engagements.progression or engagements.cadence, which change state and write the activity log;
a move they refuse (DomainError) comes back as a 400 with the message in `detail`. Request bodies name
other objects by UUID, resolved only within the URL's organization: another tenant's UUID reads as
"does not exist".
"""

from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from accounts.api import OrgScopedViewSet
from accounts.models import Membership
from playbooks.models import Playbook, PlaybookVersion

from . import cadence, client_tasks, progression
from .api import _ServiceWrites
from .models import (
    ChecklistItem,
    ClientAccount,
    DecisionLogEntry,
    Engagement,
    EngagementMember,
    EngagementStakeholder,
    EngagementStatus,
    EngagementType,
    Gate,
    GateCheckpoint,
    GateDecision,
    PhaseState,
    Release,
    Risk,
    Stakeholder,
    TeamRole,
    UpdateStatus,
    WeeklyUpdate,
    WorkItem,
)

# --------------------------------------------------------------------------------------------------
# Shared pieces


class OrgRelatedField(serializers.SlugRelatedField):
    """A foreign key named by UUID and resolved only among the URL organization's rows."""

    def __init__(self, model, **kwargs):
        self.model = model
        kwargs.setdefault("slug_field", "uuid")
        if not kwargs.get("read_only"):
            kwargs["queryset"] = model.objects.none()
        super().__init__(**kwargs)

    def get_queryset(self):
        org = getattr(self.context.get("view"), "org", None)
        if org is None:  # schema generation: no organization, nothing to resolve
            return self.model.objects.none()
        return self.model.objects.for_org(org)


class PlaybookVersionField(OrgRelatedField):
    """A playbook version of the shared library or of this organization's own copies."""

    def __init__(self, **kwargs):
        super().__init__(PlaybookVersion, **kwargs)

    def get_queryset(self):
        org = getattr(self.context.get("view"), "org", None)
        if org is None:
            return PlaybookVersion.objects.none()
        return PlaybookVersion.objects.filter(playbook__in=Playbook.objects.for_org(org)).select_related("playbook")


class ErrorSerializer(serializers.Serializer):
    """A refused move: the state machine's message."""

    detail = serializers.CharField()


REFUSED = OpenApiResponse(
    ErrorSerializer,
    description="Bad input (field messages keyed by field) or a move the state machine refuses "
    "(`detail` says why). Nothing is written.",
)


def only_fields(data, allowed: set[str]) -> None:
    """PATCH endpoints that change a few fields refuse the others instead of silently ignoring them."""
    extra = sorted(set(data) - allowed)
    if extra:
        raise serializers.ValidationError({name: ["This field cannot be changed here."] for name in extra})


class FilteredScope:
    """List filters from query parameters, validated by `filter_serializer` (400 with field messages).

    Each filter field's `source` is the queryset lookup it applies. Filters narrow lists only, never
    the lookup of a single row.
    """

    filter_serializer: type[serializers.Serializer] | None = None

    def filtered(self, queryset):
        if self.action != "list" or self.filter_serializer is None:
            return queryset
        blank = [name for name, value in self.request.query_params.items() if name != "page" and value == ""]
        if blank:  # an empty filter is a mistake, not "no filter": say so instead of listing everything
            raise serializers.ValidationError({name: ["Give a value, or leave this filter out."] for name in blank})
        params = self.filter_serializer(data=self.request.query_params, partial=True)
        params.is_valid(raise_exception=True)
        return queryset.filter(**params.validated_data)


def _list_with_filters(filter_serializer, description: str):
    return extend_schema(parameters=[filter_serializer], description=description)


def _actor(view) -> dict:
    return {"actor": view.request.user, "request": view.request}


# --------------------------------------------------------------------------------------------------
# Engagements


class PhaseRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = PhaseState
        fields = ["uuid", "key", "name", "status", "iteration"]
        read_only_fields = fields


class TeamMemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.get_full_name", read_only=True)

    class Meta:
        model = EngagementMember
        fields = ["email", "name", "role"]
        read_only_fields = fields


class EngagementStakeholderSerializer(serializers.ModelSerializer):
    stakeholder = serializers.UUIDField(source="stakeholder.uuid", read_only=True)
    name = serializers.CharField(source="stakeholder.name", read_only=True)
    email = serializers.EmailField(source="stakeholder.email", read_only=True)

    class Meta:
        model = EngagementStakeholder
        fields = ["stakeholder", "name", "email", "role", "receives_updates"]
        read_only_fields = fields


class EngagementSerializer(serializers.ModelSerializer):
    client = serializers.UUIDField(source="client.uuid", read_only=True)
    client_name = serializers.CharField(source="client.name", read_only=True)
    playbook_version = serializers.UUIDField(source="playbook_version.uuid", read_only=True)
    playbook = serializers.CharField(source="playbook_version.playbook.key", read_only=True)
    playbook_version_number = serializers.IntegerField(source="playbook_version.number", read_only=True)
    current_phase = PhaseRefSerializer(read_only=True, allow_null=True)
    team = TeamMemberSerializer(many=True, read_only=True)
    stakeholders = EngagementStakeholderSerializer(many=True, read_only=True, source="stakeholder_roles")

    class Meta:
        model = Engagement
        fields = [
            "uuid",
            "name",
            "client",
            "client_name",
            "playbook",
            "playbook_version",
            "playbook_version_number",
            "shape",
            "engagement_type",
            "methodology_option",
            "start_date",
            "target_date",
            "status",
            "current_phase",
            "closed_at",
            "hypercare_start",
            "hypercare_end",
            "handed_off_on",
            "check_in_date",
            "last_update_published_at",
            "team",
            "stakeholders",
            "created_at",
        ]
        read_only_fields = fields


class TeamMemberInputSerializer(serializers.Serializer):
    """One consultant on the team, named by `email` or by `membership` UUID (exactly one of the two)."""

    email = serializers.EmailField(required=False)
    membership = OrgRelatedField(Membership, required=False)
    role = serializers.ChoiceField(choices=TeamRole.choices)

    def validate(self, data):
        if ("email" in data) == ("membership" in data):
            raise serializers.ValidationError("Name the team member by `email` or by `membership`, exactly one.")
        membership = data.get("membership")
        if membership is None:
            org = self.context["view"].org
            membership = (
                Membership.objects.for_org(org).filter(user__email__iexact=data["email"]).select_related("user").first()
            )
            if membership is None:
                raise serializers.ValidationError(
                    {"email": ["A member with this email does not exist in this organization."]}
                )
        return {"user": membership.user, "role": data["role"]}


class StakeholderRoleInputSerializer(serializers.Serializer):
    stakeholder = OrgRelatedField(Stakeholder)
    role = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


class EngagementCreateSerializer(serializers.Serializer):
    client = OrgRelatedField(ClientAccount)
    playbook_version = PlaybookVersionField(help_text="A library playbook version or one of this organization's.")
    name = serializers.CharField(max_length=200)
    shape = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    engagement_type = serializers.ChoiceField(choices=EngagementType.choices, default=EngagementType.SINGLE_PROJECT)
    methodology_option = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    start_date = serializers.DateField()
    target_date = serializers.DateField(required=False, allow_null=True, default=None)
    team = TeamMemberInputSerializer(many=True, required=False, default=list)
    stakeholders = StakeholderRoleInputSerializer(many=True, required=False, default=list)

    def validate_name(self, name: str) -> str:
        return name.strip()

    def validate(self, data):
        errors = {}
        spec = data["playbook_version"].spec
        for field, allowed in (
            ("shape", [s.key for s in spec.engagement_shapes]),
            ("methodology_option", [m.key for m in spec.methodology_options]),
        ):
            if data[field] and data[field] not in allowed:
                label, offered = field.replace("_", " "), ", ".join(allowed) or "none"
                errors[field] = [f"This playbook has no {label} {data[field]!r}; it offers: {offered}."]
        if data["target_date"] and data["target_date"] < data["start_date"]:
            errors["target_date"] = ["The target date cannot be before the start date."]
        pairs = [(m["user"].pk, m["role"]) for m in data["team"]]
        if len(pairs) != len(set(pairs)):
            errors["team"] = ["The same person is named twice in the same role."]
        stakeholders = [s["stakeholder"] for s in data["stakeholders"]]
        if len({s.pk for s in stakeholders}) != len(stakeholders):
            errors["stakeholders"] = ["The same stakeholder is named twice."]
        elsewhere = [s.name for s in stakeholders if s.client_id != data["client"].pk]
        if elsewhere:
            errors["stakeholders"] = [f"{', '.join(elsewhere)}: stakeholder(s) of another client."]
        if errors:
            raise serializers.ValidationError(errors)
        return data


class EngagementFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=EngagementStatus.choices, required=False)
    client = serializers.UUIDField(required=False, source="client__uuid", help_text="A client's UUID.")


@extend_schema_view(
    list=_list_with_filters(EngagementFilter, "Engagements with their status and current phase."),
    retrieve=extend_schema(description="One engagement with its team and stakeholders."),
)
class EngagementViewSet(
    FilteredScope, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, OrgScopedViewSet
):
    queryset = Engagement.objects.all()
    serializer_class = EngagementSerializer
    lookup_url_kwarg = "engagement_uuid"
    filter_serializer = EngagementFilter

    def scope(self, queryset):
        return self.filtered(
            queryset.select_related("client", "current_phase", "playbook_version__playbook").prefetch_related(
                Prefetch("team", queryset=EngagementMember.objects.select_related("user").order_by("id")),
                Prefetch(
                    "stakeholder_roles",
                    queryset=EngagementStakeholder.objects.select_related("stakeholder").order_by("id"),
                ),
            )
        )

    def get_serializer_class(self):
        return EngagementCreateSerializer if self.action == "create" else EngagementSerializer

    @extend_schema(
        request=EngagementCreateSerializer,
        responses={201: EngagementSerializer, 400: REFUSED},
        description="Start an engagement from a pinned playbook version: its phases, checklists and gates are "
        "instantiated and the first phase starts. `team` names members by `email` or `membership` UUID.",
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        engagement = progression.create_engagement(
            client=data["client"],
            playbook_version=data["playbook_version"],
            name=data["name"],
            shape=data["shape"],
            engagement_type=data["engagement_type"],
            methodology_option=data["methodology_option"],
            start_date=data["start_date"],
            target_date=data["target_date"],
            team=[(m["user"], m["role"]) for m in data["team"]],
            stakeholders=[(s["stakeholder"], s["role"]) for s in data["stakeholders"]],
            **_actor(self),
        )
        return Response(EngagementSerializer(engagement, context=self.get_serializer_context()).data, status=201)

    @extend_schema(
        request=None,
        responses={200: EngagementSerializer, 400: REFUSED},
        description="Resume an engagement that is on hold.",
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, *args, **kwargs):
        engagement = progression.resume_engagement(engagement=self.get_object(), **_actor(self))
        return Response(EngagementSerializer(engagement, context=self.get_serializer_context()).data)


# --------------------------------------------------------------------------------------------------
# Phases


class SubPhaseSerializer(serializers.Serializer):
    uuid = serializers.UUIDField(read_only=True)
    key = serializers.CharField(read_only=True)
    order = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    purpose = serializers.CharField(read_only=True)
    skipped = serializers.BooleanField(read_only=True)
    skip_reason = serializers.CharField(read_only=True)


class PhaseSerializer(serializers.ModelSerializer):
    engagement = serializers.UUIDField(source="engagement.uuid", read_only=True)
    gate = serializers.SerializerMethodField(help_text="The phase's decision gate; null when it has none.")
    sub_phases = SubPhaseSerializer(many=True, read_only=True)

    class Meta:
        model = PhaseState
        fields = [
            "uuid",
            "engagement",
            "key",
            "order",
            "name",
            "weight",
            "goal",
            "status",
            "skip_reason",
            "iteration",
            "started_at",
            "completed_at",
            "gate",
            "sub_phases",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_gate(self, phase):
        try:
            return phase.gate.uuid
        except Gate.DoesNotExist:  # the reverse one-to-one raises when the phase has no gate
            return None


class PhaseFilter(serializers.Serializer):
    engagement = serializers.UUIDField(required=False, source="engagement__uuid", help_text="An engagement's UUID.")
    status = serializers.ChoiceField(choices=PhaseState._meta.get_field("status").choices, required=False)


@extend_schema_view(list=_list_with_filters(PhaseFilter, "Phases in order, each with its sub-phases."))
class PhaseViewSet(FilteredScope, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = PhaseState.objects.all()
    serializer_class = PhaseSerializer
    lookup_url_kwarg = "phase_uuid"
    filter_serializer = PhaseFilter

    def scope(self, queryset):
        return self.filtered(queryset.select_related("engagement", "gate").prefetch_related("sub_phases"))

    @extend_schema(
        request=None,
        responses={200: PhaseSerializer, 400: REFUSED},
        description="Complete the phase in progress when it has no decision gate (e.g. Handoff) and its "
        "checklist is done; the next pending phase starts, or the engagement closes.",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, *args, **kwargs):
        phase = progression.complete_phase(phase=self.get_object(), **_actor(self))
        return Response(self.get_serializer(phase).data)


# --------------------------------------------------------------------------------------------------
# Checklist items


class ChecklistItemSerializer(serializers.ModelSerializer):
    engagement = serializers.UUIDField(source="engagement.uuid", read_only=True)
    phase = serializers.UUIDField(source="phase.uuid", read_only=True)
    sub_phase = serializers.UUIDField(source="sub_phase.uuid", read_only=True, allow_null=True, default=None)
    sub_phase_key = serializers.CharField(source="sub_phase.key", read_only=True, allow_null=True, default=None)
    done_by = serializers.EmailField(source="done_by.email", read_only=True, allow_null=True, default=None)
    done = serializers.BooleanField()

    class Meta:
        model = ChecklistItem
        fields = [
            "uuid",
            "engagement",
            "phase",
            "sub_phase",
            "sub_phase_key",
            "kind",
            "key",
            "text",
            "group",
            "owner",
            "critical",
            "order",
            "done",
            "done_by",
            "done_at",
        ]
        read_only_fields = [f for f in fields if f != "done"]


class ChecklistItemDoneSerializer(serializers.Serializer):
    done = serializers.BooleanField()


class ChecklistFilter(serializers.Serializer):
    engagement = serializers.UUIDField(required=False, source="engagement__uuid", help_text="An engagement's UUID.")
    phase = serializers.UUIDField(required=False, source="phase__uuid", help_text="A phase's UUID.")
    done = serializers.BooleanField(required=False)


@extend_schema_view(list=_list_with_filters(ChecklistFilter, "Checklist items in order."))
class ChecklistItemViewSet(FilteredScope, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = ChecklistItem.objects.all()
    serializer_class = ChecklistItemSerializer
    lookup_url_kwarg = "item_uuid"
    filter_serializer = ChecklistFilter

    def scope(self, queryset):
        return self.filtered(
            queryset.select_related("engagement", "phase", "sub_phase", "done_by", "done_by_stakeholder")
        )

    @extend_schema(
        request=ChecklistItemDoneSerializer,
        responses={200: ChecklistItemSerializer, 400: REFUSED},
        description="Tick or untick the item: only `done` can change.",
    )
    def partial_update(self, request, *args, **kwargs):
        item = self.get_object()
        only_fields(request.data, {"done"})
        patch = ChecklistItemDoneSerializer(data=request.data)
        patch.is_valid(raise_exception=True)
        item = progression.set_checklist_item(item=item, done=patch.validated_data["done"], **_actor(self))
        return Response(self.get_serializer(item).data)


# --------------------------------------------------------------------------------------------------
# The client's tasks: checklist items the customer owns


class ClientTaskSerializer(ChecklistItemSerializer):
    done = serializers.BooleanField(read_only=True)
    done_by_stakeholder = serializers.EmailField(
        source="done_by_stakeholder.email",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The stakeholder who marked it done in the portal.",
    )
    done_how = serializers.CharField(
        read_only=True,
        help_text="Who completed it, in words: the stakeholder's name, “<consultant> on behalf of the client”, "
        "or “itself (<criterion met>)”. Empty while not done.",
    )
    overdue = serializers.SerializerMethodField(help_text="Not done and its due date has passed (server's date).")
    due_date = serializers.DateField(allow_null=True, help_text="Set by the consultant; null for no date.")

    class Meta(ChecklistItemSerializer.Meta):
        fields = [
            *ChecklistItemSerializer.Meta.fields,
            "due_date",
            "overdue",
            "done_by_stakeholder",
            "auto_reason",
            "done_how",
        ]
        read_only_fields = [f for f in fields if f != "due_date"]

    def get_overdue(self, item) -> bool:
        return item.is_overdue(timezone.localdate())


class ClientTaskDueSerializer(serializers.Serializer):
    due_date = serializers.DateField(allow_null=True)


class ClientTaskFilter(serializers.Serializer):
    engagement = serializers.UUIDField(required=False, source="engagement__uuid", help_text="An engagement's UUID.")
    done = serializers.BooleanField(required=False)


@extend_schema_view(
    list=_list_with_filters(ClientTaskFilter, "The client's tasks (checklist items the customer owns) in order."),
    retrieve=extend_schema(description="One client task, with who completed it and when it is due."),
)
class ClientTaskViewSet(FilteredScope, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = ChecklistItem.objects.all()
    serializer_class = ClientTaskSerializer
    lookup_url_kwarg = "item_uuid"
    filter_serializer = ClientTaskFilter

    def scope(self, queryset):
        related = ("engagement", "phase", "sub_phase", "done_by", "done_by_stakeholder")
        return self.filtered(queryset.client_owned().select_related(*related))

    @extend_schema(
        request=ClientTaskDueSerializer,
        responses={200: ClientTaskSerializer, 400: REFUSED},
        description="Set or clear the task's due date: only `due_date` can change.",
    )
    def partial_update(self, request, *args, **kwargs):
        item = self.get_object()
        only_fields(request.data, {"due_date"})
        patch = ClientTaskDueSerializer(data=request.data)
        patch.is_valid(raise_exception=True)
        item = client_tasks.set_due_date(item=item, due_date=patch.validated_data["due_date"], **_actor(self))
        return Response(self.get_serializer(item).data)

    @extend_schema(
        request=None,
        responses={200: ClientTaskSerializer, 400: REFUSED},
        description="Complete the task on the client's behalf; the activity log records it as such. A task "
        "already done stays as it was (who did it is kept).",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, *args, **kwargs):
        item = client_tasks.complete_client_task(self.get_object(), by_user=request.user, request=request)
        return Response(self.get_serializer(item).data)


# --------------------------------------------------------------------------------------------------
# Gates, checkpoints and gate decisions


class GateCheckpointSerializer(serializers.ModelSerializer):
    resolved_by = serializers.EmailField(source="resolved_by.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = GateCheckpoint
        fields = ["uuid", "key", "text", "auto", "order", "status", "waiver_reason", "resolved_by", "resolved_at"]
        read_only_fields = fields


class GateOptionSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    effect = serializers.CharField(help_text="proceed, complete, loop_back, extend, repeat, extend_hypercare, on_hold")
    target = serializers.CharField(allow_null=True)
    when = serializers.CharField()
    follow_up = serializers.CharField(allow_null=True)
    ready = serializers.BooleanField(
        source="is_ready",
        help_text="True: needs its checkpoints checked or waived. False: a decision not to proceed; needs a "
        "`note` (the reason) and names unmet checkpoints, which stay unmet.",
    )
    requires = serializers.ListField(
        child=serializers.CharField(), allow_null=True, help_text="Checkpoint keys a ready option needs (null: all)."
    )
    about = serializers.ListField(
        child=serializers.CharField(), help_text="Checkpoint keys a not-ready option is usually about."
    )


class GateSerializer(serializers.ModelSerializer):
    engagement = serializers.UUIDField(source="engagement.uuid", read_only=True)
    phase = serializers.UUIDField(source="phase.uuid", read_only=True)
    phase_key = serializers.CharField(source="phase.key", read_only=True)
    checkpoints = GateCheckpointSerializer(many=True, read_only=True)
    options = serializers.SerializerMethodField(help_text="The decisions the playbook offers at this gate.")

    class Meta:
        model = Gate
        fields = [
            "uuid",
            "engagement",
            "phase",
            "phase_key",
            "key",
            "name",
            "statement",
            "sub_phase_key",
            "per_release",
            "recurring",
            "round",
            "status",
            "checkpoints",
            "options",
        ]
        read_only_fields = fields

    @extend_schema_field(GateOptionSerializer(many=True))
    def get_options(self, gate):
        # Gates of one playbook version share one parsed spec instead of parsing it per row.
        versions = self.context.setdefault("playbook_versions", {})
        engagement = gate.engagement
        engagement.playbook_version = versions.setdefault(engagement.playbook_version_id, engagement.playbook_version)
        return GateOptionSerializer(progression.gate_options(gate), many=True).data


class GateDetailSerializer(GateSerializer):
    blockers = serializers.SerializerMethodField(help_text="Why the gate cannot be decided now; empty when it can.")

    class Meta(GateSerializer.Meta):
        fields = [*GateSerializer.Meta.fields, "blockers"]
        read_only_fields = fields

    def get_blockers(self, gate) -> list[str]:
        return progression.blockers(gate)


class CheckpointResolveSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=[("check", "Check"), ("waive", "Waive (needs a reason)"), ("reopen", "Reopen")]
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", help_text="Required to waive.")

    def validate(self, data):
        if data["action"] == "waive" and not data["reason"].strip():
            raise serializers.ValidationError({"reason": ["A waiver needs a written reason."]})
        return data


class GateDecisionSerializer(serializers.ModelSerializer):
    gate = serializers.UUIDField(source="gate.uuid", read_only=True)
    gate_key = serializers.CharField(source="gate.key", read_only=True)
    gate_name = serializers.CharField(source="gate.name", read_only=True)
    engagement = serializers.UUIDField(source="gate.engagement.uuid", read_only=True)
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True)

    class Meta:
        model = GateDecision
        fields = [
            "uuid",
            "engagement",
            "gate",
            "gate_key",
            "gate_name",
            "round",
            "option_key",
            "label",
            "effect",
            "target",
            "note",
            "ready",
            "unmet",
            "decided_by",
            "created_at",
        ]
        read_only_fields = fields


class GateDecideSerializer(serializers.Serializer):
    option = serializers.CharField(help_text="The key of one of the gate's `options`.")
    note = serializers.CharField(required=False, allow_blank=True, default="")
    release = OrgRelatedField(
        Release,
        required=False,
        allow_null=True,
        default=None,
        help_text="For a per-release gate: the release this decision approves.",
    )
    unmet = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=None,
        allow_null=True,
        help_text="For a decision not to proceed: keys of the unmet checkpoints it is about "
        "(omitted: the option's usual ones that are unmet).",
    )

    def validate_option(self, option: str) -> str:
        keys = [o.key for o in progression.gate_options(self.context["gate"])]
        if option not in keys:
            raise serializers.ValidationError(f"This gate has no option {option!r}; choose one of: {', '.join(keys)}.")
        return option

    def validate_release(self, release):
        if release is not None and release.engagement_id != self.context["gate"].engagement_id:
            raise serializers.ValidationError("That release belongs to another engagement.")
        return release


class GateFilter(serializers.Serializer):
    engagement = serializers.UUIDField(required=False, source="engagement__uuid", help_text="An engagement's UUID.")
    status = serializers.ChoiceField(choices=Gate._meta.get_field("status").choices, required=False)


CHECKPOINT_UUID = OpenApiParameter("checkpoint_uuid", OpenApiTypes.UUID, OpenApiParameter.PATH)


@extend_schema_view(
    list=_list_with_filters(
        GateFilter, "Gates with checkpoints, round, status and options. `blockers` are on the single gate."
    ),
    retrieve=extend_schema(description="One gate, with `blockers`: why it cannot be decided now."),
)
class GateViewSet(FilteredScope, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = Gate.objects.all()
    serializer_class = GateSerializer
    lookup_url_kwarg = "gate_uuid"
    filter_serializer = GateFilter

    def scope(self, queryset):
        return self.filtered(
            queryset.select_related("engagement__playbook_version__playbook", "phase")
            .prefetch_related(
                Prefetch("checkpoints", queryset=GateCheckpoint.objects.select_related("resolved_by").order_by("order"))
            )
            .order_by("-engagement__created_at", "engagement_id", "phase__order")
        )

    def get_serializer_class(self):
        return GateSerializer if self.action == "list" else GateDetailSerializer

    @extend_schema(
        request=GateDecideSerializer,
        responses={201: GateDecisionSerializer, 400: REFUSED},
        description="Take one of the gate's options. A ready option is refused while a checkpoint it needs is "
        "open or another blocker stands; a not-ready option (hold, extend, loop back, continue) needs a `note` and "
        "names the unmet checkpoints (`unmet`), which stay unmet, and clears the gate's waivers. The option's "
        "effect moves the engagement (proceed, loop back, repeat, hold...).",
    )
    @action(detail=True, methods=["post"])
    def decide(self, request, *args, **kwargs):
        gate = self.get_object()
        data = GateDecideSerializer(data=request.data, context={**self.get_serializer_context(), "gate": gate})
        data.is_valid(raise_exception=True)
        decision = progression.decide_gate(
            gate=gate,
            option_key=data.validated_data["option"],
            note=data.validated_data["note"],
            release=data.validated_data["release"],
            about=data.validated_data["unmet"],
            **_actor(self),
        )
        return Response(GateDecisionSerializer(decision).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        parameters=[CHECKPOINT_UUID],
        responses={200: GateCheckpointSerializer},
        description="One validation checkpoint of the gate.",
    )
    @extend_schema(
        methods=["POST"],
        operation_id="o_gates_checkpoints_resolve",
        parameters=[CHECKPOINT_UUID],
        request=CheckpointResolveSerializer,
        responses={200: GateCheckpointSerializer, 400: REFUSED},
        description="Resolve a checkpoint: `check` it, `waive` it with a written reason, or `reopen` it. "
        "A checkpoint that checks itself from app state (`auto`, e.g. definitions_signed) cannot be "
        "checked by hand, only waived.",
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path=r"checkpoints/(?P<checkpoint_uuid>[^/]+)",
        url_name="checkpoint",
    )
    def checkpoint(self, request, *args, **kwargs):
        gate = self.get_object()
        checkpoint = get_object_or_404(
            GateCheckpoint.objects.for_org(self.org).filter(gate=gate).select_related("resolved_by"),
            uuid=kwargs["checkpoint_uuid"],
        )
        if request.method == "POST":
            data = CheckpointResolveSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            checkpoint.gate = gate
            checkpoint = progression.resolve_checkpoint(
                checkpoint=checkpoint,
                action=data.validated_data["action"],
                reason=data.validated_data["reason"],
                **_actor(self),
            )
        return Response(GateCheckpointSerializer(checkpoint).data)


class GateDecisionFilter(serializers.Serializer):
    engagement = serializers.UUIDField(
        required=False, source="gate__engagement__uuid", help_text="An engagement's UUID."
    )
    gate = serializers.UUIDField(required=False, source="gate__uuid", help_text="A gate's UUID.")


@extend_schema_view(list=_list_with_filters(GateDecisionFilter, "Gate decisions, oldest first: the route taken."))
class GateDecisionViewSet(FilteredScope, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = GateDecision.objects.all()
    serializer_class = GateDecisionSerializer
    lookup_url_kwarg = "gate_decision_uuid"
    filter_serializer = GateDecisionFilter

    def scope(self, queryset):
        return self.filtered(queryset.select_related("gate__engagement", "decided_by"))


# --------------------------------------------------------------------------------------------------
# The board: decision log, risks, releases, work items


class BoardItemSerializer(serializers.ModelSerializer):
    engagement = OrgRelatedField(Engagement, help_text="The engagement's UUID; fixed once the item exists.")

    class Meta:
        fields = ["uuid", "engagement", "title", "client_visible", "created_at", "updated_at"]

    def validate_engagement(self, engagement):
        if self.instance is not None and engagement.pk != self.instance.engagement_id:
            raise serializers.ValidationError("An item stays on the engagement it was created on.")
        return engagement


class DecisionLogEntrySerializer(BoardItemSerializer):
    gate = OrgRelatedField(
        Gate, required=False, allow_null=True, help_text="The gate this decision belongs to, if any."
    )

    class Meta:
        model = DecisionLogEntry
        fields = [
            *BoardItemSerializer.Meta.fields,
            "category",
            "context",
            "decision",
            "owner",
            "status",
            "decided_on",
            "gate",
        ]

    def validate(self, data):
        engagement = data.get("engagement") or self.instance.engagement
        gate = data.get("gate")
        if gate is not None and gate.engagement_id != engagement.pk:
            raise serializers.ValidationError({"gate": ["That gate belongs to another engagement."]})
        return data


class RiskSerializer(BoardItemSerializer):
    class Meta:
        model = Risk
        fields = [
            *BoardItemSerializer.Meta.fields,
            "description",
            "likelihood",
            "impact",
            "mitigation",
            "owner",
            "status",
        ]


class ReleaseSerializer(BoardItemSerializer):
    gate_decision = serializers.UUIDField(
        source="gate_decision.uuid",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The gate decision that approved the release.",
    )

    class Meta:
        model = Release
        fields = [*BoardItemSerializer.Meta.fields, "description", "status", "released_on", "gate_decision"]


class WorkItemSerializer(BoardItemSerializer):
    class Meta:
        model = WorkItem
        fields = [
            *BoardItemSerializer.Meta.fields,
            "detail",
            "status",
            "owner",
            "due_date",
            "tested",
        ]


def board_filter(model) -> type[serializers.Serializer]:
    """Filters of a board item list: its engagement and its status."""
    return type(
        f"{model.__name__}Filter",
        (serializers.Serializer,),
        {
            "engagement": serializers.UUIDField(
                required=False, source="engagement__uuid", help_text="An engagement's UUID."
            ),
            "status": serializers.ChoiceField(choices=model._meta.get_field("status").choices, required=False),
            "client_visible": serializers.BooleanField(required=False),
        },
    )


class _BoardViewSet(
    FilteredScope,
    _ServiceWrites,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrgScopedViewSet,
):
    """Board items: every write goes through cadence.save_board_item / delete_board_item (activity log)."""

    related = ("engagement",)

    def scope(self, queryset):
        return self.filtered(queryset.select_related(*self.related))

    def save_service(self, item):
        return cadence.save_board_item(item=item, **_actor(self))

    def perform_destroy(self, item):
        cadence.delete_board_item(item=item, **_actor(self))


def _board_schema(model, serializer, noun: str):
    filters = board_filter(model)
    return extend_schema_view(
        list=_list_with_filters(filters, f"The engagement's {noun}, most recently changed first."),
        create=extend_schema(responses={201: serializer, 400: REFUSED}),
        update=extend_schema(responses={200: serializer, 400: REFUSED}),
        partial_update=extend_schema(responses={200: serializer, 400: REFUSED}),
        destroy=extend_schema(responses={204: None, 400: REFUSED}),
    ), filters


_decision_schema, _decision_filter = _board_schema(DecisionLogEntry, DecisionLogEntrySerializer, "decision log")
_risk_schema, _risk_filter = _board_schema(Risk, RiskSerializer, "risks")
_release_schema, _release_filter = _board_schema(Release, ReleaseSerializer, "releases")
_work_schema, _work_filter = _board_schema(WorkItem, WorkItemSerializer, "work items")


@_decision_schema
class DecisionLogEntryViewSet(_BoardViewSet):
    queryset = DecisionLogEntry.objects.all()
    serializer_class = DecisionLogEntrySerializer
    lookup_url_kwarg = "decision_uuid"
    filter_serializer = _decision_filter
    related = ("engagement", "gate")


@_risk_schema
class RiskViewSet(_BoardViewSet):
    queryset = Risk.objects.all()
    serializer_class = RiskSerializer
    lookup_url_kwarg = "risk_uuid"
    filter_serializer = _risk_filter


@_release_schema
class ReleaseViewSet(_BoardViewSet):
    queryset = Release.objects.all()
    serializer_class = ReleaseSerializer
    lookup_url_kwarg = "release_uuid"
    filter_serializer = _release_filter
    related = ("engagement", "gate_decision")


@_work_schema
class WorkItemViewSet(_BoardViewSet):
    queryset = WorkItem.objects.all()
    serializer_class = WorkItemSerializer
    lookup_url_kwarg = "work_uuid"
    filter_serializer = _work_filter


# --------------------------------------------------------------------------------------------------
# Weekly updates

SECTIONS = ["what_changed", "what_was_tested", "needs_decision", "what_happens_next"]


class WeeklyUpdateSerializer(serializers.ModelSerializer):
    engagement = serializers.UUIDField(source="engagement.uuid", read_only=True)
    published_by = serializers.EmailField(source="published_by.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = WeeklyUpdate
        fields = [
            "uuid",
            "engagement",
            "week_start",
            *SECTIONS,
            "status",
            "published_at",
            "published_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [f for f in fields if f not in SECTIONS]


class WeeklyUpdateDraftSerializer(serializers.Serializer):
    engagement = OrgRelatedField(Engagement)
    week_start = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Any day of the week; defaults to this week."
    )


class WeeklyUpdateSectionsSerializer(serializers.Serializer):
    what_changed = serializers.CharField(required=False, allow_blank=True)
    what_was_tested = serializers.CharField(required=False, allow_blank=True)
    needs_decision = serializers.CharField(required=False, allow_blank=True)
    what_happens_next = serializers.CharField(required=False, allow_blank=True)


class WeeklyUpdateFilter(serializers.Serializer):
    engagement = serializers.UUIDField(required=False, source="engagement__uuid", help_text="An engagement's UUID.")
    status = serializers.ChoiceField(choices=UpdateStatus.choices, required=False)


@extend_schema_view(list=_list_with_filters(WeeklyUpdateFilter, "Weekly updates, latest week first."))
class WeeklyUpdateViewSet(FilteredScope, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = WeeklyUpdate.objects.all()
    serializer_class = WeeklyUpdateSerializer
    lookup_url_kwarg = "update_uuid"
    filter_serializer = WeeklyUpdateFilter

    def scope(self, queryset):
        return self.filtered(queryset.select_related("engagement", "published_by"))

    @extend_schema(
        request=WeeklyUpdateDraftSerializer,
        responses={
            201: OpenApiResponse(WeeklyUpdateSerializer, description="Drafted from the week's activity."),
            200: OpenApiResponse(WeeklyUpdateSerializer, description="The week already had an update: that one."),
            400: REFUSED,
        },
        description="Draft the update for the week containing `week_start` (one per engagement and week).",
    )
    def create(self, request, *args, **kwargs):
        data = WeeklyUpdateDraftSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        engagement = data.validated_data["engagement"]
        week_start = cadence.week_of(data.validated_data["week_start"] or timezone.localdate())
        existed = WeeklyUpdate.objects.for_org(self.org).filter(engagement=engagement, week_start=week_start).exists()
        update = cadence.draft_weekly_update(engagement=engagement, week_start=week_start, **_actor(self))
        return Response(self.get_serializer(update).data, status=200 if existed else 201)

    @extend_schema(
        request=WeeklyUpdateSectionsSerializer,
        responses={200: WeeklyUpdateSerializer, 400: REFUSED},
        description="Edit the four sections while the update is a draft.",
    )
    def partial_update(self, request, *args, **kwargs):
        update = self.get_object()
        only_fields(request.data, set(SECTIONS))
        data = WeeklyUpdateSectionsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        for field, value in data.validated_data.items():
            setattr(update, field, value)
        update = cadence.save_weekly_update(update=update, **_actor(self))
        return Response(self.get_serializer(update).data)

    @extend_schema(
        request=None,
        responses={200: WeeklyUpdateSerializer, 400: REFUSED},
        description="Publish the draft: it freezes, and the engagement's stakeholders who receive updates are emailed.",
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, *args, **kwargs):
        update = cadence.publish_weekly_update(update=self.get_object(), **_actor(self))
        return Response(self.get_serializer(update).data)
