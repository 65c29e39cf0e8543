"""The breaker's rules, replayed as sequences of calls with explicit clocks (no asyncio)."""

from __future__ import annotations

import random

import pytest

from plugin_cartesia_ws.breaker import Breaker, ReconnectPolicy, Ticket

POLICY = ReconnectPolicy(breaker_threshold=3, breaker_cooldown_s=15.0)


def breaker() -> Breaker:
    return Breaker(POLICY, random.Random(0))


def fail(b: Breaker, times: int, now: float = 0.0) -> None:
    for _ in range(times):
        b.failed("timed out", now)


def test_a_new_request_is_admitted_while_failures_stay_below_the_threshold() -> None:
    b = breaker()
    fail(b, 2)
    assert not b.is_open(0.0)
    assert b.admit(Ticket(), 0.0) is None  # no backoff wait either: it connects at once


def test_an_admitted_request_is_never_refused_even_after_the_breaker_opens() -> None:
    """LiveKit's retry loop owns a request: its 4 attempts must all really connect."""
    b = breaker()
    request = Ticket()
    for attempt in range(4):
        assert b.admit(request, float(attempt)) is None, f"attempt {attempt + 1} refused"
        b.failed("timed out", float(attempt))
    assert b.is_open(4.0) and b.failures == 4


def test_new_requests_fail_fast_while_open_and_say_why() -> None:
    b = breaker()
    fail(b, 3, now=100.0)
    refusal = b.admit(Ticket(), 101.0)
    assert refusal is not None
    assert "unavailable after 3 failed attempts" in refusal
    assert "next attempt in 14.0s" in refusal and "timed out" in refusal


def test_after_the_cooldown_one_request_tries_and_one_failure_reopens() -> None:
    b = breaker()
    fail(b, 3, now=0.0)
    trial = Ticket()
    assert b.admit(trial, 15.0) is None  # half-open: this request may try
    b.failed("timed out", 15.5)
    assert b.is_open(16.0) and b.admit(Ticket(), 16.0) is not None
    assert b.admit(trial, 16.0) is None  # but the trial request keeps its retries


def test_a_completed_context_closes_the_breaker() -> None:
    b = breaker()
    fail(b, 5)
    b.succeeded()
    assert b.failures == 0 and not b.is_open(0.0) and b.last_error is None
    assert b.admit(Ticket(), 0.0) is None and b.may_connect_in_background(0.0)


@pytest.mark.parametrize("failures", [1, 2])
def test_background_connects_back_off_with_jitter_below_the_threshold(failures: int) -> None:
    b = breaker()
    pause = 0.0
    for _ in range(failures):
        pause = b.failed("refused", 10.0)
    full = POLICY.base_delay_s * 2 ** (failures - 1)
    assert full * (1 - POLICY.jitter) <= pause <= full
    assert not b.may_connect_in_background(10.0 + pause / 2)
    assert b.may_connect_in_background(10.0 + pause)


def test_background_connects_wait_the_whole_cooldown_once_open() -> None:
    b = breaker()
    fail(b, 3, now=0.0)
    assert not b.may_connect_in_background(14.9) and b.may_connect_in_background(15.0)
