"""JSON request bodies, parsed with a cap on nesting depth: the one parser behind every JSON door.

Python's ``json`` recurses once per level of nesting, so a body of 50,000 ``[`` raises
``RecursionError`` from inside the parser (a 500 and a logged traceback). ``json_parse`` measures
the depth first, without recursing, and refuses a body nested deeper than
``settings.API_JSON_MAX_DEPTH`` with a 400 ``json_too_deep``:

- a body with no more opening brackets than the cap cannot be deeper (two ``bytes.count``);
- otherwise everything but brackets and quotes is dropped (escapes first), what lies between
  quotes is cut out (brackets in strings are text), and innermost pairs of brackets are removed
  one level per pass: a pair still there after ``cap`` passes was nested deeper than the cap.
  Each step is one C-level ``bytes`` method, a few milliseconds per megabyte. Brackets that
  never pair up (not JSON) count as the levels a parser would open before it found the error;
  a shallow malformed body is left to ``json`` to describe.

``JSONParser`` is DRF's parser on top of it (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``); the
order feed's webhook and bulk endpoints, which read their raw bytes for the signature and the
money checks, call ``json_parse`` themselves, as does the pull feed for what it fetches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers

from .errors import ApplicationError

# Brackets become parentheses (a parser goes one level down for either kind; a mismatched pair
# is an error it reports itself) and quotes stay; every other byte is dropped.
_MARKS = bytes.maketrans(b"[]{}", b"()()")
_NOT_MARKS = bytes(b for b in range(256) if b not in b'[]{}"')


class MalformedJson(ApplicationError):
    code = "malformed_json"
    status_code = 400


class JsonTooDeep(ApplicationError):
    code = "json_too_deep"
    status_code = 400


def _refuse_constants(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _check_depth(body: bytes, max_depth: int) -> None:
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return
    # Escaped backslashes, then escaped quotes, go first: neither opens nor closes anything.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = unescaped.translate(_MARKS, _NOT_MARKS)
    # Between an odd quote and the next one is a string: its brackets are text. Two quotes side
    # by side end and start strings (or make an empty one): dropping them changes no side, and
    # leaves only the strings that hold brackets, if any, to split out.
    rest = marks.replace(b'""', b"")
    if b'"' in rest:
        rest = b"".join(rest.split(b'"')[::2])
    # A pair removed in pass n enclosed one removed in pass n - 1 (``replace`` does not look
    # again at what it joined): n passes, n levels.
    levels = 0
    while levels <= max_depth:
        inner = rest.replace(b"()", b"")
        if len(inner) == len(rest):
            break
        levels += 1
        rest = inner
    # What is left does not pair up (not JSON); a parser would still go as deep as the pairs
    # removed around it and its opening brackets: refuse that too if it passes the cap.
    if levels + rest.count(b"(") > max_depth:
        raise JsonTooDeep(
            f"JSON nested deeper than {max_depth} levels is not accepted.",
            fields={"non_field_errors": [f"At most {max_depth} levels of nesting."]},
        )


def json_parse(body: bytes, *, max_depth: int | None = None) -> Any:
    """The value of a JSON body. Raises ``JsonTooDeep`` or ``MalformedJson`` (both 400).

    ``NaN`` and ``Infinity`` are refused, as DRF's strict JSON does.
    """
    _check_depth(body, settings.API_JSON_MAX_DEPTH if max_depth is None else max_depth)
    try:
        return json.loads(body, parse_constant=_refuse_constants)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedJson(f"Malformed JSON: {exc}") from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the depth cap; errors keep the API's error shape."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        return json_parse(stream.read())
