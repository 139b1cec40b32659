"""A real Celery worker process for the tests that kill one: on the test's database and Redis, one at a time,
started and killed (SIGKILL) at will."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.db import connection

from tests.conftest import ROOT


def blocked_backends() -> list[int]:
    """Database sessions (the worker's) waiting for a lock the test holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return [row[0] for row in cursor.fetchall()]


class KillableWorker:
    """`env` adds the settings the test changed (a short run lease, the SMTP server, the CRM secrets key)."""

    def __init__(self, **env: str) -> None:
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": os.environ["REDIS_URL"],
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "gtm_ops", "worker", "--pool=solo", "--concurrency=1",
             "--loglevel=WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        # PostgreSQL notices a dead client only when it next talks to it: end what the killed worker left waiting
        for pid in blocked_backends():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
