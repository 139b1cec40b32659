"""The Current State Audit over the API: audit runs (list, read, start) and findings (list, read, set state)."""

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from accounts.api import OrgScopedViewSet
from engagements.models import ClientAccount, Engagement

from .audit import services
from .models import AuditRun, Finding, FindingState, Severity


class _OrgSlugField(serializers.SlugRelatedField):
    """A row named by UUID, looked up only inside the request's organization."""

    model = None

    def __init__(self, **kwargs):
        super().__init__(slug_field="uuid", queryset=self.model.objects.none(), **kwargs)

    def get_queryset(self):
        return self.model.objects.for_org(self.context["view"].org)


class ClientField(_OrgSlugField):
    model = ClientAccount


class EngagementField(_OrgSlugField):
    model = Engagement


class AuditRunSerializer(serializers.ModelSerializer):
    client = ClientField()
    engagement = EngagementField(required=False, allow_null=True)
    connection = serializers.SlugRelatedField(slug_field="uuid", read_only=True)
    # plain strings: several models name a field `status`/`platform` with other choices
    status = serializers.CharField(read_only=True, help_text="queued, running, succeeded, partial or failed")
    platform = serializers.CharField(read_only=True, help_text="salesforce or hubspot")
    findings = serializers.SerializerMethodField()

    class Meta:
        model = AuditRun
        fields = [
            "uuid",
            "client",
            "engagement",
            "connection",
            "platform",
            "status",
            "progress",
            "deep",
            "started_at",
            "finished_at",
            "api_calls",
            "error",
            "signed_version",
            "findings",
            "summary",
            "created_at",
        ]
        read_only_fields = [
            "progress",
            "started_at",
            "finished_at",
            "api_calls",
            "error",
            "signed_version",
            "summary",
        ]

    def get_findings(self, run) -> int:
        return getattr(run, "finding_count", 0)

    def validate(self, data):
        engagement, client = data.get("engagement"), data.get("client")
        if engagement is not None and client is not None and engagement.client_id != client.pk:
            raise serializers.ValidationError({"engagement": "This engagement belongs to another client."})
        return data


def _uuid_filter(queryset, lookup: str, value: str):
    try:
        return queryset.filter(**{lookup: uuid.UUID(value)})
    except ValueError:
        return queryset.none()


class FindingSerializer(serializers.ModelSerializer):
    run = serializers.SlugRelatedField(slug_field="uuid", read_only=True)
    client = serializers.SlugRelatedField(source="run.client", slug_field="uuid", read_only=True)
    severity = serializers.ChoiceField(choices=Severity.choices, read_only=True)
    domain = serializers.CharField(
        read_only=True,
        help_text="lead_lifecycle, sales_pipelines, customer_lifecycle, company_lifecycle, data_quality or drift",
    )
    state = serializers.ChoiceField(choices=FindingState.choices, required=False)
    state_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = Finding
        fields = [
            "uuid",
            "run",
            "client",
            "rule_id",
            "severity",
            "domain",
            "object",
            "field",
            "values",
            "counts",
            "count",
            "evidence",
            "message",
            "recommendation",
            "seed_ref",
            "fingerprint",
            "state",
            "note",
            "state_by",
            "state_at",
            "created_at",
        ]
        read_only_fields = [f for f in fields if f not in ("state", "note")]


FILTERS = {
    "client": OpenApiParameter("client", str, description="Only this client's rows (client UUID)"),
    "status": OpenApiParameter("status", str, description="queued, running, succeeded, partial or failed"),
    "run": OpenApiParameter("run", str, description="Only this audit run's findings (run UUID)"),
    "state": OpenApiParameter("state", str, description="open, acknowledged, explained or accepted_risk"),
    "severity": OpenApiParameter("severity", str, description="high, medium, low or info"),
    "domain": OpenApiParameter("domain", str, description="lead_lifecycle, sales_pipelines, … drift"),
    "rule_id": OpenApiParameter("rule_id", str, description="e.g. LC-NO-SAL"),
}


@extend_schema_view(
    list=extend_schema(parameters=[FILTERS["client"], FILTERS["status"]]),
    create=extend_schema(
        description="Start an audit of the client's CRM. 201 with the new run; 409 with the run already queued or "
        "running for that client (nothing new starts)."
    ),
)
class AuditRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, OrgScopedViewSet):
    queryset = AuditRun.objects.all()
    serializer_class = AuditRunSerializer
    lookup_url_kwarg = "audit_run_uuid"

    def scope(self, queryset):
        from django.db.models import Count

        params = self.request.query_params
        queryset = queryset.select_related("client", "engagement", "connection").annotate(
            finding_count=Count("findings")
        )
        if params.get("client"):
            queryset = _uuid_filter(queryset, "client__uuid", params["client"])
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        return queryset.defer("snapshot").order_by("-created_at")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run, created = services.start_audit(
            client=data["client"],
            actor=request.user,
            engagement=data.get("engagement"),
            deep=data.get("deep", False),
            request=request,
        )
        run.finding_count = 0
        body = self.get_serializer(run).data
        if not created:
            return Response(
                {"detail": "An audit of this client is already queued or running.", "run": body},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            FILTERS["run"],
            FILTERS["client"],
            FILTERS["state"],
            FILTERS["severity"],
            FILTERS["domain"],
            FILTERS["rule_id"],
        ]
    ),
    partial_update=extend_schema(
        description="Acknowledge, explain, accept as a risk or reopen a finding. Explaining and accepting need a note."
    ),
)
class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, OrgScopedViewSet):
    queryset = Finding.objects.all()
    serializer_class = FindingSerializer
    lookup_url_kwarg = "finding_uuid"
    http_method_names = ["get", "patch", "head", "options"]

    def scope(self, queryset):
        params = self.request.query_params
        queryset = queryset.select_related("run__client", "state_by")
        for name, lookup in (("run", "run__uuid"), ("client", "run__client__uuid")):
            if params.get(name):
                queryset = _uuid_filter(queryset, lookup, params[name])
        for name, lookup in (
            ("state", "state"),
            ("severity", "severity"),
            ("domain", "domain"),
            ("rule_id", "rule_id"),
        ):
            if params.get(name):
                queryset = queryset.filter(**{lookup: params[name]})
        return queryset

    def perform_update(self, serializer):
        finding = serializer.instance
        data = serializer.validated_data
        serializer.instance = services.update_finding(
            finding=finding,
            state=data.get("state", finding.state),
            note=data.get("note", finding.note),
            actor=self.request.user,
            request=self.request,
        )
