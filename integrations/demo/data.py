"""What the demo is made of: its bank, its two core enterprises and what they sell, the words its
dealers' names are made of, and the records ``demo_build`` hands back."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from lending.models import Bank
from orders.models import Agent, CoreEnterprise, User
from orders.services.parties import IntegrationCredentials

if TYPE_CHECKING:
    from .history import DemoCredit

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEMO_EMAIL_DOMAIN = "demo.scf.example"
ORDER_HISTORY_DAYS = 180
INGEST_BATCH = 1000
AGENT_USERS = 5
CURRENCY = "CNY"
BANK_CODE = "JNCB"
BANK_NAME = "江南商业银行股份有限公司"
# A second bank with a program for the first enterprise only: its agents with a login and a line
# there see two offers in the quote.
SECOND_BANK_CODE = "HCB"
SECOND_BANK_NAME = "海川银行股份有限公司"


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


def part_rng(seed: int, part: str) -> random.Random:
    return random.Random(f"{seed}:{part}")
