"""Render time of the definition deliverables: the Definition Alignment Document and the Stage Reference Card.

    scripts/with-services.sh .venv/bin/python bench/render_deliverables.py [--runs 7]   # PostgreSQL
    .venv/bin/python bench/render_deliverables.py [--runs 7]                             # SQLite (no DATABASE_URL)

Migrates a temporary database (a new PostgreSQL database next to DATABASE_URL's, dropped at the end; or a SQLite
file in a temporary directory), builds one engagement whose published version holds --terms (40) terms and --stages
(20) stages, asked of --signers (8) stakeholders who all answered (one of them contested one item), and times,
--runs times per deliverable, what the render worker does for it: the kind's registered context builder
(engagements.deliverables.version_context) then deliverables.pdf.render_pdf(template, context) (HTML -> WeasyPrint
-> PDF bytes). Prints median, min and max in seconds, the page count, and PASS/FAIL against the targets on the
median: under 2 s for the Definition Alignment Document, under 1 s for the Stage Reference Card. A figure-printing
script, not a test: exit 0 PASS, 1 target missed, 2 broken run. See bench/README.md.
"""

import argparse
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtm_ops.settings")

TARGETS = {"definition_alignment": 2.0, "stage_reference_card": 1.0}  # seconds, on the median

STAGE_PLAN = [  # (domain, stage names): 20 stages over four domains
    ("lead", ["Anonymous Visitor", "Known Lead", "Marketing Engaged", "MQL", "SAL", "SQL"]),
    ("sales", ["Discovery", "SAO", "Evaluation", "Proposal", "Negotiation", "Closed Won"]),
    ("customer", ["Pre-Onboarding", "Onboarding", "Implementation", "Early Adoption", "Mature Adoption"]),
    ("renewal", ["Open Renewal", "Renewal Negotiation", "Renewed"]),
]
GOLDEN = {"SQL", "Closed Won", "Early Adoption"}
SIGNERS = [  # (name, title, department)
    ("Maya Patel", "VP Marketing", "marketing"),
    ("Dan Okafor", "VP Sales", "sales"),
    ("Priya Shah", "VP Customer Success", "cs"),
    ("Tom Becker", "VP Revenue Operations", "revops"),
    ("Lena Novak", "Director of Demand Generation", "marketing"),
    ("Sam Rivera", "Head of Sales Development", "sales"),
    ("Grace Liu", "Director of Partnerships", "partnerships"),
    ("Omar Haddad", "Chief Revenue Officer", "executive"),
]
CONTESTED_COMMENT = (
    "Add a 90-day recency window to the intent signal: a whitepaper download from last year is not intent."
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed renders per deliverable (default 7)")
    parser.add_argument("--terms", type=int, default=40)
    parser.add_argument("--stages", type=int, default=20, help=f"at most {sum(len(s) for _, s in STAGE_PLAN)}")
    parser.add_argument("--signers", type=int, default=8, help=f"at most {len(SIGNERS)}")
    args = parser.parse_args()
    if args.runs < 1 or args.terms < 1:
        parser.error("--runs and --terms must be at least 1")
    if not 1 <= args.stages <= sum(len(s) for _, s in STAGE_PLAN) or not 1 <= args.signers <= len(SIGNERS):
        parser.error("--stages or --signers out of range")
    return args


# --------------------------------------------------------------------------------------------------
# Database


def temporary_database(workdir: Path):
    """Point the default connection at a new, migrated database; returns a function that drops it."""
    from django.db import connection

    engine = connection.settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        name = str(workdir / "bench.sqlite3")
    else:
        name = f"gtm_bench_{os.getpid()}"
    connection.settings_dict.setdefault("TEST", {})["NAME"] = name
    old_name = connection.settings_dict["NAME"]
    # The test runner's machinery: creates the database (CREATEDB on PostgreSQL), migrates, switches to it.
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)

    def drop() -> None:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)

    return drop


# --------------------------------------------------------------------------------------------------
# Data


def sentence(n: int, *parts: str) -> str:
    return " ".join(parts) + f" (criterion set {n})."


