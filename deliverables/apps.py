from django.apps import AppConfig


class DeliverablesConfig(AppConfig):
    """The bottom layer: render any registered document kind to a PDF artifact. Imports no other app of ours."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "deliverables"

    def ready(self) -> None:
        # Each app that owns a document kind registers it in its own `deliverables.py` (as admin.py does for the
        # admin): the owners point down at this layer, never the other way.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("deliverables")
