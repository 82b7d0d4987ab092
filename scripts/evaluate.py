"""Play seeded Arena rounds with a pilot against the CPU and report win rate and button presses.

    python scripts/evaluate.py --pilot expert --episodes 200
    python scripts/evaluate.py --pilot expert --episodes 200 --mask-buttons guard,grab,special
    python scripts/evaluate.py --pilot policy:runs/bc --episodes 50 --json out/eval.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym

import fightenv
from agents.evaluation import evaluate, parse_button_list
from agents.pilots import ExpertPilot, MaskedPilot
from fightenv.arena.cpu import DIFFICULTIES

logger = logging.getLogger("evaluate")


@dataclass(frozen=True)
class EvaluateConfig:
    pilot: str = "expert"
    """"expert" for the scripted expert, or "policy:RUN_DIR" for a trained policy."""
    episodes: int = 100
    """Rounds to play."""
    seed: int = 0
    """Seed of the first round; round i uses seed + i."""
    difficulty: str = "normal"
    """CPU level."""
    mask_buttons: str = ""
    """Comma-separated buttons forced to released, e.g. guard,grab,special."""
    round_time_s: float = 40.0
    """Round length in seconds of game time."""
    json: str | None = None
    """Write the report as JSON to this path."""


def parse_args(argv: list[str] | None = None) -> EvaluateConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilot", default="expert", help='"expert" or "policy:RUN_DIR" (default: expert)')
    parser.add_argument("--episodes", type=int, default=100, help="rounds to play (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first round; round i uses seed + i")
    parser.add_argument("--difficulty", default="normal", help=f"CPU level: {', '.join(DIFFICULTIES)}")
    parser.add_argument("--mask-buttons", default="", help="comma-separated buttons forced to released")
    parser.add_argument("--round-time-s", type=float, default=40.0, help="round length in game seconds")
    parser.add_argument("--json", default=None, help="write the report as JSON to this path")
    return EvaluateConfig(**vars(parser.parse_args(argv)))


def make_pilot(spec: str, seed: int, env: gym.Env):
    """Build the pilot named by ``spec``: "expert" or "policy:RUN_DIR", the policy checked against ``env``."""
    if spec == "expert":
        return ExpertPilot(seed=seed)
    if spec.startswith("policy:"):
        run_dir = Path(spec.removeprefix("policy:"))
        from agents import PolicyPilot

        return PolicyPilot.from_run(run_dir, env=env, seed=seed)
    raise ValueError(f'unknown pilot {spec!r}; use "expert" or "policy:RUN_DIR"')


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    logger.info("config: %s", asdict(config))
    try:
        env = gym.make(fightenv.ARENA_ID, difficulty=config.difficulty, round_time_s=config.round_time_s)
        pilot = make_pilot(config.pilot, config.seed, env)
        masked = parse_button_list(config.mask_buttons, env.unwrapped.button_names)
        if masked:
            pilot = MaskedPilot(pilot, env.unwrapped.button_names, masked)
        report = evaluate(env, pilot, config.episodes, seed=config.seed)
    except (ValueError, FileNotFoundError, TypeError) as error:
        logger.error("%s", error)
        return 2
    except Exception as error:
        from agents.policy_files import PolicyFileError

        if isinstance(error, PolicyFileError):
            logger.error("%s", error)
            return 2
        raise

    print(report.table())
    if config.json:
        path = Path(config.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**report.to_dict(), "masked_buttons": list(masked), "config": asdict(config)}
        path.write_text(json.dumps(data, indent=2) + "\n")
        logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
