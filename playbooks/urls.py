"""The playbook browser: library and organization playbooks, cloning and editing an organization's copy."""

app_name = "playbooks"

urlpatterns = []
