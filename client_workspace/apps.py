from django.apps import AppConfig


class ClientWorkspaceConfig(AppConfig):
    name = "client_workspace"
    verbose_name = "Client workspace"

    def ready(self):
        # engagements sits below this app and cannot call it: it announces new engagements, and the intake form is
        # copied from the playbook version here; its pages show this app's panels, handed down here.
        from engagements.signals import engagement_created

        from . import panels
        from .intake import copy_intake_form

        engagement_created.connect(copy_intake_form, dispatch_uid="client_workspace.copy_intake_form")
        panels.register()
