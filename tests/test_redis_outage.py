"""Redis is an accelerator, not a door: with it stopped or frozen, people sign in and read their pages from the
database, and a sign-out made during the outage holds once Redis is back."""

import os
import signal
import subprocess

import pytest
import redis
from django.conf import settings
from django.urls import reverse

from gtm_ops.cache import outage

from .conftest import PASSWORD, free_port, wait_until


class OwnRedis:
    """A Redis of this test's own (the suite's shared one keeps serving the workers), persisted to disk as
    docker-compose runs it, so a restart brings back what it held."""

    def __init__(self, tmp_path) -> None:
        self.port, self.dir = free_port(), tmp_path
        self.client = redis.Redis(port=self.port)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=10, what="redis-server answering")

    def answers(self) -> bool:
        try:
            return self.client.ping()
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def own_redis(settings, tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    location = f"redis://127.0.0.1:{server.port}/0"
    settings.CACHES = {"default": {"BACKEND": "gtm_ops.cache.ResilientRedisCache", "LOCATION": location}}
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    yield server
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
        server.kill()
    outage.skip_until, outage.was_down = 0.0, False


def cached_sessions(client, key: str = "") -> int:
    return len(list(client.scan_iter(match=f"*sessions.cached_db{key}*")))


def sign_in(client, user) -> None:
    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]


def test_signed_in_pages_and_sign_in_work_with_redis_stopped(client, cast, own_redis):
    sign_in(client, cast.consultant)
    home = reverse("accounts:org-home", kwargs={"org_slug": cast.org.slug})
    assert client.get(home).status_code == 200
    assert cached_sessions(own_redis.client) == 1  # the session is read from Redis while it is up

    own_redis.kill()
    assert client.get(home).status_code == 200
    assert client.get(reverse("engagements:portfolio", kwargs={"org_slug": cast.org.slug})).status_code == 200

    client.logout()
    sign_in(client, cast.owner)
    assert client.get(home).status_code == 200


def test_signed_in_pages_answer_while_redis_is_frozen(client, cast, own_redis):
    sign_in(client, cast.consultant)
    home = reverse("accounts:org-home", kwargs={"org_slug": cast.org.slug})
    os.kill(own_redis.process.pid, signal.SIGSTOP)  # frozen: connections open, nothing answers
    assert client.get(home).status_code == 200
    assert client.get(reverse("engagements:portfolio", kwargs={"org_slug": cast.org.slug})).status_code == 200
    assert client.post(reverse("logout")).status_code in (200, 302)
    assert client.get(home).status_code == 302


def test_a_sign_out_during_an_outage_holds_when_redis_comes_back(client, cast, own_redis):
    sign_in(client, cast.consultant)
    home = reverse("accounts:org-home", kwargs={"org_slug": cast.org.slug})
    assert client.get(home).status_code == 200
    ended = client.session.session_key

    own_redis.kill()
    assert client.post(reverse("logout")).status_code in (200, 302)
    assert client.get(home).status_code == 302  # signed out, from the database

    own_redis.start()
    assert cached_sessions(own_redis.client, ended) == 1  # restarted from its append-only file, with that session
    outage.skip_until = 0.0  # as if RETRY_AFTER had passed: the next call tries Redis again
    client.cookies[settings.SESSION_COOKIE_NAME] = ended  # someone who kept the old cookie
    response = client.get(home)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert cached_sessions(own_redis.client, ended) == 0


def test_healthz_tells_the_cache_apart_from_the_database(client, cast, own_redis):
    assert client.get(reverse("healthz")).json() == {"status": "ok", "database": "ok", "cache": "ok"}
    own_redis.kill()
    response = client.get(reverse("healthz"))
    assert response.status_code == 200  # every page still answers from the database
    assert response.json()["cache"].startswith("unavailable")


def test_readyz_fails_when_the_broker_is_down(client, db, settings):
    from gtm_ops.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert client.get(reverse("readyz")).json()["broker"] == "ok"
    working = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    try:
        response = client.get(reverse("readyz"))
    finally:
        app.conf.broker_url = working
    assert response.status_code == 503
    assert response.json()["broker"].startswith("unavailable") and response.json()["database"] == "ok"
