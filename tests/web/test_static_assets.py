"""Front-end assets are ours: every vendored file matches its pinned SHA-256, pages load them
from our static files, and no template points at another host (the pages work offline)."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib.staticfiles import finders

from tests.web.conftest import ROOT, World, login

VENDOR = ROOT / "static" / "vendor"
SUMS = VENDOR / "SHA256SUMS"
TEMPLATES = [*ROOT.glob("orders/templates/**/*.html"), *ROOT.glob("lending/templates/**/*.html")]


def _pinned() -> dict[str, str]:
    pinned: dict[str, str] = {}
    for line in SUMS.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        assert re.fullmatch(r"[0-9a-f]{64}", digest), line
        pinned[name.lstrip("*")] = digest
    return pinned


def test_every_vendored_file_matches_its_pinned_checksum() -> None:
    pinned = _pinned()
    on_disk = {
        path.relative_to(VENDOR).as_posix() for path in VENDOR.rglob("*") if path.is_file()
    } - {"SHA256SUMS"}
    assert on_disk == set(pinned), "a vendored file is missing from SHA256SUMS, or gone"
    for name, digest in pinned.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_the_three_libraries_are_vendored() -> None:
    names = set(_pinned())
    assert {"htmx/htmx.min.js", "pico/pico.min.css", "chartjs/chart.umd.min.js"} <= names
    assert b"htmx" in (VENDOR / "htmx/htmx.min.js").read_bytes()[:4000]
    assert b"Chart.js v4" in (VENDOR / "chartjs/chart.umd.min.js").read_bytes()[:200]
    assert b"Pico CSS" in (VENDOR / "pico/pico.min.css").read_bytes()[:200]


def test_static_finders_serve_the_vendored_files() -> None:
    for name in ("vendor/htmx/htmx.min.js", "vendor/pico/pico.min.css", "web/app.css"):
        assert finders.find(name), name


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_load_nothing_from_other_hosts(template: object) -> None:
    text = template.read_text(encoding="utf-8")  # type: ignore[attr-defined]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), template
    assert "@import" not in text


@pytest.mark.django_db
def test_pages_reference_only_our_static_files(world: World) -> None:
    body = login(world.enterprise_admin).get(f"/dashboard/{world.program.pk}/").content.decode()
    assets = re.findall(r"""(?:src|href)="([^"]+\.(?:js|css))\"""", body)
    assert set(assets) == {
        "/static/vendor/pico/pico.min.css",
        "/static/web/app.css",
        "/static/vendor/htmx/htmx.min.js",
        "/static/web/app.js",
        "/static/vendor/chartjs/chart.umd.min.js",
        "/static/web/dashboard.js",
    }
