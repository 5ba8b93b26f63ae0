"""Settings defaults live only in ``scf/settings/base.py``: code reads ``settings.X``.

A ``getattr(settings, "X", default)`` elsewhere repeats a default that base.py already holds, and
the two drift apart. The scan parses every module of the project's packages (migrations aside)
and refuses a ``getattr`` on the settings object with a default; ``getattr(settings, name)``
without one (a setting named by a view, say) is a read, not a second default.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scf", "orders", "lending", "integrations")


def _is_settings(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id.endswith("settings")
    return isinstance(node, ast.Attribute) and node.attr.endswith("settings")


def defaults_in(source: str) -> list[int]:
    """Lines of ``getattr(<settings>, name, default)`` calls in ``source``."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and node.args
        and _is_settings(node.args[0])
        and (len(node.args) >= 3 or any(k.arg == "default" for k in node.keywords))
    ]


def test_the_scan_sees_a_default() -> None:
    source = (
        "from django.conf import settings\n"
        'a = getattr(settings, "X", 3)\n'
        "b = getattr(settings, name)\n"
        "c = settings.Y\n"
        'd = getattr(django_settings, "Z", None)\n'
        'e = getattr(user, "role", None)\n'
    )
    assert defaults_in(source) == [2, 5]


def test_no_settings_default_outside_base() -> None:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if "migrations" in path.parts or name.startswith("scf/settings/"):
                continue
            lines = defaults_in(path.read_text(encoding="utf-8"))
            if lines:
                found[name] = lines
    assert found == {}, f"define the default in scf/settings/base.py and read settings.X: {found}"
