"""The API side of the tenant wall.

Every organization-scoped endpoint derives from OrgScopedViewSet. It owns get_queryset, so a subclass
can only narrow the organization's rows (through `scope`), never forget the organization filter.
"""

from django.contrib.auth import authenticate
from django.db.models import ProtectedError, QuerySet, RestrictedError
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .access import SAFE_METHODS, membership_for
from .models import DomainError, Membership, Organization

MESSAGE = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "Why, in words."}},
    "required": ["detail"],
}
#: A 400 comes keyed by field: each field name with its messages; `non_field_errors` or `detail` for what concerns
#: no single field (a move the state machine refuses).
INPUT_ERRORS = {
    "type": "object",
    "description": "Messages keyed by field name (a list of messages each, nested for nested fields); "
    "`non_field_errors` or `detail` for what concerns no single field. Nothing was written.",
    "additionalProperties": {},
}
ERROR_RESPONSES = {
    "400": ("Bad input, keyed by field, or a move the current state refuses (`detail`). Nothing was written.",
            INPUT_ERRORS),
    "401": ("No token, or a token that is not valid: send `Authorization: Token <key>`.", MESSAGE),
    "403": ("Your role cannot change this (viewers read only).", MESSAGE),
    "404": ("No such organization, object or page for you.", MESSAGE),
    "409": ("Still referenced elsewhere, so it cannot be deleted: `detail` says by what.", MESSAGE),
    "429": ("Too many requests: the Retry-After header says in how many seconds to try again.", MESSAGE),
}


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "It is still referenced elsewhere, so it cannot be deleted."
    default_code = "conflict"


def still_referenced(obj, error: ProtectedError | RestrictedError) -> str:
    """Why `obj` cannot be deleted, in words: what still refers to it (kept as a record)."""
    counts: dict = {}
    for ref in error.protected_objects if isinstance(error, ProtectedError) else error.restricted_objects:
        counts[ref._meta] = counts.get(ref._meta, 0) + 1
    refs = ", ".join(
        f"{n} {meta.verbose_name if n == 1 else meta.verbose_name_plural}" for meta, n in counts.items()
    )
    return f"{getattr(obj, 'name', obj)} cannot be deleted: it is still referenced by {refs}, kept as a record."


class ContractSchema(AutoSchema):
    """Documents the error answers every operation can give, so clients (and schemathesis) know them."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        codes = []
        has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
        if self.method != "GET" or has_query:
            codes.append("400")
        if self.view.permission_classes:
            codes += ["401", "404"]
            if self.method not in SAFE_METHODS:
                codes.append("403")
        if self.method == "DELETE":
            codes.append("409")
        if self.view.throttle_classes:
            codes.append("429")
        responses = operation["responses"]
        for code in codes:
            description, schema = ERROR_RESPONSES[code]
            if code == "400" and code in responses:
                # A 400 documented with its own words keeps them, with the field-keyed body it really has.
                description = responses[code].get("description") or description
            if code == "400" or code not in responses:
                responses[code] = {"description": description, "content": {"application/json": {"schema": schema}}}
        return operation


NUL_FREE = r"^[^\u0000]*$"
VISIBLE = r"^[^\u0000]*\S[^\u0000]*$"


def strings_as_drf_reads_them(result, generator, request, public):
    """Schema post-processing: DRF trims text and refuses NUL characters, so a field that refuses blanks needs a
    visible character (minLength 1 alone lets "  " through) and no text field takes NUL. Saying so in the schema
    keeps clients, and schemathesis, from sending what is refused anyway."""
    for component in result.get("components", {}).get("schemas", {}).values():
        for prop in component.get("properties", {}).values():
            if prop.get("type") != "string" or prop.get("readOnly") or {"format", "enum", "pattern"} & set(prop):
                continue
            prop["pattern"] = VISIBLE if prop.get("minLength", 0) >= 1 else NUL_FREE
    return result


class OrgScopedViewSet(viewsets.GenericViewSet):
    schema = ContractSchema()
    # JSON only: form encodings cannot say null, lists of objects or numbers, so the schema would promise what
    # the API cannot read.
    parser_classes = [JSONParser]
    lookup_field = "uuid"
    # Any path segment reaches the view, so a malformed id answers the API's JSON 404, not the site's HTML page.
    lookup_value_regex = "[^/]+"
    #: The model's default manager; its queryset must have `for_org`.
    queryset: QuerySet | None = None

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
        if isinstance(exc, ProtectedError | RestrictedError) and self.action == "destroy":
            exc = Conflict(still_referenced(self.get_object(), exc))
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

    schema = ContractSchema()
    parser_classes = [JSONParser]
    serializer_class = OrganizationSerializer
    queryset = Organization.objects.none()

    def get_queryset(self):
        return Organization.objects.filter(
            pk__in=Membership.objects.of_user(self.request.user).values("organization")
        )

    def get_serializer_context(self):
        roles = {}
        if self.request and self.request.user.is_authenticated:
            roles = dict(Membership.objects.of_user(self.request.user).values_list("organization_id", "role"))
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


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.CharField(required=False, help_text="The email address you sign in with.")
    username = serializers.CharField(required=False, help_text="The same as `email`; kept for older clients.")
    password = serializers.CharField(trim_whitespace=False, write_only=True, style={"input_type": "password"})

    def validate(self, data):
        account = data.get("email") or data.get("username")
        if not account:
            raise serializers.ValidationError({"email": ["Give the email address you sign in with."]})
        # Within the sign-in limits (accounts/throttling.py): too many failures raise a 429 before the check.
        request = self.context["request"]
        user = authenticate(request=request, username=account.strip().lower(), password=data["password"])
        if user is None:
            raise serializers.ValidationError(
                {"non_field_errors": ["Unable to sign in with this email address and password."]}
            )
        return {"user": user}


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


class ObtainTokenView(APIView):
    """Exchange an email address and password for the account's API token (the same token every time)."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()  # the sign-in limits apply instead: per account and per IP address

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: TokenResponseSerializer,
            400: OpenApiResponse(description="Wrong email address or password, keyed by field."),
            429: OpenApiResponse(description="Too many failed sign-ins: Retry-After says when to try again."),
        },
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
