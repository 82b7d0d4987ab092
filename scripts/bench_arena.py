"""Measure the Arena: env speed on one core against CartPole, and whether rare buttons decide rounds.

    python scripts/bench_arena.py                      # full: 200 rounds per pilot
    python scripts/bench_arena.py --rounds 40 --steps 5000 --json out/arena.json

Speed: env steps per second with default settings (84x84 grey, frame skip 4)
under random buttons and under the scripted expert, the median of
``--repeats`` runs, pinned to one CPU core, beside gymnasium's CartPole-v1 in
the same process.

Balance: the expert's win rate against the default CPU over ``--rounds``
seeded rounds, the same expert with guard, grab and special masked off, and
the expert's press rates. The checks printed at the end are the Arena's
design targets: expert wins at least 80%, masked at least 25 points less, at
least one button held in 30% or more of steps and at least two in 2% or fewer.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np

import fightenv
from agents.evaluation import evaluate
from agents.pilots import ExpertPilot, MaskedPilot

logger = logging.getLogger("bench_arena")
RARE_BUTTONS = ("guard", "grab", "special")


@dataclass(frozen=True)
class BenchArenaConfig:
    rounds: int = 200
    """Seeded rounds per pilot for the balance figures."""
    steps: int = 20_000
    """Env steps per speed run."""
    repeats: int = 5
    """Speed runs; the median is reported."""
    json: str | None = None
    """Write the results as JSON to this path."""


def machine_description() -> dict[str, str | int]:
    """Describe the CPU, core count and package versions for a benchmark record."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import stable_baselines3
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "gymnasium": gym.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "torch": torch.__version__,
        "date": date.today().isoformat(),
    }


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)


def steps_per_second(env: gym.Env, steps: int, choose_action, seed: int = 0) -> float:
    """Step ``env`` ``steps`` times with ``choose_action(obs)``, resetting at episode ends."""
    obs, _ = env.reset(seed=seed)
    start_s = time.perf_counter()
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(choose_action(obs))
        if terminated or truncated:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - start_s)


def measure_speed(config: BenchArenaConfig) -> dict[str, float]:
    arena = gym.make(fightenv.ARENA_ID)
    rng = np.random.default_rng(0)
    random_actions = (rng.random((4096, 10)) < 0.25).astype(np.int8)
    counter = iter(range(10**12))

    def random_action(_obs):
        return random_actions[next(counter) % len(random_actions)]

    expert = ExpertPilot(seed=0)
    expert.reset(arena, 0)

    def expert_action(_obs):
        return expert.act(_obs).action

    cartpole = gym.make("CartPole-v1")

    def cartpole_action(_obs):
        return next(counter) % 2

    runs: dict[str, list[float]] = {"arena_random": [], "arena_expert": [], "cartpole_random": []}
    for repeat in range(config.repeats):
        runs["arena_random"].append(steps_per_second(arena, config.steps, random_action, seed=repeat))
        arena.reset(seed=repeat)
        expert.reset(arena, repeat)
        runs["arena_expert"].append(steps_per_second(arena, config.steps, expert_action, seed=repeat))
        runs["cartpole_random"].append(steps_per_second(cartpole, config.steps, cartpole_action, seed=repeat))
    return {name: statistics.median(values) for name, values in runs.items()}


def measure_balance(config: BenchArenaConfig) -> dict[str, object]:
    env = gym.make(fightenv.ARENA_ID)
    full = evaluate(env, ExpertPilot(seed=0), config.rounds, seed=0)
    masked_pilot = MaskedPilot(ExpertPilot(seed=0), env.unwrapped.button_names, RARE_BUTTONS)
    masked = evaluate(env, masked_pilot, config.rounds, seed=0)
    by_level = {}
    for level in ("easy", "hard"):
        level_env = gym.make(fightenv.ARENA_ID, difficulty=level)
        by_level[level] = evaluate(level_env, ExpertPilot(seed=0), config.rounds, seed=0).win_rate
    return {"expert": full, "masked": masked, "expert_win_rate_by_level": by_level}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="seeded rounds per pilot (default: 200)")
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per speed run (default: 20000)")
    parser.add_argument("--repeats", type=int, default=5, help="speed runs, median reported (default: 5)")
    parser.add_argument("--json", default=None, help="write the results as JSON to this path")
    config = BenchArenaConfig(**vars(parser.parse_args(argv)))
    logger.info("config: %s", asdict(config))

    pin_to_one_core()
    machine = machine_description()
    speed = measure_speed(config)
    balance = measure_balance(config)
    expert, masked = balance["expert"], balance["masked"]
    rates = {b.name: b.press_rate for b in expert.buttons}

    checks = {
        "arena steps/s >= 2000 (one core, default settings)": speed["arena_random"] >= 2000,
        "expert win rate >= 80%": expert.win_rate >= 0.80,
        "masked expert wins >= 25 points less": expert.win_rate - masked.win_rate >= 0.25,
        "a button held in >= 30% of steps": max(rates.values()) >= 0.30,
        "two buttons held in <= 2% of steps": sum(rate <= 0.02 for rate in rates.values()) >= 2,
    }

    print(f"\nMachine: {machine['cpu']}, {machine['cores']} cores; pinned to one core. Date {machine['date']}.")
    print("\n| env | steps/s (median of %d runs of %d steps) |" % (config.repeats, config.steps))
    print("|---|---|")
    print(f"| Arena, random buttons | {speed['arena_random']:,.0f} |")
    print(f"| Arena, scripted expert (pilot included) | {speed['arena_expert']:,.0f} |")
    print(f"| CartPole-v1, same process | {speed['cartpole_random']:,.0f} |")
    print(f"\n| pilot ({config.rounds} rounds vs normal CPU) | win rate |")
    print("|---|---|")
    print(f"| expert | {expert.win_rate:.1%} |")
    print(f"| expert, guard/grab/special masked | {masked.win_rate:.1%} |")
    for level, win_rate in balance["expert_win_rate_by_level"].items():
        print(f"| expert vs {level} CPU | {win_rate:.1%} |")
    print("\n| button | expert press rate | press events | mean hold (steps) |")
    print("|---|---|---|---|")
    for b in expert.buttons:
        print(f"| {b.name} | {b.press_rate:.2%} | {b.press_events} | {b.mean_hold_steps:.2f} |")
    print()
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")

    if config.json:
        path = Path(config.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "config": asdict(config),
            "machine": machine,
            "steps_per_s": speed,
            "expert": expert.to_dict(),
            "masked": masked.to_dict(),
            "expert_win_rate_by_level": balance["expert_win_rate_by_level"],
            "checks": checks,
        }
        path.write_text(json.dumps(result, indent=2) + "\n")
        logger.info("wrote %s", path)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
