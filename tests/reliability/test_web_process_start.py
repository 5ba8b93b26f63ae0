"""A web process is ready before its first request: every view imported, the heap frozen for the
garbage collector (``scf.warmup``, run by ``scf.wsgi``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import gc, json, sys
import scf.wsgi
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "finance_view": "lending.apis.finance" in sys.modules,
}))
"""


def start(**env: str) -> dict[str, object]:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "scf.settings.test", **env}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_wsgi_module_imports_every_view_and_freezes_the_heap() -> None:
    state = start()
    assert state["finance_view"] is True
    assert int(state["frozen"]) > 20_000  # Django, DRF, Celery and the app's modules


def test_the_freeze_can_be_turned_off() -> None:
    state = start(GC_FREEZE_AT_START="false")
    assert state["finance_view"] is True
    assert state["frozen"] == 0
