"""Definition alignment over the API (consultant side): draft terms and stages, versions, diffs, signature
status and deliverables. Signing itself happens only in the client portal."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api import OrgScopedViewSet
from accounts.models import DomainError
from deliverables.models import Artifact, ArtifactKind

from . import definitions, signoffs
from .deliverables import TEMPLATES, request_artifact
from .models import DefinitionTerm, DefinitionVersion, Engagement, StageDefinition, Stakeholder


class EngagementField(serializers.SlugRelatedField):
    """An engagement named by UUID, looked up only inside the request's organization."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="uuid", queryset=Engagement.objects.none(), **kwargs)

    def get_queryset(self):
        return Engagement.objects.for_org(self.context["view"].org)


class TermSerializer(serializers.ModelSerializer):
    engagement = EngagementField()

    class Meta:
        model = DefinitionTerm
        fields = ["uuid", "engagement", "key", "term", "definition", "notes", "order", "stage_keys", "updated_at"]


class StageSerializer(serializers.ModelSerializer):
    engagement = EngagementField()

    class Meta:
        model = StageDefinition
        fields = [
            "uuid",
            "engagement",
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
            "updated_at",
        ]


class _DraftViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrgScopedViewSet,
):
    """Draft rows: editing them never touches a published version (those are sealed copies). Edits go through
    engagements.definitions, as on the page: a renamed key is followed, a deleted one unlinked."""

    def scope(self, queryset):
        engagement = self.request.query_params.get("engagement")
        queryset = queryset.select_related("engagement")
        return queryset.filter(engagement__uuid=engagement) if engagement else queryset

    def perform_create(self, serializer):
        item = self.queryset.model(organization=self.org, **serializer.validated_data)
        serializer.instance = definitions.save_draft_item(item=item, actor=self.request.user, request=self.request)

    def perform_update(self, serializer):
        item, data = serializer.instance, serializer.validated_data
        if data.get("engagement", item.engagement) != item.engagement:
            # Its references live in its own engagement's draft: moving it would leave them dangling.
            raise serializers.ValidationError({"engagement": ["A draft item cannot move to another engagement."]})
        previous_key = item.key
        for name, value in data.items():
            setattr(item, name, value)
        serializer.instance = definitions.save_draft_item(
            item=item, actor=self.request.user, request=self.request, previous_key=previous_key
        )

    def perform_destroy(self, instance):
        # The same rule as the page: references to the deleted key are removed, so the draft stays publishable.
        definitions.delete_draft_item(item=instance, actor=self.request.user, request=self.request)


class TermViewSet(_DraftViewSet):
    queryset = DefinitionTerm.objects.all()
    serializer_class = TermSerializer
    lookup_url_kwarg = "term_uuid"


class StageViewSet(_DraftViewSet):
    queryset = StageDefinition.objects.all()
    serializer_class = StageSerializer
    lookup_url_kwarg = "stage_uuid"


class SignatureSerializer(serializers.Serializer):
    stakeholder = serializers.UUIDField(source="stakeholder.uuid")
    name = serializers.CharField(source="stakeholder.name")
    email = serializers.EmailField(source="stakeholder.email")
    version_hash = serializers.CharField()
    decisions = serializers.DictField(child=serializers.CharField())
    comments = serializers.DictField(child=serializers.CharField())
    signed_at = serializers.DateTimeField(source="created_at")
    ip = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()


class VersionApproverSerializer(serializers.Serializer):
    """An approver role as mapped on a version; neither a stakeholder nor a waiver reason: still unassigned."""

    role = serializers.CharField()
    stakeholder = serializers.UUIDField(source="stakeholder.uuid", allow_null=True)
    name = serializers.CharField(source="stakeholder.name", allow_null=True, allow_blank=True)
    waiver_reason = serializers.CharField(allow_blank=True)


