"""Play seeded Arena rounds with a pilot against the CPU and report win rate and button presses.

    python scripts/evaluate.py --pilot expert --episodes 200
    python scripts/evaluate.py --pilot expert --episodes 200 --mask-buttons guard,grab,special
    python scripts/evaluate.py --pilot policy:runs/bc --episodes 50 --json out/eval.json

Exit status: 0 on success, 2 on invalid options, a missing or mismatched policy, or an unknown button.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym

import fightenv
from agents.cli import help_field as _help
from agents.cli import parse_config
from agents.evaluation import evaluate, parse_button_list
from agents.pilots import ExpertPilot, MaskedPilot
from fightenv.arena.cpu import DIFFICULTIES

logger = logging.getLogger("evaluate")


@dataclass(frozen=True)
class EvaluateConfig:
    """Options of scripts/evaluate.py."""

    pilot: str = _help('"expert" for the scripted expert, or "policy:RUN_DIR" for a trained policy',
                       default="expert")
    episodes: int = _help("rounds to play", default=100)
    seed: int = _help("seed of the first round; round i uses seed + i", default=0)
    difficulty: str = _help(f"CPU level: {', '.join(DIFFICULTIES)}", default="normal")
    mask_buttons: str = _help("comma-separated buttons forced to released, e.g. guard,grab,special", default="")
    round_time_s: float = _help("round length in seconds of game time", default=40.0)
    json: str = _help("write the report as JSON to this path", default="")


def parse_args(argv: list[str] | None = None) -> EvaluateConfig:
    return parse_config(EvaluateConfig, __doc__, argv)


def env_options(spec: str) -> dict:
    """Return the Arena options (frame size, colour, frame skip) a "policy:RUN_DIR" pilot was trained with."""
    if not spec.startswith("policy:"):
        return {}
    from agents.policy_files import read_policy_config

    return read_policy_config(spec.removeprefix("policy:")).arena_options()


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
    logger.info("config: %s", json.dumps(asdict(config)))
    try:
        env = gym.make(fightenv.ARENA_ID, difficulty=config.difficulty, round_time_s=config.round_time_s,
                       **env_options(config.pilot))
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
