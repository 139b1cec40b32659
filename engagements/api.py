from django.db import transaction
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers

from accounts.api import OrgScopedViewSet

from . import services
from .models import ClientAccount, Stakeholder

# The addresses Django's URLValidator takes, as a pattern (format "uri" alone also allows "a:b" and "urn:x").
LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
WEB_ADDRESS = rf"^$|^https?://({LABEL}(\.{LABEL})*\.[A-Za-z]{{2,63}}|localhost)(:[0-9]{{1,5}})?([/?#]\S*)?$"


@extend_schema_field(
    {"type": "string", "format": "uri", "maxLength": 200, "pattern": WEB_ADDRESS, "description": "The client's web "
     "address, e.g. https://acme.com, or empty."}
)  # fmt: skip
class WebAddressField(serializers.URLField):
    pass


class ClientAccountSerializer(serializers.ModelSerializer):
    website = WebAddressField(
        max_length=200, required=False, allow_blank=True, help_text="The client's web address, e.g. https://acme.com."
    )

    class Meta:
        model = ClientAccount
        fields = ["uuid", "name", "website", "notes", "created_at"]

    def validate_name(self, name: str) -> str:
        org = self.context["view"].org
        clash = ClientAccount.objects.for_org(org).filter(name__iexact=name.strip())
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A client with this name already exists.")
        return name.strip()


class StakeholderSerializer(serializers.ModelSerializer):
    client = serializers.SlugRelatedField(slug_field="uuid", queryset=ClientAccount.objects.none())

    class Meta:
        model = Stakeholder
        fields = ["uuid", "client", "name", "email", "title", "department", "portal_enabled", "created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        view = self.context.get("view")
        if view is not None and hasattr(view, "org"):
            # Only this organization's clients can be named: another tenant's UUID reads as "does not exist".
            self.fields["client"].queryset = ClientAccount.objects.for_org(view.org)

    def validate(self, data):
        client = data.get("client") or self.instance.client
        email = (data.get("email") or self.instance.email).strip().lower()
        clash = Stakeholder.objects.for_org(client.organization).filter(client=client, email=email)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"email": "This client already has a stakeholder with this email."})
        return data


class _ServiceWrites:
    """Create and update through the domain services so the activity log is written."""

    def perform_create(self, serializer):
        serializer.instance = self.save_service(
            self.serializer_class.Meta.model(organization=self.org, **serializer.validated_data)
        )

    def perform_update(self, serializer):
        for field, value in serializer.validated_data.items():
            setattr(serializer.instance, field, value)
        self.save_service(serializer.instance)


class ClientAccountViewSet(
    _ServiceWrites,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    OrgScopedViewSet,
):
    queryset = ClientAccount.objects.all()
    serializer_class = ClientAccountSerializer
    lookup_url_kwarg = "client_uuid"

    def save_service(self, client):
        return services.save_client(client=client, actor=self.request.user, request=self.request)


class StakeholderViewSet(
    _ServiceWrites,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrgScopedViewSet,
):
    queryset = Stakeholder.objects.all()
    serializer_class = StakeholderSerializer
    lookup_url_kwarg = "stakeholder_uuid"

    def scope(self, queryset):
        return queryset.select_related("client")

    def save_service(self, stakeholder):
        return services.save_stakeholder(stakeholder=stakeholder, actor=self.request.user, request=self.request)

    def perform_destroy(self, stakeholder):
        # One transaction: when the stakeholder is still referenced (409), the removal is not logged either.
        with transaction.atomic():
            services.remove_stakeholder(stakeholder=stakeholder, actor=self.request.user, request=self.request)
