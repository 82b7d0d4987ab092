"""Benchmark of the screen backend's real-time loop on the Arena window program under a private Xvfb.

The loop is the screen env's own: send keys, wait for the step's slot,
capture, preprocess, run the probes. The budget the issue sets is capture plus
preprocessing plus probes under 5 ms per step, for an 84x84 observation from a
640x480 window.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fightenv.screen.profile import ARENA_PROFILE, load_profile
from fightenv.screen.timing import LoopTimer

logger = logging.getLogger(__name__)

BUDGET_MS = 5.0
PER_STEP_PHASES = ("capture", "preprocess", "probes")


@dataclass(frozen=True)
class BenchScreenConfig:
    """Settings of ``scripts/bench_screen.py``."""

    steps: int = 600
    """Env steps to time, after one warm-up step."""
    hz: float | None = None
    """Decision rate in steps per second; None uses the profile's (15 for the Arena)."""
    profile: str = str(ARENA_PROFILE)
    """Game profile to run; its [window] must be the Arena window program's."""
    seed: int = 0
    """Seed of the random button presses and of the Arena's CPU."""
    press_chance: float = 0.1
    """Chance per step and button that the random pilot presses it."""
    window_fps: float = 60.0
    """Frames per second the Arena window draws; on few cores its drawing competes with the loop being timed."""
    json: str = "out/bench_screen.json"
    """Output path of the results, as JSON."""


def run_benchmark(config: BenchScreenConfig) -> dict:
    """Start Xvfb and the Arena window, run the screen env for ``config.steps`` steps, and return the results."""
    from fightenv.screen.xvfb import launch_arena_window, private_display

    if config.steps < 10:
        raise ValueError(f"steps must be at least 10 to give a p99, got {config.steps}")
    profile = load_profile(config.profile)
    if config.hz is not None:
        profile = dataclasses.replace(profile, decision_hz=float(config.hz))
    logger.info("benchmark config: %s", asdict(config))

    with private_display() as display:
        window = launch_arena_window(
            display, "--seed", str(config.seed), "--round-time", "600", "--fps", str(config.window_fps),
        )
        try:
            total = _time_steps(config, profile)
        finally:
            window.terminate()
            window.wait(timeout=10)
    report = total.report()
    per_step_ms = np.sum([np.asarray(total.durations[p]) for p in PER_STEP_PHASES], axis=0) * 1e3

    per_step = {
        "p50_ms": float(np.percentile(per_step_ms, 50)),
        "p99_ms": float(np.percentile(per_step_ms, 99)),
        "max_ms": float(per_step_ms.max()),
        "budget_ms": BUDGET_MS,
        "p50_within_budget": bool(np.percentile(per_step_ms, 50) < BUDGET_MS),
        "p99_within_budget": bool(np.percentile(per_step_ms, 99) < BUDGET_MS),
    }
    return {
        "config": asdict(config),
        "window": "Arena window program, 640x480 client area, under Xvfb",
        "observation": f"{profile.frame.size[0]}x{profile.frame.size[1]} {'RGB' if profile.frame.color else 'grey'}",
        "probes": len(profile.probes),
        "timing": report.to_dict(),
        "capture_preprocess_probes": per_step,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "table": report.table(),
    }


def _time_steps(config: BenchScreenConfig, profile) -> LoopTimer:
    """Step the screen env with random presses; return the timing of every step, episodes joined."""
    from fightenv.screen.env import ScreenEnv

    env = ScreenEnv(profile)
    try:
        rng = np.random.default_rng(config.seed)
        env.reset()
        env.step(np.zeros(len(profile.buttons), dtype=np.uint8))
        # Time the steps only: drop the warm-up and the waiting in reset, and keep each episode's measurements.
        env.timer.reset()
        env.timer.mark_step(env.unwrapped.last_capture_s, overrun=False)
        total = LoopTimer(profile.decision_hz)
        for _ in tqdm(range(config.steps), desc="screen steps", unit="step"):
            action = (rng.random(len(profile.buttons)) < config.press_chance).astype(np.uint8)
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                total.absorb(env.timer)
                env.reset()
                env.timer.reset()
                env.timer.mark_step(env.unwrapped.last_capture_s, overrun=False)
        total.absorb(env.timer)
        return total
    finally:
        env.close()


def format_results(results: dict) -> str:
    per_step = results["capture_preprocess_probes"]
    return "\n".join([
        results["table"],
        f"capture + preprocess + probes per step: p50 {per_step['p50_ms']:.3f} ms, "
        f"p99 {per_step['p99_ms']:.3f} ms, max {per_step['max_ms']:.3f} ms "
        f"(budget {per_step['budget_ms']:.1f} ms: p50 {'met' if per_step['p50_within_budget'] else 'MISSED'}, "
        f"p99 {'met' if per_step['p99_within_budget'] else 'MISSED'})",
    ])


def write_results(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    return path
