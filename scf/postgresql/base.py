"""Django's PostgreSQL backend, whose sessions plan a prepared statement once and whose
triggers find ``pgtrigger.ignore`` set.

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

Every trigger django-pgtrigger installs (the ledger's balance check on each journal line, the
append-only guards) first reads the ``pgtrigger.ignore`` setting inside an exception block. A
session that never set it raises and catches an error there on every row: a subtransaction per
journal line, which in a batch of thousands of lines (COB, a bank file's repayments) overflows
PostgreSQL's subtransaction cache and makes the commit's deferred checks slow. The session
therefore starts with the setting present and empty (nothing ignored; ``pgtrigger.ignore()`` still
works on top of it). Startup options go only to a direct connection: behind PgBouncer's
transaction mode, where ``SCF_PREPARED_STATEMENTS`` is off, the pooler refuses them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base

GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"
TRIGGERS_IGNORE_NOTHING = "-c pgtrigger.ignore={}"


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if not settings.SCF_PREPARED_STATEMENTS:
            return params
        options = [params.get("options", ""), TRIGGERS_IGNORE_NOTHING]
        if settings.SCF_GENERIC_PLANS:
            options.append(GENERIC_PLANS)
        params["options"] = " ".join(o for o in options if o)
        return params
