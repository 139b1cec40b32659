"""CPU per engagement of each part of a month-end health-check run, in one process, profiled. Prints figures.

    scripts/with-services.sh .venv/bin/python bench/health_profile.py                    # 12 engagements, 4 large
    scripts/with-services.sh .venv/bin/python bench/health_profile.py --engagements 8 --top 30

Builds the same data as bench/health_checks.py (its DataSet, sandboxes and SMTP counter; no latency, GTM Ops' rate
limiter lifted: waiting costs no CPU), then runs each engagement's month-end in this process, part by part, as the
workers would: `execute_run` (CRM reading and rules), the report render (`complete_run` without email: context,
template, WeasyPrint) and each recipient's email (`claim_delivery` + `send_delivery`: context, templates, SMTP).

The host is shared, so wall time is noise: each part is timed in CPU seconds of the main thread (`time.thread_time`,
the app's own work) and of the whole process minus the main thread (the sandboxes' server threads and the SMTP
server: what the CRM would spend in production, not GTM Ops). Each part is profiled with cProfile on the main
thread's CPU clock; the top functions by cumulative CPU are printed per part.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import health_checks as hc  # noqa: E402 - the month-end benchmark's data set, sandboxes and SMTP counter

UNLIMITED = {"salesforce": "1000000/1", "hubspot": "1000000/1", "hubspot-search": "1000000/1"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engagements", type=int, default=12)
    parser.add_argument("--large", type=int, default=4, help="engagements on the bigger orgs (4)")
    parser.add_argument("--sandboxes", type=int, default=2)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--large-factor", type=int, default=10)
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--seed", type=int, default=20261031)
    parser.add_argument("--top", type=int, default=25, help="functions printed per part (25)")
    parser.add_argument("--dump", help="directory for the parts' .prof files (snakeviz, pstats)")
    parser.add_argument(
        "--no-profile", action="store_true", help="CPU figures only: cProfile itself costs about as much as the code"
    )
    parser.add_argument(
        "--sandbox", action="store_true", help="profile the sandboxes' answers (CPU per request kind) instead"
    )
    args = parser.parse_args()
    args.latency, args.created = 0.0, max(2, min(6, args.engagements))
    return args


class Part:
    """CPU of one part over every engagement: this thread's, the other threads' (sandboxes, SMTP), a profile."""

    enabled = True

    def __init__(self) -> None:
        self.own = 0.0
        self.others = 0.0
        self.count = 0
        self.profile = cProfile.Profile(time.thread_time)

    def __call__(self, fn, *a, **kw):
        t0, p0 = time.thread_time(), time.process_time()
        if self.enabled:
            self.profile.enable()
        try:
            return fn(*a, **kw)
        finally:
            if self.enabled:
                self.profile.disable()
            own = time.thread_time() - t0
            self.own += own
            self.others += time.process_time() - p0 - own
            self.count += 1


class SandboxProfile:
    """CPU of the sandboxes' answers by (platform, request kind), and a cProfile per platform.

    Wraps SandboxServer.dispatch. A cProfile.Profile is not thread-safe and the server answers each connection on
    its own thread, so answers are serialised while profiling (the app sends one request at a time anyway)."""

    def __init__(self, profile: bool, record: Path | None) -> None:
        self.cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.profiles: dict[str, cProfile.Profile] = {}
        self.profile = profile
        self.lock = threading.Lock()
        self.record = None
        if record is not None:
            record.parent.mkdir(parents=True, exist_ok=True)
            self.record = record.open("w")  # noqa: SIM115 - closed in report()

    def install(self) -> None:
        from crm_sandbox.server import SandboxServer

        original = SandboxServer.dispatch
        outer = self

        def dispatch(server, req):
            with outer.lock:
                if outer.record is not None:
                    outer.record.write(json.dumps(replay_line(server, req)) + "\n")
                prof = outer.profiles.setdefault(server.platform, cProfile.Profile(time.thread_time))
                t0 = time.thread_time()
                if outer.profile:
                    prof.enable()
                try:
                    response, kind = original(server, req)
                finally:
                    if outer.profile:
                        prof.disable()
                outer.cpu[server.platform, kind].append(time.thread_time() - t0)
            return response, kind

        SandboxServer.dispatch = dispatch

    def report(self, top: int, dump: str | None) -> None:
        if self.record is not None:
            self.record.close()
        print(f"\n{'platform':<11} {'request kind':<16} {'n':>6} {'CPU s total':>12} {'ms each':>9} {'max ms':>8}")
        for (platform, kind), times in sorted(self.cpu.items(), key=lambda kv: -sum(kv[1])):
            print(
                f"{platform:<11} {kind:<16} {len(times):>6} {sum(times):>12.2f} "
                f"{1000 * sum(times) / len(times):>9.1f} {1000 * max(times):>8.1f}"
            )
        for platform, prof in sorted(self.profiles.items()) if self.profile else ():
            print(f"\n==== sandbox {platform}: every answer (cumulative CPU, seconds)")
            stats = pstats.Stats(prof).strip_dirs().sort_stats("cumulative")
            stats.print_stats(top)
            if dump:
                Path(dump).mkdir(parents=True, exist_ok=True)
                stats.dump_stats(Path(dump) / f"sandbox-{platform}.prof")


def replay_line(server, req) -> dict:
    """What bench/sandbox_replay.py needs to build the same sandbox and send it the same request."""
    model = server.model
    return {
        "platform": server.platform,
        "profile": model.profile.name,
        "seed": model.seed,
        "size": model.size,
        "as_of": model.as_of,
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "headers": {k: v for k, v in req.headers.items() if k == "sforce-query-options"},
        "body": req.body.decode("utf-8", "replace"),
    }


def main() -> int:
    args = parse_args()
    Part.enabled = not args.no_profile and not args.sandbox
    record = Path(args.dump) / "sandbox-requests.jsonl" if args.dump else None
    sandbox = SandboxProfile(not args.no_profile, record) if args.sandbox else None
    workdir = Path(tempfile.mkdtemp(prefix="gtm-bench-profile-"))
    mail = hc.MailCounter()
    boxes, drop = [], None
    try:
        hc.prepare_environment(workdir, mail.start())
        import django

        django.setup()
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        from django.conf import settings
        from django.template.loader import render_to_string
        from django.utils import timezone

        from deliverables import registry
        from deliverables.models import ArtifactKind
        from engagements.models import Engagement
        from gtm_ops.celery import app as celery_app
        from playbooks.services import load_library_playbooks
        from reporting import monthly_report, periods
        from reporting.models import HealthCheckRun, ReportDelivery
        from reporting.runs import create_run, execute_run

        _, drop = hc.temporary_database()
        load_library_playbooks()
        boxes = hc.start_sandboxes(args)
        settings.CRM_RATE_LIMITS = UNLIMITED
        celery_app.conf.task_always_eager = True
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        period = periods.previous_month(timezone.localdate())
        data = hc.DataSet(args, boxes, period)
        data.clients()
        data.create(args.created)
        if args.engagements > args.created:
            data.copy(args.created)
        data.schedules_and_connections()
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        if sandbox is not None:  # the month-end's answers only, not the data set's building
            sandbox.install()

        parts: dict[tuple[str, str], Part] = defaultdict(Part)
        kind = registry.get(ArtifactKind.HEALTH_CHECK_REPORT)
        engagements = Engagement.objects.filter(organization=data.org).select_related("organization", "client")
        for e in engagements.order_by("pk"):
            platform = data.platform_of[e.pk]
            size = "large" if data.box_of[e.pk].size != args.size else "normal"
            run, _ = create_run(e, period)
            parts[platform, f"execute_run ({size} org)"](execute_run, run.pk)
            run = HealthCheckRun.objects.for_task(run.pk).select_related("engagement__client", "organization").get()
            parts[platform, "render (complete_run, no email)"](monthly_report.complete_run, run, email=False)
            run.refresh_from_db()
            if args.dump and run.report_id and not (Path(args.dump) / f"{platform}.html").exists():
                Path(args.dump).mkdir(parents=True, exist_ok=True)
                html = render_to_string(kind.template, {**kind.context(run.report), "artifact": run.report})
                (Path(args.dump) / f"{platform}.html").write_text(html)
            for delivery in monthly_report.plan_deliveries(run):
                claimed = monthly_report.claim_delivery(delivery.pk)
                parts[platform, "email (context, templates, SMTP)"](monthly_report.send_delivery, claimed)
        runs = hc.status_counts(HealthCheckRun.objects.filter(organization=data.org))
        sent = ReportDelivery.objects.filter(organization=data.org, status="sent").count()
        time.sleep(0.5)  # the SMTP server's last message
        messages, _ = mail.snapshot()
    finally:
        for b in boxes:
            b.server.stop()
        mail.stop()
        if drop is not None:
            drop()

    print(f"runs {dict(runs)}; deliveries sent {sent}; SMTP messages received {messages}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"\n{'platform':<11} {'part':<38} {'n':>3} {'app CPU s/each':>15} {'sandbox+SMTP CPU s/each':>24}")
    for (platform, name), part in sorted(parts.items()):
        own, others = part.own / part.count, part.others / part.count
        print(f"{platform:<11} {name:<38} {part.count:>3} {own:>15.3f} {others:>24.3f}")
    for (platform, name), part in sorted(parts.items()) if Part.enabled else ():
        print(f"\n==== {platform}: {name} (cumulative CPU over {part.count}, seconds)")
        stats = pstats.Stats(part.profile).strip_dirs().sort_stats("cumulative")
        stats.print_stats(args.top)
        if args.dump:
            Path(args.dump).mkdir(parents=True, exist_ok=True)
            stats.dump_stats(Path(args.dump) / f"{platform}-{name.split()[0]}.prof")
    if sandbox is not None:
        sandbox.report(args.top, args.dump)
    return 0


if __name__ == "__main__":
    sys.exit(main())
