"""The default training recipe against the naive seed baseline, over several seeds, in worker processes.

Per seed this runs ``agents.bench_quality``: record ``episodes`` expert rounds,
train the default recipe and ``--preset seed-baseline`` on them, score both on
the same held-out test episodes, and let both policies and the expert play
``eval_episodes`` seeded rounds against the normal CPU. The section then
reports, over seeds, the numbers the training recipe is judged by:

- the gain in test macro F1 of the default over the baseline (target: 0.15);
- recall on every button held in 2% of the training steps or fewer (target:
  0.6), per seed and pooled over the seeds' test steps, beside how many press
  events of that button the test splits hold;
- rounds won against the CPU by each recipe.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agents.bench_quality import MIN_MACRO_F1_GAIN, MIN_RARE_RECALL, RARE_PREVALENCE
from agents.benchmark.ablation_report import spread
from agents.benchmark.dagger_seeds import SEED_STRIDE, use_one_thread, worker_pool

logger = logging.getLogger(__name__)

RECIPES = ("default", "seed_baseline")


@dataclass(frozen=True)
class RecipeSettings:
    """Sizes of the recipe comparison."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Five seeds, because 50 rounds hold only a few press events of the rarest buttons per test split."""
    episodes: int = 50
    """Expert rounds recorded per seed."""
    epochs: int = 30
    """Maximum training epochs of both recipes."""
    eval_episodes: int = 50
    """Seeded rounds against the CPU per pilot (the same rounds for every pilot and seed)."""

    def validate(self) -> None:
        if len(self.seeds) < 1 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"recipe seeds must be distinct and at least one, got {self.seeds}")
        for name in ("episodes", "epochs", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"recipe setting {name} must be at least 1, got {getattr(self, name)}")


def run_seed(settings: RecipeSettings, seed: int, out: Path) -> dict[str, Any]:
    """Run the comparison for one seed in ``out`` with one torch thread and return bench_quality's result."""
    from agents.bench_quality import BenchQualityConfig, run_bench_quality

    use_one_thread()
    config = BenchQualityConfig(out=str(out), episodes=settings.episodes, eval_episodes=settings.eval_episodes,
                                epochs=settings.epochs, num_threads=1, seed=seed * SEED_STRIDE)
    result = run_bench_quality(config)
    result["per_button"] = _per_button_counts(out)
    return result


def _per_button_counts(out: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Return, per recipe and button, the test recall, positive steps, press events and training prevalence."""
    import json

    counts: dict[str, dict[str, dict[str, float]]] = {}
    for recipe in RECIPES:
        metrics = json.loads((out / recipe / "metrics.json").read_text())
        prevalence = metrics["training"]["train_prevalence"]
        counts[recipe] = {}
        for name, button in metrics["test"]["per_button"].items():
            hold = button.get("demo_mean_hold_steps")
            # Every press event lasts at least one step, so a button with positive steps has one event or more.
            events = max(1, round(button["positives"] / hold)) if button["positives"] and hold else 0
            counts[recipe][name] = {"recall": button["recall"], "positives": button["positives"],
                                    "press_events": events, "train_prevalence": prevalence[name]}
    return counts


def run_recipe(settings: RecipeSettings, out_dir: Path, workers: int) -> dict[str, Any]:
    """Run every seed on ``workers`` processes and return the per-seed results and their aggregate."""
    settings.validate()
    pool = worker_pool(workers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with pool:
        futures = {seed: pool.submit(run_seed, settings, seed, out_dir / f"seed{seed}") for seed in settings.seeds}
        per_seed = {seed: future.result() for seed, future in futures.items()}
    return {"settings": asdict(settings), "workers": workers,
            "per_seed": {str(seed): result for seed, result in per_seed.items()},
            "aggregate": aggregate(list(per_seed.values()))}


def aggregate(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Summarise the seeds: scores and win rates per recipe, the F1 gain, and rare-button recall of the default."""
    summary: dict[str, Any] = {"recipes": {}}
    for recipe in RECIPES:
        summary["recipes"][recipe] = {
            metric: spread([seed["test"][recipe][metric] for seed in per_seed])
            for metric in ("macro_f1", "macro_ap", "exact_match", "binary_accuracy", "all_zero_binary_accuracy")
        }
        summary["recipes"][recipe]["win_rate"] = spread([seed["arena"][recipe]["win_rate"] for seed in per_seed])
    summary["expert_win_rate"] = spread([seed["arena"]["expert"]["win_rate"] for seed in per_seed])
    summary["macro_f1_gain"] = spread([seed["targets"]["macro_f1_gain"] for seed in per_seed])

    # A button counts as rare where it is pressed in at most RARE_PREVALENCE of the seed's training steps.
    rare: dict[str, dict[str, Any]] = {}
    for seed in per_seed:
        for name, button in seed["per_button"]["default"].items():
            if button["train_prevalence"] > RARE_PREVALENCE:
                continue
            entry = rare.setdefault(name, {"recalls": [], "hits": 0.0, "positives": 0, "press_events": []})
            entry["press_events"].append(button["press_events"])
            if button["positives"] > 0:
                entry["recalls"].append(button["recall"])
                entry["hits"] += button["recall"] * button["positives"]
                entry["positives"] += button["positives"]
    summary["rare_recall"] = {
        name: {
            "per_seed": spread(entry["recalls"]),
            "pooled": entry["hits"] / entry["positives"] if entry["positives"] else None,
            "test_press_events": entry["press_events"],
            "seeds_rare": len(entry["press_events"]),
        }
        for name, entry in rare.items()
    }
    pooled = [entry["pooled"] for entry in summary["rare_recall"].values()]
    default_wins = sum(seed["arena"]["default"]["wins"] for seed in per_seed)
    baseline_wins = sum(seed["arena"]["seed_baseline"]["wins"] for seed in per_seed)
    summary["targets"] = {
        "macro_f1_gain_met": summary["macro_f1_gain"]["mean"] is not None
        and summary["macro_f1_gain"]["mean"] >= MIN_MACRO_F1_GAIN,
        "rare_recall_met": bool(pooled) and all(value is not None and value >= MIN_RARE_RECALL for value in pooled),
        "more_wins_met": default_wins > baseline_wins,
        "default_wins": default_wins,
        "baseline_wins": baseline_wins,
        "rounds_per_recipe": sum(seed["arena"]["default"]["episodes"] for seed in per_seed),
    }
    return summary
