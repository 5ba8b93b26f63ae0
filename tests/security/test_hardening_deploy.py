"""``manage.py check --deploy`` is clean with the production settings (warnings fail it)."""

from __future__ import annotations

import importlib
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]


def deploy_check(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scf.settings.production",
        "DJANGO_ALLOWED_HOSTS": "scf.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://scf.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{ROOT / 'db.sqlite3'}"),
        "LOG_LEVEL": "WARNING",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = deploy_check(DJANGO_SECRET_KEY=secrets.token_urlsafe(64))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_fails_on_a_weak_secret_key() -> None:
    """The same command does fail when production is misconfigured."""
    result = deploy_check(DJANGO_SECRET_KEY="short-key")
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_every_cookie_is_secure_under_production_settings(monkeypatch: Any) -> None:
    """``check --deploy`` looks at the session and CSRF cookies only; the language cookie is
    set by the language switcher and must not travel over plain HTTP either."""
    monkeypatch.setenv("DJANGO_SECRET_KEY", secrets.token_urlsafe(64))
    production = importlib.reload(importlib.import_module("scf.settings.production"))
    flags = ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "LANGUAGE_COOKIE_SECURE")
    assert {flag: getattr(production, flag, False) for flag in flags} == dict.fromkeys(flags, True)
    with override_settings(LANGUAGE_COOKIE_SECURE=production.LANGUAGE_COOKIE_SECURE):
        response = Client().post("/accounts/language/", {"language": "zh-hans", "next": "/"})
    assert response.cookies["django_language"]["secure"] is True
