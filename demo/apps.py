from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The top of the house: `manage.py seed_demo` builds a demo across every app, so it lives above them all."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "demo"