class VersionSerializer(serializers.ModelSerializer):
    engagement = serializers.UUIDField(source="engagement.uuid")
    status = serializers.SerializerMethodField()
    required_signers = serializers.SerializerMethodField()
    signatures = serializers.SerializerMethodField()
    contested_items = serializers.SerializerMethodField()
    approvers = VersionApproverSerializer(many=True, source="approvers.all", read_only=True)

    class Meta:
        model = DefinitionVersion
        fields = [
            "uuid",
            "engagement",
            "number",
            "content_hash",
            "content",
            "created_at",
            "signed_at",
            "status",
            "required_signers",
            "signatures",
            "contested_items",
            "approvers",
        ]

    def _status(self, version):
        cache = self.context.setdefault("_status", {})
        if version.pk not in cache:
            cache[version.pk] = definitions.version_status(version)
        return cache[version.pk]

    def get_status(self, version) -> str:
        return self._status(version).label

    def get_required_signers(self, version) -> list[dict]:
        status = self._status(version)
        return [
            {"uuid": str(s.uuid), "name": s.name, "email": s.email, "answered": s.pk in status.signatures}
            for s in status.required
        ]

    def get_signatures(self, version) -> list[dict]:
        return list(SignatureSerializer(list(self._status(version).signatures.values()), many=True).data)

    def get_contested_items(self, version) -> list[dict]:
        return [
            {"item": i.key, "label": i.label, "objections": [{"by": s.email, "comment": c} for s, c in i.objections]}
            for i in self._status(version).items
            if i.contested
        ]


class ApproverSerializer(serializers.Serializer):
    """One approver role of the playbook: the stakeholder who holds it, or the reason it is waived."""

    role = serializers.CharField(max_length=200)
    stakeholder = serializers.UUIDField(required=False, allow_null=True)
    waiver_reason = serializers.CharField(required=False, allow_blank=True, max_length=500)



class PublishSerializer(serializers.Serializer):
    engagement = EngagementField()
    signers = serializers.ListField(child=serializers.UUIDField(), allow_empty=False, min_length=1)
    approvers = ApproverSerializer(
        many=True,
        required=False,
        help_text="Every approver role the playbook names, each held or waived. Without it, a role is held by the "
        "chosen signer whose title is the role, and left unassigned otherwise (settle it later with "
        "`approvers/` on the version).",
    )


def _holder(org, row: dict):
    """The Stakeholder an approver row names, or its waiver reason. Exactly one of them: a refusal of the mapping
    as a whole (400 with `detail`, like the other refusals of publishing), since a schema cannot say "one of"."""
    reason = (row.get("waiver_reason") or "").strip()
    if bool(row.get("stakeholder")) == bool(reason):
        raise DomainError(f"{row['role']}: give either the stakeholder who holds the role or a waiver reason.")
    if not row.get("stakeholder"):
        return reason
    holder = Stakeholder.objects.for_org(org).filter(uuid=row["stakeholder"]).first()
    if holder is None:
        raise DomainError(f"{row['role']}: no stakeholder with that UUID in this organization.")
    return holder


class VersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = DefinitionVersion.objects.all()
    serializer_class = VersionSerializer
    lookup_url_kwarg = "definition_version_uuid"

    def scope(self, queryset):
        engagement = self.request.query_params.get("engagement")
        queryset = queryset.select_related("engagement")
        return queryset.filter(engagement__uuid=engagement) if engagement else queryset

    @extend_schema(request=PublishSerializer, responses=VersionSerializer)
    @action(detail=False, methods=["post"])
    def publish(self, request, *args, **kwargs):
        """Seal the engagement's current draft as the next version and ask the chosen stakeholders to sign."""
        body = PublishSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        engagement = body.validated_data["engagement"]
        wanted = body.validated_data["signers"]
        signers = list(Stakeholder.objects.for_org(self.org).filter(uuid__in=wanted))
        if len(signers) != len(set(wanted)):
            raise serializers.ValidationError({"signers": ["Unknown stakeholder UUID(s) in this organization."]})
        rows = body.validated_data.get("approvers")
        approvers = {row["role"]: _holder(self.org, row) for row in rows} if rows is not None else None
        version = definitions.publish(
            engagement=engagement, signers=signers, approvers=approvers, actor=request.user, request=request
        )
        return Response(VersionSerializer(version, context=self.get_serializer_context()).data, status=201)

    @extend_schema(request=ApproverSerializer, responses=VersionSerializer)
    @action(detail=True, methods=["post"])
    def approvers(self, request, *args, **kwargs):
        """Settle an approver role left unassigned at publishing: the stakeholder who holds it (asked to sign this
        version) or the reason it is waived. Only on the latest version, only for a role nobody holds yet."""
        version = self.get_object()
        body = ApproverSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        signoffs.settle_approver(
            version=version,
            role=body.validated_data["role"],
            holder=_holder(self.org, body.validated_data),
            actor=request.user,
            request=request,
        )
        version.refresh_from_db()
        return Response(VersionSerializer(version, context=self.get_serializer_context()).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "against", int, description="Version number to compare with (default: the previous version)."
            )
        ]
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, *args, **kwargs):
        """What changed between this version and another one of the same engagement."""
        version = self.get_object()
        against = request.query_params.get("against")
        others = DefinitionVersion.objects.for_org(self.org).filter(engagement=version.engagement)
        try:
            older = others.get(number=int(against)) if against else others.filter(number__lt=version.number).first()
        except (ValueError, DefinitionVersion.DoesNotExist):
            raise serializers.ValidationError({"against": [f"No version {against} of this engagement."]}) from None
        base = older.content if older else {"terms": [], "stages": []}
        changes = definitions.diff(base, version.content)
        return Response(
            {
                "from": older.number if older else None,
                "to": version.number,
                "changes": [
                    {
                        "kind": c.kind,
                        "key": c.key,
                        "label": c.label,
                        "change": c.change,
                        "fields": [{"field": f, "before": b, "after": a} for f, b, a in c.fields],
                    }
                    for c in changes
                ],
            }
        )


class ArtifactSerializer(serializers.ModelSerializer):
    engagement = EngagementField()
    source_version = serializers.SlugRelatedField(
        slug_field="uuid", queryset=DefinitionVersion.objects.none(), required=False, allow_null=True
    )
    kind = serializers.ChoiceField(choices=ArtifactKind.choices)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = [
            "uuid",
            "engagement",
            "kind",
            "number",
            "source_version",
            "status",
            "progress",
            "error",
            "sha256",
            "size",
            "pages",
            "created_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = ["number", "status", "progress", "error", "sha256", "size", "pages", "finished_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        view = self.context.get("view")
        if view is not None and hasattr(view, "org"):
            self.fields["source_version"].queryset = DefinitionVersion.objects.for_org(view.org)

    def get_download_url(self, artifact) -> str | None:
        if artifact.status != "done":
            return None
        return reverse(
            "api:artifact-download", kwargs={"org_slug": artifact.organization.slug, "artifact_uuid": artifact.uuid}
        )


class ArtifactRequestSerializer(ArtifactSerializer):
    # Only the engagement's own deliverables are requested here; health-check reports and audits come from their
    # runs, so the schema does not offer kinds this endpoint refuses.
    kind = serializers.ChoiceField(choices=[(kind, ArtifactKind(kind).label) for kind in TEMPLATES])


class ArtifactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, OrgScopedViewSet):
    """Deliverables: POST queues a render (poll `status`/`progress`), then download the PDF."""

    queryset = Artifact.objects.all()
    serializer_class = ArtifactSerializer
    lookup_url_kwarg = "artifact_uuid"

    def get_serializer_class(self):
        return ArtifactRequestSerializer if self.action == "create" else ArtifactSerializer

    def scope(self, queryset):
        return queryset.select_related("organization", "engagement", "source_version")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = request_artifact(
            engagement=data["engagement"],
            kind=data["kind"],
            source_version=data.get("source_version"),
            actor=self.request.user,
            request=self.request,
        )

    @extend_schema(responses={(200, "application/pdf"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, *args, **kwargs):
        from django.http import FileResponse, Http404

        artifact = self.get_object()
        if artifact.status != "done":
            raise Http404("This deliverable is not rendered yet.")
        return FileResponse(
            artifact.file.open("rb"), as_attachment=True, filename=artifact.filename, content_type="application/pdf"
        )
