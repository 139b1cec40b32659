"""What engagements announces to the apps above it, which it may not import."""

from django.dispatch import Signal

# Sent inside create_engagement's transaction, once the playbook is instantiated: engagement=<Engagement>.
engagement_created = Signal()
