"""Human-gated against plain DAgger over several seeds, in parallel worker processes.

Per seed: record ``demo_episodes`` expert rounds (reset seeds ``seed * 10_000``
on), train the default recipe on them for at most ``bc_epochs`` epochs, then run
``agents.dagger.run_dagger`` twice from that policy with the same correction
budget: once with the expert corrector taking over where the agent misses a
rare button (takeover mode, "gated") and once as plain DAgger, where the expert
labels every visited step until the budget is spent (label_all mode, "plain").
Every worker process runs one torch thread. Each (seed, mode) run is its own
task, so two workers stay busy over three seeds. Results are aggregated per
round over the seeds: mean, sample standard deviation, minimum and maximum.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MODES = {"gated": "takeover", "plain": "label_all"}
"""Label of each run in the results, and its ``agents.correction.CorrectionMode`` value."""
SEED_STRIDE = 10_000
"""Reset seeds of seed s's demonstrations start at s * SEED_STRIDE, so the seeds share no round."""


@dataclass(frozen=True)
class DaggerSeedsSettings:
    """Sizes of the multi-seed DAgger comparison."""

    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of demonstrations, starting policy, played episodes and corrector."""
    demo_episodes: int = 40
    """Expert rounds recorded per seed for the starting policy."""
    bc_epochs: int = 20
    """Maximum epochs of the starting policy (default recipe otherwise, so it stops early without progress)."""
    rounds: int = 3
    """Correction rounds per run."""
    episodes_per_round: int = 8
    """Episodes the policy plays per round."""
    epochs: int = 4
    """Warm-started training epochs per round."""
    eval_episodes: int = 50
    """Seeded rounds against the CPU that score each policy (the same seeds for every policy)."""
    budget_fraction: float = 0.25
    """Corrected (gated) or labelled (plain) steps over all rounds, as a share of the demonstration training steps."""

    def validate(self) -> None:
        if len(self.seeds) < 1 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"DAgger seeds must be distinct and at least one, got {self.seeds}")
        for name in ("demo_episodes", "bc_epochs", "rounds", "episodes_per_round", "epochs", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"DAgger setting {name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.budget_fraction <= 1:
            raise ValueError(f"DAgger budget_fraction must be in (0, 1], got {self.budget_fraction}")


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Return a pool of ``workers`` spawned processes (spawn, so no torch threads or X connections are forked)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def use_one_thread() -> None:
    """Set this worker process to one torch thread and warnings-only logging."""
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def prepare_start(settings: DaggerSeedsSettings, seed: int, out: Path) -> str:
    """Record the seed's demonstrations and train its starting policy, unless a finished one is in ``out``."""
    from agents.train import TrainConfig, run
    from demos.collect import CollectConfig, run_collection

    use_one_thread()
    demos, run_dir = out / "demos", out / "bc"
    if not (demos / "manifest.json").exists():
        run_collection(CollectConfig(pilot="expert", out=str(demos), episodes=settings.demo_episodes,
                                     seed=seed * SEED_STRIDE), out_stream=io.StringIO())
    if not (run_dir / "policy.json").exists():
        run(TrainConfig(demos=str(demos), out=str(run_dir), epochs=settings.bc_epochs, seed=seed, num_threads=1,
                        device="cpu", plots=False, tensorboard=False, progress=False,
                        resume=(run_dir / "checkpoint" / "state.json").exists()))
    return str(run_dir)


def run_mode(settings: DaggerSeedsSettings, seed: int, policy: str, out: Path, label: str) -> list[dict[str, Any]]:
    """Run the correction rounds of one mode from ``policy``; resume an interrupted run in ``out``."""
    from agents.correction import CorrectionMode
    from agents.dagger import DaggerConfig, run_dagger

    use_one_thread()
    run_out = out / f"dagger_{label}"
    config = DaggerConfig(
        policy=policy, out=str(run_out), rounds=settings.rounds, episodes_per_round=settings.episodes_per_round,
        mode=CorrectionMode(MODES[label]), budget_fraction=settings.budget_fraction, epochs=settings.epochs,
        eval_episodes=settings.eval_episodes, seed=seed, progress=False,
        resume=(run_out / "rounds.json").exists(),
    )
    rows = run_dagger(config)
    if len(rows) > settings.rounds + 1:
        # A resumed directory from a larger run: keep the rounds these settings ask for.
        rows = rows[:settings.rounds + 1]
    return rows


def run_dagger_seeds(settings: DaggerSeedsSettings, out_dir: Path, workers: int) -> dict[str, Any]:
    """Run every seed and mode on ``workers`` processes and return per-seed rows plus the aggregate."""
    from tqdm import tqdm

    settings.validate()
    pool = worker_pool(workers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with pool:
        starts = {seed: pool.submit(prepare_start, settings, seed, out_dir / f"seed{seed}") for seed in settings.seeds}
        policies = {seed: future.result() for seed, future in tqdm(starts.items(), desc="DAgger starting policies",
                                                                   unit="seed")}
        runs = {(seed, label): pool.submit(run_mode, settings, seed, policies[seed], out_dir / f"seed{seed}", label)
                for seed in settings.seeds for label in MODES}
        rows = {key: future.result() for key, future in tqdm(runs.items(), desc="DAgger runs", unit="run")}

    per_seed = []
    for seed in settings.seeds:
        demo_steps = rows[(seed, "gated")][0].get("training_steps")
        per_seed.append({
            "seed": seed,
            "policy": policies[seed],
            "budget_steps": None if demo_steps is None else int(settings.budget_fraction * demo_steps),
            **{label: rows[(seed, label)] for label in MODES},
        })
    result = {"settings": asdict(settings), "workers": workers, "per_seed": per_seed,
              "aggregate": aggregate(per_seed, settings.rounds)}
    (out_dir / "dagger_seeds.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


AGGREGATED = ("win_rate", "rare_closed_loop_recall_mean", "rare_recall_mean", "intervention_rate", "corrected_steps")
"""Round-row fields averaged over seeds."""


def aggregate(per_seed: list[dict[str, Any]], rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Per mode and round: mean, sample standard deviation, min and max over seeds of each AGGREGATED field."""
    summary: dict[str, list[dict[str, Any]]] = {}
    for label in MODES:
        summary[label] = []
        for round_index in range(rounds + 1):
            row: dict[str, Any] = {"round": round_index}
            for field in AGGREGATED:
                values = [seed_rows[label][round_index].get(field) for seed_rows in per_seed
                          if round_index < len(seed_rows[label])]
                values = [float(v) for v in values if v is not None]
                if not values:
                    row[field] = None
                    continue
                row[field] = {
                    "mean": float(np.mean(values)),
                    "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                    "min": float(min(values)),
                    "max": float(max(values)),
                    "n": len(values),
                }
            summary[label].append(row)
    return summary
