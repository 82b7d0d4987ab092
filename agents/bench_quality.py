"""Quality of the default training recipe against the naive seed baseline on Arena expert demonstrations.

One run records expert rounds (or reuses a store), trains the default recipe
and ``--preset seed-baseline`` on the same demonstrations, scores both on the
same held-out test episodes, and lets the expert and both policies play
seeded rounds against the CPU. It reports whether the default recipe reaches these targets:

- test macro F1 of the default at least 0.15 above the baseline's;
- recall of at least 0.6 on every button held in 2% of the steps or fewer;
- more rounds won against the CPU than the baseline.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym

from agents.cli import help_field as _help

logger = logging.getLogger(__name__)

RARE_PREVALENCE = 0.02
MIN_RARE_RECALL = 0.6
MIN_MACRO_F1_GAIN = 0.15


@dataclass
class BenchQualityConfig:
    """Configuration of scripts/bench_quality.py."""

    out: str = _help("directory for the demos, both runs and the JSON result", default="runs/bench_quality")
    demos: str = _help("existing demo store to use instead of recording new rounds", default="")
    episodes: int = _help("expert rounds to record when --demos is empty", default=50)
    difficulty: str = _help("CPU level of the recorded and evaluated rounds: easy, normal or hard", default="normal")
    eval_episodes: int = _help("rounds each pilot plays against the CPU", default=20)
    eval_seed: int = _help("reset seed of the first evaluation round (kept apart from recording seeds)",
                           default=100_000)
    epochs: int = _help("maximum training epochs of both recipes", default=30)
    num_threads: int = _help("torch CPU threads; 0 picks the available cores", default=0)
    seed: int = _help("seed of recording, splits and training", default=0)


def record_expert_demos(path: Path, episodes: int, difficulty: str, seed: int) -> None:
    """Record ``episodes`` expert rounds into a new store at ``path``."""
    from agents.pilots import ExpertPilot
    from agents.session import run_episode
    from demos.manifest import StoreLayout
    from demos.store import EpisodeStore

    env = gym.make("fightenv/Arena-v0", difficulty=difficulty)
    with EpisodeStore.open(path, "create", **asdict(StoreLayout.from_env(env))) as store:
        for i in range(episodes):
            run_episode(env, ExpertPilot(seed=seed + i), seed=seed + i, recorder=store)


def _rare_recalls(test: dict[str, Any], train_prevalence: dict[str, float]) -> dict[str, float | None]:
    return {name: button["recall"] for name, button in test["per_button"].items()
            if train_prevalence[name] <= RARE_PREVALENCE}


def run_bench_quality(config: BenchQualityConfig) -> dict[str, Any]:
    """Record, train both recipes, evaluate them in the Arena and return the JSON-ready result."""
    import fightenv  # noqa: F401  (registers fightenv/Arena-v0)
    from agents.evaluation import evaluate
    from agents.pilots import ExpertPilot
    from agents.policy_pilot import PolicyPilot
    from agents.train import Preset, TrainConfig, run

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    demos = Path(config.demos) if config.demos else out / "demos"
    if not config.demos:
        logger.info("recording %d expert rounds into %s", config.episodes, demos)
        record_expert_demos(demos, config.episodes, config.difficulty, config.seed)

    runs = {}
    base = TrainConfig(demos=str(demos), epochs=config.epochs, seed=config.seed, num_threads=config.num_threads,
                       progress=False)
    for name, preset in (("default", Preset.DEFAULT), ("seed_baseline", Preset.SEED_BASELINE)):
        run_dir = out / name
        run(replace(base, out=str(run_dir), preset=preset))
        runs[name] = json.loads((run_dir / "metrics.json").read_text())

    env = gym.make("fightenv/Arena-v0", difficulty=config.difficulty)
    pilots = {"expert": ExpertPilot(seed=config.seed)}
    for name in runs:
        pilots[name] = PolicyPilot.from_run(out / name, env=env, seed=config.seed)
    arena = {name: evaluate(env, pilot, config.eval_episodes, seed=config.eval_seed).to_dict()
             for name, pilot in pilots.items()}

    default_test, baseline_test = runs["default"]["test"], runs["seed_baseline"]["test"]
    prevalence = runs["default"]["training"]["train_prevalence"]
    rare = _rare_recalls(default_test, prevalence)
    gain = (default_test["macro_f1"] or 0.0) - (baseline_test["macro_f1"] or 0.0)
    return {
        "config": asdict(config),
        "test": {name: {key: metrics["test"][key] for key in ("macro_f1", "macro_ap", "micro_f1", "exact_match",
                                                                "binary_accuracy", "all_zero_binary_accuracy")}
                 for name, metrics in runs.items()},
        "rare_button_recall": {"default": rare, "seed_baseline": _rare_recalls(baseline_test, prevalence)},
        "arena": {name: {"win_rate": report["win_rate"], "wins": report["wins"], "episodes": report["episodes"],
                         "press_rate": {b: v["press_rate"] for b, v in report["buttons"].items()},
                         "mean_hold_steps": {b: v["mean_hold_steps"] for b, v in report["buttons"].items()}}
                  for name, report in arena.items()},
        "targets": {
            "macro_f1_gain": gain,
            "macro_f1_gain_met": gain >= MIN_MACRO_F1_GAIN,
            "rare_recall_met": all(r is not None and r >= MIN_RARE_RECALL for r in rare.values()),
            "more_wins_met": arena["default"]["wins"] > arena["seed_baseline"]["wins"],
        },
    }


def format_bench_quality(result: dict[str, Any]) -> str:
    lines = [f"{'recipe':<16}{'macro F1':>10}{'macro AP':>10}{'exact':>8}{'bin acc':>9}{'win rate':>10}"]
    for name, test in result["test"].items():
        lines.append(f"{name:<16}{test['macro_f1']:>10.3f}{test['macro_ap']:>10.3f}{test['exact_match']:>8.3f}"
                     f"{test['binary_accuracy']:>9.3f}{result['arena'][name]['win_rate']:>10.1%}")
    lines.append(f"{'expert':<16}{'':>37}{result['arena']['expert']['win_rate']:>10.1%}")
    rare = result["rare_button_recall"]["default"]
    lines.append("default recall on buttons held in <= 2% of training steps: " + ", ".join(
        f"{name} {'n/a' if value is None else f'{value:.2f}'}" for name, value in rare.items()))
    targets = result["targets"]
    lines.append(f"targets: macro F1 gain {targets['macro_f1_gain']:+.3f} (>= {MIN_MACRO_F1_GAIN}: "
                 f"{targets['macro_f1_gain_met']}), rare recall >= {MIN_RARE_RECALL}: {targets['rare_recall_met']}, "
                 f"more wins than the baseline: {targets['more_wins_met']}")
    return "\n".join(lines)