def build(args):
    """One organization, client, engagement and published version; every signer answered, one contested one item."""
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    from accounts.models import Membership, Organization, Role
    from engagements import definitions, progression
    from engagements.models import ClientAccount, DefinitionTerm, StageDefinition, Stakeholder, TeamRole
    from playbooks.models import Playbook
    from playbooks.services import load_library_playbooks

    load_library_playbooks()
    org = Organization.objects.create(name="Northwind Advisory", slug="northwind-bench")
    consultant = get_user_model().objects.create_user(
        username="carla@northwind.example", email="carla@northwind.example", first_name="Carla", last_name="Diaz"
    )
    Membership.objects.create(organization=org, user=consultant, role=Role.CONSULTANT)
    client = ClientAccount.objects.create(organization=org, name="Acme Robotics")
    people = [
        Stakeholder.objects.create(
            organization=org,
            client=client,
            name=name,
            title=title,
            department=department,
            email=f"{name.split()[0].lower()}@acme.example",
        )
        for name, title, department in SIGNERS[: args.signers]
    ]
    engagement = progression.create_engagement(
        client=client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=consultant,
        team=[(consultant, TeamRole.ARCHITECT)],
        stakeholders=[(p, p.title) for p in people],
    )
    # Replace the playbook's prefilled draft with the benchmark's own terms and stages.
    DefinitionTerm.objects.filter(engagement=engagement).delete()
    StageDefinition.objects.filter(engagement=engagement).delete()
    stage_rows = [(domain, name) for domain, names in STAGE_PLAN for name in names][: args.stages]
    stage_keys = [f"{domain}-{name.lower().replace(' ', '-')}" for domain, name in stage_rows]
    term_keys = [f"term-{n:02d}" for n in range(1, args.terms + 1)]
    DefinitionTerm.objects.bulk_create(
        DefinitionTerm(
            organization=org,
            engagement=engagement,
            key=key,
            term=f"Term {n:02d} — {stage_rows[(n - 1) % len(stage_rows)][1]} qualification",
            definition=(
                f"A record counts as term {n:02d} when it matches the ideal customer profile (industry, 200-5,000 "
                "employees, a CRM in place) and shows intent: a demo request, a pricing-page visit or two content "
                "downloads within 30 days. Routing assigns it to the owning team within one business day."
            ),
            notes="Agreed with Marketing and Sales leadership; reviewed quarterly." if n % 3 == 0 else "",
            order=n,
            stage_keys=[stage_keys[(n - 1) % len(stage_keys)]],
        )
        for n, key in enumerate(term_keys, start=1)
    )
    positions: dict[str, int] = {}
    stages = []
    for n, ((domain, name), key) in enumerate(zip(stage_rows, stage_keys, strict=True), start=1):
        positions[domain] = positions.get(domain, 0) + 1
        stages.append(
            StageDefinition(
                organization=org,
                engagement=engagement,
                key=key,
                name=name,
                domain=domain,
                order=positions[domain],
                entry_criteria=sentence(
                    n,
                    f"Enters {name} when the previous stage's exit criteria are met,",
                    "the owner is assigned and the required fields are filled",
                ),
                exit_criteria=sentence(
                    n, f"Leaves {name} when the next owner accepts the record or it is", "recycled with a reason"
                ),
                transition_owner=["Marketing Ops", "SDR team", "Account Executive", "Customer Success"][n % 4],
                golden=name in GOLDEN,
                crm_object="Opportunity" if domain == "sales" else "Contact",
                crm_field="StageName" if domain == "sales" else "lifecyclestage",
                crm_values=[name, f"{name} (legacy)"],
                term_keys=[term_keys[(n - 1) % len(term_keys)], term_keys[(n + 19) % len(term_keys)]],
            )
        )
    StageDefinition.objects.bulk_create(stages)

    version = definitions.publish(engagement=engagement, signers=people, actor=consultant)
    keys = [key for key, _ in version.items]
    contested_key = keys[3]
    factory = RequestFactory()
    for n, person in enumerate(people):
        request = factory.post(
            "/portal/", REMOTE_ADDR=f"203.0.113.{10 + n}", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/131"
        )
        contest = n == len(people) // 2
        definitions.sign(
            version=version,
            stakeholder=person,
            decisions={k: "no" if contest and k == contested_key else "yes" for k in keys},
            comments={contested_key: CONTESTED_COMMENT} if contest else {},
            request=request,
        )
    version.refresh_from_db()
    return consultant, engagement, version, people


# --------------------------------------------------------------------------------------------------
# Timing


def pdf_text(data: bytes) -> str | None:
    if shutil.which("pdftotext") is None:
        return None
    text = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()
    return " ".join(text.split())


