"""Logging: request and task ids on every record, secrets redacted, JSON lines in production.

Two filters sit on the console handler (so they apply to every logger that reaches it, ours and
libraries' alike):

- ``ContextFilter`` copies the current request id and Celery task id (context variables set by
  ``scf.middleware.RequestIdMiddleware`` and the Celery signals in ``scf.celery``) onto the record.
- ``RedactSecretsFilter`` rewrites the message and any ``extra`` values: header values of
  ``Authorization``, ``X-Api-Key``, ``X-SCF-Signature``, cookies, ``Token``/``Api-Key``/``Bearer``
  credentials, ``sha256=`` signatures and ``name=value`` pairs whose name says secret, password,
  token or key. A careless ``logger.debug("headers %s", request.headers)`` prints ``[REDACTED]``.

``JsonFormatter`` writes one JSON object per line: ``time``, ``level``, ``logger``, ``message``,
``request_id``, ``task_id``, then every ``extra`` field (values that JSON cannot carry are
written as their ``str``), and ``exc_info`` as text. ``LOG_FORMAT=json`` selects it (the
production default); otherwise the plain formatter also shows the ids.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
task_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")

REDACTED = "[REDACTED]"

# Names (of extras, dict keys, headers, form fields) whose value is never written.
_SECRET_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[-_]?key|authorization|signature|cookie|session(id)?|"
    r"csrf|credential|private[-_]?key|fernet|encryption[-_]?key)",
    re.IGNORECASE,
)
_VALUE_PATTERNS = [
    # Authorization-style credentials: "Token abc", "Api-Key abc", "Bearer abc", "Basic abc".
    re.compile(r"(?i)\b(token|api-key|bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}"),
    # HMAC signatures as sent in X-SCF-Signature.
    re.compile(r"(?i)\b(sha256=)()[0-9a-f]{16,}"),
    # "name: value", "name=value", "'name': 'value'" where the name says secret.
    re.compile(
        r"""(?ix)
        (["']?[\w-]*(?:pass(?:word|wd)?|secret|token|api[-_]?key|authorization|signature|
            cookie|sessionid|csrf[\w-]*)["']?)
        (\s*[:=]\s*)
        (?:"[^"]*"|'[^']*'|[^\s,;&}\]]+)
        """
    ),
]


def redact_text(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``[REDACTED]``."""
    for pattern in _VALUE_PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return text


def redact_value(value: Any, name: str = "") -> Any:
    """A copy of ``value`` safe to log: secret-named entries blanked, strings scanned."""
    if name and _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact_value(v) for v in value]
    return value


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "request_id", "task_id", "taskName"}
)


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS}


class ContextFilter(logging.Filter):
    """Puts ``request_id`` and ``task_id`` on every record (empty when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id = task_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    """Redacts credentials from the message, its arguments and any ``extra`` values."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what we have, still redacted
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        for key, value in record_extras(record).items():
            if key == "request":  # django.request attaches the HttpRequest itself
                continue
            setattr(record, key, redact_value(value, key))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or None,
            "task_id": getattr(record, "task_id", "") or None,
        }
        for key, value in record_extras(record).items():
            if key == "request":
                value = f"{getattr(value, 'method', '')} {getattr(value, 'path', '')}".strip()
            body.setdefault(key, _jsonable(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            body["exc_info"] = record.exc_text
        if record.stack_info:
            body["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(body, ensure_ascii=False, default=str)


def task_started(task_id: str | None = None, **_: Any) -> None:
    """Celery ``task_prerun``: every record the task logs carries its id."""
    task_id_var.set(task_id or "")


def task_finished(**_: Any) -> None:
    """Celery ``task_postrun``: the worker's next records belong to no task."""
    task_id_var.set("")


def logging_config(*, level: str, fmt: str) -> dict[str, Any]:
    """The ``LOGGING`` dict: one console handler, ids and redaction on it, JSON or plain."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "scf.logging.ContextFilter"},
            "redact": {"()": "scf.logging.RedactSecretsFilter"},
        },
        "formatters": {
            "plain": {
                "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s%(task_id)s] "
                "%(message)s"
            },
            "json": {"()": "scf.logging.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if fmt == "json" else "plain",
                "filters": ["context", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own handlers (an unfiltered console when DEBUG, mail_admins) are replaced:
            # its records go through the root handler like everyone else's.
            "django": {"handlers": [], "level": level, "propagate": True},
            # SQL with its parameters (token keys among them) is never logged.
            "django.db.backends": {"level": "WARNING"},
        },
    }
