"""JSON request bodies, parsed with a cap on nesting depth: the one parser behind every JSON door.

Python's ``json`` recurses once per level of nesting, so a body of 50,000 ``[`` raises
``RecursionError`` from inside the parser (a 500 and a logged traceback). ``json_parse`` measures
the depth first, without recursing, and refuses a body nested deeper than
``settings.API_JSON_MAX_DEPTH`` with a 400 ``json_too_deep``:

- a body with no more opening brackets than the cap cannot be deeper (two ``bytes.count``);
- otherwise strings are cut out (brackets inside them are text), everything but the brackets is
  dropped, and innermost ``[]``/``{}`` pairs are removed one level per pass (one C-level regex
  substitution each): a pair still there after ``cap`` passes was nested deeper than the cap.
  Brackets that never pair up (not JSON) count as the levels a parser would open before it
  found the error; a shallow malformed body is left to ``json`` to describe.

``JSONParser`` is DRF's parser on top of it (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``); the
order feed's webhook and bulk endpoints, which read their raw bytes for the signature and the
money checks, call ``json_parse`` themselves, as does the pull feed for what it fetches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers

from .errors import ApplicationError

# A JSON string: a quote, then runs of anything but quote or backslash, each escape one pair,
# up to the closing quote. An unterminated string runs to the end of the body (a parser stops
# there anyway): the pattern matches from every quote, so the scan never starts over (linear).
_STRING = re.compile(rb'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Innermost pairs only: one regex pass never joins the brackets around a removed pair.
_PAIR = re.compile(rb"\[\]|\{\}")


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
    rest = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    # A pair removed in pass n enclosed one removed in pass n - 1: n passes, n levels.
    levels = 0
    while True:
        inner = _PAIR.sub(b"", rest)
        if len(inner) == len(rest):
            break
        levels += 1
        rest = inner
        if levels > max_depth:
            break
    # What is left does not pair up (not JSON); a parser would still go as deep as the pairs
    # removed around it and its opening brackets: refuse that too if it passes the cap.
    if levels + rest.count(b"[") + rest.count(b"{") > max_depth:
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
