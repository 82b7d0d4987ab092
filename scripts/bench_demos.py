"""Measure expert recording speed, and loading time and memory of the demo store against imitation.data.serialize.

    python scripts/bench_demos.py                      # 30 expert rounds, results in runs/bench_demos.json
    python scripts/bench_demos.py --episodes 100 --json-out out/bench.json

See ``demos/bench.py`` for what is compared and how memory is measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict

from demos.bench import BenchConfig, format_results, run_benchmark
from demos.collect import configure_logging

logger = logging.getLogger("bench_demos")


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=defaults.episodes, help="expert rounds to record and load (default: 30)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="reset seed of the first round (default: 0)")
    parser.add_argument("--round-time-s", type=float, default=defaults.round_time_s,
                        help="round length in seconds of game time (default: 40)")
    parser.add_argument("--workers", type=int, default=defaults.workers,
                        help="recording processes (default: 1, the rate of one process)")
    parser.add_argument("--work-dir", default=None, help="keep the stores in this directory (default: a removed temp dir)")
    parser.add_argument("--json-out", default=defaults.json_out, help=f"results path (default: {defaults.json_out})")
    parser.add_argument("--skip-imitation", action="store_true", help="leave out the imitation comparison")
    parser.add_argument("--repeats", type=int, default=defaults.repeats,
                        help="fresh processes per loader; the fastest time is reported (default: 5)")
    parser.add_argument("--realtime-s", type=float, default=defaults.realtime_s,
                        help="seconds of real-time recording at 60 decisions/s to check for dropped steps "
                             "(default: 60; 0 skips it)")
    return BenchConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    config = parse_args(argv)
    logger.info("config: %s", json.dumps(asdict(config)))
    results = run_benchmark(config)
    print(format_results(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
