"""Run a CRM sandbox server in the foreground: `manage.py crm_sandbox --kind salesforce --port 8701`.

Profiles: healthy, wellbuilt, wellbuilt-relabelled, demo, messy, tangled (see crm_sandbox/profiles.py).
Shape knobs on top of a profile: `--hide lead.Phone --hide contact.hs_analytics_source` (field-level security),
`--refuse CaseStatus --refuse tickets` (objects the integration user may not read).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm_sandbox import HubSpotSandbox, SalesforceSandbox
from crm_sandbox.profiles import PROFILES, variant


class Command(BaseCommand):
    help = "Start a local Salesforce REST or HubSpot CRM v3 sandbox with a synthetic org, until Ctrl-C."
    requires_system_checks: list[str] = []  # touches no database; must run while the project is half-built

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", choices=["salesforce", "hubspot"], required=True)
        parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--profile", choices=sorted(PROFILES), default="demo")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--hide", action="append", default=[], metavar="KIND.FIELD", help="hide a field, e.g. lead.Phone"
        )
        parser.add_argument(
            "--refuse", action="append", default=[], metavar="OBJECT", help="refuse an object, e.g. CaseStatus"
        )
        parser.add_argument("--size", type=int, default=None, help="leads / contacts in the org")
        parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
        parser.add_argument(
            "--daily-api-limit", type=int, default=100_000, help="Salesforce DailyApiRequests"
        )
        parser.add_argument(
            "--enforce-rate-limits",
            action="store_true",
            help="HubSpot: answer 429 when the 10-second or search window is full",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["size"] is not None and opts["size"] < 0:
            raise CommandError("--size must be >= 0")
        profile = opts["profile"]
        if opts["hide"] or opts["refuse"]:
            try:
                profile = variant(
                    profile, hidden_fields=set(opts["hide"]), refused_objects=set(opts["refuse"])
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        common = {
            "profile": profile,
            "seed": opts["seed"],
            "size": opts["size"],
            "host": opts["host"],
            "port": opts["port"],
            "verbose": opts["log_requests"],
        }
        if opts["kind"] == "salesforce":
            sandbox: SalesforceSandbox | HubSpotSandbox = SalesforceSandbox(
                daily_api_limit=opts["daily_api_limit"], **common
            )
        else:
            sandbox = HubSpotSandbox(enforce_rate_limits=opts["enforce_rate_limits"], **common)
        try:
            sandbox.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {opts['host']}:{opts['port']}: {exc}") from exc
        if opts["host"] not in ("127.0.0.1", "localhost", "::1"):
            self.stderr.write(self.style.WARNING("The sandbox is listening beyond loopback."))
        model = sandbox.model
        self.stdout.write(
            self.style.SUCCESS(
                f"{opts['kind']} sandbox: profile={model.profile.name} seed={model.seed} size={model.size}"
            )
        )
        self.stdout.write(f"base_url: {sandbox.base_url}")
        for key, value in sandbox.credentials().items():
            self.stdout.write(f"{key}: {value}")
        self.stdout.write(f"gotchas: {', '.join(sorted(model.profile.gotchas)) or '(none)'}")
        self.stdout.write(f"control: {sandbox.base_url}/__sandbox__/stats | /faults | /org")
        self.stdout.write(
            "SANDBOX_JSON "
            + json.dumps(
                {"kind": opts["kind"], "base_url": sandbox.base_url, "credentials": sandbox.credentials()}
            )
        )
        self.stdout.flush()
        sandbox.serve_forever()
