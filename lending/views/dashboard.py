"""The core-enterprise dashboard: program KPIs, charts, agent exposure, feed health, CSV export.

For enterprise admins (their own programs) and bank staff (all). Figures come from
``program_list`` / ``program_dashboard``, the selectors behind ``GET /api/v1/programs/`` and
``/programs/{id}/dashboard/``; a program the user may not see is a 404. The charts' series, the
feed's health and the exports are ``lending.selectors.dashboard`` and ``orders.selectors``.
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
from orders.selectors import feed_event_list, feed_health
from orders.views import BANK_STAFF, role_required
from scf.display import csv_date, csv_datetime, with_zone

from ..models import Grade, Program
from ..selectors.dashboard import (
    ProgramDashboard,
    Series,
    program_dashboard,
    program_lines,
    program_loans_export,
    program_orders_export,
    utilisation_series,
)
from ..selectors.programs import program_list, program_visible_to
from .common import page_of, query_without_page, web_user
from .exposure import exposure_columns, exposure_filter

DASHBOARD_ROLES = (Role.ENTERPRISE_ADMIN, *BANK_STAFF)
EXPOSURE_PAGE = 50
CSV_CHUNK = 2000
TOP_AGENTS = 10


@require_GET
@role_required(*DASHBOARD_ROLES)
def dashboard_home(request: HttpRequest) -> HttpResponse:
    """The user's programs with headline figures; straight to the dashboard when there is one."""
    programs = list(program_list(user=web_user(request)))
    if len(programs) == 1:
        return redirect("web:program-dashboard", program_id=programs[0].pk)
    return render(request, "lending/programs.html", {"programs": programs})


def chart_data(dashboard: ProgramDashboard, series: Series) -> dict[str, Any]:
    """Everything the three charts draw, as JSON-safe values (amounts as strings; Chart.js reads
    them as numbers)."""
    top = [line for line in dashboard.agents if line.exposure > 0][:TOP_AGENTS]  # type: ignore[attr-defined]
    return {
        "currency": dashboard.program.currency,
        "utilisation": {
            "labels": series.labels,
            "outstanding": series.outstanding,
            "financed": series.financed,
        },
        "overdue": {
            "labels": [bucket.bucket for bucket in dashboard.overdue],
            "outstanding": [f"{bucket.outstanding:.2f}" for bucket in dashboard.overdue],
            "counts": [bucket.count for bucket in dashboard.overdue],
        },
        "agents": {
            "labels": [line.agent.code for line in top],
            "names": [line.agent.name for line in top],
            "outstanding": [f"{line.outstanding_principal:.2f}" for line in top],
            "reserved": [f"{line.reserved:.2f}" for line in top],
        },
    }


@require_GET
@role_required(*DASHBOARD_ROLES)
def program_dashboard_page(request: HttpRequest, program_id: int) -> HttpResponse:
    dashboard = program_dashboard(user=web_user(request), program_id=program_id)
    if dashboard is None:
        raise Http404
    filters = exposure_filter(request)
    context: dict[str, Any] = {
        "dashboard": dashboard,
        "program": dashboard.program,
        "filters": filters,
        "grades": Grade.values,
        "columns": exposure_columns(request, filters),
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
    events = feed_event_list(enterprise_id=dashboard.program.enterprise_id)
    context["feed"] = feed_health(events=events)
    return render(request, "lending/dashboard.html", context)


def _program_or_404(request: HttpRequest, program_id: int) -> Program:
    program = program_visible_to(user=web_user(request), program_id=program_id)
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


def _agent_ids(request: HttpRequest, program: Program) -> list[int] | None:
    """The agents the dashboard's filter shows (its ``q``, ``grade``, ``frozen``); ``None``, and
    no query, when it shows them all."""
    filters = exposure_filter(request)
    return filters.agent_ids(program_lines(program=program)) if filters.narrows else None


@require_GET
@role_required(*DASHBOARD_ROLES)
def export_orders(request: HttpRequest, program_id: int) -> StreamingHttpResponse:
    """The program's enterprise's orders in its currency, of the agents the page's filter
    shows, as CSV (streamed, any size): headings in words, times in the local zone."""
    program = _program_or_404(request, program_id)
    orders = program_orders_export(
        user=web_user(request), program=program, agent_ids=_agent_ids(request, program)
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
        for o in orders.iterator(chunk_size=CSV_CHUNK)
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
    loans = program_loans_export(
        user=web_user(request), program=program, agent_ids=_agent_ids(request, program)
    )
    header = [
        with_zone(str(label)) if field in MOMENTS else str(label) for label, field in LOAN_COLUMNS
    ]
    rows = (_loan_row(loan) for loan in loans.iterator(chunk_size=CSV_CHUNK))
    return _csv(f"loans-{program.code}-{_stamp()}.csv", header, rows)
