from django.apps import AppConfig


class CrmConnectorsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "crm_connectors"

    def ready(self):
        from . import panels

        panels.register()  # the client page (engagements, below) shows the CRM block
