from django.apps import AppConfig


class CrmConnectorsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "crm_connectors"
