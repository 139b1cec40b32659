"""Audit a client's CRM now, in this process: `manage.py crm_audit <org-slug> <client-slug> [--json] [--deep]`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from accounts.models import DomainError, Organization
from crm_connectors.audit import rules, services
from crm_connectors.models import AuditStatus
from engagements.models import ClientAccount


class Command(BaseCommand):
    help = (
        "Run a Current State Audit of a client's CRM synchronously and print the findings. Clients have no slug "
        "field: CLIENT_SLUG is matched against the slugified client name (e.g. 'acme-robotics' for "
        "'Acme Robotics'). The run is stored like one started from the app; while another audit of the client "
        "is queued or running, the command refuses."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org_slug", help="the organization's slug (as in /o/<org-slug>/)")
        parser.add_argument("client_slug", help="the client's name, slugified (ClientAccount has no slug field)")
        parser.add_argument("--json", action="store_true", help="print the run and its findings as JSON")
        parser.add_argument(
            "--deep",
            action="store_true",
            help="also read records (duplicates; stage history for stage skips and backward moves); costs more calls",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        org = Organization.objects.filter(slug=options["org_slug"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {options['org_slug']!r}.")
        wanted = slugify(options["client_slug"])
        clients = [c for c in ClientAccount.objects.for_org(org) if slugify(c.name) == wanted]
        if not clients:
            names = ", ".join(sorted(slugify(c.name) for c in ClientAccount.objects.for_org(org))) or "none"
            raise CommandError(f"No client of {org} whose slugified name is {wanted!r} (clients: {names}).")
        if len(clients) > 1:
            raise CommandError(f"{len(clients)} clients of {org} slugify to {wanted!r}; rename one of them.")
        client = clients[0]
        try:
            run, created = services.start_audit(client=client, actor=None, deep=options["deep"], queue=False)
        except DomainError as exc:
            raise CommandError(str(exc)) from None
        if not created:
            raise CommandError(f"An audit of {client} is already {run.status} (run {run.uuid}); try again later.")
        run = services.execute_run(run.pk) or run
        findings = services.findings_json(run) if run.has_findings else []
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "run": str(run.uuid),
                        "client": client.name,
                        "platform": run.platform,
                        "status": run.status,
                        "api_calls": run.api_calls,
                        "cost": (run.summary or {}).get("cost", {}),
                        "error": run.error,
                        "findings": findings,
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
        else:
            self._text(run, findings)
        if run.status == AuditStatus.FAILED:
            raise CommandError(f"The audit failed: {run.error}")

    def _text(self, run, findings: list[dict]) -> None:
        self.stdout.write(
            f"{run.get_platform_display()} audit of {run.client}: {run.status}, {run.api_calls} API calls, "
            f"{len(findings)} finding(s)."
        )
        cost = {k: v for k, v in ((run.summary or {}).get("cost") or {}).items() if k != "total"}
        if cost:
            self.stdout.write("  API calls by section: " + ", ".join(f"{k} {v}" for k, v in cost.items()))
        if run.error:
            self.stdout.write(f"  {run.error}")
        for domain in rules.DOMAINS:
            rows = [f for f in findings if f["domain"] == domain]
            if not rows:
                continue
            self.stdout.write(f"\n{rules.DOMAIN_LABELS[domain]}")
            for f in rows:
                where = f"{f['object']}.{f['field']}" if f["field"] else f["object"]
                self.stdout.write(f"  [{f['severity']:<6}] {f['rule_id']:<28} {where}: {f['message']}")
