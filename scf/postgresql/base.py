"""Django's PostgreSQL backend, whose sessions plan a prepared statement once.

With ``SCF_PREPARED_STATEMENTS`` (``scf.hotpath.execute_prepared``) and ``SCF_GENERIC_PLANS`` the
session starts with ``plan_cache_mode = force_generic_plan``: a prepared statement is then planned
once per session, not at every execution. Left to choose, PostgreSQL keeps planning the finance
click's statements afresh each time (their generic plans' estimates look dearer than the custom
plans', though both are the same index lookups by id and key). The setting only touches prepared
statements and the plans PostgreSQL caches for SPI (triggers, foreign key checks); Django's own
queries are planned once each anyway. Sent as a startup option, so it costs no round trip. Its
measured effect is in docs/performance.md (decision log).

A generic plan is made from the statistics of its moment and kept for the session until the
tables it reads are analyzed again. On a new database, whose loans table is empty, the click's
checks of that table are planned as sequential scans, which grow dearer with every loan.
autovacuum analyzes a table that has grown from empty within a minute or so
(``autovacuum_naptime``), and the analyze invalidates those plans: keep autovacuum on, and
``ANALYZE`` after loading or restoring a database.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base

GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if settings.SCF_PREPARED_STATEMENTS and settings.SCF_GENERIC_PLANS:
            params["options"] = f"{params.get('options', '')} {GENERIC_PLANS}".strip()
        return params
