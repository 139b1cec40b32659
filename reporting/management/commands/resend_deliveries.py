"""Send the monthly emails the mail server refused again: `manage.py resend_deliveries [--run UUID] [--org SLUG]
[--force]`. Each recipient gets at most one email per run (per engagement and month) unless --force."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from reporting.models import DeliveryStatus, HealthCheckRun
from reporting.runs import resend


class Command(BaseCommand):
    help = (
        "Send again the health-check emails that failed (the mail server refused them past the retry budget, or "
        "a worker stopped twice while sending them): of one run (--run UUID), of one organization (--org SLUG), or "
        "of every organization. A recipient whose email was sent is skipped: at most one email per recipient and "
        "month. --force (with --run only) sends the run's sent emails again too. The emails go to the Celery "
        "workers when a broker is configured, out of this process otherwise. Prints what it queued."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--run", metavar="UUID", help="only this health run (its UUID, as in its page's address)")
        parser.add_argument("--org", metavar="SLUG", help="only this organization's runs (as in /o/<slug>/)")
        parser.add_argument(
            "--force", action="store_true", help="with --run: send the emails already sent again as well"
        )

    def handle(self, *args: Any, run: str | None, org: str | None, force: bool, **options: Any) -> None:
        if force and not run:
            raise CommandError("--force sends emails people already received: name the run with --run UUID.")
        runs = HealthCheckRun.objects.across_tenants("manage.py resend_deliveries: an operator's command")
        if org:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"--org {org}: no organization has this slug.")
            runs = runs.filter(organization=organization)
        if run:
            try:
                runs = runs.filter(uuid=run)
                if not runs.exists():
                    raise CommandError(f"--run {run}: no health run has this UUID{f' in {org}' if org else ''}.")
            except ValidationError as exc:
                raise CommandError(f"--run {run}: not a UUID.") from exc
        if not force:
            runs = runs.filter(deliveries__status=DeliveryStatus.FAILED).distinct()
        total = 0
        for each in runs.select_related("engagement__client", "organization").order_by("period", "pk"):
            queued = resend(each, force=force)
            total += queued
            if queued:
                self.stdout.write(
                    f"{each.organization.slug} {each.engagement.client} / {each.engagement}, {each.period:%Y-%m}: "
                    f"{queued} email(s) queued again"
                )
        self.stdout.write(f"{total} email(s) queued again." if total else "No failed email to send again.")
