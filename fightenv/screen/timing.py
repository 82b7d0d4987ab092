"""Per-phase timing of a real-time loop: p50 and p99 per phase, achieved rate and overruns, all measured."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class PhaseStats:
    """Durations of one phase, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class TimingReport:
    """Measured performance of a real-time loop; no number in it is assumed."""

    target_hz: float
    achieved_hz: float
    """Steps per second between the first and the last step's capture timestamps (summed over absorbed runs)."""
    steps: int
    """Steps timed: intervals between consecutive captures."""
    overruns: int
    """Steps whose work ended after the step's deadline."""
    phases: dict[str, PhaseStats] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        lines = [f"{'phase':<12} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"]
        for name, stats in self.phases.items():
            lines.append(f"{name:<12} {stats.count:>6} {stats.p50_ms:>8.3f} {stats.p99_ms:>8.3f} {stats.max_ms:>8.3f}")
        lines.append(
            f"rate {self.achieved_hz:.2f} Hz of {self.target_hz:.2f} Hz target, {self.steps} steps, "
            f"{self.overruns} overruns"
        )
        return "\n".join(lines)


class LoopTimer:
    """Collects phase durations and step timestamps of a loop running at ``target_hz``."""

    def __init__(self, target_hz: float) -> None:
        self.target_hz = target_hz
        self.reset()

    def reset(self) -> None:
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.step_times_s: list[float] = []
        self.overruns = 0
        self._absorbed_intervals = 0
        self._absorbed_span_s = 0.0

    def absorb(self, other: LoopTimer) -> None:
        """Add another run's measurements (for example one episode's) to this timer's, as a separate stretch of steps."""
        for name, values in other.durations.items():
            self.durations[name].extend(values)
        self.overruns += other.overruns
        times = other.step_times_s
        self._absorbed_intervals += other._absorbed_intervals + max(0, len(times) - 1)
        self._absorbed_span_s += other._absorbed_span_s + (times[-1] - times[0] if len(times) > 1 else 0.0)

    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.durations[name].append(time.perf_counter() - start)

    def add(self, name: str, duration_s: float) -> None:
        self.durations[name].append(duration_s)

    def mark_step(self, timestamp_s: float, overrun: bool) -> None:
        self.step_times_s.append(timestamp_s)
        self.overruns += int(overrun)

    def report(self) -> TimingReport:
        times = self.step_times_s
        intervals = self._absorbed_intervals + max(0, len(times) - 1)
        span_s = self._absorbed_span_s + (times[-1] - times[0] if len(times) > 1 else 0.0)
        achieved_hz = intervals / span_s if span_s > 0 else 0.0
        phases = {}
        for name, values in self.durations.items():
            ms = np.asarray(values) * 1e3
            phases[name] = PhaseStats(
                count=len(values), p50_ms=float(np.percentile(ms, 50)), p99_ms=float(np.percentile(ms, 99)),
                max_ms=float(ms.max()),
            )
        return TimingReport(
            target_hz=self.target_hz, achieved_hz=achieved_hz, steps=intervals, overruns=self.overruns, phases=phases,
        )