def time_renders(artifact, runs: int) -> dict:
    """The kind's context builder + deliverables.pdf.render_pdf, `runs` times, as the render worker calls them."""
    from deliverables import registry
    from deliverables.models import Artifact
    from deliverables.pdf import render_pdf

    template, report_context = registry.get(artifact.kind).template, registry.get(artifact.kind).context
    totals, contexts, cpu, pages, data = [], [], [], set(), b""
    for _ in range(runs):
        # A fresh row each run, as the worker loads it (no cached relations carried from the previous run).
        fresh = Artifact.objects.select_related("engagement__client", "organization", "source_version").get(
            pk=artifact.pk
        )
        c0, t0 = time.process_time(), time.perf_counter()
        context = report_context(fresh)
        t1 = time.perf_counter()
        data, count = render_pdf(template, context)
        t2, c2 = time.perf_counter(), time.process_time()
        totals.append(t2 - t0)
        cpu.append(c2 - c0)
        contexts.append(t1 - t0)
        pages.add(count)
    return {"totals": totals, "contexts": contexts, "cpu": cpu, "pages": pages, "pdf": data}


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gtm-bench-render-"))

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from gtm_ops.celery import app as celery_app

    # Tasks (sign-off emails, the first render of each artifact) run inline in this process; emails go nowhere.
    celery_app.conf.task_always_eager = True
    logging.getLogger("celery").setLevel(logging.WARNING)  # no "Task ... succeeded" line per inline task
    logging.getLogger("kombu").setLevel(logging.ERROR)  # without a broker URL kombu warns about a default hostname
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MEDIA_ROOT = workdir / "media"

    import weasyprint

    drop = None
    status = 0
    try:
        t0 = time.perf_counter()
        drop = temporary_database(workdir)
        t_migrate = time.perf_counter() - t0
        vendor = connection.vendor
        server = ""
        if vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                server = f" {cursor.fetchone()[0]}"

        t0 = time.perf_counter()
        consultant, engagement, version, people = build(args)
        t_build = time.perf_counter() - t0

        from deliverables.models import ArtifactStatus
        from engagements.deliverables import request_artifact

        print(f"Deliverable render benchmark — {args.runs} timed runs per deliverable")
        print(
            f"host: {platform.node()} · {os.cpu_count()} CPU · load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
            f" · Python {platform.python_version()} · WeasyPrint {weasyprint.__version__}"
        )
        print(
            f"database: {vendor}{server}, temporary ({connection.settings_dict['NAME']}); "
            f"migrated in {t_migrate:.1f} s, data built in {t_build:.1f} s"
        )
        from engagements.definitions import version_status

        contested = [item for item in version_status(version).items if item.contested]
        print(
            f"data: definitions v{version.number}, {len(version.content['terms'])} terms, "
            f"{len(version.content['stages'])} stages, {version.requests.count()} signers, "
            f"{version.signatures.count()} signatures, {len(contested)} contested item "
            f"({contested[0].label!r} by {contested[0].objections[0][0].name})"
        )
        print("timed: the kind's context builder (engagements.deliverables) + deliverables.pdf.render_pdf;")
        print("       the first render of each (deliverables.services.render through request_artifact, inline, with")
        print("       the file saved) is the warm-up and is shown apart.")
        print()

        columns = ["median", "min", "max", "cpu", "context", "pages", "first"]
        header = f"{'deliverable':<30} " + " ".join(f"{c:>{6 if c == 'pages' else 8}}" for c in columns)
        print(header)
        print("-" * len(header))
        verdicts, runs_line = [], []
        load_before = os.getloadavg()[0]
        for kind in TARGETS:
            t0 = time.perf_counter()
            artifact = request_artifact(engagement=engagement, kind=kind, actor=consultant, source_version=version)
            first = time.perf_counter() - t0
            artifact.refresh_from_db()
            if artifact.status != ArtifactStatus.DONE:
                print(f"BROKEN: the first render of {kind} ended {artifact.status}: {artifact.error}")
                return 2
            result = time_renders(artifact, args.runs)
            if result["pages"] != {artifact.pages} or not result["pdf"].startswith(b"%PDF"):
                print(f"BROKEN: {kind} page counts differ between renders: {result['pages']} vs {artifact.pages}")
                return 2
            text = pdf_text(result["pdf"])
            if text is not None:
                expected = ["Acme Robotics", f"v{version.number}"]
                if kind == "definition_alignment":
                    expected += [p.name for p in people] + [CONTESTED_COMMENT]
                    expected.append(version.content_hash)
                    text = text + " " + text.replace(" ", "")  # the long hash wraps in its table cell
                else:
                    expected += [s["name"] for s in version.content["stages"]]
                missing = [e for e in expected if e not in text]
                if missing:
                    print(f"BROKEN: the {kind} PDF lacks {missing[:5]}")
                    return 2
            totals = result["totals"]
            median = statistics.median(totals)
            label = artifact.get_kind_display()
            print(
                f"{label:<30} {median:>7.3f}s {min(totals):>7.3f}s {max(totals):>7.3f}s "
                f"{statistics.median(result['cpu']):>7.3f}s {statistics.median(result['contexts']):>7.3f}s "
                f"{artifact.pages:>6} {first:>7.3f}s"
            )
            verdicts.append((label, median, max(totals), TARGETS[kind]))
            runs_line.append(f"{label}: " + " ".join(f"{t:.3f}" for t in totals))
        print()
        print("median, min, max = wall-clock seconds of the N runs (the median is judged); cpu = median CPU seconds")
        print("this process spent per run (hardly moved by other work on the host); context = median wall time of")
        print("report_context alone (inside the total);")
        print("first = the cold render through the worker's path (request_artifact -> services.render, file saved).")
        print("each run (s):")
        for line in runs_line:
            print(f"  {line}")
        print()
        load_after = os.getloadavg()[0]
        if max(load_before, load_after) > (os.cpu_count() or 1):
            print(
                f"NOTE: load average {load_before:.2f} -> {load_after:.2f} on {os.cpu_count()} CPU: other work shares "
                "this host, so the times are inflated; run again on a quiet host for the machine's own figures."
            )
            print()
        for label, median, worst, target in verdicts:
            ok = median < target
            status = status or (0 if ok else 1)
            also = "" if worst < target else f" (max {worst:.3f} s is over)"
            print(f"{'PASS' if ok else 'FAIL'}: {label}: median {median:.3f} s, target under {target:.0f} s{also}")
        return status
    finally:
        if drop is not None:
            connection.close()
            drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # a broken run, not a missed target
        traceback.print_exc()
        sys.exit(2)
