"""What /healthz/ and /readyz/ check, each answering "ok" or what failed, in words, and quickly."""

from django.conf import settings
from django.core.cache import caches
from django.db import connection

INLINE = "not used: tasks run inline"
TIMEOUT = 1.0  # seconds; a probe that hangs is a failure


def database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"failing: {type(exc).__name__}"
    return "ok"


def cache() -> str:
    from .cache import ResilientRedisCache

    backend = caches["default"]
    if not isinstance(backend, ResilientRedisCache):
        return "ok (in-process)"
    try:
        backend._cache.get_client().ping()
    except Exception as exc:  # noqa: BLE001
        return f"unavailable ({type(exc).__name__}): pages are served from the database"
    return "ok"


def broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return INLINE
    from .celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        return f"unavailable ({type(exc).__name__}): background work cannot be queued"
    return "ok"
