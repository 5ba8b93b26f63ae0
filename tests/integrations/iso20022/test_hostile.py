"""Hostile and broken inbound files: each is refused whole with one typed error and a clear
reason, whichever reader gets it; nothing is read from them."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from integrations.bank.iso20022 import (
    BankFileRejected,
    RejectReason,
    build_pain001,
    parse_camt053,
    parse_camt054,
    parse_pain001,
    parse_pain002,
)

from . import samples
from .factories import CREATED_AT, golden_payments

Reader = Callable[..., object]
READERS: dict[str, tuple[Reader, str]] = {
    "pain.001": (parse_pain001, "pain.001.001.09"),
    "pain.002": (parse_pain002, "pain.002.001.10"),
    "camt.053": (parse_camt053, "camt.053.001.08"),
    "camt.054": (parse_camt054, "camt.054.001.08"),
}


def pain001() -> bytes:
    return build_pain001(
        message_id="SCF-1", created_at=CREATED_AT, initiating_party="X", payments=golden_payments()
    ).content


def rejection(read: Reader, content: bytes, **kwargs: object) -> BankFileRejected:
    with pytest.raises(BankFileRejected) as caught:
        read(content, **kwargs)
    return caught.value


def billion_laughs(namespace: str) -> bytes:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE Document [\n{chr(10).join(levels)}\n]>\n'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{namespace}">&lol9;</Document>'
    ).encode()


@pytest.mark.parametrize("kind", READERS)
def test_billion_laughs_is_refused_before_any_entity_is_expanded(kind: str) -> None:
    read, namespace = READERS[kind]
    started = time.perf_counter()
    error = rejection(read, billion_laughs(namespace))
    assert error.reason_code is RejectReason.DTD_FORBIDDEN
    assert "DTD or entity declaration" in error.detail
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/iso.dtd">',
        '<!DOCTYPE Document [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>',
        "<!doctype Document>",
    ],
)
def test_external_entities_and_dtds_are_refused(kind: str, doctype: str) -> None:
    read, namespace = READERS[kind]
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{namespace}">&x;</Document>'
    ).encode()
    error = rejection(read, document)
    assert error.reason_code is RejectReason.DTD_FORBIDDEN
    assert "root:" not in error.detail  # nothing of /etc/passwd is ever read


@pytest.mark.parametrize("kind", READERS)
def test_a_50_mb_file_is_refused_by_size_before_it_is_parsed(kind: str) -> None:
    read, _ = READERS[kind]
    # A well-formed, valid statement padded to 50 MB: only the size cap refuses it.
    huge = samples.CAMT_053.replace(b"</Document>", b" " * (50 * 1024 * 1024) + b"</Document>")
    started = time.perf_counter()
    error = rejection(read, huge)
    assert error.reason_code is RejectReason.TOO_LARGE
    assert "over the 20,971,520 byte cap" in error.detail
    assert time.perf_counter() - started < 1.0


def test_the_size_cap_is_the_callers_to_set() -> None:
    error = rejection(parse_camt053, samples.CAMT_053, max_bytes=1000)
    assert error.reason_code is RejectReason.TOO_LARGE
    assert parse_camt053(samples.CAMT_053, max_bytes=len(samples.CAMT_053)).message_id


@pytest.mark.parametrize(
    ("read", "content", "found"),
    [
        (parse_camt053, samples.CAMT_054, "camt.054.001.08}Document"),
        (parse_camt054, samples.CAMT_053, "camt.053.001.08}Document"),
        (parse_pain002, samples.CAMT_053, "camt.053.001.08}Document"),
        (parse_pain001, samples.PAIN_002, "pain.002.001.10}Document"),
        (
            parse_camt053,
            samples.CAMT_053.replace(b"camt.053.001.08", b"camt.053.001.02"),
            "camt.053.001.02}Document",
        ),
        (
            parse_camt053,
            samples.CAMT_053.replace(
                b' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"', b""
            ),
            "root Document",
        ),
        (parse_pain001, b"<html><body>Service unavailable</body></html>", "root html"),
    ],
)
def test_a_wrong_namespace_or_message_type_is_unexpected(
    read: Reader, content: bytes, found: str
) -> None:
    error = rejection(read, content)
    assert error.reason_code is RejectReason.UNEXPECTED_MESSAGE
    assert found in error.detail


@pytest.mark.parametrize(
    ("find", "replace", "reason", "detail"),
    [
        (
            b"<CtrlSum>81234.51</CtrlSum>",
            b"<CtrlSum>81234.52</CtrlSum>",
            RejectReason.CONTROL_SUM_MISMATCH,
            "GrpHdr CtrlSum 81234.52, but the amounts add up to 81234.51",
        ),
        (
            b"<NbOfTxs>3</NbOfTxs>",
            b"<NbOfTxs>4</NbOfTxs>",
            RejectReason.COUNT_MISMATCH,
            "GrpHdr NbOfTxs 4, but 3 payments",
        ),
        (
            b"<CtrlSum>81234.50</CtrlSum>",
            b"<CtrlSum>80000.00</CtrlSum>",
            RejectReason.CONTROL_SUM_MISMATCH,
            "PmtInf SCF-1-00001 CtrlSum 80000.00",
        ),
        (
            b"<NbOfTxs>2</NbOfTxs>",
            b"<NbOfTxs>1</NbOfTxs>",
            RejectReason.COUNT_MISMATCH,
            "PmtInf SCF-1-00001 NbOfTxs 1, but 2",
        ),
        (
            b"<EndToEndId>DSB-000002</EndToEndId>",
            b"<EndToEndId>DSB-000001</EndToEndId>",
            RejectReason.INCONSISTENT,
            "EndToEndId DSB-000001 is twice",
        ),
        (b">1234.50<", b">1234.505<", RejectReason.INCONSISTENT, "more than two decimal places"),
        (
            b"<PmtMtd>TRF</PmtMtd>",
            b"<PmtMtd>CHK</PmtMtd>",
            RejectReason.INCONSISTENT,
            "only credit transfers",
        ),
    ],
)
def test_a_payment_file_whose_totals_or_rules_do_not_add_up_is_refused(
    find: bytes, replace: bytes, reason: RejectReason, detail: str
) -> None:
    content = pain001()
    assert find in content
    error = rejection(parse_pain001, content.replace(find, replace, 1))
    assert error.reason_code is reason
    assert detail in error.detail


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda c: c[: len(c) // 2], RejectReason.MALFORMED),
        (lambda c: c.replace(b"</GrpHdr>", b"</GrpHeader>", 1), RejectReason.MALFORMED),
        (lambda c: c + b"<Document/>", RejectReason.MALFORMED),
        (lambda c: b"", RejectReason.EMPTY),
        (lambda c: b"  \n ", RejectReason.EMPTY),
        (lambda c: c.decode().encode("utf-16"), RejectReason.ENCODING),
        (lambda c: c.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'), RejectReason.ENCODING),
        (
            lambda c: c.replace(b"<GrpHdr>", b"<GrpHdr><Unexpected/>", 1),
            RejectReason.SCHEMA_INVALID,
        ),
        (lambda c: c.replace(b"<MsgId>", b"<MsgId>" + b"M" * 40, 1), RejectReason.SCHEMA_INVALID),
    ],
)
def test_malformed_or_invalid_files_are_refused_with_their_reason(
    kind: str, mangle: Callable[[bytes], bytes], reason: RejectReason
) -> None:
    read, _ = READERS[kind]
    good = {
        "pain.001": pain001(),
        "pain.002": samples.PAIN_002,
        "camt.053": samples.CAMT_053,
        "camt.054": samples.CAMT_054,
    }[kind]
    read(good)  # the file itself is fine
    assert rejection(read, mangle(good)).reason_code is reason


def test_a_deeply_nested_file_hits_the_parsers_limit_not_the_stack() -> None:
    deep = samples.CAMT_053.replace(
        b"<AddtlNtryInf>", b"<AddtlNtryInf>" + b"<a>" * 100_000 + b"</a>" * 100_000, 1
    )
    error = rejection(parse_camt053, deep)
    assert error.reason_code is RejectReason.MALFORMED


def test_a_rejection_names_its_reason_and_detail() -> None:
    error = rejection(parse_camt053, samples.CAMT_054)
    assert str(error).startswith("unexpected_message: expected a camt.053.001.08 file")
    assert error.reason_code == "unexpected_message"


def test_amounts_are_never_read_as_floats() -> None:
    initiation = parse_pain001(pain001())
    assert all(type(p.amount) is Decimal for p in initiation.payments)
