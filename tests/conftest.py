"""The cast (owner / consultant / viewer of organization A, an outsider who owns B, portal stakeholders)
and the real services tests use: an SMTP server on loopback and Celery worker processes."""

import email
import email.policy
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import connection
from playwright.sync_api import expect

from accounts.models import Membership, Organization, Role
from engagements.models import ClientAccount, Stakeholder
from gtm_ops.celery import app as celery_app
from playbooks.loader import load_library
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks

# The browser tests' assertions poll until they hold. Playwright's 5 s default is short for a PDF rendered inline on
# a 2-core host that runs both shards of `make test` at once; a failing assertion still fails, after 20 s.
expect.set_options(timeout=20_000)

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"


@dataclass
class Cast:
    org: Organization
    owner: object
    consultant: object
    viewer: object
    client: ClientAccount
    stakeholder: Stakeholder
    other_org: Organization
    outsider: object
    other_client: ClientAccount
    other_stakeholder: Stakeholder
    # A second client of organization A, whose stakeholder must not see the first client's portal.
    sibling_client: ClientAccount
    sibling_stakeholder: Stakeholder
    extra: dict = field(default_factory=dict)


def make_user(django_user_model, email_address: str, **fields):
    return django_user_model.objects.create_user(
        username=email_address, email=email_address, password=PASSWORD, **fields
    )


def make_org(name: str, slug: str) -> Organization:
    return Organization.objects.create(name=name, slug=slug)


def make_client(org: Organization, name: str) -> ClientAccount:
    return ClientAccount.objects.create(organization=org, name=name)


def make_stakeholder(client: ClientAccount, name: str, email_address: str, **fields) -> Stakeholder:
    return Stakeholder.objects.create(
        organization=client.organization, client=client, name=name, email=email_address, **fields
    )


@pytest.fixture
def cast(db, django_user_model) -> Cast:
    org = make_org("Alpha Advisory", "alpha")
    owner = make_user(django_user_model, "alice@alpha.example", first_name="Alice")
    consultant = make_user(django_user_model, "carl@alpha.example", first_name="Carl")
    viewer = make_user(django_user_model, "vic@alpha.example", first_name="Vic")
    Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
    Membership.objects.create(organization=org, user=consultant, role=Role.CONSULTANT)
    Membership.objects.create(organization=org, user=viewer, role=Role.VIEWER)
    client = make_client(org, "Acme Robotics")
    stakeholder = make_stakeholder(client, "Maya Patel", "maya@acme.example", title="VP Marketing")
    sibling = make_client(org, "Initech")
    sibling_stakeholder = make_stakeholder(sibling, "Peter Gibbons", "peter@initech.example")

    other_org = make_org("Beta Partners", "beta")
    outsider = make_user(django_user_model, "bob@beta.example", first_name="Bob")
    Membership.objects.create(organization=other_org, user=outsider, role=Role.OWNER)
    other_client = make_client(other_org, "Globex")
    other_stakeholder = make_stakeholder(other_client, "Hank Scorpio", "hank@globex.example")
    return Cast(
        org=org,
        owner=owner,
        consultant=consultant,
        viewer=viewer,
        client=client,
        stakeholder=stakeholder,
        other_org=other_org,
        outsider=outsider,
        other_client=other_client,
        other_stakeholder=other_stakeholder,
        sibling_client=sibling,
        sibling_stakeholder=sibling_stakeholder,
    )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, migrated, with the playbook library loaded once: most tests start an engagement of a
    library playbook, and writing the library for each of them cost a few tenths of a second per test."""
    with django_db_blocker.unblock():
        load_library_playbooks()


def ensure_library() -> None:
    """Make sure the library is in the database. It is loaded with it (django_db_setup), but a transactional test
    ends by emptying every table: the first test after that which needs it loads it again."""
    if set(Playbook.objects.library().values_list("key", flat=True)) != {spec.key for spec in load_library()}:
        load_library_playbooks()


@pytest.fixture
def library(db) -> dict:
    """The library's playbooks: {key: latest version}."""
    ensure_library()
    return {p.key: p.latest_version() for p in Playbook.objects.library()}


@pytest.fixture
def no_library(db) -> None:
    """The library taken out for this test only (rolled back after it): the pages that say it is empty."""
    Playbook.objects.library().delete()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """What a real SMTP server on loopback received, parsed back into email messages."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self._arrived = threading.Condition()
        self.controller = None

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def stop(self) -> None:
        """Take the mail server down (an outage); the fixture does not stop it twice."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m["X-Envelope-To"]]

    def wait_for(self, count: int = 1, timeout: float = 20.0) -> list:
        """Block until `count` messages arrived (mail sent by another process takes a moment)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} email(s) within {timeout}s, got {len(self.messages)}")
        return self.messages


def wait_until(predicate, timeout: float = 60.0, what: str = "the condition") -> None:
    """Wait for work done by another process (a worker) to show in the database, up to a deadline."""
    deadline = threading.Event()
    for _ in range(int(timeout * 10)):
        if predicate():
            return
        deadline.wait(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def body_text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def smtp(settings) -> Mailbox:
    """A real SMTP server (aiosmtpd) on loopback; Django's SMTP backend is pointed at it."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    mailbox.controller = controller
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    try:
        yield mailbox
    finally:
        mailbox.stop()


UNLIMITED_CRM_RATES = {"salesforce": "1000000/1", "hubspot": "1000000/1", "hubspot-search": "1000000/1"}


@pytest.fixture
def crm_sandbox_settings(settings, tmp_path):
    """Talking to a CRM sandbox on loopback: plain http allowed, a secrets key, no rate limits, files kept apart."""
    from cryptography.fernet import Fernet

    settings.CRM_ALLOW_HTTP = True
    settings.CRM_SECRET_KEY = Fernet.generate_key().decode()
    settings.CRM_RATE_LIMITS = UNLIMITED_CRM_RATES
    settings.MEDIA_ROOT = tmp_path
    return settings


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _tasks_inline_by_default():
    """Most tests run tasks inline; the `celery_worker` fixture switches to a real broker and worker."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = True


@pytest.fixture
def celery_worker(transactional_db, smtp):
    """A real Celery worker process consuming from Redis, on the test database and the test SMTP server."""
    broker = os.environ.get("REDIS_URL")
    if not broker:
        pytest.fail("REDIS_URL is not set: run the suite with `make test`, which starts Redis.")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": broker,
        "EMAIL_HOST": django_settings.EMAIL_HOST,
        "EMAIL_PORT": str(django_settings.EMAIL_PORT),
        "SITE_URL": django_settings.SITE_URL,
        "EMAIL_RETRY_DELAY": "0",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "gtm_ops",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    celery_app.conf.task_always_eager = False
    try:
        yield process
    finally:
        celery_app.conf.task_always_eager = True
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
