"""The core-enterprise dashboard: program KPIs, charts, agent exposure, feed health, CSV export.

For enterprise admins (their own programs) and bank staff (all). Figures come from
``program_list`` / ``program_dashboard``, the selectors behind ``GET /api/v1/programs/`` and
``/programs/{id}/dashboard/``; a program the user may not see is a 404.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from orders.models import Role
from orders.selectors import order_list
from orders.views import BANK_STAFF, role_required
from scf.display import csv_date, csv_datetime, with_zone

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
        "export_query": urlencode(filters.params()),
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


def _filtered(request: HttpRequest, program: Program, rows: Any) -> Any:
    """The rows of the agents the dashboard's filter shows (its ``q``, ``grade``, ``frozen``)."""
    agent_ids = _exposure_filter(request).agent_ids(program)
    return rows if agent_ids is None else rows.filter(agent_id__in=agent_ids)


@require_GET
@role_required(*DASHBOARD_ROLES)
def export_orders(request: HttpRequest, program_id: int) -> StreamingHttpResponse:
    """The program's enterprise's orders in its currency, of the agents the page's filter
    shows, as CSV (streamed, any size): headings in words, times in the local zone."""
    program = _program_or_404(request, program_id)
    orders = (
        order_list(user=web_user(request))
        .filter(enterprise_id=program.enterprise_id, currency=program.currency)
        .order_by("order_date", "id")
    )
    header = [
        gettext("Order number"),
        gettext("Agent code"),
        gettext("Agent name"),
        gettext("Amount"),
        gettext("Currency"),
        gettext("Status"),
        gettext("Order date"),
        gettext("Version"),
        with_zone(gettext("Updated at")),
    ]
    rows = (
        [
            _text(o.external_id),
            _text(o.agent.code),
            _text(o.agent.name),
            f"{o.amount:.2f}",
            o.currency,
            o.status,
            csv_date(o.order_date),
            o.version,
            csv_datetime(o.updated_at),
        ]
        for o in _filtered(request, program, orders).iterator(chunk_size=CSV_CHUNK)
    )
    return _csv(f"orders-{program.code}-{_stamp()}.csv", header, rows)


# (heading, the loan's field): money to two places, dates as ISO dates, moments in local time.
LOAN_COLUMNS: tuple[tuple[Any, str], ...] = (
    (_("Loan id"), "id"),
    (_("Reference"), "reference"),
    (_("Order number"), "order_external_id"),
    (_("Agent code"), "agent_code"),
    (_("Agent name"), "agent_name"),
    (_("Status"), "status"),
    (_("Currency"), "currency"),
    (_("Order amount"), "order_amount"),
    (_("Principal"), "principal"),
    (_("Outstanding principal"), "outstanding_principal"),
    (_("Accrued interest"), "accrued_interest"),
    (_("Penalty interest"), "accrued_penalty"),
    (_("Due date"), "due_date"),
    (_("Days past due"), "days_past_due"),
    (_("Requested at"), "requested_at"),
    (_("Approved at"), "approved_at"),
    (_("Paid out at"), "disbursed_at"),
    (_("Closed at"), "closed_at"),
)
MOMENTS = {"requested_at", "approved_at", "disbursed_at", "closed_at"}


def _loan_row(loan: Any) -> list[Any]:
    return [
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
        csv_date(loan.due_date),
        loan.days_past_due,
        csv_datetime(loan.requested_at),
        csv_datetime(loan.approved_at),
        csv_datetime(loan.disbursed_at),
        csv_datetime(loan.closed_at),
    ]


@require_GET
@role_required(*DASHBOARD_ROLES)
def export_loans(request: HttpRequest, program_id: int) -> StreamingHttpResponse:
    """The program's loans (every status) of the agents the page's filter shows, as CSV
    (streamed, any size): headings in words, times in the local zone."""
    program = _program_or_404(request, program_id)
    loans = loan_list(user=web_user(request)).filter(program_id=program.pk).order_by("id")
    header = [
        with_zone(str(label)) if field in MOMENTS else str(label) for label, field in LOAN_COLUMNS
    ]
    rows = (
        _loan_row(loan)
        for loan in _filtered(request, program, loans).iterator(chunk_size=CSV_CHUNK)
    )
    return _csv(f"loans-{program.code}-{_stamp()}.csv", header, rows)
