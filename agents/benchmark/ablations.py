"""Quality ablations on Arena expert demonstrations.

The tables compare losses, decision rules, random-frame against episode
splits, temporal context, action offsets, and two networks against one.
Per seed, one expert store is recorded and every variant is trained on it
with that seed. Each variant is scored on the same held-out test episodes
(test macro F1, macro AP, recall of each rare button) and plays the same
seeded rounds against the CPU (win rate). Tables give the mean and the
sample standard deviation over seeds. Runs are shared between sections: the
default recipe is the reference row of every table, and the decision-rule
table re-decides that one trained model instead of retraining.

Jobs (one per seed and variant) run in a spawn process pool, one torch
thread each. A job whose ``result.json`` exists with the same job settings
is skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agents.benchmark.ablation_jobs import REFERENCE, JobSpec, run_job_in_worker
from agents.benchmark.ablation_report import SECTIONS, ablation_markdown, aggregate_sections
from agents.benchmark.dagger_seeds import worker_pool
from agents.cli import help_field as _help

logger = logging.getLogger(__name__)

SECTION_NAMES = ("loss", "decision", "split", "temporal", "offset", "two_networks")
RECORDING_SEED_STRIDE = 10_000
"""Seed s records rounds with reset seeds s * stride, s * stride + 1 and so on, so it bounds the rounds per seed."""
EVAL_SEED_BASE = 1_000_000
"""Seed s plays evaluation rounds from reset seed EVAL_SEED_BASE + s * stride, apart from every recorded round."""

__all__ = ["AblationSettings", "ablation_markdown", "full_settings", "quick_settings", "run_ablations",
           "tiny_settings"]


@dataclass
class AblationSettings:
    """Sizes of one ablation run; the defaults are ``full_settings()``."""

    seeds: tuple[int, ...] = _help("training seeds; each also records its own expert store", default=(0, 1, 2))
    episodes: int = _help("expert rounds recorded per seed", default=60)
    epochs: int = _help("maximum training epochs of every variant", default=25)
    eval_episodes: int = _help("closed-loop rounds against the CPU per trained policy and decision rule",
                               default=30)
    workers: int = _help("parallel processes, one torch thread each", default=2)
    sections: tuple[str, ...] = _help(f"tables to produce, a subset of {SECTION_NAMES}", default=SECTION_NAMES)
    difficulty: str = _help("CPU level of the recorded and evaluated rounds: easy, normal or hard",
                            default="normal")
    train_overrides: dict[str, Any] = _help("TrainConfig fields set for every variant, e.g. a smaller batch",
                                            default_factory=dict)

    def __post_init__(self) -> None:
        self.seeds = tuple(int(seed) for seed in self.seeds)
        self.sections = tuple(self.sections)
        unknown = [name for name in self.sections if name not in SECTION_NAMES]
        if unknown:
            raise ValueError(f"unknown ablation sections {unknown}; choose from {', '.join(SECTION_NAMES)}")
        if not self.sections:
            raise ValueError(f"no ablation section chosen; choose from {', '.join(SECTION_NAMES)}")
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed (three for a spread)")
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct and non-negative, got {self.seeds}")
        # Three episodes is the minimum for non-empty train, validation and test splits.
        for name, minimum in (("episodes", 3), ("epochs", 1), ("eval_episodes", 1), ("workers", 1)):
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} must be at least {minimum}, got {getattr(self, name)}")
        if self.episodes >= RECORDING_SEED_STRIDE:
            raise ValueError(f"episodes must be below {RECORDING_SEED_STRIDE} so that seeds record disjoint "
                             f"rounds, got {self.episodes}")


def full_settings() -> AblationSettings:
    """Return the settings of the published tables: 3 seeds, 60 rounds, 25 epochs, 30 rounds of play.

    Estimated cost on an idle 2-core machine with 2 workers: about 35 minutes.
    The estimate scales one seed of ``quick_settings`` sizes, measured on this
    project's 2-core development machine under other load (``cpu_s`` per job
    in the result) when rounds lasted 15 s. About 0.23 s went to each round of
    play, so about 0.45 s for the current 30 s rounds, and 1.5 s to loading
    per job. The rest, about 120 us per training step and epoch averaged over
    the variants, went to training, and 4 stacked frames cost about twice the
    default. Per seed, 17 jobs train 18 networks: the default, 6
    losses (one of them the default's own loss, trained again), the frame
    split, 4 variants of the temporal inputs, 4 offsets, and the two-network
    job, which trains twice. They play 20 sets of rounds: 4 decision rules on
    the default and 1 per other job. 60 rounds of about 30 s give about 19k
    training steps. Training takes 18 x 25 epochs x 19k x 120 us = 1026 s,
    play 20 x 30 x 0.45 s = 270 s and loading about 100 s, so about 1400 CPU
    seconds per seed. 3 seeds on 2 workers make about 2100 s. Early stopping
    shortens runs, and other load on the machine lengthens them: the run of
    2026-12-05 took 2,872 s beside a few short jobs.
    """
    return AblationSettings()


def quick_settings() -> AblationSettings:
    """Return a smaller run with all six sections and 3 seeds: 20 rounds, 10 epochs, 15 rounds of play.

    Estimated at about 5.5 minutes on an idle 2-core machine with 2 workers,
    by the arithmetic of ``full_settings``: about 220 CPU seconds per seed.
    """
    return AblationSettings(episodes=20, epochs=10, eval_episodes=15)


def tiny_settings() -> AblationSettings:
    """Return the smallest run that exercises the pipeline (for tests): 1 seed, 4 rounds, 1 epoch, 1 round of play.

    Its numbers mean nothing; with 1 worker it runs the decision section in under a minute.
    """
    return AblationSettings(seeds=(0,), episodes=4, epochs=1, eval_episodes=1, workers=1, sections=("decision",),
                            train_overrides={"patience": 0})


def section_variants(sections: tuple[str, ...]) -> list[str]:
    """Return the variants the chosen sections need, each once, the reference first."""
    variants = [REFERENCE]
    for section in sections:
        for row in SECTIONS[section]["rows"]:
            if row["variant"] not in variants:
                variants.append(row["variant"])
    return variants


def plan_jobs(settings: AblationSettings, out_dir: Path) -> list[JobSpec]:
    """Return one JobSpec per (seed, variant) the chosen sections need."""
    jobs = []
    for seed in settings.seeds:
        for variant in section_variants(settings.sections):
            jobs.append(JobSpec(
                seed=seed, variant=variant, demos=str(store_path(out_dir, settings, seed)),
                run_dir=str(out_dir / f"seed{seed}" / variant), epochs=settings.epochs,
                eval_episodes=settings.eval_episodes, eval_seed=EVAL_SEED_BASE + seed * RECORDING_SEED_STRIDE,
                difficulty=settings.difficulty, train_overrides=dict(settings.train_overrides),
            ))
    return jobs


def store_path(out_dir: Path, settings: AblationSettings, seed: int) -> Path:
    """Return the expert store of ``seed``; its name carries the round count and CPU level it was recorded with."""
    return out_dir / f"seed{seed}" / f"demos_{settings.episodes}rounds_{settings.difficulty}"


def record_store(path: str, episodes: int, difficulty: str, seed: int) -> str:
    """Record ``episodes`` expert rounds into ``path`` unless it exists, renaming a temporary directory at the end."""
    import shutil

    import torch

    import fightenv  # noqa: F401  (registers fightenv/Arena-v0)
    from agents.bench_quality import record_expert_demos

    torch.set_num_threads(1)
    target = Path(path)
    if target.exists():
        return path
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    record_expert_demos(partial, episodes, difficulty, seed * RECORDING_SEED_STRIDE)
    partial.rename(target)
    return path


def _finished(job: JobSpec) -> dict[str, Any] | None:
    """Return the stored result of ``job`` when it finished with the same job settings, else None."""
    if not job.result_path.is_file():
        return None
    try:
        result = json.loads(job.result_path.read_text())
    except json.JSONDecodeError:
        logger.warning("result %s is not valid JSON; running the job again", job.result_path)
        return None
    if result.get("job") != json.loads(json.dumps(asdict(job))):
        logger.info("result %s was made with other settings; running the job again", job.result_path)
        return None
    return result


def run_ablations(settings: AblationSettings, out_dir: Path) -> dict:
    """Record, train, score and play every job the sections need; return the tables as JSON-ready data.

    The result is also written to ``out_dir/ablations.json``. Failed jobs are
    logged and listed under ``failed_jobs``, and their rows aggregate over the
    remaining seeds. The pool uses the spawn start method, which re-imports
    the caller's main module in every worker, so a script that calls this
    must keep its work under ``if __name__ == "__main__":``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    logger.info("ablation settings: %s", json.dumps(asdict(settings)))
    (out_dir / "settings.json").write_text(json.dumps(asdict(settings), indent=2))
    jobs = plan_jobs(settings, out_dir)
    results: dict[tuple[int, str], dict[str, Any]] = {}
    pending = []
    for job in jobs:
        finished = _finished(job)
        if finished is None:
            pending.append(job)
        else:
            results[(job.seed, job.variant)] = finished
    logger.info("%d ablation jobs, %d already finished", len(jobs), len(jobs) - len(pending))

    failed: dict[str, str] = {}
    if pending:
        with worker_pool(settings.workers) as pool:
            # Record each seed's store first, in parallel; every job of that seed reads it.
            stores = {(job.demos, job.seed) for job in pending}
            for future in as_completed([pool.submit(record_store, path, settings.episodes, settings.difficulty, seed)
                                        for path, seed in stores]):
                future.result()
            futures = {pool.submit(run_job_in_worker, job): job for job in pending}
            for future in tqdm(as_completed(futures), total=len(futures), desc="ablation jobs", unit="job"):
                job = futures[future]
                try:
                    results[(job.seed, job.variant)] = future.result()
                except Exception as error:  # one failed job must not lose the others' results
                    logger.error("ablation job seed %d, variant %s failed: %s", job.seed, job.variant, error)
                    failed[f"seed{job.seed}/{job.variant}"] = f"{type(error).__name__}: {error}"

    result = {
        "settings": asdict(settings),
        "sections": aggregate_sections(settings.sections, settings.seeds, results),
        "jobs": {f"seed{seed}/{variant}": {"elapsed_s": job_result["elapsed_s"], "cpu_s": job_result.get("cpu_s"),
                                           "result": str(Path(job_result["job"]["run_dir"]) / "result.json")}
                 for (seed, variant), job_result in sorted(results.items())},
        "failed_jobs": failed,
    }
    (out_dir / "ablations.json").write_text(json.dumps(result, indent=2))
    return result
