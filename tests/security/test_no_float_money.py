"""Scenario 13, the code half: no float in any money path.

An AST scan of our packages (``scf``, ``orders``, ``lending``, ``integrations``; migrations
aside) for ``float(...)`` calls, float literals, ``FloatField`` and JSON parsing that turns
numbers into floats. Each legitimate non-money use is on the allow-list below with its reason;
anything else fails, in particular a float in ``lending/services``, the APIs, ``orders`` or
``scf/money.py``. A model check makes sure no model field of our apps is a ``FloatField`` but
the scorecard's intercept.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from django.apps import apps
from django.db import models

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("scf", "orders", "lending", "integrations")
FLOAT_CALL = "float()"
FLOAT_LITERAL = "float literal"
FLOAT_FIELD = "FloatField"
JSON_FLOATS = "json parse with floats"

# (file, finding) -> why it is not money. A finding not listed here fails the test.
ALLOWED: dict[tuple[str, str], str] = {
    # Credit scoring: model features, weights of evidence, probabilities and the synthetic
    # history the scorecard trains on are statistics, not money; amounts they propose are
    # rounded back to Decimal cents where they leave the model.
    ("lending/scoring/scorecard.py", FLOAT_CALL): "scorecard statistics (numpy)",
    ("lending/scoring/scorecard.py", FLOAT_LITERAL): "scorecard statistics (numpy)",
    ("integrations/demo/history_plan.py", FLOAT_CALL): "synthetic-history randomness",
    ("integrations/demo/history_plan.py", FLOAT_LITERAL): "synthetic-history randomness",
    ("lending/scoring/training.py", FLOAT_CALL): "training metrics (AUC, KS)",
    ("lending/scoring/training.py", FLOAT_LITERAL): "training metrics (AUC, KS)",
    ("integrations/demo/history_loans.py", FLOAT_CALL): "checks a split survives a float sum",
    ("integrations/demo/history_loans.py", FLOAT_LITERAL): "checks a split survives a float sum",
    ("integrations/demo/history_rows.py", FLOAT_LITERAL): "share of volume, quality, PD",
    ("lending/models/scoring.py", FLOAT_FIELD): "CreditModel.intercept: a model coefficient",
    # Line management reads the 90-day volume feature (numpy) and formats it to Decimal cents.
    ("lending/services/line_management.py", FLOAT_LITERAL): "NaN guard of a feature",
    ("lending/services/line_changes.py", FLOAT_LITERAL): "the run's timing (seconds)",
    # Time, rates of random faults and other non-money settings.
    ("lending/selectors/reviews.py", FLOAT_LITERAL): "share of the review deadline (UI colour)",
    ("scf/settings/base.py", FLOAT_LITERAL): "timeouts and intervals in seconds",
    ("scf/metrics.py", FLOAT_LITERAL): "Prometheus histogram buckets (seconds)",
    ("lending/metrics.py", FLOAT_LITERAL): "Prometheus sample values (seconds)",
    ("scf/task_relay.py", FLOAT_LITERAL): "relay flush timeout (seconds)",
    ("integrations/bank/sandbox.py", FLOAT_LITERAL): "sandbox latency and failure rates",
    ("integrations/bank/disbursement.py", FLOAT_CALL): "lease and retry delays (seconds)",
    ("integrations/bank/disbursement.py", FLOAT_LITERAL): "lease and retry delays (seconds)",
    ("integrations/events.py", FLOAT_CALL): "delivery timeouts and backoff (seconds)",
    ("integrations/events.py", FLOAT_LITERAL): "delivery timeouts and backoff (seconds)",
    ("integrations/tasks.py", FLOAT_CALL): "sweeper age (seconds)",
    ("integrations/tasks.py", FLOAT_LITERAL): "sweeper age (seconds)",
    ("integrations/demo/parties.py", FLOAT_LITERAL): "weights of random choices in the demo data",
    ("integrations/demo/orders.py", FLOAT_LITERAL): "weights of random choices in the demo data",
    ("integrations/management/commands/feed_orders.py", FLOAT_CALL): "request rate report",
    ("integrations/management/commands/feed_orders.py", FLOAT_LITERAL): "timeouts (seconds)",
    ("integrations/management/commands/feed_orders.py", JSON_FLOATS): "reads server replies",
    ("integrations/management/commands/demo_logins.py", JSON_FLOATS): "reads demo.json logins",
    # The one JSON parser (DRF's and the order feed's) keeps JSON numbers as floats on purpose:
    # parse_amount, the quantity check and the money fields refuse them by type ("send amounts
    # as decimal strings"), which parse_float=Decimal would hide. DRF's own parser, which it
    # replaced, did the same. tests/security/test_money_input.py sends them and sees 4xx.
    ("scf/parsers.py", JSON_FLOATS): "JSON numbers are refused by type",
}
# Where money is computed: nothing here may ever be allowed a float.
MONEY_PATHS = (
    "lending/services/",
    "lending/selectors/",
    "lending/apis/",
    "orders/",
    "scf/money.py",
    "lending/engine.py",
)


def _is_json_parse(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in ("load", "loads")
        and isinstance(func.value, ast.Name)
        and func.value.id == "json"
        and not any(k.arg == "parse_float" for k in node.keywords)
    )


def findings(source: str) -> Counter[str]:
    """Float uses in ``source``, by kind."""
    found: Counter[str] = Counter()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "float":
                found[FLOAT_CALL] += 1
            elif _is_json_parse(node):
                found[JSON_FLOATS] += 1
        elif isinstance(node, ast.Constant) and type(node.value) is float:
            found[FLOAT_LITERAL] += 1
        elif (isinstance(node, ast.Attribute) and node.attr == FLOAT_FIELD) or (
            isinstance(node, ast.Name) and node.id == FLOAT_FIELD
        ):
            found[FLOAT_FIELD] += 1
    return found


def scan() -> dict[tuple[str, str], int]:
    result: dict[tuple[str, str], int] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = path.relative_to(ROOT).as_posix()
            for kind, count in findings(path.read_text(encoding="utf-8")).items():
                result[(name, kind)] = count
    return result


def test_the_scanner_sees_every_kind_of_float():
    source = (
        "import json\n"
        "from django.db import models\n"
        "x = float(y)\n"
        "rate = 0.05\n"
        "class M(models.Model):\n    a = models.FloatField()\n"
        "data = json.loads(body)\n"
        "fine = json.loads(body, parse_float=Decimal)\n"
    )
    assert findings(source) == {FLOAT_CALL: 1, FLOAT_LITERAL: 1, FLOAT_FIELD: 1, JSON_FLOATS: 1}
    assert findings("from decimal import Decimal\nx = Decimal('0.05') * 2\n") == {}


def test_no_float_outside_the_allow_list():
    unexpected = {key: n for key, n in scan().items() if key not in ALLOWED}
    assert unexpected == {}, (
        "float in a money path (or allow-list it with a reason):\n"
        + "\n".join(f"  {path}: {n} x {kind}" for (path, kind), n in sorted(unexpected.items()))
    )


def test_money_paths_allow_no_float_calls_fields_or_json_floats():
    for path, kind in ALLOWED:
        if path.startswith(MONEY_PATHS):
            # Only a literal outside arithmetic on money (a timer, a NaN guard) may be here.
            assert kind == FLOAT_LITERAL, (path, kind)


def test_no_model_field_is_a_float_but_the_scorecard_intercept():
    floats = {
        f"{model._meta.label}.{field.name}"
        for app in PACKAGES
        if app != "scf"
        for model in apps.get_app_config(app).get_models()
        for field in model._meta.get_fields()
        if isinstance(field, models.FloatField)
    }
    assert floats == {"lending.CreditModel.intercept"}
