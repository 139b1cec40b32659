"""Run the monthly health checks now, in this process: `manage.py run_health_checks [--org SLUG] [--period YYYY-MM]
[--json] [--email]`. The same runs, reports and emails as beat's, through reporting.runs.check_now."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import Organization
from reporting import health_rules as rule_engine
from reporting import periods, runs
from reporting.models import DeliveryStatus, HealthResult, MaintenanceSchedule, ReportDelivery, RunStatus

PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
ACTOR_LABEL = "manage.py run_health_checks"
COUNTED = [
    ("red", rule_engine.RED),
    ("amber", rule_engine.WATCH),
    ("explained", rule_engine.EXPLAINED),
    ("not_evaluable", rule_engine.NOT_EVALUABLE),
]
NOTES = {
    runs.RAN: "run now",
    runs.ALREADY_FINISHED: "already run, not re-run",
    runs.IN_PROGRESS: "a worker is running it now, not re-run",
}


class Command(BaseCommand):
    help = (
        "Run the monthly health check of every engagement with an active maintenance schedule (of one "
        "organization with --org) for a month that has ended (--period YYYY-MM, default the month just ended, as "
        "beat does), synchronously in this process: evaluate the rules (reading the CRM where connected), render "
        "the Health-Check Report and email it to each recipient once, exactly as the monthly task does. A month "
        "has one run per engagement: a run already finished for it is reported, not re-run, and sends nothing "
        "again. Prints one block per engagement (--json: a list with each run and its results). Exit status 0 "
        "even when red flags are found; 1 (an error naming them) when a run executed by this invocation failed, "
        "after the others have run and been printed. The emails are sent by this process, each recipient "
        "once. A month before the one just ended is back-filled: "
        "its report is rendered but not emailed unless --email is given. With --json, stdout carries the JSON alone "
        "(anything else, such as emails printed by the console backend, goes to stderr)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", metavar="SLUG", help="only this organization's engagements (as in /o/<slug>/)")
        parser.add_argument(
            "--period", metavar="YYYY-MM", help="the month to check, once it has ended (default: the month just ended)"
        )
        parser.add_argument("--json", action="store_true", help="print the runs and their results as JSON")
        parser.add_argument(
            "--email",
            action="store_true",
            help="email the reports of a back-filled month too (the month just ended is always emailed)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        period = parse_period(options["period"])
        if options["org"]:
            org = Organization.objects.filter(slug=options["org"]).first()
            if org is None:
                raise CommandError(f"No organization with slug {options['org']!r} (the <slug> of its /o/<slug>/ URLs).")
            organizations = [org]
        else:
            organizations = list(Organization.objects.order_by("slug"))
        email = options["email"] or period == periods.previous_month(timezone.localdate())
        # With --json, stdout is for the JSON alone: whatever the runs print (the console email backend writes each
        # email to sys.stdout) goes to stderr.
        quiet = contextlib.redirect_stdout(sys.stderr) if options["json"] else contextlib.nullcontext()
        outcomes = []
        with quiet:
            for org in organizations:
                schedules = (
                    runs.due_schedules(period, MaintenanceSchedule.objects.for_org(org))
                    .select_related("engagement__client", "engagement__organization")
                    .order_by("engagement__client__name", "engagement__name", "engagement__created_at")
                )
                for schedule in schedules:
                    run, what = runs.check_now(schedule.engagement, period, actor_label=ACTOR_LABEL, email=email)
                    outcomes.append(outcome(org, schedule.engagement, run, what))
        if options["json"]:
            self.stdout.write(json.dumps(outcomes, indent=2, ensure_ascii=False))
        else:
            self._text(outcomes, period, organizations if options["org"] else None)
        failed = [o for o in outcomes if o["checked_now"] and o["status"] == RunStatus.FAILED]
        if failed:
            names = "; ".join(
                f"{o['client']} · {o['engagement']}: {o['error'] or 'no reason recorded'}" for o in failed
            )
            raise CommandError(f"{len(failed)} health check(s) failed: {names}")

    def _text(self, outcomes: list[dict], period: date, organizations) -> None:
        if not outcomes:
            where = f" in {organizations[0]}" if organizations else ""
            self.stdout.write(f"No engagement{where} has an active maintenance schedule live by {period:%B %Y}.")
            return
        for o in outcomes:
            self.stdout.write(f"{o['client']} · {o['engagement']} · {date.fromisoformat(o['period'] + '-01'):%B %Y}")
            self.stdout.write(f"  organization: {o['org']}")
            self.stdout.write(f"  status: {o['status']} ({o['note']})")
            if o["error"]:
                self.stdout.write(f"  error: {o['error']}")
            counts = o["counts"]
            self.stdout.write(
                f"  red flags: {counts['red']} · amber (watch): {counts['amber']} · explained: {counts['explained']}"
                f" · not evaluable: {counts['not_evaluable']} · checks: {len(o['results'])}"
            )
            for r in o["results"]:
                key = f" ({r['key']})" if r["key"] else ""
                if r["status"] == rule_engine.RED:
                    self.stdout.write(f"    RED  {r['task_name']}{key}: {r['message']}")
                    self.stdout.write(f"         {r['rule']} Judged over {r['window']}.")
                    if r["response"]:
                        self.stdout.write(f"         What to do: {r['response']}")
                elif r["review_item"]:  # a task without a machine rule: a person reviews it and records it
                    self.stdout.write(f"    review  {r['task_name']}: {r['message']}")
                elif r["status"] == rule_engine.EXPLAINED:
                    self.stdout.write(
                        f"    explained  {r['task_name']}{key}: {r['explained_note']}: {r['explanation']}"
                    )
            self.stdout.write(f"  CRM API calls: {o['api_calls']}")
            emails = o["emails"]
            self.stdout.write(
                f"  emails: {emails['sent']} sent, {emails['waiting']} waiting, {emails['failed']} failed"
                if any(emails.values())
                else "  emails: none"
            )
            self.stdout.write("")


def parse_period(text: str | None) -> date:
    """The first day of the month given as YYYY-MM, which must have ended; by default the month just ended."""
    today = timezone.localdate()
    if text is None:
        return periods.previous_month(today)
    match = PERIOD.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise CommandError(f"--period must be a month as YYYY-MM, e.g. 2026-10 (got {text!r}).")
    period = date(int(match.group(1)), int(match.group(2)), 1)
    if period >= periods.month_start(today):
        latest = periods.previous_month(today)
        raise CommandError(
            f"--period {text.strip()} has not ended yet: a month is checked once it is over (latest: {latest:%Y-%m})."
        )
    return period


def outcome(org, engagement, run, what: str) -> dict:
    results = list(
        HealthResult.objects.for_org(org).filter(run=run).select_related("explained_by", "carried_from").order_by("id")
    )
    results.sort(key=lambda r: (-rule_engine.SEVERITY.get(r.status, 0), r.task_name, r.key))
    deliveries = list(ReportDelivery.objects.for_org(org).filter(run=run).values_list("status", flat=True))
    note = NOTES[what]
    if what == runs.ALREADY_FINISHED and run.finished_at:
        note = f"already run on {timezone.localtime(run.finished_at):%Y-%m-%d %H:%M}, not re-run"
    return {
        "org": org.slug,
        "client": engagement.client.name,
        "engagement": engagement.name,
        "engagement_uuid": str(engagement.uuid),
        "run": str(run.uuid),
        "period": f"{run.period:%Y-%m}",
        "status": run.status,
        "checked_now": what == runs.RAN,
        "note": note,
        "error": run.error,
        "api_calls": run.api_calls,
        "counts": {name: sum(r.status == status for r in results) for name, status in COUNTED},
        "emails": {
            "sent": deliveries.count(DeliveryStatus.SENT),
            "waiting": deliveries.count(DeliveryStatus.PENDING) + deliveries.count(DeliveryStatus.SENDING),
            "failed": deliveries.count(DeliveryStatus.FAILED),
        },
        "results": [
            {
                "task_key": r.task_key,
                "task_name": r.task_name,
                "metric": r.metric,
                "key": r.key,
                "status": r.status,
                "value": r.value,
                "baseline": r.baseline,
                "threshold": r.threshold,
                "message": r.message,
                "rule": r.rule_text,
                "window": r.window,
                "response": r.response,
                "review_item": r.is_review_item,
                "explanation": r.explanation,
                "explained_note": r.explained_note,
            }
            for r in results
        ],
    }
