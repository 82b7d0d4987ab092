"""The real-time pacer of the human pilot, on the real clock."""

from __future__ import annotations

import time

import pytest

from agents.human import RealTimePacer


def test_pacer_holds_rate():
    # 20 Hz: a tick is dropped only when the loop is 50 ms late, which a busy test machine rarely causes.
    pacer = RealTimePacer(20.0)
    start = time.monotonic()
    for _ in range(11):
        pacer.wait()
    elapsed = time.monotonic() - start
    stats = pacer.stats()

    assert elapsed >= 0.5 - 1e-3
    assert stats.steps == 11
    assert stats.dropped_steps == 0
    assert stats.achieved_hz == pytest.approx(20.0, rel=0.1)


def test_pacer_counts_dropped_steps():
    pacer = RealTimePacer(100.0)
    pacer.wait()
    time.sleep(0.055)  # a stall of five and a half ticks
    pacer.wait()
    for _ in range(3):
        pacer.wait()
    stats = pacer.stats()

    assert stats.dropped_steps in (4, 5)
    assert stats.max_late_s >= 0.04
    # After the stall the pacer re-anchors instead of rushing: three more ticks take 20 to 30 ms, not a burst.
    # Load only lengthens them, so the bound holds on a busy machine too.
    before = time.monotonic()
    for _ in range(3):
        pacer.wait()
    assert time.monotonic() - before >= 0.015


def test_pacer_excludes_pauses():
    pacer = RealTimePacer(50.0)
    pacer.wait()
    paused_at = pacer.pause()
    time.sleep(0.1)
    pacer.resume(paused_at)
    for _ in range(5):
        pacer.wait()
    stats = pacer.stats()

    assert stats.dropped_steps == 0
    assert stats.achieved_hz == pytest.approx(50.0, rel=0.15)


def test_pacer_rejects_bad_rate():
    with pytest.raises(ValueError, match="rate_hz must be positive"):
        RealTimePacer(0.0)
