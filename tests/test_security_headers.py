"""Production security: HTTPS enforced, HSTS, nothing personal kept in shared caches, `check --deploy` clean."""

import secrets
import subprocess
import sys

from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .conftest import ROOT

FERNET_KEY = "a" * 43 + "="


def directives(response) -> set[str]:
    return {d.strip() for d in response.get("Cache-Control", "").split(",") if d.strip()}


def test_signed_in_pages_portal_pages_and_api_answers_are_not_stored(client, cast):
    assert client.get(reverse("portal:login")).status_code == 200
    assert {"private", "no-store"} <= directives(client.get(reverse("portal:login")))

    client.force_login(cast.consultant)
    page = client.get(reverse("accounts:org-home", kwargs={"org_slug": cast.org.slug}))
    assert page.status_code == 200 and {"private", "no-store"} <= directives(page)

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=cast.owner).key}")
    answer = api.get("/api/v1/organizations/")
    assert answer.status_code == 200 and {"private", "no-store"} <= directives(answer)


def test_https_is_enforced_but_the_probes_answer_over_http(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    redirect = client.get(reverse("login"))
    assert redirect.status_code == 301 and redirect["Location"].startswith("https://")
    assert client.get(reverse("healthz")).status_code == 200


def test_check_deploy_is_clean_with_the_production_environment():
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "gtm.example.com",
        "CRM_SECRET_KEY": FERNET_KEY,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_every_page_carries_a_csp_without_inline_code_or_eval(client, cast):
    client.force_login(cast.consultant)
    for url in (reverse("login"), reverse("accounts:org-home", kwargs={"org_slug": cast.org.slug}), "/api/v1/docs/"):
        policy = dict(
            d.strip().split(" ", 1) for d in client.get(url)["Content-Security-Policy"].split(";") if d.strip()
        )
        assert policy["script-src"] == policy["style-src"] == "'self'", url
        assert "unsafe" not in str(policy) and policy["object-src"] == "'none'", url
