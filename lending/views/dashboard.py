"""The core-enterprise dashboard: program KPIs, charts, agent exposure, feed health, CSV export.

For enterprise admins (their own programs) and bank staff (all). Figures come from
``program_list`` / ``program_dashboard``, the selectors behind ``GET /api/v1/programs/`` and
``/programs/{id}/dashboard/``; a program the user may not see is a 404.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from orders.models import Role
from orders.selectors import order_list
from orders.views import BANK_STAFF, role_required

from ..models import Grade, Program
from ..program_selectors import program_dashboard, program_list, programs_visible_to
from ..selectors import loan_list
from .common import page_of, query_without_page, web_user
from .dashboard_reads import SORT_KEYS, ExposureFilter, chart_data, feed_health, utilisation_series

DASHBOARD_ROLES = (Role.ENTERPRISE_ADMIN, *BANK_STAFF)
EXPOSURE_PAGE = 50
CSV_CHUNK = 2000


@require_GET
@role_required(*DASHBOARD_ROLES)
def dashboard_home(request: HttpRequest) -> HttpResponse:
    """The user's programs with headline figures; straight to the dashboard when there is one."""
    programs = list(program_list(user=web_user(request)))
    if len(programs) == 1:
        return redirect("web:program-dashboard", program_id=programs[0].pk)
    return render(request, "lending/programs.html", {"programs": programs})


def _exposure_filter(request: HttpRequest) -> ExposureFilter:
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


def _columns(request: HttpRequest, filters: ExposureFilter) -> list[dict[str, Any]]:
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


@require_GET
@role_required(*DASHBOARD_ROLES)
def program_dashboard_page(request: HttpRequest, program_id: int) -> HttpResponse:
    dashboard = program_dashboard(user=web_user(request), program_id=program_id)
    if dashboard is None:
        raise Http404
    filters = _exposure_filter(request)
    context: dict[str, Any] = {
        "dashboard": dashboard,
        "program": dashboard.program,
        "filters": filters,
        "grades": Grade.values,
        "columns": _columns(request, filters),
        "agents": page_of(request, filters.apply(dashboard.agents), EXPOSURE_PAGE),
        "query": query_without_page(request),
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "lending/_exposure_table.html", context)
    charts = chart_data(dashboard, utilisation_series(dashboard.program))
    charts["words"] = {
        "outstanding": gettext("Outstanding"),
        "financed": gettext("Financed that day"),
        "overdue": gettext("Overdue outstanding"),
        "reserved": gettext("Reserved"),
    }
    context["charts"] = charts
    context["feed"] = feed_health(enterprise_id=dashboard.program.enterprise_id)
    return render(request, "lending/dashboard.html", context)


def _program_or_404(request: HttpRequest, program_id: int) -> Program:
    program = programs_visible_to(web_user(request)).filter(pk=program_id).first()
    if program is None:
        raise Http404
    return program


class _Echo:
    """A file-like object whose ``write`` returns the line, for streaming ``csv.writer``."""

    def write(self, value: str) -> str:
        return value


def _text(value: str) -> str:
    """Free text a spreadsheet would run as a formula is prefixed with a quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv(filename: str, header: list[str], rows: Iterable[list[Any]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff"  # a BOM, so that spreadsheet programs read the Chinese names as UTF-8
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _stamp() -> str:
    return timezone.localtime().strftime("%Y%m%d-%H%M")


@require_GET
@role_required(*DASHBOARD_ROLES)
def export_orders(request: HttpRequest, program_id: int) -> StreamingHttpResponse:
    """The program's enterprise's orders in its currency, as CSV (streamed, any size)."""
    program = _program_or_404(request, program_id)
    orders = (
        order_list(user=web_user(request))
        .filter(enterprise_id=program.enterprise_id, currency=program.currency)
        .order_by("order_date", "id")
    )
    header = ["external_id", "agent_code", "agent_name", "amount", "currency", "status"]
    header += ["order_date", "version", "updated_at"]
    rows = (
        [
            _text(o.external_id),
            _text(o.agent.code),
            _text(o.agent.name),
            f"{o.amount:.2f}",
            o.currency,
            o.status,
            o.order_date.isoformat(),
            o.version,
            o.updated_at.isoformat(),
        ]
        for o in orders.iterator(chunk_size=CSV_CHUNK)
    )
    return _csv(f"orders-{program.code}-{_stamp()}.csv", header, rows)


LOAN_COLUMNS = [
    "id",
    "reference",
    "order_external_id",
    "agent_code",
    "agent_name",
    "status",
    "currency",
    "order_amount",
    "principal",
    "outstanding_principal",
    "accrued_interest",
    "accrued_penalty",
    "due_date",
    "days_past_due",
    "requested_at",
    "approved_at",
    "disbursed_at",
    "closed_at",
]


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


@require_GET
@role_required(*DASHBOARD_ROLES)
def export_loans(request: HttpRequest, program_id: int) -> StreamingHttpResponse:
    """The program's loans (every status) as CSV (streamed, any size)."""
    program = _program_or_404(request, program_id)
    loans = loan_list(user=web_user(request)).filter(program_id=program.pk).order_by("id")
    rows = (
        [
            loan.pk,
            _text(loan.reference),
            _text(loan.order.external_id),
            _text(loan.agent.code),
            _text(loan.agent.name),
            loan.status,
            loan.currency,
            f"{loan.order_amount:.2f}",
            f"{loan.principal:.2f}",
            f"{loan.outstanding_principal:.2f}",
            f"{loan.accrued_interest:.2f}",
            f"{loan.accrued_penalty:.2f}",
            loan.due_date.isoformat(),
            loan.days_past_due,
            _iso(loan.requested_at),
            _iso(loan.approved_at),
            _iso(loan.disbursed_at),
            _iso(loan.closed_at),
        ]
        for loan in loans.iterator(chunk_size=CSV_CHUNK)
    )
    return _csv(f"loans-{program.code}-{_stamp()}.csv", LOAN_COLUMNS, rows)
