# The Artifact model moved to deliverables with its table (`reporting_artifact`, kept by Meta.db_table): reporting
# forgets the model and its run's report points at the new one. State only: no table, row or constraint changes.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0005_windows_reviews_weekly_figures"),
        ("deliverables", "0001_artifact_moved_from_reporting"),
        ("crm_connectors", "0003_audit_reports_are_deliverables_artifacts"),  # its reports no longer name ours
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="healthcheckrun",
                    name="report",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="deliverables.artifact",
                    ),
                ),
                migrations.DeleteModel(name="Artifact"),
            ],
            database_operations=[],
        ),
    ]
