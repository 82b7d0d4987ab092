"""Measure training throughput and peak memory of agents.train's loop against imitation's bc.BC, side by side.

    python scripts/bench_train.py                          # synthetic 84x84 demonstrations
    python scripts/bench_train.py --demos runs/demos --json-out out/bench_train.json

Prints a table and, with --json-out, writes the measurements as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from agents.bench_train import BenchTrainConfig, format_bench, run_bench
from agents.cli import add_dataclass_arguments, dataclass_from_args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(parser, BenchTrainConfig)
    config = dataclass_from_args(BenchTrainConfig, parser.parse_args(argv))
    logging.getLogger("bench_train").info("config: %s", json.dumps(config.__dict__))
    result = run_bench(config)
    print(format_bench(result))
    if config.json_out:
        path = Path(config.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
