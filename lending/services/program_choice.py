"""Which program finances an order when the agent names one: several banks may run programs with
the order's enterprise, and the agent may hold a line in more than one (the quote's offers).

A finance request may carry ``{"program": id}``. The program must be one of the order's
enterprise's and the agent must have a line in it, else the request is refused with a 404
(``program_not_offered``) before anything is written; whether the program can lend now (its
status, its currency, its headroom) is the engine's to decide, as for the default choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orders.models import SalesOrder
from scf.errors import NotFound, ValidationFailed

from ..locks import lines_locked
from ..models import CreditLine

BIGINT_MAX = 2**63 - 1


class ProgramNotOffered(NotFound):
    code = "program_not_offered"


def program_param(body: Mapping[str, Any]) -> int | None:
    """The ``program`` a finance request names (``None`` when it names none); 422 when it is
    not a program id."""
    value = body.get("program")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValidationFailed(
            "The program must be a program id.", fields={"program": ["A program id is required."]}
        )
    return int(value)


def chosen_line(order: SalesOrder, program_id: int, *, lock: bool) -> CreditLine:
    """The agent's line in the named program (locked when ``lock``, ``lending.locks`` step 6:
    the order is locked already, the program later by the write), with its program and the
    program's enterprise."""
    lines = CreditLine.objects.filter(
        agent_id=order.agent_id,
        program_id=program_id if 0 < program_id <= BIGINT_MAX else 0,
        program__enterprise_id=order.enterprise_id,
    ).select_related("program__enterprise")
    line = (lines_locked(lines) if lock else lines).first()
    if line is None:
        raise ProgramNotOffered("This order has no offer from that program.")
    return line
