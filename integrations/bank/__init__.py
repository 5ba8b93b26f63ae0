"""The bank payment rail: the ``BankAdapter`` interface, the sandbox bank, and disbursement.

``bank_adapter()`` returns the adapter named by ``settings.BANK_ADAPTER`` (a dotted path to a
class constructed with no arguments; default the sandbox). One instance is kept per process and
configuration, so a seeded sandbox draws one reproducible sequence of faults.
"""

from __future__ import annotations

import json
import threading

from django.conf import settings
from django.utils.module_loading import import_string

from .interface import BankAdapter

_adapters: dict[tuple[str, str], BankAdapter] = {}
_adapters_lock = threading.Lock()


def bank_adapter() -> BankAdapter:
    """The configured adapter (built on first use, then shared by the process's threads)."""
    path = settings.BANK_ADAPTER
    config = json.dumps(settings.SANDBOX_BANK or {}, sort_keys=True, default=str)
    key = (path, config)
    with _adapters_lock:
        adapter = _adapters.get(key)
        if adapter is None:
            adapter = import_string(path)()
            _adapters[key] = adapter
    return adapter


def bank_adapter_for(bank_code: str) -> BankAdapter:
    """The adapter of one bank: its file rail when ``settings.BANK_RAILS`` says ``"files"``,
    else the configured adapter (``bank_adapter()``)."""
    from .files import FILES_RAIL, rail_of
    from .files.adapter import FileBank

    if rail_of(bank_code) == FILES_RAIL:
        return FileBank(bank_code)
    return bank_adapter()
