"""Inbound files we will not apply are quarantined whole, with a reason, and change nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from integrations.bank.iso20022 import (
    PaymentStatus,
    PaymentStatusReport,
    TransactionStatus,
    build_pain002,
)
from integrations.bank.iso20022.pain001 import payment_information_id
from integrations.bank_models import BankFile, OutboundPayment, StatementEntry, UnappliedCredit
from lending.models import Disbursement, JournalEntry, LoanStatus
from lending.services.disbursement import end_to_end_id_for
from tests.integrations.iso20022 import samples
from tests.integrations.iso20022.test_hostile import billion_laughs

from .rail import export, finance, import_files

pytestmark = pytest.mark.django_db

EXTERNAL_ENTITY = (
    b'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE Document [<!ENTITY x SYSTEM '
    b'"file:///etc/passwd">]><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">'
    b"&x;</Document>"
)


def _control_sum_off() -> bytes:
    # The statement's summary says one amount, its entries add up to another.
    return samples.CAMT_053.replace(b"<Sum>", b"<Sum>1", 1)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (billion_laughs("camt.054.001.08"), "dtd_forbidden"),
        (EXTERNAL_ENTITY, "dtd_forbidden"),
        (
            samples.CAMT_053.replace(b"</Document>", b" " * (50 * 1024 * 1024) + b"</Document>"),
            "too_large",
        ),
        (samples.CAMT_053.replace(b"camt.053.001.08", b"camt.053.001.02"), "unexpected_message"),
        (_control_sum_off(), "control_sum_mismatch"),
        (b"<Document>not a bank file", "unexpected_message"),
        (samples.CAMT_053[:-40], "malformed"),
        (samples.CAMT_053, "unexpected_account"),  # valid, but another account's statement
    ],
    ids=[
        "billion-laughs",
        "external-entity",
        "50MB",
        "wrong-namespace",
        "control-sum",
        "unknown",
        "truncated",
        "other-account",
    ],
)
def test_a_refused_file_is_quarantined_with_its_reason_and_changes_nothing(
    line, rail, content, reason, django_capture_on_commit_callbacks
):
    rail.inbound.mkdir(parents=True)
    path = rail.inbound / "incoming.xml"
    path.write_bytes(content)
    result = import_files(django_capture_on_commit_callbacks)
    assert result.count("quarantined") == 1
    row = BankFile.objects.get()
    assert (row.status, row.quarantine_reason) == ("quarantined", reason)
    assert row.quarantine_detail
    assert (rail.inbound / "quarantine" / "incoming.xml").exists() and not path.exists()
    assert not StatementEntry.objects.exists() and not UnappliedCredit.objects.exists()
    assert not JournalEntry.objects.exists()
    # Delivered again: recognised by its digest, not quarantined twice.
    path.write_bytes(content)
    assert import_files(django_capture_on_commit_callbacks).count("duplicate") == 1


def test_a_status_report_is_applied_whole_or_not_at_all(
    line, agent_user, rail, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    first, second = finance(agent_user, capture), finance(agent_user, capture)
    [sent] = export(capture)
    ids = end_to_end_id_for(first.pk), end_to_end_id_for(second.pk)
    at = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    block = payment_information_id(sent.message_id, 1)

    def report(message_id: str, *statuses: tuple[str, PaymentStatus]) -> bytes:
        return build_pain002(
            PaymentStatusReport(
                message_id=message_id,
                created_at=at,
                original_message_id=sent.message_id,
                original_message_type="pain.001.001.09",
                group_status=None,
                transactions=tuple(TransactionStatus(e2e, s, (), block) for e2e, s in statuses),
            )
        ).content

    rail.inbound.mkdir(parents=True)
    (rail.inbound / "a.xml").write_bytes(report("STS-1", (ids[1], PaymentStatus.ACSC)))
    import_files(capture)
    # The first payment settles, then the second is said to be rejected after it settled:
    # the report contradicts our books, so none of it is applied.
    (rail.inbound / "b.xml").write_bytes(
        report("STS-2", (ids[0], PaymentStatus.ACSC), (ids[1], PaymentStatus.RJCT))
    )
    import_files(capture)
    row = BankFile.objects.get(message_id="STS-2")
    assert (row.status, row.quarantine_reason) == ("quarantined", "state_conflict")
    first.refresh_from_db()
    assert first.status == LoanStatus.DISBURSING
    assert Disbursement.objects.get(loan=first).status != "settled"
    assert OutboundPayment.objects.get(end_to_end_id=ids[0]).status == "exported"


def test_a_status_report_for_a_file_we_never_sent_is_quarantined(
    line, rail, django_capture_on_commit_callbacks
):
    content = build_pain002(
        PaymentStatusReport(
            message_id="STS-X",
            created_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
            original_message_id="NOT-OURS",
            original_message_type="pain.001.001.09",
            group_status=PaymentStatus.ACSC,
        )
    ).content
    rail.inbound.mkdir(parents=True)
    (rail.inbound / "x.xml").write_bytes(content)
    import_files(django_capture_on_commit_callbacks)
    assert BankFile.objects.get().quarantine_reason == "unknown_original"
