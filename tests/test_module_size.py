"""No module of the project's packages grows past ~400 lines (migrations aside).

A module that passes the bound is split by sub-domain (docs/architecture.md lists the layout),
not trimmed of blank lines: the bound keeps each module one a reader can hold in mind.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scf", "orders", "lending", "integrations")
MAX_LINES = 400


def module_sizes() -> dict[str, int]:
    sizes = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.relative_to(ROOT).parts:
                continue
            lines = path.read_text(encoding="utf-8").count("\n")
            sizes[path.relative_to(ROOT).as_posix()] = lines
    return sizes


def test_the_scan_sees_every_package() -> None:
    sizes = module_sizes()
    assert {name.split("/", 1)[0] for name in sizes} == set(PACKAGES)
    assert "lending/models/__init__.py" in sizes
    assert not any("/migrations/" in name for name in sizes)


def test_no_module_is_over_the_bound() -> None:
    over = {name: n for name, n in module_sizes().items() if n > MAX_LINES}
    assert over == {}, "split these by sub-domain: " + ", ".join(
        f"{name} ({n} lines)" for name, n in sorted(over.items())
    )
