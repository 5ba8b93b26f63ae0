"""The audit trail for bank staff: who changed what, with names, links, filters, pages and CSV.

Reads are ``lending.selectors.audit``. The filters (action, object, actor, dates in the platform's
time zone) are the same for the page and its CSV, which streams every matching row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from orders.models import User
from orders.templatetags.scf_format import role_label
from orders.views import BANK_STAFF, role_required

from ..selectors.audit import (
    NAMERS,
    AuditEntry,
    AuditFilters,
    audit_entries,
    audit_entries_all,
    audit_trail,
    object_type_name,
)
from .common import page_of, query_without_page, web_user
from .dashboard import _csv, _text
from .words.audit import AUDIT_ACTIONS, audit_action, change_text

AUDIT_PAGE = 50


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=64)
    object_type = forms.CharField(required=False, max_length=64)
    object_id = forms.CharField(required=False, max_length=64)
    actor = forms.CharField(required=False, max_length=100)
    date_from = forms.DateField(required=False, label=gettext_lazy("From"))
    date_to = forms.DateField(required=False, label=gettext_lazy("To"))


def _filters(request: HttpRequest) -> tuple[AuditFilterForm, AuditFilters]:
    """The filters asked for; a value that does not parse (a bad date) is left out and shown."""
    form = AuditFilterForm(request.GET)
    form.is_valid()
    values = {name: form.cleaned_data.get(name) for name in form.fields if name not in form.errors}
    text = {k: (v or "").strip() for k, v in values.items() if not k.startswith("date_")}
    return form, AuditFilters(
        **text, date_from=values.get("date_from"), date_to=values.get("date_to")
    )


def _link(entry: AuditEntry, user: User) -> str:
    """The object's own page when the viewer may open it, else its history in the trail."""
    target = entry.target
    if target is not None and (user.is_staff or not target.staff_only):
        return reverse(target.url_name, args=[target.arg])
    query = urlencode({"object_type": entry.row.object_type, "object_id": entry.row.object_id})
    return f"{reverse('web:audit')}?{query}"


def _actor(entry: AuditEntry) -> str:
    if not entry.actor_name:
        return _("System")
    return f"{entry.actor_name} ({role_label(entry.actor_role)})"


def _change_text(entry: AuditEntry) -> str:
    return "; ".join(change_text(key, value) for key, value in entry.changes)


@require_GET
@role_required(*BANK_STAFF)
def audit_trail_page(request: HttpRequest) -> HttpResponse:
    """Who changed what, newest first, 50 to a page, with names and links."""
    form, filters = _filters(request)
    page = page_of(request, audit_trail(user=web_user(request), filters=filters), AUDIT_PAGE)
    user = web_user(request)
    rows: list[dict[str, Any]] = [
        {
            "entry": entry,
            "actor": _actor(entry),
            "action": audit_action(entry.row.action),
            "link": _link(entry, user),
            "change": _change_text(entry),
        }
        for entry in audit_entries(page.object_list)
    ]
    context = {
        "page": page,
        "rows": rows,
        "form": form,
        "filters": filters,
        "actions": sorted(
            ((code, str(words)) for code, words in AUDIT_ACTIONS.items()), key=lambda a: a[1]
        ),
        "custom_action": "" if filters.action in AUDIT_ACTIONS else filters.action,
        "object_types": [(code, str(capfirst(object_type_name(code)))) for code in NAMERS],
        "query": query_without_page(request),
        "time_zone": timezone.get_current_timezone_name(),
    }
    return render(request, "lending/audit.html", context)


def _csv_rows(entries: Iterator[AuditEntry]) -> Iterator[list[Any]]:
    for entry in entries:
        row = entry.row
        yield [
            timezone.localtime(row.created_at).isoformat(timespec="seconds"),
            _text(_actor(entry)),
            _text(audit_action(row.action)),
            row.action,
            _text(str(capfirst(entry.type_name))),
            _text(entry.object_name),
            row.object_id,
            _text(_change_text(entry)),
            _text(row.note),
        ]


@require_GET
@role_required(*BANK_STAFF)
def audit_trail_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every row the page's filters match, as CSV in the platform's local time (streamed)."""
    filters = _filters(request)[1]
    header = [
        _("When (%(zone)s)") % {"zone": timezone.get_current_timezone_name()},
        _("Who"),
        _("Action"),
        _("Action code"),
        _("Object type"),
        _("Object"),
        _("Object id"),
        _("What changed"),
        _("Note"),
    ]
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    rows = _csv_rows(audit_entries_all(audit_trail(user=web_user(request), filters=filters)))
    return _csv(f"audit-{stamp}.csv", header, rows)
