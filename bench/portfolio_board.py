"""Latency of the portfolio and board pages for a large organization, served by gunicorn on PostgreSQL.

    scripts/with-services.sh .venv/bin/python bench/portfolio_board.py \
        [--engagements 300 --requests 400 --concurrency 10]

Builds one organization (a consultant, clients with stakeholders, N engagements of a library playbook, each
with its phases, sub-phases, checklist, gates, checkpoints, definition draft and ~10 board items, in varied
states of progress), starts gunicorn (DEBUG=false) on a free loopback port, signs in by creating a Django
session for the consultant, then for healthz (the in-run baseline), a minimal signed-in page (the API token
page: session, user, base template; a second baseline), the portfolio page and one engagement's board, sends
--requests GETs from --concurrency client threads and prints median / p95 / max latency, requests per second,
the page / healthz ratios (and, for information, the page / signed-in ratios), the SQL query count per page and
PASS/FAIL against the targets (p95 <= 150 ms, ratio to healthz <= 5). A figure-printing script, not a test:
exit 0 PASS, 1 target missed, 2 broken run (wrong status or content, server not starting, no services).
See bench/README.md.
"""

import argparse
import base64
import http.client
import math
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_P95_MS = 150.0
TARGET_RATIO = 5.0
HOST = "127.0.0.1"

CLIENT_PREFIXES = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Wonka",
    "Stark",
    "Wayne",
    "Oscorp",
    "Pied Piper",
    "Massive Dynamic",
    "Gringotts",
    "Nakatomi",
    "Monarch",
    "Aperture",
    "Black Mesa",
    "Dunder",
    "Prestige",
    "Sirius",
    "Virtucon",
    "Zorg",
]
CLIENT_SUFFIXES = ["Robotics", "Analytics", "Health", "Logistics", "Software", "Energy", "Payments", "Labs"]
ENGAGEMENT_LABELS = ["GTM foundation", "Lifecycle rebuild", "RevOps reset", "Funnel alignment", "CRM clean-up"]
OWNERS = ["Carla Diaz", "Sam Okafor", "Priya Shah", "Tom Becker", "Lena Novak", "Client RevOps lead"]
WORK_TITLES = [
    "Map MQL criteria to HubSpot lifecycle stages",
    "Rebuild lead routing rules",
    "Deduplicate account records",
    "Define SAL acceptance SLA",
    "Configure opportunity stage exit criteria",
    "Build pipeline coverage report",
    "Align lead source picklist",
    "Document handoff from SDR to AE",
    "Set up lifecycle stage audit dashboard",
    "Backfill missing industry values",
    "Automate renewal opportunity creation",
    "Retire legacy lead statuses",
    "Train SDR team on new stages",
    "Sync product usage signals to CRM",
    "Review required fields on close",
]
DECISION_TITLES = [
    "Who owns inbound leads after hours?",
    "Does a demo request skip MQL?",
    "Which object holds the POC stage?",
    "When is an opportunity created?",
    "Single or separate renewal pipeline?",
    "Which field is the source of truth?",
    "Do partners see deal registration status?",
    "Is a closed-lost reason mandatory?",
]
RISK_TITLES = [
    "Sales leadership not aligned on SQL definition",
    "CRM admin capacity limited until Q3",
    "Marketing automation sync errors",
    "Data quality below audit threshold",
    "Key stakeholder on leave",
    "Integration owner undecided",
    "Historic data cannot be re-stamped",
]
RELEASE_TITLES = [
    "Lifecycle stages v1",
    "Lead routing v2",
    "Pipeline stages and exit criteria",
    "Reporting pack v1",
    "Dedup rules and merge job",
    "Renewal automation",
    "Field clean-up release",
]
SENTENCES = [
    "Agreed with the client's RevOps lead during the weekly check-in.",
    "Depends on the signed definition of a sales-accepted lead.",
    "Affects routing, reporting and the SLA dashboard.",
    "The audit found inconsistent values across 18% of records.",
    "Needs sign-off from the VP Sales before the next release.",
]


