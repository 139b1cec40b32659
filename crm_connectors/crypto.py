"""CRM secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) keyed by CRM_SECRET_KEY.

CRM_SECRET_KEY is a Fernet key (`Fernet.generate_key()`) or any long passphrase (stretched with
SHA-256); a comma-separated list rotates keys: the first encrypts, all decrypt. In DEBUG without the
variable a key is derived from SECRET_KEY so `make run` works out of the box; outside DEBUG GTM Ops
refuses to store secrets until CRM_SECRET_KEY is set, rather than tie them to SECRET_KEY silently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MISSING_KEY = (
    "GTM Ops cannot store CRM credentials: set the CRM_SECRET_KEY environment variable to a Fernet key "
    '(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())") and restart.'
)


class SecretKeyMissing(ImproperlyConfigured):
    def __init__(self, message: str = MISSING_KEY) -> None:
        super().__init__(message)


class SecretUnreadable(Exception):
    """Stored secrets cannot be decrypted with the current keys (CRM_SECRET_KEY changed?)."""

    def __init__(self) -> None:
        super().__init__(
            "The stored CRM credentials cannot be decrypted with the current CRM_SECRET_KEY (was the key changed "
            "without keeping the old one in the list?). Enter the credentials again."
        )


def _as_fernet_key(text: str) -> bytes:
    raw = text.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (binascii.Error, ValueError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def _keys() -> list[bytes]:
    configured = [k for k in str(getattr(settings, "CRM_SECRET_KEY", "") or "").split(",") if k.strip()]
    if configured:
        return [_as_fernet_key(k) for k in configured]
    if settings.DEBUG:
        derived = hashlib.sha256(b"gtm-ops crm secrets\x00" + settings.SECRET_KEY.encode()).digest()
        return [base64.urlsafe_b64encode(derived)]
    raise SecretKeyMissing()


def can_store_secrets() -> bool:
    try:
        _keys()
    except SecretKeyMissing:
        return False
    return True


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _keys()])


def encrypt(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable() from None


def mask(value: str, keep: int = 3) -> str:
    """Show enough of a non-secret identifier (a username, a consumer key) to recognise it."""
    if not value:
        return ""
    if len(value) <= keep * 2 + 2:
        return value[:1] + "•••"
    return f"{value[:keep]}•••{value[-keep:]}"
