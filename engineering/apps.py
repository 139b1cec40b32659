from django.apps import AppConfig


class EngineeringConfig(AppConfig):
    """Phase 2 in the product: the CRM Configuration Spec from the signed architecture and its change plan."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "engineering"
