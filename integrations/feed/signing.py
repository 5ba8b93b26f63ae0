"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<raw body>"`` with the enterprise's secret.

The raw bytes are signed (never a re-serialised body), the clock window is 300 s either way, and
the comparison is constant-time. Every failure is the same 401 to the caller; the reason is logged
(without the secret or the signature).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from django.views.decorators.debug import sensitive_variables

from orders.models import CoreEnterprise, PartyStatus
from orders.services.parties import enterprise_webhook_secret
from scf.errors import Unauthorized

from .text import storable

logger = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="


@sensitive_variables("secret")
def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-SCF-Signature`` header value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@sensitive_variables("signature", "expected")
def webhook_authenticate(
    *,
    enterprise_code: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    tolerance_seconds: int,
    now: float | None = None,
) -> CoreEnterprise:
    """The enterprise that signed this request, or ``Unauthorized``."""
    if not enterprise_code or not timestamp or not signature:
        raise _unauthorized("missing_headers", enterprise_code)
    if not storable(enterprise_code):
        raise _unauthorized("unknown_enterprise", enterprise_code)
    enterprise = CoreEnterprise.objects.filter(code=enterprise_code).first()
    if enterprise is None or not enterprise.webhook_secret_encrypted:
        raise _unauthorized("unknown_enterprise", enterprise_code)
    if enterprise.status != PartyStatus.ACTIVE:
        raise _unauthorized("enterprise_inactive", enterprise_code)
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise _unauthorized("bad_timestamp", enterprise_code) from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        raise _unauthorized("timestamp_out_of_window", enterprise_code)
    expected = sign(enterprise_webhook_secret(enterprise), timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise _unauthorized("bad_signature", enterprise_code)
    return enterprise


def _unauthorized(reason: str, enterprise_code: str | None) -> Unauthorized:
    logger.warning(
        "order webhook rejected",
        extra={"reason": reason, "enterprise_code": (enterprise_code or "")[:32]},
    )
    return Unauthorized(
        "Missing or invalid signature, or timestamp outside the allowed window.",
        code="invalid_signature",
    )
