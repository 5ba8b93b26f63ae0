"""Demo data: a bank, two core enterprises, their agents, six months of orders, and logins;
apart from them, the synthetic history the credit scorecard learns from.

Design:
- ``demo_build`` creates everything through the real services (``enterprise_create``,
  ``agent_create``, ``orders_ingest`` on the bulk channel), so the demo runs the production code
  paths and cannot hold rows those services would refuse.
- Deterministic for a seed: each part draws from its own ``random.Random(f"{seed}:{part}")``, so
  a part added later leaves the data of the others unchanged. Programs, credit lines and the first
  loans are built in ``demo_lending``.
  Order dates count back from ``today``, a parameter.
- Integration credentials exist in plaintext only when issued, so the credentials file is written
  from the ``DemoData`` in hand. When the demo already exists, ``demo_refresh`` rotates them and
  resets the demo users' passwords, so a rewritten file always matches the database.
- Demo users are recognised by their e-mail domain; a refresh touches only them.
- The scorecard's history (300 synthetic dealers over 18 months, ``demo_credit_seed``) belongs to
  an enterprise and a program of its own, so the demo's programs and dashboards show the demo's
  50 agents and 5,000 orders only. ``demo_contents`` counts both, as the README states them.
- Money is ``Decimal`` throughout; floats only weight random choices.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import Count, QuerySet
from rest_framework.authtoken.models import Token

from lending.models import Bank, CreditLine, Loan, Program
from lending.scoring.generator import DEMO_COHORT, DemoCredit, demo_credit_seed
from orders.models import Agent, CoreEnterprise, FeedChannel, Role, SalesOrder, User
from orders.services.ingest import orders_ingest
from orders.services.parties import (
    IntegrationCredentials,
    agent_create,
    enterprise_create,
    enterprise_credentials_rotate,
    uscc_complete,
)
from scf.money import CENT

from .demo_lending import demo_lines_create, demo_loans_create, demo_programs_create

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEMO_EMAIL_DOMAIN = "demo.scf.example"
ORDER_HISTORY_DAYS = 180
INGEST_BATCH = 1000
AGENT_USERS = 5
CURRENCY = "CNY"
BANK_CODE = "JNCB"
BANK_NAME = "江南商业银行股份有限公司"

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


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    list_price: Decimal
    min_qty: int
    max_qty: int


@dataclass(frozen=True)
class EnterpriseProfile:
    code: str
    name: str
    division: str  # administrative division code where it is registered
    branch: str  # the demo bank's branch holding its settlement account
    trades: tuple[str, ...]  # business words in the names of its own dealers
    catalogue: tuple[Product, ...]


D = Decimal
ENTERPRISES = (
    EnterpriseProfile(
        code="CE-HXDQ",
        name="浙江华信电器股份有限公司",
        division="330100",
        branch="杭州分行",
        trades=("电器销售", "家电"),
        catalogue=(
            Product("HX-AC-35GW", "挂壁式变频空调 1.5匹", D("2399.00"), 10, 60),
            Product("HX-AC-72LW", "立柜式变频空调 3匹", D("5699.00"), 5, 30),
            Product("HX-RF-470W", "十字对开门冰箱 470L", D("3899.00"), 5, 40),
            Product("HX-WM-100D", "滚筒洗衣机 10kg", D("2199.00"), 10, 50),
            Product("HX-TV-65U", "65英寸4K电视", D("3299.00"), 5, 30),
            Product("HX-WH-60E", "储水式电热水器 60L", D("1099.00"), 20, 80),
            Product("HX-DW-13S", "嵌入式洗碗机 13套", D("3599.00"), 2, 20),
        ),
    ),
    EnterpriseProfile(
        code="CE-TYJX",
        name="山东泰岳工程机械有限公司",
        division="370100",
        branch="济南分行",
        trades=("工程机械", "机械设备"),
        catalogue=(
            Product("TY-LD-ZL30", "ZL30轮式装载机", D("168000.00"), 1, 3),
            Product("TY-EX-E60", "6吨小型挖掘机", D("235000.00"), 1, 2),
            Product("TY-FL-CPC30", "3吨内燃叉车", D("72000.00"), 1, 5),
            Product("TY-SP-BKT", "挖斗总成", D("8600.00"), 1, 10),
            Product("TY-SP-FLT", "滤芯保养套装", D("380.00"), 10, 200),
            Product("TY-SP-TYR", "工程轮胎 23.5-25", D("6200.00"), 2, 16),
            Product("TY-OIL-HV46", "抗磨液压油 46号 200L", D("2350.00"), 2, 20),
        ),
    ),
)
ENTERPRISE_CODES = tuple(profile.code for profile in ENTERPRISES)
AGENT_CITIES = (
    ("杭州", "330100"), ("宁波", "330200"), ("温州", "330300"), ("绍兴", "330600"),
    ("金华", "330700"), ("济南", "370100"), ("青岛", "370200"), ("淄博", "370300"),
    ("潍坊", "370700"), ("临沂", "371300"), ("南京", "320100"), ("苏州", "320500"),
    ("合肥", "340100"), ("福州", "350100"), ("南昌", "360100"), ("郑州", "410100"),
    ("武汉", "420100"), ("长沙", "430100"), ("石家庄", "130100"), ("太原", "140100"),
)  # fmt: skip
AGENT_ROOTS = (
    "鑫源", "恒通", "聚丰", "永盛", "华茂", "宏达", "瑞丰", "金诚", "德顺", "广源", "兴隆", "佳和",
    "泰和", "信达", "万通", "润丰", "鼎盛", "锦程", "安泰", "博远", "和信", "众诚", "天成", "同创",
)  # fmt: skip
GENERAL_TRADES = ("商贸", "贸易")
LINE_COUNTS = (1, 2, 3, 4, 5)
LINE_COUNT_WEIGHTS = (35, 25, 20, 12, 8)
DISCOUNTS = (D("1.00"), D("0.98"), D("0.97"), D("0.95"))
# Status mix by the order's age in days: recent orders are mostly confirmed, old ones delivered.
STATUS_MIX = (
    (14, (("confirmed", 70), ("shipped", 25), ("cancelled", 5))),
    (45, (("confirmed", 35), ("shipped", 40), ("delivered", 17), ("cancelled", 8))),
    (ORDER_HISTORY_DAYS, (("confirmed", 8), ("shipped", 12), ("delivered", 72), ("cancelled", 8))),
)
# Each change of status was a new version from the sales system.
STATUS_VERSION = {"confirmed": 1, "shipped": 2, "delivered": 3, "cancelled": 2}


@dataclass
class DemoEnterprise:
    enterprise: CoreEnterprise
    credentials: IntegrationCredentials
    program_ids: list[int] = field(default_factory=list)


@dataclass
class DemoAgent:
    agent: Agent
    enterprise_codes: list[str]


@dataclass
class DemoLogin:
    user: User
    password: str
    token: str


@dataclass
class DemoData:
    bank: Bank
    enterprises: list[DemoEnterprise]
    agents: list[DemoAgent]
    logins: list[DemoLogin] = field(default_factory=list)
    created: bool = True  # False when an existing demo was refreshed
    credit: DemoCredit | None = None  # the scorecard's history and model, when seeded


def _rng(seed: int, part: str) -> random.Random:
    return random.Random(f"{seed}:{part}")


def demo_exists() -> bool:
    return CoreEnterprise.objects.filter(code__in=ENTERPRISE_CODES).exists()


@transaction.atomic
def demo_build(
    *, seed: int, orders: int, agents: int, today: dt.date, credit_history: bool = True
) -> DemoData:
    """Create the whole demo data set in one transaction. The database must not hold it yet."""
    bank = Bank.objects.create(code=BANK_CODE, name=BANK_NAME)
    enterprises = _enterprises_create(_rng(seed, "enterprises"))
    data = DemoData(
        bank=bank,
        enterprises=enterprises,
        agents=_agents_create(_rng(seed, "agents"), enterprises, agents),
    )
    _orders_create(_rng(seed, "orders"), data, orders, today)
    demo_programs_create(bank, data)
    demo_lines_create(_rng(seed, "lines"), data, today)
    data.logins = _logins_create(data)
    demo_loans_create(_rng(seed, "loans"))
    if credit_history:
        # Synthetic dealers with 18 months of history, so the scorecard has something to learn;
        # in a program of their own, so they do not crowd the demo's.
        data.credit = demo_credit_seed(today=today, seed=seed)
    return data


@transaction.atomic
def demo_refresh() -> DemoData:
    """Rotate the demo enterprises' credentials and reset the demo users; create nothing else."""
    enterprises = list(CoreEnterprise.objects.filter(code__in=ENTERPRISE_CODES).order_by("code"))
    bank, _ = Bank.objects.get_or_create(code=BANK_CODE, defaults={"name": BANK_NAME})
    hashes: dict[str, str] = {}
    users = (
        User.objects.filter(email__iendswith="@" + DEMO_EMAIL_DOMAIN)
        .select_related("agent", "enterprise")
        .order_by("pk")
    )
    return DemoData(
        bank=bank,
        enterprises=[
            DemoEnterprise(
                e,
                enterprise_credentials_rotate(enterprise=e),
                list(
                    Program.objects.filter(enterprise=e).order_by("pk").values_list("pk", flat=True)
                ),
            )
            for e in enterprises
        ],
        agents=_agents_of(enterprises),
        logins=[_login_reset(user, hashes) for user in users],
        created=False,
    )


