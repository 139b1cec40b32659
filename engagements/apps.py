from django.apps import AppConfig


class EngagementsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "engagements"

    def ready(self) -> None:
        # accounts sits below engagements: its home page gets the client list handed up, it does not import it.
        from accounts import home_sections

        from .views.clients import org_home_clients

        home_sections.add_section(org_home_clients)
