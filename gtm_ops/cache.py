"""The Redis cache as an optional accelerator: pages and sign-in keep working while Redis is down or frozen.

Everything this cache holds can be rebuilt: page fragments from the database, sessions from the database (the
cached_db engine reads the cache first and the database when the cache answers nothing). So an unreachable Redis
costs one short socket timeout, answers "nothing cached", and is left alone for RETRY_AFTER seconds instead of
costing a timeout on every call.

A session deleted while Redis was away (a sign-out) is still in Redis when it comes back, and cached_db would
believe it. So the first successful call after an outage drops every cached session: they are read again from
the database, which is always right.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.contrib.sessions.backends.cached_db import KEY_PREFIX as SESSION_PREFIX
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
RETRY_AFTER = 5.0  # seconds a failed Redis is skipped before it is tried again
SOCKET_TIMEOUT = 0.5  # a frozen Redis costs this, not the default wait-forever


class _Outage:
    """Shared by every thread of the process: whether Redis is being skipped, and whether it was."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.skip_until = 0.0
        self.was_down = False

    def skipping(self) -> bool:
        return time.monotonic() < self.skip_until

    def failed(self, exc: Exception) -> None:
        with self.lock:
            if not self.was_down:
                logger.warning("Redis cache unreachable (%s): serving from the database for now", exc)
            self.skip_until = time.monotonic() + RETRY_AFTER
            self.was_down = True

    def recovered(self) -> None:
        with self.lock:
            self.was_down = False


outage = _Outage()


def _guarded(fallback: Callable[..., Any]) -> Callable:
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def guarded(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
            if outage.skipping():
                return fallback(*args, **kwargs)
            try:
                if outage.was_down:
                    self.drop_cached_sessions()  # before anything reads a session that may be stale
                    outage.recovered()
                return method(self, *args, **kwargs)
            except ERRORS as exc:
                outage.failed(exc)
                return fallback(*args, **kwargs)

        return guarded

    return decorate


def _default(key: str, default: Any = None, *args: Any, **kwargs: Any) -> Any:
    return kwargs.get("default", default)


def _nothing(*args: Any, **kwargs: Any) -> bool:
    return False


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = params.setdefault("OPTIONS", {})
        options.setdefault("socket_connect_timeout", SOCKET_TIMEOUT)
        options.setdefault("socket_timeout", SOCKET_TIMEOUT)
        super().__init__(server, params)

    get = _guarded(_default)(RedisCache.get)
    set = _guarded(_nothing)(RedisCache.set)
    add = _guarded(_nothing)(RedisCache.add)
    touch = _guarded(_nothing)(RedisCache.touch)
    delete = _guarded(_nothing)(RedisCache.delete)
    has_key = _guarded(_nothing)(RedisCache.has_key)
    get_many = _guarded(lambda keys, *a, **k: {})(RedisCache.get_many)
    set_many = _guarded(lambda data, *a, **k: list(data))(RedisCache.set_many)
    delete_many = _guarded(lambda *a, **k: None)(RedisCache.delete_many)

    def drop_cached_sessions(self) -> None:
        client = self._cache.get_client(write=True)
        stale = list(client.scan_iter(match=f"*{SESSION_PREFIX}*", count=1000))
        if stale:
            client.delete(*stale)
        logger.warning("Redis cache back: %d cached sessions dropped, to be read from the database", len(stale))
