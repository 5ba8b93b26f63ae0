"""No query is written in a view or an API module: reads live in the app's selectors, writes in
its services, and views and APIs only call them (docs/architecture.md, "Where reads live").

The scan parses every view and API module of ``orders``, ``lending`` and ``integrations`` and
refuses what builds or runs a query there: a manager (``.objects``), a queryset method
(``.filter(``, ``.annotate(``, ``select_related`` ...), a model write (``.save(``), a raw cursor,
and imports of Django's query expressions or connections. Evaluating what a selector returned
(iterating, slicing, paginating, ``.iterator(``) is not writing a query and is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("orders", "lending", "integrations")

# Methods that compose or run a query on a manager, a queryset or a model instance.
QUERY_METHODS = frozenset(
    {
        "aggregate",
        "alias",
        "all",
        "annotate",
        "bulk_create",
        "bulk_update",
        "cursor",
        "defer",
        "delete",
        "distinct",
        "exclude",
        "exists",
        "extra",
        "filter",
        "get_or_create",
        "only",
        "order_by",
        "prefetch_related",
        "raw",
        "refresh_from_db",
        "save",
        "select_for_update",
        "select_related",
        "update_or_create",
        "values",
        "values_list",
    }
)
# Attributes that reach a model's manager.
MANAGERS = frozenset({"objects", "_default_manager", "_base_manager"})
# ``dict.values()`` and ``QueryDict.values()`` take no argument; a queryset's ``values(...)``
# naming fields does. A bare ``.values()`` is therefore allowed.
NO_ARGUMENT_IS_NOT_A_QUERY = frozenset({"values"})
# What a view or an API may import from ``django.db.models``: types for annotations.
TYPES_ONLY = frozenset({"QuerySet", "Model"})
# (module, line's call) -> why it is not a query. Keep this short.
ALLOWED: dict[tuple[str, str], str] = {}


def view_modules() -> list[Path]:
    """Every module that serves requests: ``views.py`` / ``apis.py`` and the ``views/`` and
    ``apis/`` packages of each app, at any depth (``integrations/feed/apis.py``)."""
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts:
                continue
            if path.stem in ("views", "apis") or "views" in parts[:-1] or "apis" in parts[:-1]:
                found.append(path)
    return found


def queries(source: str) -> list[str]:
    """What in ``source`` writes a query, as ``line: what``, by line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in MANAGERS:
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            bare = not node.args and not node.keywords
            if name in QUERY_METHODS and not (name in NO_ARGUMENT_IS_NOT_A_QUERY and bare):
                found.append((node.lineno, f".{name}("))
        elif isinstance(node, ast.ImportFrom) and node.module in ("django.db", "django.db.models"):
            names = {alias.name for alias in node.names}
            if node.module == "django.db":
                names &= {"connection", "connections", "models"}
            else:
                names -= TYPES_ONLY
            found.extend((node.lineno, f"from {node.module} import {n}") for n in sorted(names))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "django.db.models."
        ):
            found.append((node.lineno, f"from {node.module} import ..."))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_the_scanner_sees_every_kind_of_query():
    source = (
        "from django.db import connection, transaction\n"
        "from django.db.models import Count, QuerySet\n"
        "from django.db.models.functions import Coalesce\n"
        "a = Loan.objects.get(pk=1)\n"
        "b = loan_list(user=u).filter(program_id=1).order_by('id')\n"
        "c = lines.select_related('agent').annotate(n=Count('pk')).aggregate(t=Sum('x'))\n"
        "d = rows.values('id')\n"
        "line.refresh_from_db(fields=['frozen'])\n"
        "connection.cursor()\n"
        "e = Model._default_manager.all()\n"
    )
    assert queries(source) == [
        "1: from django.db import connection",
        "2: from django.db.models import Count",
        "3: from django.db.models.functions import ...",
        "4: .objects",
        "5: .filter(",
        "5: .order_by(",
        "6: .aggregate(",
        "6: .annotate(",
        "6: .select_related(",
        "7: .values(",
        "8: .refresh_from_db(",
        "9: .cursor(",
        "10: ._default_manager",
        "10: .all(",
    ]
    fine = (
        "from django.db import transaction\n"
        "from django.db.models import QuerySet\n"
        "x = {k: v for k, v in form.errors.values()}\n"
        "page = paginator.paginate_queryset(loan_list(user=u), request)\n"
        "rows = (row for row in orders.iterator(chunk_size=2000))\n"
        "value = request.GET.get('q', '')\n"
    )
    assert queries(fine) == []


def test_the_scan_covers_the_view_and_api_modules():
    names = {path.relative_to(ROOT).as_posix() for path in view_modules()}
    expected = {
        "orders/views.py",
        "lending/views/portal.py",
        "lending/views/dashboard.py",
        "lending/views/reviews.py",
        "lending/apis/loans.py",
        "lending/apis/repayments.py",
        "integrations/feed/apis.py",
    }
    assert expected <= names, expected - names


def test_no_query_is_written_in_a_view_or_an_api_module():
    unexpected = {}
    for path in view_modules():
        name = path.relative_to(ROOT).as_posix()
        found = [q for q in queries(path.read_text(encoding="utf-8")) if (name, q) not in ALLOWED]
        if found:
            unexpected[name] = found
    assert unexpected == {}, (
        "a query in a view or an API module: move it to the app's selectors (reads) or "
        "services (writes), or allow-list it with a reason:\n"
        + "\n".join(f"  {name}: {', '.join(found)}" for name, found in sorted(unexpected.items()))
    )
