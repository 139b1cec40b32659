"""Settings come from the environment; production refuses to start on unsafe defaults."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FERNET_KEY = "a" * 43 + "="  # 32 url-safe base64 bytes


def start(**env) -> subprocess.CompletedProcess:
    unset = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CRM_SECRET_KEY")
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
    )


def test_debug_off_refuses_the_default_secret_key():
    result = start(DEBUG="false", ALLOWED_HOSTS="gtm.example.com")
    assert result.returncode != 0
    assert "set the SECRET_KEY environment variable" in result.stderr


def test_debug_off_refuses_empty_allowed_hosts():
    result = start(DEBUG="false", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "set the ALLOWED_HOSTS environment variable" in result.stderr


def test_debug_off_refuses_a_missing_crm_secret_key():
    for key in ("", "not-a-fernet-key"):
        result = start(DEBUG="false", SECRET_KEY="x" * 50, ALLOWED_HOSTS="gtm.example.com", CRM_SECRET_KEY=key)
        assert result.returncode != 0
        assert "CRM_SECRET_KEY is not a Fernet key" in result.stderr


def test_debug_off_with_every_secret_set_starts():
    result = start(DEBUG="false", SECRET_KEY="x" * 50, ALLOWED_HOSTS="gtm.example.com", CRM_SECRET_KEY=FERNET_KEY)
    assert result.returncode == 0, result.stderr


def test_defaults_need_no_services():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='gtm_ops.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.EMAIL_BACKEND)"
    )
    clean = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMAIL_HOST")
    }
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True).stdout
    assert out.split() == ["django.db.backends.sqlite3", "True", "django.core.mail.backends.console.EmailBackend"]


def test_environment_switches_to_real_services():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='gtm_ops.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL, s.EMAIL_BACKEND)"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://u:p@db.example:5432/gtm",
        "REDIS_URL": "redis://r.example:6379/0",
        "EMAIL_HOST": "smtp.example",
    }
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True).stdout
    assert out.split() == [
        "django.db.backends.postgresql",
        "False",
        "redis://r.example:6379/0",
        "django.core.mail.backends.smtp.EmailBackend",
    ]