# --------------------------------------------------------------------------------------------------
# Environment and Django


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engagements", type=int, default=300, help="engagements in the organization (300)")
    parser.add_argument("--requests", type=int, default=400, help="measured requests per URL (400)")
    parser.add_argument("--concurrency", type=int, default=10, help="concurrent client threads (10)")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured requests per URL first (40)")
    parser.add_argument(
        "--rounds", type=int, default=4, help="the URLs take turns in this many rounds of requests/rounds each (4)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (4)")
    parser.add_argument(
        "--created",
        type=int,
        default=10,
        help="engagements made by progression.create_engagement; the rest copy the first one's rows (10)",
    )
    parser.add_argument("--playbook", default="gtm-lifecycle", help="library playbook key (gtm-lifecycle)")
    parser.add_argument("--seed", type=int, default=20260501, help="random seed of the data set")
    args = parser.parse_args()
    for name in ("engagements", "requests", "concurrency", "workers", "created", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    return args


def server_env(static_root: str) -> dict:
    """The production-shaped environment shared by this process (data, query counts) and gunicorn."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise RuntimeError("DATABASE_URL is not PostgreSQL: run under scripts/with-services.sh (see bench/README.md).")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "BENCH_STATIC_ROOT": static_root,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CRM_SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "ALLOWED_HOSTS": f"{HOST},localhost,testserver",
            "SECURE_COOKIES": "false",
            "SECURE_SSL_REDIRECT": "false",
            "CONN_MAX_AGE": "60",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        }
    )
    return dict(os.environ)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------------
# Data


def clone(obj, **overrides):
    """A new unsaved row with every concrete field of `obj` except its pk, a fresh uuid, and `overrides`."""
    model = type(obj)
    values = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields if not f.primary_key}
    if "uuid" in values:
        values["uuid"] = uuid.uuid4()
    values.update(overrides)
    return model(**values)


class DataSet:
    """One organization with a consultant, clients, stakeholders, engagements and their board items."""

    def __init__(self, *, seed: int, playbook_key: str):
        from django.contrib.auth import get_user_model

        from accounts.models import Membership, Organization, Role
        from engagements.models import ClientAccount, Stakeholder
        from playbooks.models import Playbook

        self.rng = random.Random(seed)
        playbook = Playbook.objects.filter(organization=None, key=playbook_key).first()
        if playbook is None:
            raise RuntimeError(f"No library playbook {playbook_key!r}.")
        self.version = playbook.latest_version()
        self.spec = self.version.spec
        self.org = Organization.objects.create(name="Bench Advisory", slug=Organization.unique_slug("Bench Advisory"))
        user_model = get_user_model()
        email = f"consultant@{self.org.slug}.example"
        self.consultant = user_model.objects.create_user(username=email, email=email, first_name="Carla")
        Membership.objects.create(organization=self.org, user=self.consultant, role=Role.CONSULTANT)
        self.clients, self.stakeholders = [], {}
        self.engagements = []
        self.snapshot = None

        self._client_model, self._stakeholder_model = ClientAccount, Stakeholder

    def add_clients(self, count: int) -> None:
        names = [f"{p} {s}" for s in CLIENT_SUFFIXES for p in CLIENT_PREFIXES]
        self.clients = self._client_model.objects.bulk_create(
            self._client_model(
                organization=self.org,
                name=names[i % len(names)] + (f" {i}" if i >= len(names) else ""),
                website=f"https://client{i}.example",
            )
            for i in range(count)
        )
        people = self._stakeholder_model.objects.bulk_create(
            self._stakeholder_model(
                organization=self.org,
                client=client,
                name=f"{first} {client.name.split()[0]}",
                email=f"{first.lower()}@client{i}.example",
                title=title,
                department=dept,
            )
            for i, client in enumerate(self.clients)
            for first, title, dept in (("Maya", "VP Marketing", "marketing"), ("Raj", "Head of Sales Ops", "sales"))
        )
        for person in people:
            self.stakeholders.setdefault(person.client_id, []).append(person)

    def _engagement_fields(self, n: int) -> dict:
        rng = self.rng
        client = self.clients[n % len(self.clients)]
        start = self.today - timedelta(days=rng.randint(5, 420))
        options = [m.key for m in self.spec.methodology_options]
        shapes = [s.key for s in self.spec.engagement_shapes]
        return {
            "client": client,
            "name": f"{client.name} · {ENGAGEMENT_LABELS[n % len(ENGAGEMENT_LABELS)]} {n + 1}",
            "start_date": start,
            "target_date": start + timedelta(days=rng.choice([90, 120, 180])),
            "methodology_option": rng.choice(options) if options else "",
            "shape": rng.choice(shapes) if shapes else "",
            "engagement_type": rng.choice(["single_project", "single_project", "dedicated"]),
        }

    def create_engagements(self, first: int, count: int) -> list:
        """Through progression.create_engagement, exactly as the app does."""
        from engagements import progression

        made = []
        for n in range(first, first + count):
            fields = self._engagement_fields(n)
            client = fields["client"]
            made.append(
                progression.create_engagement(
                    playbook_version=self.version,
                    actor=self.consultant,
                    team=[(self.consultant, "architect")],
                    stakeholders=[(self.stakeholders[client.pk][0], "Approver")],
                    **fields,
                )
            )
            if self.snapshot is None:
                self.snapshot = self._take_snapshot(made[0])
        self.engagements += made
        return made

    def _take_snapshot(self, engagement) -> dict:
        """The rows create_engagement made for one engagement, before any progress: the copy template."""
        from engagements.models import (
            ChecklistItem,
            DefinitionTerm,
            Gate,
            GateCheckpoint,
            PhaseState,
            StageDefinition,
            SubPhaseState,
        )

        return {
            "phases": list(PhaseState.objects.filter(engagement=engagement).order_by("order")),
            "subs": list(SubPhaseState.objects.filter(engagement=engagement)),
            "items": list(ChecklistItem.objects.filter(engagement=engagement)),
            "gates": list(Gate.objects.filter(engagement=engagement)),
            "checkpoints": list(GateCheckpoint.objects.filter(gate__engagement=engagement)),
            "terms": list(DefinitionTerm.objects.filter(engagement=engagement)),
            "stages": list(StageDefinition.objects.filter(engagement=engagement)),
        }

    def copy_engagements(self, first: int, count: int) -> list:
        """Bulk copies of the first engagement's snapshot rows (same playbook version), one per new engagement."""
        from accounts.models import ActivityEntry
        from engagements.models import (
            ChecklistItem,
            DefinitionTerm,
            Engagement,
            EngagementMember,
            EngagementStakeholder,
            Gate,
            GateCheckpoint,
            PhaseState,
            StageDefinition,
            SubPhaseState,
        )

        snap, org = self.snapshot, self.org
        made = []
        for start in range(first, first + count, 100):
            batch = Engagement.objects.bulk_create(
                Engagement(organization=org, playbook_version=self.version, **self._engagement_fields(n))
                for n in range(start, min(first + count, start + 100))
            )
            phase_map, sub_map, gate_map = {}, {}, {}
            phases = []
            for e in batch:
                for p in snap["phases"]:
                    phase_map[e.pk, p.pk] = clone(p, engagement_id=e.pk)
                    phases.append(phase_map[e.pk, p.pk])
            PhaseState.objects.bulk_create(phases)
            subs = []
            for e in batch:
                for s in snap["subs"]:
                    sub_map[e.pk, s.pk] = clone(s, engagement_id=e.pk, phase_id=phase_map[e.pk, s.phase_id].pk)
                    subs.append(sub_map[e.pk, s.pk])
            SubPhaseState.objects.bulk_create(subs)
            ChecklistItem.objects.bulk_create(
                (
                    clone(
                        i,
                        engagement_id=e.pk,
                        phase_id=phase_map[e.pk, i.phase_id].pk,
                        sub_phase_id=sub_map[e.pk, i.sub_phase_id].pk if i.sub_phase_id else None,
                    )
                    for e in batch
                    for i in snap["items"]
                ),
                batch_size=2000,
            )
            gates = []
            for e in batch:
                for g in snap["gates"]:
                    gate_map[e.pk, g.pk] = clone(g, engagement_id=e.pk, phase_id=phase_map[e.pk, g.phase_id].pk)
                    gates.append(gate_map[e.pk, g.pk])
            Gate.objects.bulk_create(gates)
            GateCheckpoint.objects.bulk_create(
                clone(c, gate_id=gate_map[e.pk, c.gate_id].pk) for e in batch for c in snap["checkpoints"]
            )
            DefinitionTerm.objects.bulk_create(clone(t, engagement_id=e.pk) for e in batch for t in snap["terms"])
            StageDefinition.objects.bulk_create(clone(s, engagement_id=e.pk) for e in batch for s in snap["stages"])
            EngagementMember.objects.bulk_create(
                EngagementMember(organization=org, engagement=e, user=self.consultant, role="architect") for e in batch
            )
            EngagementStakeholder.objects.bulk_create(
                EngagementStakeholder(
                    organization=org, engagement=e, stakeholder=self.stakeholders[e.client_id][0], role="Approver"
                )
                for e in batch
            )
            ActivityEntry.objects.bulk_create(
                ActivityEntry(
                    organization=org,
                    actor=self.consultant,
                    actor_label=self.consultant.get_username(),
                    verb="engagement.created",
                    target_type="engagement",
                    target_uuid=e.uuid,
                    target_label=e.name,
                    data={"playbook": self.version.playbook.key, "version": self.version.number},
                )
                for e in batch
            )
            made += batch
        self.engagements += made
        return made

    def progress(self, engagements) -> None:
        """Move each engagement to a realistic point: earlier phases done with their gates decided, the current
        phase part-way through its checklist with its gate open; ~10% closed, ~5% on hold."""
        from django.utils import timezone

        from engagements.models import (
            ChecklistItem,
            CheckpointStatus,
            Engagement,
            EngagementStatus,
            Gate,
            GateCheckpoint,
            GateDecision,
            GateStatus,
            PhaseState,
            PhaseStatus,
        )

        rng, now, who = self.rng, timezone.now(), self.consultant
        ids = [e.pk for e in engagements]
        phases_of, gate_of = {}, {}
        for p in PhaseState.objects.for_org(self.org).filter(engagement_id__in=ids).order_by("order"):
            phases_of.setdefault(p.engagement_id, []).append(p)
        for g in Gate.objects.for_org(self.org).filter(engagement_id__in=ids):
            gate_of[g.phase_id] = g
        options = {
            p.decision_gate.key: next(
                (o for o in p.decision_gate.options if o.effect in ("proceed", "complete")), p.decision_gate.options[0]
            )
            for p in self.spec.phases
            if p.decision_gate is not None
        }
        done_phase_ids, active_phases, decided, opened, decisions = [], [], [], [], []
        changed_phases, changed_gates = [], []
        for e in engagements:
            phases = [p for p in phases_of.get(e.pk, []) if p.status != PhaseStatus.SKIPPED]
            if not phases:
                continue
            fate = rng.random()
            e.status = (
                EngagementStatus.CLOSED
                if fate < 0.10
                else (EngagementStatus.ON_HOLD if fate < 0.15 else EngagementStatus.ACTIVE)
            )
            current = len(phases) if e.status == EngagementStatus.CLOSED else rng.randrange(len(phases))
            age = max(1, (self.today - e.start_date).days)
            e.created_at = now - timedelta(days=age, minutes=rng.randint(0, 600))
            for n, p in enumerate(phases):
                gate = gate_of.get(p.pk)
                if n < current:
                    step = timedelta(days=age / (len(phases) + 1))
                    p.status, p.started_at = PhaseStatus.DONE, e.created_at + n * step
                    p.completed_at = p.started_at + step
                    done_phase_ids.append(p.pk)
                    if gate is not None:
                        gate.status = GateStatus.DECIDED
                        decided.append(gate.pk)
                        o = options[gate.key]
                        decisions.append(
                            GateDecision(
                                organization=self.org,
                                gate=gate,
                                round=1,
                                option_key=o.key,
                                label=o.label,
                                effect=o.effect,
                                target=o.target or "",
                                decided_by=who,
                                note="Agreed in the gate review.",
                            )
                        )
                elif n == current:
                    p.status, p.started_at, p.completed_at = PhaseStatus.ACTIVE, now - timedelta(days=age // 4), None
                    active_phases.append(p)
                    if gate is not None:
                        gate.status = GateStatus.OPEN
                        opened.append(gate.pk)
                else:
                    p.status, p.started_at, p.completed_at = PhaseStatus.PENDING, None, None
                    if gate is not None:
                        gate.status = GateStatus.PENDING
                changed_phases.append(p)
                if gate is not None:
                    changed_gates.append(gate)
            e.current_phase = None if e.status == EngagementStatus.CLOSED else phases[current]
            e.closed_at = now - timedelta(days=rng.randint(1, 30)) if e.status == EngagementStatus.CLOSED else None
            e.last_update_published_at = (
                None if rng.random() < 0.15 else now - timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 23))
            )
        PhaseState.objects.bulk_update(changed_phases, ["status", "started_at", "completed_at"], batch_size=500)
        Gate.objects.bulk_update(changed_gates, ["status"], batch_size=500)
        GateDecision.objects.bulk_create(decisions)
        Engagement.objects.bulk_update(
            engagements, ["status", "current_phase", "closed_at", "last_update_published_at", "created_at"]
        )
        checked = {"status": CheckpointStatus.CHECKED, "resolved_by": who, "resolved_at": now}
        GateCheckpoint.objects.for_org(self.org).filter(gate_id__in=decided).update(**checked)
        open_checkpoints = (
            GateCheckpoint.objects.for_org(self.org).filter(gate_id__in=opened).values_list("pk", "order")
        )
        half = [pk for pk, order in open_checkpoints if order % 2 == 1]
        GateCheckpoint.objects.for_org(self.org).filter(pk__in=half).update(**checked)
        done = {"done": True, "done_by": who, "done_at": now}
        ChecklistItem.objects.for_org(self.org).filter(phase_id__in=done_phase_ids).update(**done)
        # The current phase's checklist is part-way done: the first `share` of its items, in order.
        share = {p.pk: rng.random() for p in active_phases}
        items = ChecklistItem.objects.for_org(self.org).filter(phase_id__in=share).values_list("pk", "phase", "order")
        by_phase = {}
        for pk, phase_id, order in items:
            by_phase.setdefault(phase_id, []).append((order, pk))
        tick = [pk for phase_id, rows in by_phase.items() for _, pk in sorted(rows)[: int(len(rows) * share[phase_id])]]
        for start in range(0, len(tick), 5000):
            ChecklistItem.objects.for_org(self.org).filter(pk__in=tick[start : start + 5000]).update(**done)

    def add_board_items(self, engagements) -> None:
        """Ten cards per engagement: four work items, two decisions, two risks, two releases."""
        from engagements.models import (
            DecisionCategory,
            DecisionLogEntry,
            DecisionStatus,
            EngagementStatus,
            Release,
            ReleaseStatus,
            Risk,
            RiskLevel,
            RiskStatus,
            WorkItem,
            WorkStatus,
        )

        rng, today, org = self.rng, self.today, self.org
        work, decisions, risks, releases = [], [], [], []
        for e in engagements:
            closed = e.status == EngagementStatus.CLOSED

            def common(e=e):
                return {"organization": org, "engagement": e, "client_visible": rng.random() < 0.5}

            for title in rng.sample(WORK_TITLES, 4):
                status = (
                    WorkStatus.DONE
                    if closed
                    else rng.choice(
                        [
                            WorkStatus.IN_PROGRESS,
                            WorkStatus.IN_PROGRESS,
                            WorkStatus.UPCOMING,
                            WorkStatus.UPCOMING,
                            WorkStatus.DONE,
                        ]
                    )
                )
                work.append(
                    WorkItem(
                        title=title,
                        detail=rng.choice(SENTENCES),
                        status=status,
                        owner=rng.choice(OWNERS),
                        due_date=today + timedelta(days=rng.randint(-10, 40)),
                        tested="Checked in the sandbox." if status == WorkStatus.DONE else "",
                        **common(),
                    )
                )
            for title in rng.sample(DECISION_TITLES, 2):
                status = DecisionStatus.DECIDED if closed or rng.random() < 0.5 else DecisionStatus.NEEDED
                decisions.append(
                    DecisionLogEntry(
                        title=title,
                        category=rng.choice(DecisionCategory.values),
                        context=rng.choice(SENTENCES),
                        decision="Agreed: keep one owner per stage." if status == DecisionStatus.DECIDED else "",
                        owner=rng.choice(OWNERS),
                        status=status,
                        decided_on=today - timedelta(days=rng.randint(1, 60))
                        if status == DecisionStatus.DECIDED
                        else None,
                        **common(),
                    )
                )
            for title in rng.sample(RISK_TITLES, 2):
                status = (
                    RiskStatus.CLOSED
                    if closed
                    else rng.choice([RiskStatus.OPEN, RiskStatus.OPEN, RiskStatus.MITIGATED, RiskStatus.CLOSED])
                )
                risks.append(
                    Risk(
                        title=title,
                        description=rng.choice(SENTENCES),
                        likelihood=rng.choice(RiskLevel.values),
                        impact=rng.choice(RiskLevel.values),
                        mitigation="Escalate in the weekly check-in.",
                        owner=rng.choice(OWNERS),
                        status=status,
                        **common(),
                    )
                )
            for title in rng.sample(RELEASE_TITLES, 2):
                status = ReleaseStatus.RELEASED if closed or rng.random() < 0.6 else ReleaseStatus.PLANNED
                releases.append(
                    Release(
                        title=title,
                        description=rng.choice(SENTENCES),
                        status=status,
                        released_on=today - timedelta(days=rng.randint(1, 90))
                        if status == ReleaseStatus.RELEASED
                        else None,
                        **common(),
                    )
                )
        for model, rows in ((WorkItem, work), (DecisionLogEntry, decisions), (Risk, risks), (Release, releases)):
            model.objects.bulk_create(rows, batch_size=1000)

    @property
    def today(self):
        from django.utils import timezone

        return timezone.localdate()

    def sizes(self) -> dict:
        from django.db.models import Count

        from engagements.models import (
            ChecklistItem,
            DecisionLogEntry,
            Engagement,
            FeedbackItem,
            Gate,
            GateCheckpoint,
            PhaseState,
            Release,
            Risk,
            SubPhaseState,
            WorkItem,
        )

        org = self.org
        board = {m.__name__: m.objects.for_org(org).count() for m in (WorkItem, DecisionLogEntry, Risk, Release)}
        by_status = Engagement.objects.for_org(org).order_by().values("status").annotate(n=Count("pk"))
        statuses = {row["status"]: row["n"] for row in by_status}
        return {
            "clients": len(self.clients),
            "engagements": Engagement.objects.for_org(org).count(),
            "statuses": statuses,
            "phases": PhaseState.objects.for_org(org).count(),
            "sub_phases": SubPhaseState.objects.for_org(org).count(),
            "checklist_items": ChecklistItem.objects.for_org(org).count(),
            "checklist_done": ChecklistItem.objects.for_org(org).filter(done=True).count(),
            "gates": Gate.objects.for_org(org).count(),
            "checkpoints": GateCheckpoint.objects.for_org(org).count(),
            "board": board,
            "board_items": sum(board.values()),
            "feedback": FeedbackItem.objects.for_org(org).count(),
        }


