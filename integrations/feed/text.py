"""Text that PostgreSQL can store, checked at the edge of the order feed.

PostgreSQL refuses NUL (U+0000) in ``text`` and ``jsonb``, and a string with an unpaired UTF-16
surrogate (JSON lets a sender write ``"\\ud800"``) cannot even be encoded to UTF-8. Either would
otherwise surface as a 500 from deep inside a write; the feed refuses them up front instead.
"""

from __future__ import annotations

import re
from typing import Any

# The only ways such a string gets into parsed JSON: a \u0000 or a \uD800-\uDFFF escape.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")


def storable(text: str) -> bool:
    """True when ``text`` has no NUL and encodes to UTF-8."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_storable(raw: bytes, value: Any) -> bool:
    """True when every string (keys included) of ``value``, parsed from ``raw``, is storable.

    Bodies without a suspect escape (nearly all) are not walked.
    """
    if _SUSPECT_ESCAPE.search(raw) is None:
        return True
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
