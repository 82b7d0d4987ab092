"""Measure the screen backend's real-time loop on the Arena window under a private Xvfb.

    python scripts/bench_screen.py                     # 600 steps at the profile's 15 Hz
    python scripts/bench_screen.py --steps 1200 --hz 60 --json out/bench_screen_60hz.json

Prints p50/p99 per phase (capture, preprocess, probes, policy, send_keys), the
achieved rate, the overruns, and capture + preprocess + probes per step
against the 5 ms budget (84x84 observation from the 640x480 window); writes
the same as JSON. Needs Xvfb and xdotool on PATH.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fightenv.screen.bench import BenchScreenConfig, format_results, run_benchmark, write_results  # noqa: E402


def parse_args(argv: list[str] | None = None) -> BenchScreenConfig:
    defaults = BenchScreenConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    helps = {
        "steps": "env steps to time (default: %(default)s)",
        "hz": "decision rate in steps per second (default: the profile's)",
        "profile": "game profile of the Arena window (default: fightenv/profiles/arena.toml)",
        "seed": "seed of the random presses and the CPU (default: %(default)s)",
        "press_chance": "chance per step and button to hold it (default: %(default)s)",
        "window_fps": "frames per second the Arena window draws, 1 to 60 (default: %(default)s)",
        "json": "output JSON path (default: %(default)s)",
    }
    for field in fields(BenchScreenConfig):
        kind = {"steps": int, "seed": int, "hz": float, "press_chance": float, "window_fps": float}.get(field.name, str)
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=getattr(defaults, field.name),
                            help=helps[field.name])
    args = parser.parse_args(argv)
    return BenchScreenConfig(**vars(args))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    results = run_benchmark(config)
    print(format_results(results))
    path = write_results(results, config.json)
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
