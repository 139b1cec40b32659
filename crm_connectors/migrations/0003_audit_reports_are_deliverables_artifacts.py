# AuditRun.reports points at the Artifact model in its new app; the table and its join table stay as they are.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm_connectors", "0002_auditrun_finding_and_more"),
        ("deliverables", "0001_artifact_moved_from_reporting"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditrun",
                    name="reports",
                    field=models.ManyToManyField(blank=True, related_name="+", to="deliverables.artifact"),
                ),
            ],
            database_operations=[],
        ),
    ]
