"""Record demonstrations of the Arena into a crash-safe episode store, then print its imbalance report.

    python scripts/collect_demos.py --pilot expert --episodes 200 --out runs/demos
    python scripts/collect_demos.py --pilot expert --episodes 2000 --workers 4 --out runs/demos
    python scripts/collect_demos.py --pilot human --episodes 20 --out runs/my_demos
    python scripts/collect_demos.py --pilot expert --episodes 100 --seed 200 --out runs/demos --resume
    python scripts/collect_demos.py --report runs/demos --json

Exit status: 0 when every requested episode was recorded, 1 when recording
stopped early (the stop hotkey, Ctrl+C, a full disk; the recorded episodes are
kept), 2 on invalid options or an unusable store.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict

from demos.collect import CollectConfig, CollectResult, configure_logging, run_collection
from demos.errors import StoreError

logger = logging.getLogger("collect_demos")


def parse_args(argv: list[str] | None = None) -> CollectConfig:
    defaults = CollectConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilot", default=defaults.pilot, choices=("expert", "human"),
                        help="who plays: the scripted expert (headless) or a human on the keyboard (default: expert)")
    parser.add_argument("--out", default=defaults.out, help=f"store directory to write (default: {defaults.out})")
    parser.add_argument("--episodes", type=int, default=defaults.episodes, help="episodes to record (default: 10)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="reset seed of the first episode; episode i uses seed + i (default: 0)")
    parser.add_argument("--difficulty", default=defaults.difficulty,
                        help="CPU level: easy, normal or hard (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=defaults.workers,
                        help="expert only: recording processes, each writing its own episodes (default: 1)")
    parser.add_argument("--resume", action="store_true",
                        help="add episodes to the existing store at --out (same buttons and frame shape)")
    parser.add_argument("--report", default=None, metavar="DIR",
                        help="print the imbalance report of the store in DIR and exit")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    parser.add_argument("--frame-size", type=int, default=defaults.frame_size, help="frame side in pixels (default: 84)")
    parser.add_argument("--color", action="store_true", help="record RGB frames instead of grey")
    parser.add_argument("--frame-skip", type=int, default=defaults.frame_skip,
                        help="60 Hz game ticks per decision (default: 4, i.e. 15 decisions/s)")
    parser.add_argument("--round-time-s", type=float, default=defaults.round_time_s,
                        help="round length in seconds of game time (default: 40)")
    parser.add_argument("--max-steps", type=int, default=None, help="cut each episode after this many steps")
    parser.add_argument("--reaction-s", type=float, default=defaults.reaction_s,
                        help="expert only: reaction delay in seconds (default: 0.15)")
    parser.add_argument("--chunk-s", type=float, default=defaults.chunk_s,
                        help="seconds of steps per written chunk; a crash loses at most this much (default: 1)")
    parser.add_argument("--countdown-s", type=float, default=defaults.countdown_s,
                        help="human only: countdown in seconds before each episode (default: 3)")
    parser.add_argument("--profile", default=None,
                        help="human only: game profile (TOML) of a real game window to record instead of the Arena")
    parser.add_argument("--skip-bad", action="store_true",
                        help="report: leave out corrupt episode files with a warning instead of stopping")
    parser.add_argument("--plot", default=None, help="PNG path of the report plot (default: DIR/report.png)")
    return CollectConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    from fightenv.arena.env import DisplayError
    from fightenv.screen.capture import CaptureError
    from fightenv.screen.checks import CapabilityError

    configure_logging()
    config = parse_args(argv)
    if not config.report:  # the recording options mean nothing to a report
        logger.info("config: %s", json.dumps(asdict(config)))
    try:
        result = run_collection(config)
    except (StoreError, ValueError, DisplayError, CapabilityError, CaptureError) as error:
        logger.error("%s", error)
        return 2
    if isinstance(result, CollectResult):
        logger.info("session: %s", json.dumps(result.summary()))
        if result.stopped:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
