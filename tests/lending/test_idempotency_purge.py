"""Idempotency-Key replies are kept IDEMPOTENCY_RETENTION_DAYS, then purged by a daily beat task."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from lending import tasks
from lending.models import IdempotencyRecord
from lending.services.idempotency import idempotency_records_purge
from scf.settings import base
from tests.lending.conftest import finance

pytestmark = pytest.mark.django_db


def records(user: Any, ages_in_days: list[float]) -> list[int]:
    now = timezone.now()
    made = IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(user=user, key=f"k-{i}", scope="finance:1", request_hash="h")
        for i in range(len(ages_in_days))
    )
    # created_at is auto_now_add (set to now on insert): give each its age afterwards.
    for record, age in zip(made, ages_in_days, strict=True):
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            created_at=now - dt.timedelta(days=age)
        )
    return [record.pk for record in made]


def test_the_purge_deletes_records_older_than_the_cut_off_in_batches(agent_user: Any) -> None:
    ids = records(agent_user, [30, 9, 7.01, 6.99, 1, 0])
    cut_off = timezone.now() - dt.timedelta(days=7)
    assert idempotency_records_purge(created_before=cut_off, batch=2) == 3
    assert sorted(IdempotencyRecord.objects.values_list("pk", flat=True)) == ids[3:]
    assert idempotency_records_purge(created_before=cut_off, batch=2) == 0


@override_settings(IDEMPOTENCY_RETENTION_DAYS=3)
def test_the_beat_task_keeps_the_retention_setting(agent_user: Any) -> None:
    ids = records(agent_user, [4, 2.9])
    assert tasks.purge_idempotency_records.delay().get() == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == ids[1:]


def test_a_week_by_default_and_beat_runs_the_purge_daily() -> None:
    assert base.IDEMPOTENCY_RETENTION_DAYS == 7
    entry = settings.CELERY_BEAT_SCHEDULE["lending-purge-idempotency-records"]
    assert entry["task"] == "lending.purge_idempotency_records"
    schedule: Any = entry["schedule"]
    assert schedule.remaining_estimate(timezone.now()) <= dt.timedelta(days=1)
    assert tasks.purge_idempotency_records.name in tasks.purge_idempotency_records.app.tasks


def test_a_purged_key_sent_again_is_a_new_request_and_never_a_second_loan(
    agent_client: Any, line: Any, order: Any
) -> None:
    assert finance(agent_client, order.pk, key="old").status_code == 201
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(days=8))
    tasks.purge_idempotency_records()
    assert not IdempotencyRecord.objects.exists()
    again = finance(agent_client, order.pk, key="old")
    assert again.status_code == 409
    assert again.json()["code"] == "order_already_financed"
