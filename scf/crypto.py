"""Secrets at rest: reversible encryption for secrets we must read back, hashing for the rest.

Webhook secrets are needed in the clear to check an HMAC, so they are encrypted (Fernet, key from
``FIELD_ENCRYPTION_KEY`` or derived from ``SECRET_KEY``). Integration API keys are only ever
compared, so only a SHA-256 digest and a short lookup prefix are stored.
"""

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(key_material: str) -> Fernet:
    if settings.FIELD_ENCRYPTION_KEY:
        return Fernet(settings.FIELD_ENCRYPTION_KEY.encode())
    digest = hashlib.sha256(("scf-field-encryption:" + key_material).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()


def new_secret(prefix: str, nbytes: int = 32) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def digest_matches(value: str, expected_hex: str) -> bool:
    return hmac.compare_digest(digest(value), expected_hex)