def _agents_of(enterprises: list[CoreEnterprise]) -> list[DemoAgent]:
    agents = (
        Agent.objects.filter(relationships__enterprise__in=enterprises)
        .distinct()
        .prefetch_related("relationships__enterprise")
        .order_by("code")
    )
    return [DemoAgent(a, sorted(r.enterprise.code for r in a.relationships.all())) for a in agents]


# --- parties ----------------------------------------------------------------------------------


def _org_code(rng: random.Random) -> str:
    """A 9-character organisation code: 8 digits and their GB 11714 check character."""
    body = [rng.randrange(10) for _ in range(8)]
    check = 11 - sum(d * w for d, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return "".join(map(str, body)) + {10: "X", 11: "0"}.get(check, str(check))


def _uscc(rng: random.Random, division: str, used: set[str]) -> str:
    """A valid USCC of a private company (registered by SAIC) in ``division``, not in ``used``."""
    while True:
        code = uscc_complete("91" + division + _org_code(rng))
        if code not in used:
            used.add(code)
            return code


def _account_no(rng: random.Random) -> str:
    return str(rng.randrange(6_217_000_000_000_000_000, 6_218_000_000_000_000_000))


def _enterprises_create(rng: random.Random) -> list[DemoEnterprise]:
    created = []
    used: set[str] = set()
    for profile in ENTERPRISES:
        enterprise, credentials = enterprise_create(
            code=profile.code,
            name=profile.name,
            uscc=_uscc(rng, profile.division, used),
            settlement_account_no=_account_no(rng),
            settlement_bank=BANK_NAME.removesuffix("股份有限公司") + profile.branch,
        )
        created.append(DemoEnterprise(enterprise, credentials))
    return created


def _agent_profiles(rng: random.Random, index: int) -> tuple[EnterpriseProfile, ...]:
    """Which enterprises an agent buys from: most one, about one in five both.

    The first three cover every case (first enterprise, second, both) whatever the count.
    """
    if index < len(ENTERPRISES):
        return (ENTERPRISES[index],)
    if index == len(ENTERPRISES) or rng.random() < 0.2:
        return ENTERPRISES
    return (rng.choices(ENTERPRISES, weights=(6, 4))[0],)


def _agent_name(
    rng: random.Random, profiles: tuple[EnterpriseProfile, ...], used: set[str]
) -> tuple[str, tuple[str, str]]:
    """A dealer's company name (city, brand word, trade) not in ``used``, and its city."""
    trades = GENERAL_TRADES if len(profiles) > 1 else profiles[0].trades
    for _ in range(50):
        city = rng.choice(AGENT_CITIES)
        name = f"{city[0]}{rng.choice(AGENT_ROOTS)}{rng.choice(trades)}有限公司"
        if name not in used:
            break
    else:
        name = f"{name.removesuffix('有限公司')}{len(used) + 1}号有限公司"
    used.add(name)
    return name, city


def _agents_create(
    rng: random.Random, enterprises: list[DemoEnterprise], count: int
) -> list[DemoAgent]:
    by_code = {e.enterprise.code: e.enterprise for e in enterprises}
    names: set[str] = set()
    usccs: set[str] = set()
    created = []
    for index in range(count):
        profiles = _agent_profiles(rng, index)
        name, (city, division) = _agent_name(rng, profiles, names)
        code = f"AG-{index + 1:04d}"
        agent = agent_create(
            code=code,
            name=name,
            uscc=_uscc(rng, division, usccs),
            enterprises=[by_code[p.code] for p in profiles],
            email=f"finance@{code.lower()}.agents.example",
            settlement_account_no=_account_no(rng),
            settlement_bank=f"{BANK_NAME.removesuffix('股份有限公司')}{city}分行",
        )
        created.append(DemoAgent(agent, sorted(p.code for p in profiles)))
    return created


# --- orders -----------------------------------------------------------------------------------


def catalogue_for(enterprise_code: str) -> tuple[Product, ...]:
    """The products an enterprise sells; an unknown enterprise gets the first demo catalogue."""
    for profile in ENTERPRISES:
        if profile.code == enterprise_code:
            return profile.catalogue
    return ENTERPRISES[0].catalogue


def order_payload(
    rng: random.Random,
    catalogue: tuple[Product, ...],
    *,
    agent_code: str,
    external_id: str,
    order_date: dt.date,
    status: str = "confirmed",
    version: int = 1,
) -> dict[str, Any]:
    """An order as a sales system sends it: 1-5 lines whose amounts add up to the order amount."""
    count = rng.choices(LINE_COUNTS, weights=LINE_COUNT_WEIGHTS)[0]
    lines = []
    total = Decimal("0.00")
    for product in rng.sample(catalogue, min(count, len(catalogue))):
        quantity = rng.randint(product.min_qty, product.max_qty)
        price = (product.list_price * rng.choice(DISCOUNTS)).quantize(CENT, ROUND_HALF_EVEN)
        total += price * quantity
        line = {"sku": product.sku, "description": product.name}
        lines.append(line | {"quantity": quantity, "unit_price": str(price)})
    return {
        "external_id": external_id,
        "agent_code": agent_code,
        "amount": str(total.quantize(CENT)),
        "currency": CURRENCY,
        "status": status,
        "order_date": order_date.isoformat(),
        "version": version,
        "lines": lines,
    }


def _order_date(rng: random.Random, today: dt.date) -> dt.date:
    """A date in the last ``ORDER_HISTORY_DAYS`` days, more of them recent (a growing business),
    fewer on weekends."""
    for _ in range(2):
        age = min(int(rng.triangular(0, ORDER_HISTORY_DAYS, 0)), ORDER_HISTORY_DAYS - 1)
        day = today - dt.timedelta(days=age)
        if day.weekday() < 5 or rng.random() < 0.3:
            break
    return day


def _status(rng: random.Random, age_days: int) -> str:
    mix = next(m for limit, m in STATUS_MIX if age_days < limit)
    return rng.choices([s for s, _ in mix], weights=[w for _, w in mix])[0]


def _orders_plan(
    rng: random.Random, data: DemoData, count: int, today: dt.date
) -> dict[str, list[dict[str, Any]]]:
    """Order payloads per enterprise code; busy agents order more (log-normal weights)."""
    pairs = [(a.agent.code, e) for a in data.agents for e in a.enterprise_codes]
    # An agent's volume is split between the enterprises it buys from.
    size = {a.agent.code: rng.lognormvariate(0, 0.9) / len(a.enterprise_codes) for a in data.agents}
    weights = [size[agent] for agent, _ in pairs]
    picks = rng.choices(pairs, weights=weights, k=count) if pairs else []
    dated = sorted(((_order_date(rng, today), a, e) for a, e in picks), key=lambda p: p[0])
    plan: dict[str, list[dict[str, Any]]] = {e.enterprise.code: [] for e in data.enterprises}
    for order_date, agent_code, enterprise_code in dated:
        status = _status(rng, (today - order_date).days)
        sequence = len(plan[enterprise_code]) + 1
        plan[enterprise_code].append(
            order_payload(
                rng,
                catalogue_for(enterprise_code),
                agent_code=agent_code,
                external_id=f"SO-{order_date:%Y%m%d}-{sequence:05d}",
                order_date=order_date,
                status=status,
                version=STATUS_VERSION[status],
            )
        )
    return plan


def _orders_create(rng: random.Random, data: DemoData, count: int, today: dt.date) -> None:
    plan = _orders_plan(rng, data, count, today)
    for demo in data.enterprises:
        payloads = plan[demo.enterprise.code]
        for start in range(0, len(payloads), INGEST_BATCH):
            orders_ingest(
                enterprise=demo.enterprise,
                payloads=payloads[start : start + INGEST_BATCH],
                channel=FeedChannel.BULK,
                event_id=f"demo-seed-{start // INGEST_BATCH + 1}",
            )


# --- users ------------------------------------------------------------------------------------


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


def _logins_create(data: DemoData) -> list[DemoLogin]:
    hashes: dict[str, str] = {}
    logins = [_login_create(username, role, hashes) for username, role in STAFF_USERS]
    for demo in data.enterprises:
        username = demo.enterprise.code.lower().removeprefix("ce-") + ".admin"
        logins.append(
            _login_create(username, Role.ENTERPRISE_ADMIN, hashes, enterprise=demo.enterprise)
        )
    for demo_agent in data.agents[:AGENT_USERS]:
        username = demo_agent.agent.code.lower().replace("-", "")
        logins.append(_login_create(username, Role.AGENT, hashes, agent=demo_agent.agent))
    return logins


def _login_reset(user: User, hashes: dict[str, str]) -> DemoLogin:
    password = DEMO_PASSWORDS[Role(user.role)]
    user.password = _password_hash(password, hashes)
    user.is_active = True
    user.save(update_fields=["password", "is_active"])
    token, _ = Token.objects.get_or_create(user=user)
    return DemoLogin(user, password, token.key)


# --- output -----------------------------------------------------------------------------------


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


# What ``demo_contents`` counts, in the order and words of the README's table.
DEMO_CONTENTS = {
    "banks": "bank",
    "enterprises": "core enterprises",
    "programs": "programs",
    "agents": "agents",
    "credit_lines": "credit lines",
    "orders": "orders",
    "finance_requests": "finance requests",
    "users": "users",
    "history_agents": "synthetic dealers",
    "history_orders": "their orders",
    "history_loans": "their loans",
}


def _demo_programs() -> QuerySet[Program]:
    return Program.objects.filter(bank__code=BANK_CODE, enterprise__code__in=ENTERPRISE_CODES)


def demo_contents() -> dict[str, int]:
    """What the demo holds: its own rows (the demo bank's programs with the demo enterprises),
    then the scorecard's synthetic history (``PRG-HIST``); keys as in ``DEMO_CONTENTS``."""
    programs = _demo_programs()
    history = Program.objects.filter(code=f"PRG-{DEMO_COHORT}")
    contents = {
        "banks": Bank.objects.filter(code=BANK_CODE).count(),
        "enterprises": CoreEnterprise.objects.filter(code__in=ENTERPRISE_CODES).count(),
        "programs": programs.count(),
        "agents": Agent.objects.filter(relationships__enterprise__code__in=ENTERPRISE_CODES)
        .distinct()
        .count(),
        "credit_lines": CreditLine.objects.filter(program__in=programs).count(),
        "orders": SalesOrder.objects.filter(enterprise__code__in=ENTERPRISE_CODES).count(),
        "finance_requests": Loan.objects.filter(program__in=programs).count(),
        "users": User.objects.filter(email__iendswith="@" + DEMO_EMAIL_DOMAIN).count(),
        "history_agents": CreditLine.objects.filter(program__in=history).count(),
        "history_orders": SalesOrder.objects.filter(enterprise__programs__in=history).count(),
        "history_loans": Loan.objects.filter(program__in=history).count(),
    }
    return {key: contents[key] for key in DEMO_CONTENTS}


def demo_loan_counts() -> dict[str, int]:
    """The demo programs' loans by status (the scoring history's are not among them)."""
    rows = (
        Loan.objects.filter(program__in=_demo_programs())
        .values("status")
        .annotate(n=Count("id"))
        .order_by("status")
    )
    return {row["status"]: row["n"] for row in rows}


def demo_order_counts(data: DemoData) -> dict[str, int]:
    """Orders of the demo enterprises by status."""
    rows = (
        SalesOrder.objects.filter(enterprise__in=[e.enterprise for e in data.enterprises])
        .values("status")
        .annotate(n=Count("id"))
        .order_by("status")
    )
    return {row["status"]: row["n"] for row in rows}
