"""Row locks live in ``lending.locks``: no other module of ``lending`` writes a lock itself, so the
one lock order documented there is the order every service follows."""

from __future__ import annotations

import re
from pathlib import Path

import lending
from lending import locks

LENDING = Path(lending.__file__).parent
# The ORM's lock, and the SQL clause in any case or spacing (``FOR UPDATE``, ``for  update``).
LOCKING = re.compile(r"select_for_update|\bfor\s+(no\s+key\s+)?update\b|\bfor\s+share\b", re.I)


def _offenders() -> list[str]:
    found = []
    for path in sorted(LENDING.rglob("*.py")):
        if path == Path(locks.__file__) or "migrations" in path.parts:
            continue
        text = path.read_text()
        for match in LOCKING.finditer(text):  # a clause may run over two lines
            number = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(LENDING.parent)}:{number}: {match.group()}")
    return found


def test_no_module_of_lending_but_locks_takes_a_row_lock() -> None:
    assert _offenders() == []


def test_the_check_sees_a_lock_written_in_the_orm_or_in_sql() -> None:
    assert LOCKING.search("Loan.objects.select_for_update().get(pk=1)")
    assert LOCKING.search('f"SELECT id FROM t WHERE id = %s FOR UPDATE OF t"')
    assert LOCKING.search("select 1 from t for  no key update")
    assert LOCKING.search("Locks the loan (``SELECT ... FOR\n    UPDATE``)")
    assert not LOCKING.search("locks the row it changes (``lending.locks``)")
