"""CPU per render of the demo's largest Health-Check Report: what the render worker spends on each report of a
month-end. Prints figures.

    scripts/with-services.sh .venv/bin/python bench/health_render.py            # PostgreSQL
    .venv/bin/python bench/health_render.py --renders 10 --dump /tmp/report.html  # SQLite (no DATABASE_URL)

Builds the demo as `make run` does (`seed_demo`, Globex connected to a HubSpot sandbox of the demo profile, in this
process), starts Globex's maintenance schedule at the demo's go-live with the months since checked (`catch_up`),
then runs the month just ended as beat would. Of those reports, the one with the most results is rendered
--renders times the way the render worker does (the kind's context builder, then `deliverables.pdf.render_pdf`),
each timed in CPU seconds of this process (`time.process_time`: the host is shared, wall time is noise). The
PDF is read back with pdftotext to check that every result's status word is in it. See bench/README.md.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_deliverables import temporary_database  # noqa: E402 - PostgreSQL or SQLite, dropped at the end


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=10, help="timed renders (10), after one untimed")
    parser.add_argument("--dump", help="write the report's HTML here (for trying stylesheets on it)")
    args = parser.parse_args()
    if args.renders < 1:
        parser.error("--renders must be at least 1")
    return args


def prepare_environment(workdir: Path) -> None:
    """Production-shaped settings, tasks inline (no broker), mail kept in memory."""
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "gtm_ops.settings",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "localhost",
            "SECURE_SSL_REDIRECT": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CRM_SECRET_KEY": Fernet.generate_key().decode(),
            "CRM_ALLOW_HTTP": "true",
            "CELERY_BROKER_URL": "",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "MEDIA_ROOT": str(workdir / "media"),
        }
    )
    os.environ.pop("EMAIL_HOST", None)


def demo_runs():
    """The demo's health runs: the months since go-live and the month just ended."""
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import Membership, Organization, Role
    from crm_sandbox import HubSpotSandbox
    from crm_sandbox.connection import sandbox_connection
    from engagements.models import Engagement
    from reporting.models import HealthCheckRun
    from reporting.periods import previous_month
    from reporting.runs import create_run
    from reporting.schedules import start_schedule
    from reporting.tasks import run_health_check

    call_command("seed_demo", stdout=io.StringIO())
    org = Organization.objects.get(slug="northwind")
    governance = Engagement.objects.for_org(org).get(client__name="Globex Software")
    consultant = Membership.objects.for_org(org).filter(role=Role.CONSULTANT).first().user
    go_live = (timezone.localdate().replace(day=1) - timedelta(days=100)).replace(day=1)  # as seed_demo says
    with HubSpotSandbox(profile="demo") as crm:  # as `manage.py crm_sandbox --kind hubspot --profile demo`
        sandbox_connection(client=governance.client, sandbox=crm)
        start_schedule(engagement=governance, actor=consultant, live_since=go_live, catch_up=True)
        run, _ = create_run(governance, previous_month(timezone.localdate()))
        run_health_check(run.pk)
    return list(HealthCheckRun.objects.for_org(org).filter(engagement=governance).order_by("period"))


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gtm-bench-render-"))
    prepare_environment(workdir)
    import django

    django.setup()
    from django.template.loader import render_to_string

    from deliverables import registry
    from deliverables.models import Artifact, ArtifactKind
    from deliverables.pdf import render_pdf
    from reporting.models import HealthResult
    from reporting.templatetags.reports import STATUS_WORDS

    drop = temporary_database(workdir)
    try:
        runs = demo_runs()
        sizes = {run.pk: HealthResult.objects.filter(run=run).count() for run in runs}
        print("runs: " + ", ".join(f"{r.period:%b %Y} {r.status} ({sizes[r.pk]} results)" for r in runs))
        largest = max((r for r in runs if r.report_id), key=lambda r: (sizes[r.pk], r.period))
        kind = registry.get(ArtifactKind.HEALTH_CHECK_REPORT)
        artifact = Artifact.objects.for_task(largest.report_id).select_related("engagement__client").get()

        def render() -> tuple[bytes, int]:
            return render_pdf(kind.template, {**kind.context(artifact), "artifact": artifact})

        if args.dump:
            html = render_to_string(kind.template, {**kind.context(artifact), "artifact": artifact})
            Path(args.dump).write_text(html)
        pdf, pages = render()  # the first render loads fonts and WeasyPrint's modules: not timed
        cpu = []
        for _ in range(args.renders):
            start = time.process_time()
            pdf, pages = render()
            cpu.append(time.process_time() - start)
        statuses = Counter(HealthResult.objects.filter(run=largest).values_list("status", flat=True))
    finally:
        drop()
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    missing = [s for s in statuses if STATUS_WORDS[s] not in text]
    print(
        f"largest report: {largest.period:%B %Y}, {sizes[largest.pk]} results "
        f"({', '.join(f'{n} {s}' for s, n in statuses.most_common())}), {pages} pages, {len(pdf) / 1024:.0f} kB"
    )
    print(
        f"CPU s per render over {args.renders}: median {statistics.median(cpu):.3f}, min {min(cpu):.3f}, "
        f"max {max(cpu):.3f} (load average {os.getloadavg()[0]:.1f})"
    )
    if missing:
        print(f"BROKEN: the PDF does not say {missing}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
