"""``scf.task_relay.BatchRelay``: every value put is sent exactly once, in batches, off the
caller's thread; a failed send is logged and dropped (the outbox sweeper covers it)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from scf.task_relay import BatchRelay


class Recorder:
    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.fail_first = fail_first
        self.delay = delay

    def __call__(self, batch: list[int]) -> None:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("broker down")
        self.batches.append(list(batch))


def test_every_value_is_sent_once_in_batches_off_the_callers_thread():
    sent = Recorder(delay=0.01)
    relay = BatchRelay("t", sent, linger=0.02, max_batch=7)
    for value in range(200):
        relay.put(value)
    assert relay.flush(5)
    flat = [v for batch in sent.batches for v in batch]
    assert sorted(flat) == list(range(200))  # each once
    assert flat == list(range(200))  # in order
    assert max(len(b) for b in sent.batches) == 7  # a flood fills batches up to the cap
    assert len(sent.batches) < 60
    assert sent.threads == {"relay-t"}


def test_puts_from_many_threads_are_all_sent():
    sent = Recorder()
    relay = BatchRelay("m", sent, linger=0.005, max_batch=50)

    def putter(start: int) -> None:
        for value in range(start, start + 250):
            relay.put(value)

    threads = [threading.Thread(target=putter, args=(n * 1000,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert relay.flush(5)
    flat = sorted(v for batch in sent.batches for v in batch)
    assert flat == sorted(n * 1000 + i for n in range(8) for i in range(250))


def test_a_failed_send_is_logged_and_the_relay_goes_on(caplog):
    sent = Recorder(fail_first=1)
    relay = BatchRelay("f", sent, linger=0.0, max_batch=100)
    with caplog.at_level(logging.WARNING, logger="scf.task_relay"):
        relay.put(1)
        assert relay.flush(5)
        relay.put(2)
        assert relay.flush(5)
    assert sent.batches == [[2]]
    assert "could not send 1 values; the sweeper will" in caplog.text


def test_flush_gives_up_at_its_timeout():
    relay = BatchRelay("s", Recorder(delay=0.5), linger=0.0, max_batch=1)
    relay.put(1)
    started = time.monotonic()
    assert relay.flush(0.05) is False
    assert time.monotonic() - started < 0.4
    assert relay.flush(5) is True


def test_a_first_value_waits_at_most_the_linger_time():
    sent = Recorder()
    relay = BatchRelay("l", sent, linger=0.05, max_batch=100)
    started = time.monotonic()
    relay.put(1)
    while not sent.batches and time.monotonic() - started < 2:
        time.sleep(0.005)
    assert sent.batches == [[1]]
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(("linger", "max_batch"), [(-1, 10), (0.1, 0)])
def test_bad_settings_are_refused(linger, max_batch):
    with pytest.raises(ValueError):
        BatchRelay("x", Recorder(), linger=linger, max_batch=max_batch)


def test_values_put_during_the_linger_go_together_and_an_overflow_at_once():
    sent = Recorder()
    relay = BatchRelay("o", sent, linger=0.2, max_batch=10)
    started = time.monotonic()
    for value in range(25):
        relay.put(value)
    assert relay.flush(5)
    elapsed = time.monotonic() - started
    assert sent.batches == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert 0.15 < elapsed < 0.55  # one linger for all three batches (one each: 0.6 s)


@pytest.mark.parametrize("count", [1, 10, 20])
def test_a_whole_number_of_full_batches_sends_no_empty_one(count):
    sent = Recorder()
    relay = BatchRelay("w", sent, linger=0.05, max_batch=10 if count > 1 else 1)
    for value in range(count):
        relay.put(value)
    assert relay.flush(5)
    time.sleep(0.1)  # flush returns once every value is out: give a stray batch time to show
    assert [v for batch in sent.batches for v in batch] == list(range(count))
    assert all(sent.batches)  # no empty batch (one message each, with no payment in it)


def test_drain_sends_what_waits_at_once_on_the_callers_thread():
    sent = Recorder()
    relay = BatchRelay("d", sent, linger=0.5, max_batch=3)
    relay.drain()  # nothing put yet: nothing sent
    assert sent.batches == []
    for value in range(5):
        relay.put(value)
    time.sleep(0.05)  # the relay's thread holds the first value through its linger
    relay.drain()
    assert sent.batches == [[1, 2, 3], [4]]
    assert sent.threads == {threading.current_thread().name}
    assert relay.flush(5)
    assert sent.batches[-1] == [0]
