"""The dashboard's agent exposure table: its filter (search, grade, frozen), sort and columns.

The table's rows are the dashboard's lines (``program_dashboard``, already loaded in one query);
the filter and the sort work on them in Python. The CSV exports keep the same agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..models import CreditLine, Grade

SORT_KEYS = {
    "agent": lambda line: line.agent.code,
    "grade": lambda line: line.risk_grade,
    "limit": lambda line: line.limit,
    "outstanding": lambda line: line.outstanding_principal,
    "reserved": lambda line: line.reserved,
    "exposure": lambda line: line.exposure,
    "available": lambda line: line.available,
    "loans": lambda line: line.loan_count,
    "dpd": lambda line: line.max_dpd,
}


@dataclass(frozen=True)
class ExposureFilter:
    query: str = ""
    grade: str = ""
    frozen: str = ""  # "", "yes", "no"
    sort: str = "exposure"
    descending: bool = True

    @property
    def narrows(self) -> bool:
        """Whether the filter leaves some agents out (the sort order does not)."""
        return bool(self.query.strip() or self.grade or self.frozen)

    def params(self) -> dict[str, str]:
        """The filter (not the sort) as query parameters, for the CSV exports' links."""
        values = {"q": self.query.strip(), "grade": self.grade, "frozen": self.frozen}
        return {name: value for name, value in values.items() if value}

    def matches(self, line: CreditLine) -> bool:
        needle = self.query.strip().casefold()
        return (
            (not needle or needle in f"{line.agent.code} {line.agent.name}".casefold())
            and (not self.grade or line.risk_grade == self.grade)
            and (not self.frozen or line.frozen == (self.frozen == "yes"))
        )

    def apply(self, lines: list[CreditLine]) -> list[CreditLine]:
        """Filter and sort the dashboard's lines (already loaded in one query)."""
        key = SORT_KEYS.get(self.sort, SORT_KEYS["exposure"])
        return sorted(filter(self.matches, lines), key=key, reverse=self.descending)

    def agent_ids(self, lines: list[CreditLine]) -> list[int]:
        """The agents of ``lines`` the filter keeps."""
        return [line.agent_id for line in lines if self.matches(line)]


def exposure_filter(request: HttpRequest) -> ExposureFilter:
    params = request.GET
    grade = params.get("grade", "")
    frozen = params.get("frozen", "")
    sort = params.get("sort", "exposure")
    return ExposureFilter(
        query=params.get("q", "")[:100],
        grade=grade if grade in Grade.values else "",
        frozen=frozen if frozen in ("yes", "no") else "",
        sort=sort if sort in SORT_KEYS else "exposure",
        descending=params.get("dir", "desc") != "asc",
    )


# (sort key, heading, CSS classes); the text columns sort A-Z first, the figures largest first.
COLUMNS: tuple[tuple[str, Any, str], ...] = (
    ("agent", _("Agent"), ""),
    ("grade", _("Grade"), ""),
    ("limit", _("Limit"), "amount hide-phone"),
    ("outstanding", _("Outstanding"), "amount"),
    ("reserved", _("Reserved"), "amount hide-phone"),
    ("exposure", _("Exposure"), "amount"),
    ("available", _("Available"), "amount"),
    ("loans", _("Live loans"), "amount"),
    ("dpd", _("Max DPD"), "amount"),
)


def exposure_columns(request: HttpRequest, filters: ExposureFilter) -> list[dict[str, Any]]:
    """Column headings with the link that sorts by them (again: the other way round)."""
    columns = []
    for key, label, css in COLUMNS:
        params = request.GET.copy()
        params.pop("page", None)
        current = filters.sort == key
        ascending = filters.descending if current else key in ("agent", "grade")
        params["sort"], params["dir"] = key, "asc" if ascending else "desc"
        arrow = ("↓" if filters.descending else "↑") if current else ""
        columns.append(
            {
                "key": key,
                "label": label,
                "css": css,
                "url": f"?{params.urlencode()}",
                "arrow": arrow,
            }
        )
    return columns
