"""Intake forms (with the client's answers) and intake files, readable by the consultancy through /api/v1/."""

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action

from accounts.api import OrgScopedViewSet
from engagements.api_delivery import FilteredScope

from . import intake
from .models import IntakeFile, IntakeForm, IntakeStatus
from .views_portal import file_response


class EngagementFilter(serializers.Serializer):
    engagement = serializers.UUIDField(required=False, source="engagement__uuid", help_text="An engagement's UUID.")


class IntakeFormSerializer(serializers.ModelSerializer):
    engagement = serializers.UUIDField(source="engagement.uuid", read_only=True)
    name = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=IntakeStatus.choices, read_only=True)
    submitted_by = serializers.EmailField(source="submitted_by.email", read_only=True, allow_null=True, default=None)
    questions = serializers.JSONField(source="spec.fields", read_only=True, help_text="The form as copied at creation.")
    answers = serializers.SerializerMethodField(help_text="Field key -> answer, as typed by the form's field.")
    missing_required = serializers.SerializerMethodField(help_text="Keys of required fields still empty.")

    class Meta:
        model = IntakeForm
        fields = [
            "uuid",
            "engagement",
            "name",
            "status",
            "submitted_at",
            "submitted_by",
            "questions",
            "answers",
            "missing_required",
        ]

    def get_answers(self, form) -> dict:
        return intake.answers_of(form)

    def get_missing_required(self, form) -> list[str]:
        return [f.key for f in intake.missing_required(form)]


@extend_schema_view(list=extend_schema(parameters=[EngagementFilter], description="Each engagement's intake form."))
class IntakeFormViewSet(FilteredScope, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = IntakeForm.objects.all()
    serializer_class = IntakeFormSerializer
    lookup_url_kwarg = "intake_form_uuid"
    filter_serializer = EngagementFilter

    def scope(self, queryset):
        return self.filtered(queryset.select_related("engagement", "submitted_by").prefetch_related("answers", "files"))


class IntakeFileSerializer(serializers.ModelSerializer):
    engagement = serializers.UUIDField(source="engagement.uuid", read_only=True)
    uploaded_by = serializers.EmailField(source="uploaded_by.email", read_only=True, allow_null=True, default=None)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = IntakeFile
        fields = [
            "uuid",
            "engagement",
            "field_key",
            "name",
            "content_type",
            "size",
            "sha256",
            "uploaded_by",
            "created_at",
            "download_url",
        ]

    def get_download_url(self, file) -> str:
        return reverse(
            "api:intake-file-download", kwargs={"org_slug": file.organization.slug, "intake_file_uuid": file.uuid}
        )


@extend_schema_view(list=extend_schema(parameters=[EngagementFilter], description="Files the client uploaded."))
class IntakeFileViewSet(FilteredScope, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = IntakeFile.objects.all()
    serializer_class = IntakeFileSerializer
    lookup_url_kwarg = "intake_file_uuid"
    filter_serializer = EngagementFilter

    def scope(self, queryset):
        return self.filtered(queryset.select_related("organization", "engagement", "uploaded_by"))

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, *args, **kwargs) -> FileResponse:
        return file_response(self.get_object())
