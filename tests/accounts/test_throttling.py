"""Abuse limits on sign-in (the form and the API token), on the API, and which address a request comes from.

The figures come from the issue: the 11th attempt after 10 failures is refused, 50 failures per IP address,
15 minutes. Limits are counted in Redis (the cache) and the database, through real requests.
"""

import contextlib
import re

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ActivityEntry
from gtm_ops.cache import ERRORS as REDIS_DOWN
from tests.conftest import PASSWORD, body_text
from tests.test_redis_outage import own_redis  # noqa: F401 - a Redis of the test's own, to stop

WRONG = "not-the-password"
LOCKED_AFTER = 10  # failures per account in 15 minutes
IP_LIMIT = 50  # failures per IP address in 15 minutes

@pytest.fixture(autouse=True)
def fresh_counts():
    """Counted attempts live in the cache too, which outlives each test's database; start and end empty."""
    cache.clear()
    yield
    with contextlib.suppress(*REDIS_DOWN):  # a test may have stopped its own Redis
        cache.clear()


def sign_in(client, email, password, **extra):
    return client.post(reverse("login"), {"username": email, "password": password}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_eleventh_attempt_is_refused_without_checking_the_password_and_the_owner_is_told_once(cast, smtp):
    client = Client()
    for attempt in range(1, LOCKED_AFTER + 1):
        response = sign_in(client, cast.owner.email, WRONG)
        assert response.status_code == 200 and "Please enter a correct" in response.content.decode()
        assert len(smtp.messages) == (1 if attempt == LOCKED_AFTER else 0)  # told when the account locks

    # The right password on the 11th attempt is refused too: the password was not looked at.
    response = sign_in(client, cast.owner.email, PASSWORD)
    page = response.content.decode()
    assert "Too many failed sign-ins for alice@alpha.example" in page
    assert "Try again in 15 minutes" in page
    assert not signed_in(client)
    sign_in(client, "ALICE@alpha.example ", PASSWORD)  # the same account, written differently
    assert not signed_in(client)

    [message] = smtp.messages
    assert message["To"] == cast.owner.email
    text = body_text(message)
    assert f"{LOCKED_AFTER} times" in text and "reset your password" in text
    # The email's link lets the owner choose a new password.
    reset = re.search(r"http://127\.0\.0\.1:8000(/accounts/password-reset/\S+/)", text).group(1)
    form = client.get(reset, follow=True)
    assert "new_password1" in form.content.decode()
    new_password = "a-brand-new-passphrase"
    client.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
    # A new password lets its owner straight back in, without waiting out the pause.
    sign_in(client, cast.owner.email, new_password)
    assert signed_in(client)


def test_another_account_from_the_same_address_is_unaffected_until_the_address_limit(cast, smtp):
    client = Client()
    for _ in range(LOCKED_AFTER):
        sign_in(client, cast.owner.email, WRONG)
    sign_in(client, cast.consultant.email, PASSWORD)
    assert signed_in(client)

    # Spraying: the remaining failures the address is allowed, spread over accounts that do not exist.
    sprayer = Client()
    for n in range(IP_LIMIT - LOCKED_AFTER):
        response = sign_in(sprayer, f"guess{n % 4}@alpha.example", WRONG)
        assert "Please enter a correct" in response.content.decode()
    response = sign_in(sprayer, cast.viewer.email, PASSWORD)
    assert "Too many failed sign-ins from your network" in response.content.decode()
    assert not signed_in(sprayer)
    # A forged X-Forwarded-For does not make a new address (no trusted proxy is configured)...
    sign_in(sprayer, cast.viewer.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.23")
    assert not signed_in(sprayer)
    # ...while someone really elsewhere signs in.
    elsewhere = Client(REMOTE_ADDR="192.0.2.44")
    sign_in(elsewhere, cast.viewer.email, PASSWORD)
    assert signed_in(elsewhere)
    assert [m["To"] for m in smtp.messages] == [cast.owner.email]  # the unknown addresses have nobody to tell


def test_the_limit_holds_when_the_cache_forgets(cast, smtp):
    client = Client()
    for _ in range(LOCKED_AFTER):
        sign_in(client, cast.owner.email, WRONG)
        cache.clear()  # as if Redis had restarted empty after every attempt
    response = sign_in(client, cast.owner.email, PASSWORD)
    assert "Too many failed sign-ins" in response.content.decode()
    assert not signed_in(client)
    assert len(smtp.messages) == 1


def test_the_limit_holds_when_redis_stops_during_the_attack(cast, smtp, request):
    redis_server = request.getfixturevalue("own_redis")
    client = Client()
    for _ in range(LOCKED_AFTER // 2):
        sign_in(client, cast.owner.email, WRONG)
    redis_server.kill()
    for _ in range(LOCKED_AFTER - LOCKED_AFTER // 2):
        sign_in(client, cast.owner.email, WRONG)
    response = sign_in(client, cast.owner.email, PASSWORD)
    assert "Too many failed sign-ins" in response.content.decode()
    assert not signed_in(client)
    assert len(smtp.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_attempts_made_in_parallel_do_not_slip_past_the_limit(cast):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection

    parallel = 2 * LOCKED_AFTER
    start = Barrier(parallel)

    def attempt(_):
        try:
            start.wait()
            return sign_in(Client(), cast.owner.email, WRONG).content.decode()
        finally:
            connection.close()

    with ThreadPoolExecutor(parallel) as pool:
        pages = list(pool.map(attempt, range(parallel)))
    checked = sum("Please enter a correct" in page for page in pages)
    refused = sum("Too many failed sign-ins" in page for page in pages)
    assert checked + refused == parallel
    assert 0 < checked <= LOCKED_AFTER  # never more passwords looked at than the limit allows
    # Attempts refused in the crowd were not counted: one after another, the rest of the 10 are looked at.
    for _ in range(LOCKED_AFTER - checked):
        assert "Please enter a correct" in sign_in(Client(), cast.owner.email, WRONG).content.decode()
    assert "Too many failed sign-ins" in sign_in(Client(), cast.owner.email, PASSWORD).content.decode()


def test_a_successful_sign_in_starts_the_count_again(cast, smtp):
    client = Client()
    for _ in range(LOCKED_AFTER - 1):
        sign_in(client, cast.owner.email, WRONG)
    sign_in(client, cast.owner.email, PASSWORD)
    assert signed_in(client)
    other = Client()
    sign_in(other, cast.owner.email, WRONG)
    sign_in(other, cast.owner.email, PASSWORD)
    assert signed_in(other)
    assert smtp.messages == []


def test_token_endpoint_takes_email_and_answers_429_with_retry_after_when_locked(cast, smtp):
    api = APIClient()
    response = api.post("/api/v1/auth/token/", {"email": cast.owner.email, "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=cast.owner).key
    response = api.post("/api/v1/auth/token/", {"username": cast.consultant.email, "password": PASSWORD})
    assert response.json()["token"] == Token.objects.get(user=cast.consultant).key

    for _ in range(LOCKED_AFTER):
        assert api.post("/api/v1/auth/token/", {"email": cast.owner.email, "password": WRONG}).status_code == 400
    response = api.post("/api/v1/auth/token/", {"email": cast.owner.email, "password": PASSWORD})
    assert response.status_code == 429
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60
    assert "Try again in 15 minutes" in response.json()["detail"]
    assert len(smtp.to(cast.owner.email)) == 1
    # The form is locked too: it is the same account.
    sign_in(client := Client(), cast.owner.email, PASSWORD)
    assert not signed_in(client)


def test_api_requests_per_token_are_limited(cast, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "5/minute", "anon": None}}
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=cast.viewer).key}")
    assert [api.get("/api/v1/organizations/").status_code for _ in range(5)] == [200] * 5
    response = api.get("/api/v1/organizations/")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=cast.consultant).key}")
    assert other.get("/api/v1/organizations/").status_code == 200


def test_requests_without_a_token_are_limited_per_address(db, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": None, "anon": "3/hour"}}
    api = APIClient()
    assert [api.get("/api/v1/schema/").status_code for _ in range(3)] == [200] * 3
    assert api.get("/api/v1/schema/", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    assert APIClient(REMOTE_ADDR="192.0.2.9").get("/api/v1/schema/").status_code == 200


def create_client_as(cast, **headers):
    client = Client(**{k: v for k, v in headers.items() if k == "REMOTE_ADDR"})
    client.force_login(cast.owner)
    extra = {k: v for k, v in headers.items() if k != "REMOTE_ADDR"}
    client.post(reverse("engagements:client-list", args=[cast.org.slug]), {"name": "Umbrella Corp"}, **extra)
    return ActivityEntry.objects.for_org(cast.org).get(verb="client.created").ip


def test_activity_log_ignores_x_forwarded_for_without_trusted_proxies(cast, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert create_client_as(cast, REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="203.0.113.66") == "192.0.2.10"


def test_activity_log_takes_the_address_the_trusted_proxy_saw(cast, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # The client forged the first hop; the proxy (REMOTE_ADDR) appended the address it really saw.
    ip = create_client_as(cast, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.4")
    assert ip == "198.51.100.4"


def test_two_trusted_proxies_count_from_the_right(cast, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    ip = create_client_as(cast, REMOTE_ADDR="10.0.0.3", HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.4, 10.0.0.2")
    assert ip == "198.51.100.4"
