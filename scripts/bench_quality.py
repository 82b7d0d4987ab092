"""Compare the default training recipe with the seed baseline on Arena expert demonstrations.

    python scripts/bench_quality.py --out runs/bench_quality
    python scripts/bench_quality.py --demos runs/demos --eval-episodes 50

Records expert rounds (unless --demos is given), trains both recipes, scores
them on the same held-out test episodes and in rounds against the CPU, prints
a table and writes OUT/bench_quality.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from agents.bench_quality import BenchQualityConfig, format_bench_quality, run_bench_quality
from agents.cli import add_dataclass_arguments, dataclass_from_args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(parser, BenchQualityConfig)
    config = dataclass_from_args(BenchQualityConfig, parser.parse_args(argv))
    logging.getLogger("bench_quality").info("config: %s", json.dumps(config.__dict__))
    result = run_bench_quality(config)
    print(format_bench_quality(result))
    path = Path(config.out) / "bench_quality.json"
    path.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
