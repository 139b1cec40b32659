"""The hypercare KPI API, under an engagement: the readings recorded (by hand, CSV or here) and each KPI's verdict.

Rows are read through OrgScopedViewSet (the URL's organization only) and the URL's engagement, which must be one
of that organization's: another tenant's engagement reads as "not found". Writes go through
engagements.enablement.record_kpi_reading, which judges the figure and lets the 3d checkpoint that names the KPI
follow it; a figure it refuses (DomainError) comes back as a 400 with the message in `detail`.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from accounts.api import OrgScopedViewSet

from . import enablement
from .api_delivery import REFUSED, _actor
from .models import Engagement, KpiReading

ENGAGEMENT = OpenApiParameter(
    "engagement_uuid", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The engagement's UUID."
)
STATUSES = [
    enablement.KpiStatus.MET,
    enablement.KpiStatus.NOT_YET_DUE,
    enablement.KpiStatus.BELOW_TARGET,
    enablement.KpiStatus.RED_FLAG,
    enablement.KpiStatus.NOT_RECORDED,
]


class KpiReadingSerializer(serializers.ModelSerializer):
    engagement = serializers.UUIDField(source="engagement.uuid", read_only=True)
    recorded_by = serializers.EmailField(source="recorded_by.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = KpiReading
        fields = ["uuid", "engagement", "kpi", "measured_on", "value", "note", "recorded_by", "created_at"]
        read_only_fields = fields


class KpiReadingInputSerializer(serializers.Serializer):
    kpi = serializers.CharField(max_length=80, help_text="A key of the playbook's hypercare KPIs (see `verdicts`).")
    measured_on = serializers.DateField(help_text="The day the figure was measured; not in the future.")
    value = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Percentages as 0-100.")
    note = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_kpi(self, kpi: str) -> str:
        keys = [k.key for k in enablement.kpi_specs(self.context["view"].engagement)]
        if kpi not in keys:
            raise serializers.ValidationError(
                f"This playbook has no hypercare KPI {kpi!r}; choose one of: {', '.join(keys) or 'none'}."
            )
        return kpi


class KpiVerdictSerializer(serializers.Serializer):
    kpi = serializers.CharField(source="kpi.key")
    metric = serializers.CharField(source="kpi.metric")
    target = serializers.CharField(source="target_text", help_text="The seed's target, in words.")
    red_flag = serializers.CharField(source="kpi.red_flag")
    due_on = serializers.DateField(allow_null=True, help_text="When its window ends, counted from hypercare start.")
    status = serializers.ChoiceField(choices=STATUSES)
    verdict = serializers.CharField(help_text="The status in words, for the latest reading's day.")
    latest = KpiReadingSerializer(source="reading", allow_null=True)


@extend_schema_view(
    list=extend_schema(parameters=[ENGAGEMENT], description="The engagement's KPI readings, oldest first."),
    retrieve=extend_schema(parameters=[ENGAGEMENT], description="One KPI reading."),
)
class KpiReadingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, OrgScopedViewSet):
    queryset = KpiReading.objects.all()
    serializer_class = KpiReadingSerializer
    lookup_url_kwarg = "reading_uuid"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.engagement = get_object_or_404(Engagement.objects.for_org(self.org), uuid=kwargs["engagement_uuid"])

    def scope(self, queryset):
        return queryset.filter(engagement=self.engagement).select_related("engagement", "recorded_by")

    @extend_schema(
        parameters=[ENGAGEMENT],
        request=KpiReadingInputSerializer,
        responses={201: KpiReadingSerializer, 400: REFUSED},
        description="Record a hypercare KPI figure as measured on a day. It is judged for that day, and the "
        "gate checkpoint that names the KPI checks itself when the figure is at target (or reopens when not).",
    )
    def create(self, request, *args, **kwargs):
        data = KpiReadingInputSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        reading = enablement.record_kpi_reading(engagement=self.engagement, **data.validated_data, **_actor(self))
        return Response(self.get_serializer(reading).data, status=201)

    @extend_schema(
        parameters=[ENGAGEMENT],
        responses={200: KpiVerdictSerializer(many=True)},
        description="Each of the playbook's hypercare KPIs with its target, red flag, latest reading and verdict.",
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def verdicts(self, request, *args, **kwargs):
        return Response(KpiVerdictSerializer(enablement.hypercare_kpis(self.engagement), many=True).data)
