"""Abuse limits: failed sign-ins per account and per IP address, portal link requests per stakeholder, and the API
rates per token.

A limit counts attempts in a sliding window. Each counted attempt is a row in the database (LimitHit) and the cache
holds the window's timestamps, so checking a limit is usually one cache read. The cache may be in-process, or Redis
that is down (gtm_ops/cache.py then answers "nothing cached"): a miss is read back from the database, so a limit
holds whatever happens to the cache. Every counted attempt clears the cached copy, which is rebuilt from the
database on the next check. Sign-ins and portal link requests are counted before they are made and checked after,
in the database (`Limit.take`), so attempts made in parallel cannot all slip under a limit; an attempt that turns
out not to count (a successful sign-in, per address; a link the broker refused) is given back.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.exceptions import Throttled
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from .activity import client_ip
from .models import LimitHit

logger = logging.getLogger(__name__)
KEPT = timedelta(days=1)  # counted attempts older than this are deleted: no window is longer


@dataclass(frozen=True)
class Limit:
    """At most `allowed` counted attempts per subject within `window` seconds; both are read from settings when
    used, so a deployment (or a test) can change them."""

    scope: str
    allowed_setting: str
    window_setting: str

    @property
    def allowed(self) -> int:
        return getattr(settings, self.allowed_setting)

    @property
    def window(self) -> int:
        return getattr(settings, self.window_setting)

    def _key(self, subject: str) -> str:
        return hashlib.sha256(f"{self.scope}:{subject}".encode()).hexdigest()

    def _hits(self, key: str) -> list[float]:
        """The window's attempts, oldest first, as Unix timestamps."""
        now = time.time()
        hits = cache.get(f"limit:{key}")
        if hits is None:
            since = timezone.now() - timedelta(seconds=self.window)
            rows = LimitHit.objects.filter(key=key, created_at__gt=since).order_by("created_at")
            hits = [row.timestamp() for row in rows.values_list("created_at", flat=True)]
            cache.set(f"limit:{key}", hits, self.window)
        return [t for t in hits if t > now - self.window]

    def count(self, subject: str) -> int:
        return len(self._hits(self._key(subject)))

    def retry_after(self, subject: str) -> int | None:
        """Seconds until the next attempt is allowed, or None when one is allowed now."""
        hits = self._hits(self._key(subject))
        if len(hits) < self.allowed:
            return None
        # The window slides: a place frees up when the oldest attempt that still counts leaves it.
        return max(1, math.ceil(hits[-self.allowed] + self.window - time.time()))

    def hit(self, subject: str) -> int:
        """Count one attempt; returns how many now count in the window."""
        key = self._key(subject)
        now = timezone.now()
        LimitHit.objects.create(key=key, created_at=now)
        LimitHit.objects.filter(created_at__lt=now - KEPT).delete()
        cache.delete(f"limit:{key}")
        return len(self._hits(key))

    def take(self, subject: str) -> int | None:
        """Count an attempt before it is made and return its id, or None (counting nothing) at the limit.

        Counted first and checked after, in the database, so that attempts made in parallel cannot all slip under
        the limit: each one sees those counted before it.
        """
        if self.retry_after(subject) is not None:  # the usual refusal costs one cache read and writes nothing
            return None
        key = self._key(subject)
        now = timezone.now()
        hit = LimitHit.objects.create(key=key, created_at=now)
        cache.delete(f"limit:{key}")
        if LimitHit.objects.filter(key=key, created_at__gt=now - timedelta(seconds=self.window)).count() > self.allowed:
            self.give_back(subject, hit.pk)
            return None
        return hit.pk

    def give_back(self, subject: str, hit_id: int) -> None:
        """Uncount an attempt taken with `take`."""
        LimitHit.objects.filter(pk=hit_id).delete()
        cache.delete(f"limit:{self._key(subject)}")

    def clear(self, subject: str) -> None:
        key = self._key(subject)
        LimitHit.objects.filter(key=key).delete()
        cache.delete(f"limit:{key}")


SIGN_IN_PER_ACCOUNT = Limit("sign-in-account", "SIGN_IN_FAILURES_PER_ACCOUNT", "SIGN_IN_WINDOW")
SIGN_IN_PER_IP = Limit("sign-in-ip", "SIGN_IN_FAILURES_PER_IP", "SIGN_IN_WINDOW")
LOCKOUT_NOTICE = Limit("sign-in-lockout-notice", "SIGN_IN_LOCKOUT_NOTICES", "SIGN_IN_WINDOW")
PORTAL_LINK_REQUESTS = Limit("portal-link", "PORTAL_LINKS_PER_STAKEHOLDER", "PORTAL_LINK_WINDOW")


