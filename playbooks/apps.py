from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "playbooks"
