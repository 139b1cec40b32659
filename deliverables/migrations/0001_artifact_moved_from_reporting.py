# The Artifact model moves from reporting to deliverables without moving its rows: the table stays
# `reporting_artifact` (Meta.db_table), so this migration only changes Django's state, on every database.
import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import deliverables.models


def move_content_type(apps, schema_editor):
    """Permissions on artifacts follow the model instead of being created again under a new content type."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="deliverables", model="artifact").exists():
        ContentType.objects.filter(app_label="reporting", model="artifact").update(app_label="deliverables")


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="reporting", model="artifact").exists():
        ContentType.objects.filter(app_label="deliverables", model="artifact").update(app_label="reporting")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0003_organization_data_version"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("engagements", "0004_stakeholder_health_reports"),
        ("reporting", "0005_windows_reviews_weekly_figures"),  # the table exists, created as reporting's
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Artifact",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("uuid", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("definition_alignment", "Definition Alignment Document"),
                                    ("stage_reference_card", "Stage Reference Card"),
                                    ("health_check_report", "Health-Check Report"),
                                    ("current_state_audit", "Current State Audit"),
                                ],
                                max_length=40,
                            ),
                        ),
                        ("number", models.PositiveIntegerField(help_text="Artifact version: 1, 2, ... per engagement and kind.")),
                        (
                            "status",
                            models.CharField(
                                choices=[("queued", "Queued"), ("rendering", "Rendering"), ("done", "Ready"), ("failed", "Failed")],
                                default="queued",
                                max_length=10,
                            ),
                        ),
                        ("progress", models.PositiveSmallIntegerField(default=0)),
                        ("error", models.TextField(blank=True)),
                        ("file", models.FileField(blank=True, upload_to=deliverables.models.artifact_path)),
                        ("sha256", models.CharField(blank=True, max_length=64)),
                        ("size", models.PositiveIntegerField(default=0)),
                        ("pages", models.PositiveIntegerField(default=0)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("download_token", models.UUIDField(default=uuid.uuid4, editable=False)),
                        (
                            "created_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
                            ),
                        ),
                        (
                            "engagement",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="artifacts",
                                to="engagements.engagement",
                            ),
                        ),
                        (
                            "organization",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.organization"
                            ),
                        ),
                        (
                            "source_version",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="artifacts",
                                to="engagements.definitionversion",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "reporting_artifact",
                        "ordering": ["-created_at"],
                        "constraints": [
                            models.UniqueConstraint(fields=("engagement", "kind", "number"), name="unique_artifact_number")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