def in_minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class SignInRefused(Throttled):
    """Raised before a password is checked. A Throttled, so the API answers 429 with Retry-After by itself."""

    def __init__(self, *, message: str, wait: int):
        super().__init__(wait=wait, detail=message)
        self.message = message


@dataclass(frozen=True)
class SignIn:
    """One sign-in attempt: the account it names and the address it comes from."""

    account: str  # the email address, trimmed and in lower case
    ip: str
    user: AbstractBaseUser | None  # None for an address nobody has: it is counted all the same

    @classmethod
    def of(cls, *, username: str, request) -> SignIn:
        account = username.strip().lower()
        user = get_user_model()._default_manager.filter(username=account).first()
        return cls(account=account, ip=client_ip(request) or "unknown", user=user)

    @property
    def subject(self) -> str:
        # Failures count against the account's current password: choosing a new one (the lockout email links to
        # that) lets its owner straight back in, while guessing does not change the password.
        fingerprint = hashlib.sha256(self.user.password.encode()).hexdigest()[:16] if self.user else ""
        return f"{self.account} {fingerprint}"

    def refused(self, limit: Limit, subject: str) -> SignInRefused:
        wait = limit.retry_after(subject) or 1
        if limit is SIGN_IN_PER_ACCOUNT:
            message = (
                f"Too many failed sign-ins for {self.account}: signing in to this account is paused. "
                f"Try again in {in_minutes(wait)}, or reset your password."
            )
        else:
            message = (
                "Too many failed sign-ins from your network: signing in from it is paused. "
                f"Try again in {in_minutes(wait)}."
            )
        return SignInRefused(wait=wait, message=message)

    def count(self) -> int:
        """Count this attempt against the account's and the address's limits before the password is looked at;
        raise SignInRefused when either is reached. Returns the address's counted attempt, for `succeeded`."""
        account_hit = SIGN_IN_PER_ACCOUNT.take(self.subject)
        if account_hit is None:
            raise self.refused(SIGN_IN_PER_ACCOUNT, self.subject)
        ip_hit = SIGN_IN_PER_IP.take(self.ip)
        if ip_hit is None:
            SIGN_IN_PER_ACCOUNT.give_back(self.subject, account_hit)
            raise self.refused(SIGN_IN_PER_IP, self.ip)
        return ip_hit

    def failed(self) -> None:
        """The counted attempt stays counted; the account's owner hears of a lockout once."""
        failures = SIGN_IN_PER_ACCOUNT.count(self.subject)
        if failures >= SIGN_IN_PER_ACCOUNT.allowed and LOCKOUT_NOTICE.retry_after(self.subject) is None:
            LOCKOUT_NOTICE.hit(self.subject)  # once per lockout, however long the attempts go on
            self.notify_owner(failures=failures)

    def succeeded(self, ip_hit: int) -> None:
        """Only failures count: the account starts afresh and the address gets its attempt back."""
        SIGN_IN_PER_ACCOUNT.clear(self.subject)
        SIGN_IN_PER_IP.give_back(self.ip, ip_hit)

    def notify_owner(self, *, failures: int) -> None:
        """Tell the account's owner, who may not know someone is guessing their password."""
        from .emails import send_email
        from .tasks import MAIL_ERRORS

        user = self.user
        if user is None or not user.is_active or not user.email:  # an address nobody has: nobody to tell
            return
        uidb64, token = urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)
        path = reverse("password_reset_confirm", kwargs={"uidb64": uidb64, "token": token})
        try:
            send_email(
                "account-locked",
                to=user.email,
                context={
                    "user": user,
                    "failures": failures,
                    "minutes": in_minutes(SIGN_IN_PER_ACCOUNT.window),
                    "path": path,
                },
            )
        except MAIL_ERRORS:  # the lockout holds without the email; a failed sign-in must not answer 500
            logger.exception("Could not email %s about the locked account", user.email)


class LimitedModelBackend(ModelBackend):
    """Passwords are checked only within the sign-in limits; every sign-in (the form, the API token) comes here."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        attempt = SignIn.of(username=username, request=request)
        ip_hit = attempt.count()  # refused here, without looking at the password, once a limit is reached
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            attempt.failed()
            raise PermissionDenied  # documented: no later backend checks this password again
        attempt.succeeded(ip_hit)
        return user


class _RateFromSettings:
    """DRF binds THROTTLE_RATES when it is imported; read the rate from settings each time instead, so
    REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] can be changed by a deployment's environment or a test."""

    def get_rate(self):
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope)

    def get_ident(self, request) -> str:
        return client_ip(request) or "unknown"  # X-Forwarded-For only from trusted proxies


class TokenRateThrottle(_RateFromSettings, UserRateThrottle):
    """API requests per user (a user has one token): REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"]."""


class AnonymousRateThrottle(_RateFromSettings, AnonRateThrottle):
    """API requests without a token, per IP address: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"]."""
