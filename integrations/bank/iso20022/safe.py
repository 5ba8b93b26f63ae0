"""Reading untrusted bank bytes into an lxml tree, or refusing them with one clear reason.

In order, each step cheap before the next: the size cap (before any parsing), the encoding
(ISO 20022 files are UTF-8; a UTF-16/32 file could hide a DOCTYPE from the byte scan), any
``<!DOCTYPE``/``<!ENTITY`` anywhere (no bank file has one; it is how billion-laughs and external
entity attacks begin, so it is refused by name rather than left to the parser), then lxml with
entity resolution, DTD loading and network access off and ``huge_tree`` off (libxml2's own limits
on depth, text size and entity amplification stay on), then the root must be the expected
message's ``Document``. Only then do the callers validate against the XSD and read fields.
"""

from __future__ import annotations

import re

from lxml import etree

from .errors import BankFileRejected, RejectReason

# The default size cap. Callers pass their own (a setting when wired); checked before parsing.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024

ISO_NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_UTF8_BOM = b"\xef\xbb\xbf"


def namespace_of(message_type: str) -> str:
    return ISO_NAMESPACE_PREFIX + message_type


def _parser() -> etree.XMLParser:
    # One per call: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        collect_ids=False,
        remove_pis=True,
    )


def _check_encoding(content: bytes) -> None:
    head = content[:200]
    if b"\x00" in head[:4] or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BankFileRejected(RejectReason.ENCODING, "the file is not UTF-8 (UTF-16/32 found)")
    declared = _DECLARED_ENCODING.match(head.removeprefix(_UTF8_BOM))
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        name = declared.group(1).decode("ascii")
        raise BankFileRejected(RejectReason.ENCODING, f"the file declares {name}, not UTF-8")


def read_document(
    content: bytes, *, message_type: str, max_bytes: int = DEFAULT_MAX_BYTES
) -> etree._Element:
    """The root ``Document`` of ``content``, a ``message_type`` file, or ``BankFileRejected``."""
    if not isinstance(content, bytes):
        raise TypeError("bank files are read as bytes")
    if len(content) > max_bytes:
        raise BankFileRejected(
            RejectReason.TOO_LARGE, f"{len(content):,} bytes is over the {max_bytes:,} byte cap"
        )
    if not content.strip():
        raise BankFileRejected(RejectReason.EMPTY, "the file is empty")
    _check_encoding(content)
    found = _DTD.search(content)
    if found:
        raise BankFileRejected(
            RejectReason.DTD_FORBIDDEN,
            f"a DTD or entity declaration at byte {found.start()} (bank files have none)",
        )
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as exc:
        raise BankFileRejected(RejectReason.MALFORMED, f"not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:  # the byte scan should have caught it; belt and braces
        raise BankFileRejected(RejectReason.DTD_FORBIDDEN, "the document has a DTD")
    expected = f"{{{namespace_of(message_type)}}}Document"
    if root.tag != expected:
        raise BankFileRejected(
            RejectReason.UNEXPECTED_MESSAGE,
            f"expected a {message_type} file ({expected}), found root {root.tag}",
        )
    return root
