from __future__ import annotations

from typing import Any

import pytest

from integrations import bank as bank_package
from lending.models import CreditLine, Program
from tests.lending.factories import CreditLineFactory, ProgramFactory

from .rail import BANK_CODE, Rail


@pytest.fixture(autouse=True)
def file_rail(settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.BANK_RAILS = {BANK_CODE: "files"}
    settings.BANK_FILES_OUTBOUND_DIR = str(tmp_path / "outbound")
    settings.BANK_FILES_INBOUND_DIR = str(tmp_path / "inbound")
    monkeypatch.setattr(bank_package, "_adapters", {})


@pytest.fixture
def program(enterprise: Any) -> Program:
    return ProgramFactory(enterprise=enterprise)


@pytest.fixture
def line(agent: Any, program: Program) -> CreditLine:
    return CreditLineFactory(agent=agent, program=program)


@pytest.fixture
def rail() -> Rail:
    return Rail()
