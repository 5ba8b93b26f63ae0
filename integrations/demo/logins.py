"""The demo's users and what a client needs to use the demo (the credentials file)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from rest_framework.authtoken.models import Token

from lending.models import BankMembership
from orders.models import Agent, CoreEnterprise, Role, User

from .data import AGENT_USERS, DEFAULT_BASE_URL, DEMO_EMAIL_DOMAIN, DemoData, DemoLogin

# Readable, yet not on Django's common-password list nor close to the usernames.
DEMO_PASSWORDS = {
    Role.AGENT: "agent-demo-2026",
    Role.ENTERPRISE_ADMIN: "enterprise-demo-2026",
    Role.RISK_REVIEWER: "reviewer-demo-2026",
    Role.RISK_APPROVER: "approver-demo-2026",
    Role.OPS_ADMIN: "operations-demo-2026",
}
STAFF_USERS = (
    ("ops.admin", Role.OPS_ADMIN),
    ("risk.reviewer", Role.RISK_REVIEWER),
    ("risk.approver1", Role.RISK_APPROVER),
    ("risk.approver2", Role.RISK_APPROVER),
)


def _password_hash(password: str, hashes: dict[str, str]) -> str:
    """One PBKDF2 hash per distinct demo password (they are published in the file anyway):
    hashing takes a third of a second, which would otherwise dominate seeding."""
    if password not in hashes:
        hashes[password] = make_password(password)
    return hashes[password]


def _login_create(
    username: str,
    role: str,
    hashes: dict[str, str],
    *,
    agent: Agent | None = None,
    enterprise: CoreEnterprise | None = None,
) -> DemoLogin:
    staff = role == Role.OPS_ADMIN
    user = User(
        username=username,
        email=f"{username}@{DEMO_EMAIL_DOMAIN}",
        role=role,
        agent=agent,
        enterprise=enterprise,
        is_staff=staff,
        is_superuser=staff,
    )
    password = DEMO_PASSWORDS[Role(role)]
    validate_password(password, user)
    user.password = _password_hash(password, hashes)
    user.save()
    return DemoLogin(user, password, Token.objects.create(user=user).key)


def logins_create(data: DemoData) -> list[DemoLogin]:
    hashes: dict[str, str] = {}
    logins = [_login_create(username, role, hashes) for username, role in STAFF_USERS]
    # The demo's bank staff work for the demo bank (and see only its programs).
    BankMembership.objects.bulk_create(
        BankMembership(user=login.user, bank=data.bank) for login in logins
    )
    for demo in data.enterprises:
        username = demo.enterprise.code.lower().removeprefix("ce-") + ".admin"
        logins.append(
            _login_create(username, Role.ENTERPRISE_ADMIN, hashes, enterprise=demo.enterprise)
        )
    for demo_agent in data.agents[:AGENT_USERS]:
        username = demo_agent.agent.code.lower().replace("-", "")
        logins.append(_login_create(username, Role.AGENT, hashes, agent=demo_agent.agent))
    return logins


def login_reset(user: User, hashes: dict[str, str]) -> DemoLogin:
    password = DEMO_PASSWORDS[Role(user.role)]
    user.password = _password_hash(password, hashes)
    user.is_active = True
    user.save(update_fields=["password", "is_active"])
    token, _ = Token.objects.get_or_create(user=user)
    return DemoLogin(user, password, token.key)


def demo_credentials_json(data: DemoData, *, base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    """What a client needs to use the demo, in the shape of API.md "The demo credentials file"."""
    return {
        "base_url": base_url.rstrip("/"),
        "bank": {"id": data.bank.pk, "code": data.bank.code, "name": data.bank.name},
        "enterprises": [
            {
                "id": e.enterprise.pk,
                "code": e.enterprise.code,
                "name": e.enterprise.name,
                "uscc": e.enterprise.uscc,
                "webhook_secret": e.credentials.webhook_secret,
                "api_key": e.credentials.api_key,
                "program_ids": list(e.program_ids),
            }
            for e in data.enterprises
        ],
        "agents": [
            {
                "id": a.agent.pk,
                "code": a.agent.code,
                "name": a.agent.name,
                "enterprise_codes": list(a.enterprise_codes),
            }
            for a in data.agents
        ],
        "users": [
            {
                "username": login.user.username,
                "password": login.password,
                "token": login.token,
                "role": login.user.role,
                "agent_code": login.user.agent.code if login.user.agent else None,
                "enterprise_code": login.user.enterprise.code if login.user.enterprise else None,
            }
            for login in data.logins
        ],
    }
