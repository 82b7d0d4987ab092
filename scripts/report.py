"""Print the main job's report: expert, BC policy and corrected policy side by side.

    python scripts/report.py out/main_job
"""

from __future__ import annotations

import argparse
import logging
import sys

from agents.summary import pipeline_report

logger = logging.getLogger("report")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="the main job's output directory (default of scripts/main_job.sh: out/main_job)")
    args = parser.parse_args(argv)
    try:
        print(pipeline_report(args.out))
    except FileNotFoundError as error:
        logger.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
