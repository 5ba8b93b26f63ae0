"""English and Simplified Chinese: chosen from the browser or the switcher, every string of the
pages translated, the compiled catalogue in step with its source, amounts per locale."""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_python
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.test import Client
from django.utils import translation
from django.utils.translation.template import templatize

from orders.templatetags.scf_format import money, percent
from tests.web.conftest import ROOT, World, login

LOCALE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
TEMPLATE_DIRS = [
    ROOT / "orders" / "templates",
    ROOT / "lending" / "templates",
    ROOT / "integrations" / "templates",
]
PYTHON_SOURCES = [
    ROOT / "orders" / "views.py",
    ROOT / "orders" / "templatetags" / "scf_format.py",
    *sorted((ROOT / "lending" / "views").glob("*.py")),
    # What the back office shows: model and app names, admin actions and messages.
    *sorted((ROOT / "lending" / "models").glob("*.py")),
    ROOT / "orders" / "models.py",
    ROOT / "integrations" / "models.py",
    ROOT / "integrations" / "bank_models.py",
    ROOT / "integrations" / "bank" / "files" / "views.py",
    *(ROOT / app / "apps.py" for app in ("lending", "orders", "integrations")),
    ROOT / "lending" / "admin.py",
]
LITERAL = r"u'(?:[^'\\]|\\.)*'|u\"(?:[^\"\\]|\\.)*\""
CALL = re.compile(rf"(n?)gettext\(({LITERAL})(?:, ({LITERAL}), count)?\)")


def _catalog() -> dict[object, object]:
    with (LOCALE / "django.po").open("rb") as f:
        catalog = read_po(f)
    return {m.id: m for m in catalog if m.id}


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def _template_ids(path: Path) -> set[object]:
    ids: set[object] = set()
    for match in CALL.finditer(templatize(path.read_text(encoding="utf-8"), origin=str(path))):
        singular = ast.literal_eval(match.group(2))
        ids.add((singular, ast.literal_eval(match.group(3))) if match.group(1) else singular)
    return ids


def _python_ids(path: Path) -> set[object]:
    keywords = {"_": None, "gettext": None, "gettext_lazy": None, "ngettext": (1, 2)}
    with path.open("rb") as f:
        found = extract_python(f, keywords, [], {})
        return {
            message if isinstance(message, str) else tuple(message) for _, _, message, _ in found
        }


def test_every_string_of_the_pages_is_in_the_chinese_catalogue() -> None:
    catalog = _catalog()
    wanted: set[object] = set()
    for directory in TEMPLATE_DIRS:
        for template in directory.rglob("*.html"):
            wanted |= _template_ids(template)
    for source in PYTHON_SOURCES:
        wanted |= _python_ids(source)
    assert len(wanted) > 250
    assert sorted(map(str, wanted - set(catalog))) == []


def test_every_entry_is_translated_and_none_is_fuzzy() -> None:
    for msgid, message in _catalog().items():
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated: {msgid!r}"
        assert not message.fuzzy, f"fuzzy: {msgid!r}"
        placeholders = set(re.findall(r"%\(\w+\)s", str(msgid)))
        assert placeholders == set(re.findall(r"%\(\w+\)s", strings[0])), msgid


def test_the_compiled_catalogue_matches_its_source() -> None:
    with (LOCALE / "django.mo").open("rb") as f:
        compiled = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
    source = {_key(msgid): _key(m.string) for msgid, m in _catalog().items()}
    assert compiled == source, "run: python manage.py compilemessages -l zh_Hans"


@pytest.mark.django_db
def test_the_browser_language_chooses_chinese(world: World) -> None:
    body = Client(HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").get("/accounts/login/").content.decode()
    assert '<html lang="zh-hans">' in body
    assert "用户名" in body and "登录" in body


@pytest.mark.django_db
def test_the_switcher_sets_the_language_for_the_next_pages(world: World) -> None:
    client = login(world.agent_user)
    world.order("12345.67")
    assert "Orders you can finance" in client.get("/").content.decode()
    response = client.post("/accounts/language/", {"language": "zh-hans", "next": "/orders/"})
    assert response.status_code == 302 and response["Location"] == "/orders/"
    body = client.get("/orders/").content.decode()
    assert "为此订单融资" in body  # "Finance this order"
    assert "最高可融 ¥9,876.53" in body  # the offer, formatted the Chinese way
    assert client.get("/").content.decode().count("可融资的订单") == 1
    client.post("/accounts/language/", {"language": "en", "next": "/"})
    assert "Orders you can finance" in client.get("/").content.decode()


@pytest.mark.django_db
def test_error_pages_and_role_words_are_translated(world: World) -> None:
    client = login(world.agent_user)
    client.post("/accounts/language/", {"language": "zh-hans"})
    body = client.get("/reviews/").content.decode()
    assert "此页面仅供银行员工使用。" in body
    assert "您当前以 agent.one（经销商）身份登录。" in body


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "CN¥1,234,567.50"), ("zh-hans", "¥1,234,567.50")],
)
def test_amounts_are_formatted_per_locale_with_their_currency(language: str, expected: str) -> None:
    with translation.override(language):
        assert money(Decimal("1234567.5"), "CNY") == expected
        assert money(None, "CNY") == ""
        assert money(1.5, "CNY") == ""  # never a float
        assert money("12.30", "USD").endswith("12.30")
        assert percent(Decimal("0.045"), 3) == "4.5%"