# --------------------------------------------------------------------------------------------------
# Query counts (in-process, Django test client)


def query_counts(data: DataSet, urls: dict) -> dict:
    """{name: (queries on a cache miss, queries on a hit)} of a steady visit (the session already holds the
    organization): the data version is bumped before the first, as any change does, and the second reads the page
    the first stored."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts import data_version

    client = Client()
    client.force_login(data.consultant)
    client.cookies["tz"] = "Europe/London"
    counts = {}
    for name, url in urls.items():
        first = client.get(url)  # the first visit stores current_org in the session; count steady visits
        if first.status_code != 200:
            raise RuntimeError(f"{name}: {url} answered {first.status_code} in-process")
        data_version.bump(data.org)
        visits = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: {url} answered {response.status_code} in-process")
            visits.append(len(ctx.captured_queries))
        counts[name] = tuple(visits)
    return counts


# --------------------------------------------------------------------------------------------------
# gunicorn and the load


def start_gunicorn(env: dict, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")  # the child's stdout and stderr; closed when this process exits
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "gtm_ops.wsgi:application",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_gunicorn(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_ready(proc: subprocess.Popen, port: int, log_path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/healthz/")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz/ within {seconds:.0f} s:\n{log_path.read_text()[-3000:]}")


def fetch(port: int, path: str, cookie: str) -> tuple[int, bytes, list[str]]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        return response.status, response.read(), response.headers.get_all("Set-Cookie") or []
    finally:
        conn.close()


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class ServerCpu:
    """CPU time spent serving: the gunicorn workers, their PostgreSQL backends (CONN_MAX_AGE keeps one connection
    per worker) and Redis (sessions and cached pages). Unlike latency it hardly depends on what else runs on the
    host."""

    def __init__(self, gunicorn_pids: list[int]):
        from django.core.cache import cache
        from django.db import connection

        self.pids = [pid for parent in gunicorn_pids for pid in _children(parent)]
        client = getattr(getattr(cache, "_cache", None), "get_client", None)
        if client is not None:  # RedisCache
            self.pids.append(int(client().info("server")["process_id"]))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
            self.pids += [row[0] for row in cursor.fetchall()]
        connection.close()

    def now(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids)


def run_load(port: int, path: str, cookie: str, expect: list[bytes], total: int, concurrency: int) -> dict:
    """`total` GETs of `path` from `concurrency` threads, one HTTP/1.1 connection each (kept alive when the
    server allows; gunicorn's sync workers close after each response, and http.client reconnects)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [total]
    headers = {"Cookie": cookie, "Accept": "text/html,application/json"}

    def take() -> bool:
        with lock:
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
            return True

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            while take():
                started = time.perf_counter()
                try:
                    conn.request("GET", path, headers=headers)
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - started
                latencies.append(elapsed)
                if response.status != 200:
                    errors.append(f"HTTP {response.status}")
                elif missing := [e for e in expect if e not in body]:
                    errors.append(f"expected text missing: {missing[0][:60]!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60 + total * 2  # bounded: 2 s a request on average at worst
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    wall = time.perf_counter() - started
    if any(t.is_alive() for t in threads):
        errors.append("client threads still running at the deadline")
    return {"latencies": latencies, "errors": errors, "wall": wall}


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def summarize(result: dict) -> dict:
    ms = sorted(v * 1000 for v in result["latencies"])
    return {
        "n": len(ms),
        "median": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "max": ms[-1] if ms else float("nan"),
        "rps": len(ms) / result["wall"] if result["wall"] else float("nan"),
        "cpu_ms": result["cpu"] * 1000 / len(ms) if ms else float("nan"),
        "errors": result["errors"],
    }


# --------------------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))  # so `finally` stops gunicorn
    workdir = tempfile.TemporaryDirectory(prefix="gtm-bench-")
    env = server_env(str(Path(workdir.name) / "static"))

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.urls import reverse
    from django.utils.html import escape

    from playbooks.services import load_library_playbooks

    proc = cold_proc = None
    try:
        t0 = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        load_library_playbooks()
        t_setup = time.perf_counter() - t0

        t0 = time.perf_counter()
        data = DataSet(seed=args.seed, playbook_key=args.playbook)
        data.add_clients(max(1, min(args.engagements, math.ceil(args.engagements / 10))))
        created = min(args.created, args.engagements)
        first_batch = data.create_engagements(0, created)
        data.progress(first_batch)
        data.add_board_items(first_batch)
        from accounts import data_version

        data_version.bump(data.org)  # progress and board items are written here directly, not by the services
        t_created = time.perf_counter() - t0

        def page_urls():
            from engagements.models import Engagement, EngagementStatus

            board_engagement = (
                Engagement.objects.for_org(data.org)
                .filter(status=EngagementStatus.ACTIVE)
                .order_by("-created_at")
                .first()
                or Engagement.objects.for_org(data.org).order_by("-created_at").first()
            )
            return board_engagement, {
                "healthz": reverse("healthz"),
                "signed_in": reverse("accounts:api-token"),
                "portfolio": reverse("engagements:portfolio", args=[data.org.slug]),
                "board": reverse("engagements:board", args=[data.org.slug, board_engagement.uuid]),
            }

        small_engagements = len(data.engagements)
        _, small_urls = page_urls()
        counts_small = query_counts(data, small_urls)

        t0 = time.perf_counter()
        rest = data.copy_engagements(created, args.engagements - created) if args.engagements > created else []
        if rest:
            from engagements.models import Engagement

            rest = list(Engagement.objects.for_org(data.org).filter(pk__in=[e.pk for e in rest]))
            data.progress(rest)
            data.add_board_items(rest)
        data_version.bump(data.org)
        t_copied = time.perf_counter() - t0
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # fresh tables get the statistics autovacuum would give them

        board_engagement, urls = page_urls()
        counts_full = query_counts(data, urls)
        # Boards of a closed and an on-hold engagement (other lane mixes, read-only branches): same count expected.
        from engagements.models import Engagement, EngagementStatus

        other_boards = {}
        for status in (EngagementStatus.CLOSED, EngagementStatus.ON_HOLD):
            e = Engagement.objects.for_org(data.org).filter(status=status).order_by("pk").first()
            if e is not None:
                url = reverse("engagements:board", args=[data.org.slug, e.uuid])
                other_boards[status.value] = query_counts(data, {"b": url})["b"]
        sizes = data.sizes()

        from engagements.cadence import board_lanes

        newest = Engagement.objects.for_org(data.org).order_by("-created_at", "-id").first()
        lanes = board_lanes(board_engagement)
        lane_titles = [i.title for rows in lanes.values() for i in rows]
        expect = {
            "healthz": [b'"status": "ok"'],
            "signed_in": [b"<h1>Your API token</h1>"],
            "portfolio": [b"<h1>Engagements</h1>", escape(newest.name).encode()],
            "board": [b"Delivery board", escape(board_engagement.name).encode()]
            + [escape(t).encode() for t in lane_titles[:3]],
        }

        # Sign in as the consultant: a real session row, sent as the session cookie.
        from importlib import import_module

        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session[SESSION_KEY] = str(data.consultant.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = data.consultant.get_session_auth_hash()
        session["current_org"] = data.org.slug
        session.save()
        cookies = {settings.SESSION_COOKIE_NAME: session.session_key, "tz": "Europe/London"}
        connection.close()

        # Two servers: the app as configured, and one that stores no page fragment (BENCH_COLD, bench/settings.py),
        # so that every visit of a page there is a cache miss. Only one of them is under load at a time.
        port, cold_port = free_port(), free_port()
        log_path, cold_log_path = Path(workdir.name) / "gunicorn.log", Path(workdir.name) / "gunicorn-cold.log"
        proc = start_gunicorn(env, port, args.workers, log_path)
        cold_proc = start_gunicorn({**env, "BENCH_COLD": "1"}, cold_port, args.workers, cold_log_path)
        wait_ready(proc, port, log_path)
        wait_ready(cold_proc, cold_port, cold_log_path)

        # The first authenticated page sets the CSRF cookie a browser would then send back.
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        status, body, set_cookies = fetch(port, urls["portfolio"], cookie)
        if status != 200:
            raise RuntimeError(f"signed-in portfolio answered {status}; log:\n{log_path.read_text()[-2000:]}")
        for header in set_cookies:
            for morsel in SimpleCookie(header).values():
                if morsel.key == settings.CSRF_COOKIE_NAME:
                    cookies[morsel.key] = morsel.value
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())

        for page in ("portfolio", "board"):
            urls[f"{page}_cold"], expect[f"{page}_cold"] = urls[page], expect[page]
        names = ("healthz", "signed_in", "portfolio", "board", "portfolio_cold", "board_cold")
        ports = {name: cold_port if name.endswith("_cold") else port for name in names}
        load_before = os.getloadavg()  # before any request: what else is running on the host
        for name in names:
            if args.warmup:
                warm = run_load(ports[name], urls[name], cookie, expect[name], args.warmup, args.concurrency)
                if warm["errors"]:
                    raise RuntimeError(f"{name} warm-up failed: {warm['errors'][:3]}")
        # The URLs take turns, round by round, so a change in the host's background load hits them all alike.
        server_cpu = ServerCpu([proc.pid, cold_proc.pid])
        raw = {name: {"latencies": [], "errors": [], "wall": 0.0, "cpu": 0.0} for name in names}
        per_round, extra = divmod(args.requests, args.rounds)
        for n in (per_round + (1 if r < extra else 0) for r in range(args.rounds)):
            for name in names:
                cpu_before = server_cpu.now()
                part = run_load(ports[name], urls[name], cookie, expect[name], n, args.concurrency)
                raw[name]["cpu"] += server_cpu.now() - cpu_before
                for key in ("latencies", "errors"):
                    raw[name][key] += part[key]
                raw[name]["wall"] += part["wall"]
        load_after = os.getloadavg()
        results = {name: summarize(raw[name]) for name in names}
        server_log = log_path.read_text() + cold_log_path.read_text()
    finally:
        stop_gunicorn(proc)
        stop_gunicorn(cold_proc)

    pg_version = "?"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    workdir.cleanup()

    # ----------------------------------------------------------------------------------------------
    # Report
    line = "-" * 78
    print(line)
    print("GTM Ops bench: portfolio and board pages (gunicorn, PostgreSQL, DEBUG=false)")
    print(line)
    print(
        f"host: {os.cpu_count()} CPU, Python {platform.python_version()}, Django {django.get_version()}, "
        f"PostgreSQL {pg_version}; gunicorn {args.workers} sync workers on {HOST}; CONN_MAX_AGE=60"
    )
    print(
        f"load: {args.requests} measured GETs per URL (after {args.warmup} warm-up) "
        f"from {args.concurrency} concurrent client threads, in {args.rounds} interleaved rounds"
    )
    cpus = os.cpu_count() or 1
    busy = load_before[0] > cpus
    print(
        f"host load average (1 min): {load_before[0]:.2f} before the requests, {load_after[0]:.2f} after them "
        f"(this run included) on {cpus} CPU"
        + ("\n  WARNING: other work was running on the host: absolute latencies are inflated" if busy else "")
    )
    print(
        f"data: built in {t_setup + t_created + t_copied:.1f} s "
        f"({created} engagements by progression.create_engagement in {t_created:.1f} s, "
        f"{len(rest)} bulk-copied in {t_copied:.1f} s)"
    )
    print()
    print("Data sizes (one organization)")
    print(f"  engagements        {sizes['engagements']:>7}  by status: {sizes['statuses']}  playbook: {args.playbook}")
    print(f"  clients            {sizes['clients']:>7}")
    print(f"  phases             {sizes['phases']:>7}   sub-phases {sizes['sub_phases']}")
    print(f"  checklist items    {sizes['checklist_items']:>7}   done {sizes['checklist_done']}")
    print(f"  gates              {sizes['gates']:>7}   checkpoints {sizes['checkpoints']}")
    board_detail = ", ".join(f"{k} {v}" for k, v in sizes["board"].items())
    print(f"  board items        {sizes['board_items']:>7}   ({board_detail})")
    print()
    print("SQL queries per page (in-process test client, signed in, steady visits: cache miss / hit)")
    small_head, full_head = f"{small_engagements} engagements", f"{sizes['engagements']} engagements"
    print(f"  {'page':<10} {small_head:>16} {full_head:>18}")
    for name in ("healthz", "signed_in", "portfolio", "board"):
        small, full = (" / ".join(map(str, counts[name])) for counts in (counts_small, counts_full))
        print(f"  {name:<10} {small:>16} {full:>18}")
    print(f"  board of a closed / on-hold engagement: {other_boards}")
    constant = all(counts_small[n] == counts_full[n] for n in counts_full) and all(
        c == counts_full["board"] for c in other_boards.values()
    )
    print(f"  constant whatever the data size: {'yes' if constant else 'NO'}")
    print()
    print(f"Latency at {args.concurrency} concurrent clients (ms)")
    print(f"  {'url':<14} {'n':>5} {'median':>8} {'p95':>8} {'max':>8} {'req/s':>8} {'CPU/req':>8}  path")
    for name in names:
        r = results[name]
        print(
            f"  {name:<14} {r['n']:>5} {r['median']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f} {r['rps']:>8.1f} "
            f"{r['cpu_ms']:>8.1f}  {urls[name]}"
        )
    print("  portfolio, board: served from the cache (warm); *_cold: a server that caches no page (every visit a miss)")
    print("  CPU/req: CPU ms of the gunicorn workers, their PostgreSQL backends and Redis a request (client excluded)")
    base = results["healthz"]
    pages = ("portfolio", "board", "portfolio_cold", "board_cold")
    print()
    print("Ratio to healthz (same run)")
    verdicts = []
    for name in pages:
        r = results[name]
        p95_ratio, median_ratio = r["p95"] / base["p95"], r["median"] / base["median"]
        cpu_ratio = r["cpu_ms"] / base["cpu_ms"] if base["cpu_ms"] else float("nan")
        print(f"  {name:<14} p95 {p95_ratio:5.2f}x   median {median_ratio:5.2f}x   (server CPU/req {cpu_ratio:5.2f}x)")
        verdicts += [
            (name, f"{name} p95 {r['p95']:.1f} ms <= {TARGET_P95_MS:.0f} ms", r["p95"] <= TARGET_P95_MS),
            (name, f"{name} p95 ratio {p95_ratio:.2f} <= {TARGET_RATIO:.0f}", p95_ratio <= TARGET_RATIO),
            (name, f"{name} median ratio {median_ratio:.2f} <= {TARGET_RATIO:.0f}", median_ratio <= TARGET_RATIO),
        ]
    # For information: the same ratios to a minimal signed-in page, which pays what every page of the app pays
    # (session, user, CSRF, messages, the base template) and healthz does not.
    signed_in = results["signed_in"]
    print()
    print("Ratio to the signed-in baseline (same run; for information, no target)")
    for name in pages:
        r = results[name]
        cpu_ratio = r["cpu_ms"] / signed_in["cpu_ms"] if signed_in["cpu_ms"] else float("nan")
        print(
            f"  {name:<14} p95 {r['p95'] / signed_in['p95']:5.2f}x   median {r['median'] / signed_in['median']:5.2f}x"
            f"   (server CPU/req {cpu_ratio:5.2f}x)"
        )
    errors = {name: r["errors"] for name, r in results.items() if r["errors"]}
    print()
    print("Targets (the result counts the pages as served, from the cache; the cold lines show a miss)")
    for _, text, ok in verdicts:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    if errors:
        for name, errs in errors.items():
            print(f"  ERROR {name}: {len(errs)} bad responses, e.g. {errs[:3]}")
    if "Traceback" in server_log or "[ERROR]" in server_log:
        print("  gunicorn logged errors:\n" + server_log[-3000:])
    passed = all(ok for name, _, ok in verdicts if not name.endswith("_cold"))
    print(line)
    print(f"RESULT: {'BROKEN RUN' if errors else ('PASS' if passed else 'FAIL')}")
    return 2 if errors else (0 if passed else 1)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as error:
        print(f"BROKEN RUN: {error}")
        sys.exit(2)
