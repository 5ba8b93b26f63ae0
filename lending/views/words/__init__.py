"""Plain, translatable words for the stable codes the services use, by domain: ``statuses``
(loans, reviews, payments, accounts, parties, sort orders), ``decisions`` (the engine's reasons,
rules and inputs), ``reviews`` (decline reasons, case notes, refusals) and ``audit`` (actions and
changes).

Only words live here: which status or reason applies is always decided by the services. An
unknown code (one added later) falls back to its stored English detail or to the code itself.
"""

from __future__ import annotations

from typing import Any


def word(table: dict[str, Any], code: str, fallback: str = "") -> str:
    """The words for ``code`` in the active language, else ``fallback``, else the code."""
    found = table.get(code)
    return str(found) if found is not None else (fallback or code)
