"""Parties: core enterprises, agents, their relationships and the integration credentials.

Credentials are shown once: the create and rotate services return the plaintext, and only the
encrypted webhook secret and a digest of the API key are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from stdnum.cn import uscc

from scf import crypto
from scf.errors import Unauthorized

from ..models import Agent, AgentRelationship, CoreEnterprise

API_KEY_PREFIX_LENGTH = 12


def uscc_complete(first17: str) -> str:
    """A full Unified Social Credit Code: the 17 characters given plus their check character."""
    return first17 + uscc.calc_check_digit(first17)


@dataclass(frozen=True)
class IntegrationCredentials:
    """Plaintext credentials, returned once; never stored or logged."""

    webhook_secret: str
    api_key: str


def _issue_credentials(enterprise: CoreEnterprise) -> IntegrationCredentials:
    webhook_secret = crypto.new_secret("whsec")
    api_key = crypto.new_secret("scfk")
    enterprise.webhook_secret_encrypted = crypto.encrypt(webhook_secret)
    enterprise.api_key_prefix = api_key[:API_KEY_PREFIX_LENGTH]
    enterprise.api_key_digest = crypto.digest(api_key)
    enterprise.credentials_rotated_at = timezone.now()
    return IntegrationCredentials(webhook_secret=webhook_secret, api_key=api_key)


@transaction.atomic
def enterprise_create(
    *,
    code: str,
    name: str,
    uscc: str,
    settlement_account_name: str = "",
    settlement_account_no: str = "",
    settlement_bank: str = "",
) -> tuple[CoreEnterprise, IntegrationCredentials]:
    enterprise = CoreEnterprise(
        code=code,
        name=name,
        uscc=uscc,
        settlement_account_name=settlement_account_name or name,
        settlement_account_no=settlement_account_no,
        settlement_bank=settlement_bank,
    )
    enterprise.full_clean(exclude=["webhook_secret_encrypted", "api_key_prefix", "api_key_digest"])
    credentials = _issue_credentials(enterprise)
    enterprise.save()
    return enterprise, credentials


@transaction.atomic
def enterprise_credentials_rotate(*, enterprise: CoreEnterprise) -> IntegrationCredentials:
    """Issue a new webhook secret and API key; the old ones stop working at once."""
    locked = CoreEnterprise.objects.select_for_update().get(pk=enterprise.pk)
    credentials = _issue_credentials(locked)
    locked.save(
        update_fields=[
            "webhook_secret_encrypted",
            "api_key_prefix",
            "api_key_digest",
            "credentials_rotated_at",
        ]
    )
    enterprise.refresh_from_db()
    return credentials


def enterprise_webhook_secret(enterprise: CoreEnterprise) -> str:
    return crypto.decrypt(enterprise.webhook_secret_encrypted)


@sensitive_variables("api_key")
def enterprise_by_api_key(api_key: str) -> CoreEnterprise:
    """The enterprise an integration API key belongs to, or ``Unauthorized``."""
    prefix = api_key[:API_KEY_PREFIX_LENGTH]
    for enterprise in CoreEnterprise.objects.filter(api_key_prefix=prefix):
        if crypto.digest_matches(api_key, enterprise.api_key_digest):
            return enterprise
    raise Unauthorized("Invalid integration API key.", code="invalid_api_key")


@transaction.atomic
def agent_create(
    *,
    code: str,
    name: str,
    uscc: str,
    enterprises: list[CoreEnterprise],
    email: str = "",
    settlement_account_name: str = "",
    settlement_account_no: str = "",
    settlement_bank: str = "",
) -> Agent:
    agent = Agent(
        code=code,
        name=name,
        uscc=uscc,
        email=email,
        settlement_account_name=settlement_account_name or name,
        settlement_account_no=settlement_account_no,
        settlement_bank=settlement_bank,
    )
    agent.full_clean()
    agent.save()
    AgentRelationship.objects.bulk_create(
        [AgentRelationship(agent=agent, enterprise=e) for e in enterprises]
    )
    return agent
