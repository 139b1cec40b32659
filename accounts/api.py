"""The API side of the tenant wall.

Every organization-scoped endpoint derives from OrgScopedViewSet. It owns get_queryset, so a subclass
can only narrow the organization's rows (through `scope`), never forget the organization filter.
"""

from rest_framework import exceptions, mixins, serializers, viewsets

from .access import SAFE_METHODS, membership_for
from .models import DomainError, Membership, Organization


class OrgScopedViewSet(viewsets.GenericViewSet):
    lookup_field = "uuid"
    lookup_value_regex = "[0-9a-f-]{36}"
    #: The model's default manager; its queryset must have `for_org`.
    queryset = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must not override get_queryset; refine `scope` instead.")

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        membership = membership_for(request.user, kwargs.get("org_slug", ""))
        if membership is None:
            raise exceptions.NotFound("No organization with that slug, or you are not a member of it.")
        if request.method not in SAFE_METHODS and not membership.can_write:
            raise exceptions.PermissionDenied("Viewers can read but not change anything.")
        self.org = membership.organization
        self.membership = membership

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no organization
            return self.queryset.none()
        return self.scope(self.queryset.model.objects.for_org(self.org))

    def scope(self, queryset):
        return queryset

    def handle_exception(self, exc):
        if isinstance(exc, DomainError):
            exc = exceptions.ValidationError({"detail": str(exc)})
        return super().handle_exception(exc)


class OrganizationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["uuid", "name", "slug", "role", "created_at"]

    def get_role(self, org) -> str:
        return self.context["roles"].get(org.pk, "")


class OrganizationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The organizations the authenticated user belongs to (not organization-scoped itself)."""

    serializer_class = OrganizationSerializer
    queryset = Organization.objects.none()

    def get_queryset(self):
        return Organization.objects.filter(
            pk__in=Membership.objects.filter(user=self.request.user).values("organization")
        )

    def get_serializer_context(self):
        roles = {}
        if self.request and self.request.user.is_authenticated:
            roles = dict(Membership.objects.filter(user=self.request.user).values_list("organization_id", "role"))
        return {**super().get_serializer_context(), "roles": roles}


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.get_full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["uuid", "email", "name", "role", "created_at"]


class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = Membership.objects.all()
    serializer_class = MemberSerializer
    lookup_url_kwarg = "member_uuid"

    def scope(self, queryset):
        return queryset.select_related("user")
