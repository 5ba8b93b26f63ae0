"""Django's PostgreSQL backend, with a cheaper check of a persistent connection.

With ``CONN_HEALTH_CHECKS`` Django checks a reused connection at the first query of every request
by sending ``SELECT 1``: one more round trip, and one more statement for PostgreSQL, on every
request (on the finance click, a noticeable share of a web worker's time). A connection that is idle
between requests has nothing to read; when the server ends it (a restart, an administrator's
``pg_terminate_backend``, an idle timeout) it sends its FATAL notice and closes the socket, which
then reads as ready. So: an idle connection whose socket has nothing to read is usable, with no
query; one with something to read, or in any other state, gets Django's own ``SELECT 1``.

A peer that vanished without closing (a network partition) is not seen by either check until the
TCP keepalives set in the settings give up; the statement timeout and the 503 handling cover it.

With ``SCF_PREPARED_STATEMENTS`` (``scf.sql.execute_prepared``) the session also starts with
``plan_cache_mode = force_generic_plan``: a prepared statement is then planned once per session,
not at every execution. Left to choose, PostgreSQL kept planning the finance click's statements
afresh each time (their generic plans' estimates looked dearer than the custom plans', though both
are the same index lookups by id and key), a large share of PostgreSQL's CPU per click
(docs/performance.md). The setting only touches prepared statements, and the plans
PostgreSQL caches for SPI (triggers, foreign key checks); Django's own queries are planned once
each anyway. Sent as a startup option, so it costs no round trip.

A generic plan is made from the statistics of its moment and kept for the session until the
tables it reads are analyzed again. On a new database, whose loans table is empty, the click's
checks of that table are planned as sequential scans, which grow dearer with every loan.
autovacuum analyzes a table that has grown from empty within a minute or so
(``autovacuum_naptime``), and the analyze invalidates those plans: keep autovacuum on, and
``ANALYZE`` after loading or restoring a database.
"""

from __future__ import annotations

import select
from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if settings.SCF_PREPARED_STATEMENTS:
            params["options"] = f"{params.get('options', '')} {GENERIC_PLANS}".strip()
        return params

    def is_usable(self) -> bool:
        raw = self.connection
        if raw is None or raw.closed:
            return False
        if raw.info.transaction_status == TRANSACTION_STATUS_IDLE:
            # poll, not select: no limit on the descriptor's number (select stops at 1024).
            poller = select.poll()
            try:
                poller.register(raw.fileno(), select.POLLIN | select.POLLPRI)
                events = poller.poll(0)
            except (OSError, ValueError):  # the descriptor is gone
                return False
            if not events:
                return True
        return bool(super().is_usable())
