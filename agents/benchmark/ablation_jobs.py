"""One job of the quality ablations: train one variant on one seed's expert store, score it, play the CPU.

A job trains through the public pieces of ``agents.train`` (``split_demo_set``
and ``fit``), so every variant is the training script's own recipe with a few
fields changed. It then scores the held-out test episodes and plays seeded
rounds against the Arena's CPU, and writes everything into one JSON file.
The job of the default recipe also re-decides its trained model with every
decision rule (0.5, tuned thresholds, press-rate matching, sampling) without
retraining. The two-network job trains one policy on the frequent buttons and
one on the rare ones and combines them into one pilot.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.bench_quality import RARE_PREVALENCE  # a button held in at most this share of training steps is rare

logger = logging.getLogger(__name__)

REFERENCE = "default"
TWO_NETWORKS = "two_networks"

VARIANTS: dict[str, dict[str, Any]] = {
    REFERENCE: {},
    # Every loss row names its loss and pos_weight, so that it keeps its meaning whichever loss is the default.
    "bce": {"loss": "bce", "pos_weight": "none"},
    "bce_ratio": {"loss": "bce", "pos_weight": "ratio"},
    "bce_sqrt": {"loss": "bce", "pos_weight": "sqrt"},
    "focal": {"loss": "focal", "pos_weight": "none"},
    "asymmetric": {"loss": "asymmetric", "pos_weight": "none"},
    "logit_adjusted": {"loss": "logit_adjusted", "pos_weight": "none"},
    "frame_split": {"split": "frames"},
    "no_context": {"n_frames": 1, "state_window": 1},
    "stacked_frames": {"n_frames": 4, "state_window": 1},
    "state_window_conv": {"n_frames": 1, "state_window": 16, "temporal": "conv"},
    "raw_state": {"normalize_state": False},
    "offset_1": {"action_offset": 1},
    "offset_2": {"action_offset": 2},
    "offset_3": {"action_offset": 3},
    "offset_4": {"action_offset": 4},
    TWO_NETWORKS: {},
}
"""TrainConfig fields each variant changes from the default recipe."""

DECISION_RULES = ("max_f1", "fixed_0.5", "press_rate", "sample")
"""Decision rules the reference job applies to its one trained model; max_f1 is the recipe's own."""


class AblationError(Exception):
    """An ablation job cannot run; the message names the value and the fix."""


@dataclass(frozen=True)
class JobSpec:
    """One (seed, variant) training job and where its store and outputs live."""

    seed: int
    variant: str
    demos: str
    run_dir: str
    epochs: int
    eval_episodes: int
    eval_seed: int
    difficulty: str = "normal"
    train_overrides: dict[str, Any] = field(default_factory=dict)
    """Extra TrainConfig fields applied to every variant (for example a smaller batch in tests)."""

    @property
    def result_path(self) -> Path:
        return Path(self.run_dir) / "result.json"


def train_config(job: JobSpec, run_dir: Path | str | None = None):
    """Return the TrainConfig of ``job``: the default recipe with the variant's fields changed."""
    from agents.train import TrainConfig

    if job.variant not in VARIANTS:
        raise AblationError(f"unknown ablation variant {job.variant!r}; the variants are {', '.join(VARIANTS)}")
    return TrainConfig(
        demos=job.demos, out=str(run_dir or job.run_dir), epochs=job.epochs, seed=job.seed, num_threads=1,
        plots=False, tensorboard=False, progress=False, **{**job.train_overrides, **VARIANTS[job.variant]},
    )


def rare_button_names(button_names: tuple[str, ...], train_prevalence: np.ndarray) -> list[str]:
    """Return the buttons held in at most RARE_PREVALENCE of the training split's steps, in button order."""
    return [name for name, rate in zip(button_names, train_prevalence) if rate <= RARE_PREVALENCE]


def count_test_press_events(actions: np.ndarray, episode_lengths: list[int],
                            button_names: tuple[str, ...]) -> dict[str, int]:
    """Count press events per button in the test split's ``(N, n_buttons)`` actions, episode by episode."""
    from fightenv.presses import press_statistics

    episodes = np.split(np.asarray(actions), np.cumsum(episode_lengths)[:-1])
    return {stats.name: stats.press_events for stats in press_statistics(episodes, button_names)}


def split_scores(report) -> dict[str, Any]:
    """Return the scores the tables use from a ``SplitReport``: macro F1, macro AP and per-button recall."""
    return {
        "macro_f1": report.macro_f1, "macro_ap": report.macro_ap,
        "recall": {button.name: button.recall for button in report.buttons},
        "press_rate": {button.name: button.press_rate for button in report.buttons},
    }


def redecide(val_labels: np.ndarray, val_probabilities: np.ndarray, test_labels: np.ndarray,
             test_probabilities: np.ndarray, button_names: tuple[str, ...], train_prevalence: np.ndarray,
             tuned_thresholds: np.ndarray, test_episode_lengths: list[int], seed: int) -> dict[str, dict[str, Any]]:
    """Apply every decision rule to one model's calibrated probabilities and score each on test.

    Probabilities are ``(N, n_buttons)`` float in [0, 1], labels ``(N, n_buttons)``
    in {0, 1}. ``tuned_thresholds`` are the model's own max-F1 thresholds.
    Press-rate thresholds are chosen on validation; sampling draws each button
    from its probability with a generator seeded by ``seed``. Returns, per
    rule, ``{"thresholds": list or None, "report": SplitReport}``.
    """
    import torch

    from agents.metrics import evaluate_split
    from agents.thresholds import ThresholdMode, choose_thresholds

    press_rate = choose_thresholds(val_labels, val_probabilities, button_names, ThresholdMode.PRESS_RATE,
                                   fallback_press_rates=train_prevalence, warn=False).thresholds
    thresholds = {
        "max_f1": np.asarray(tuned_thresholds, dtype=np.float64),
        "fixed_0.5": np.full(len(button_names), 0.5),
        "press_rate": press_rate,
        "sample": None,
    }
    generator = torch.Generator().manual_seed(seed)
    results = {}
    for rule in DECISION_RULES:
        rule_thresholds = thresholds[rule]
        if rule_thresholds is None:
            draws = torch.rand(test_probabilities.shape, generator=generator).numpy()
            decisions = (draws < test_probabilities).astype(np.uint8)
        else:
            decisions = (test_probabilities >= rule_thresholds).astype(np.uint8)
        report = evaluate_split(test_labels, test_probabilities, decisions, button_names,
                                thresholds=None if rule_thresholds is None else rule_thresholds,
                                episode_lengths=test_episode_lengths)
        results[rule] = {"thresholds": None if rule_thresholds is None else rule_thresholds.tolist(),
                         "report": report}
    return results


def scatter_columns(parts: list[tuple[list[int], np.ndarray]], n_buttons: int) -> np.ndarray:
    """Place each part's columns at its button indices in one ``(..., n_buttons)`` array.

    Every button index must be covered exactly once, so a combined pilot never
    leaves a button undecided or decides one twice.
    """
    covered = sorted(index for indices, _ in parts for index in indices)
    if covered != list(range(n_buttons)):
        raise AblationError(f"the parts cover button indices {covered}, expected each of 0..{n_buttons - 1} once")
    shape = parts[0][1].shape[:-1] + (n_buttons,)
    combined = np.zeros(shape, dtype=np.result_type(*[array.dtype for _, array in parts]))
    for indices, array in parts:
        if array.shape[-1] != len(indices):
            raise AblationError(f"a part has {array.shape[-1]} columns for {len(indices)} button indices {indices}")
        combined[..., indices] = array
    return combined


class CombinedPilot:
    """Presses the buttons of several policy pilots, each deciding its own subset of the game's buttons."""

    name = "two_networks"

    def __init__(self, parts: list[tuple[list[int], Any]], n_buttons: int) -> None:
        self.parts = parts
        self.n_buttons = n_buttons
        scatter_columns([(indices, np.zeros(len(indices))) for indices, _ in parts], n_buttons)

    def reset(self, env, seed: int | None) -> None:
        for _, pilot in self.parts:
            pilot.reset(env, seed)

    def act(self, obs):
        from agents.session import Decision

        decisions = [(indices, pilot.act(obs)) for indices, pilot in self.parts]
        action = scatter_columns([(indices, d.action) for indices, d in decisions], self.n_buttons)
        probabilities = scatter_columns([(indices, d.probabilities) for indices, d in decisions], self.n_buttons)
        return Decision(action=action.astype(np.uint8), source="policy", probabilities=probabilities)


def _play(env, pilot, job: JobSpec) -> dict[str, Any]:
    from agents.evaluation import evaluate

    report = evaluate(env, pilot, job.eval_episodes, seed=job.eval_seed, progress=False)
    return {"win_rate": report.win_rate, "wins": report.wins, "episodes": report.episodes}


def _probabilities(loaded, dataset) -> np.ndarray:
    import torch

    from agents.train import predict_logits

    logits = predict_logits(loaded.policy, dataset, 1024, torch.device("cpu"))
    with torch.no_grad():
        return loaded.policy.calibrate(torch.from_numpy(logits)).numpy()


def _button_subset(data, indices: list[int]):
    """Return ``data`` (a SplitData) restricted to the buttons at ``indices``, sharing the observations."""
    from agents.dataset import WindowedDataset
    from agents.train import SplitData

    def subset(dataset):
        return WindowedDataset(dataset.frames, dataset.states, dataset.actions[:, indices].contiguous(),
                               dataset.frame_rows, dataset.state_rows, dataset.episode_lengths, dataset.spec)

    names = tuple(data.layout.button_names[i] for i in indices)
    return SplitData(replace(data.layout, button_names=names), subset(data.train), subset(data.val),
                     subset(data.test), data.description)


def run_job(job: JobSpec) -> dict[str, Any]:
    """Train, score and play one job, write ``job.result_path`` and return its result.

    The result file is written last, through a temporary file, so its presence
    marks a finished job and a rerun can skip it. A half-finished run directory
    is cleared and trained again.
    """
    import shutil

    import gymnasium as gym
    import torch

    import fightenv  # noqa: F401  (registers fightenv/Arena-v0)
    from agents.losses import button_prevalence
    from agents.policy_files import load_policy
    from agents.policy_pilot import PolicyPilot
    from agents.train import fit, split_demo_set
    from demos.loader import load_demos

    torch.set_num_threads(1)
    start_s, start_cpu_s = time.perf_counter(), time.process_time()
    run_dir = Path(job.run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    config = train_config(job)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    demo_set = load_demos(job.demos, action_offset=config.action_offset, threads=1)
    data = split_demo_set(config, demo_set)
    names = tuple(data.layout.button_names)
    train_prevalence = button_prevalence(data.train.actions.numpy())
    rare = rare_button_names(names, train_prevalence)
    env = gym.make("fightenv/Arena-v0", difficulty=job.difficulty)
    test_labels = data.test.actions.numpy()

    if job.variant == TWO_NETWORKS:
        rows = {"thresholds": _run_two_networks(job, config, data, rare, env)}
    else:
        result = fit(config, data, run_dir)
        loaded = load_policy(run_dir, env=env)
        scores = split_scores(result.test_report)
        scores_val = {"macro_f1": result.val_report.macro_f1, "macro_ap": result.val_report.macro_ap}
        if job.variant == REFERENCE:
            rows = _redecide_and_play(job, loaded, data, train_prevalence, scores_val, env)
        else:
            pilot = PolicyPilot(loaded, decision="thresholds", seed=job.seed)
            rows = {"thresholds": {"test": scores, "val": scores_val, **_play(env, pilot, job)}}
    env.close()

    result = {
        "seed": job.seed, "variant": job.variant, "job": asdict(job), "config": config.to_dict(),
        "decision_hz": data.layout.decision_hz, "button_names": list(names),
        "train_prevalence": dict(zip(names, train_prevalence.tolist())), "rare_buttons": rare,
        "test_steps": len(data.test), "test_episodes": len(data.test.episode_lengths),
        # NOTE: an action offset changes the labels that the episode split balances on. An offset job may
        # therefore hold out other episodes than the reference, which these indices show.
        "test_episode_indices": list(data.description.get("test", [])),
        "test_press_events": count_test_press_events(test_labels, data.test.episode_lengths, names),
        "rows": rows, "elapsed_s": time.perf_counter() - start_s,
        # CPU seconds of this single-threaded job: its wall time on an idle core, whatever else the machine ran.
        "cpu_s": time.process_time() - start_cpu_s,
    }
    temporary = job.result_path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(result, indent=2))
    temporary.replace(job.result_path)
    return result


def _redecide_and_play(job: JobSpec, loaded, data, train_prevalence: np.ndarray, scores_val: dict[str, Any],
                       env) -> dict[str, Any]:
    """Score and play the reference model under every decision rule, retraining nothing."""
    from agents.policy_pilot import PolicyPilot

    policy = loaded.policy
    tuned = policy.thresholds.cpu().numpy().astype(np.float64)
    scale, offset = policy.platt_scale.cpu().numpy(), policy.platt_offset.cpu().numpy()
    decided = redecide(data.val.actions.numpy(), _probabilities(loaded, data.val), data.test.actions.numpy(),
                       _probabilities(loaded, data.test), tuple(data.layout.button_names), train_prevalence,
                       tuned, data.test.episode_lengths, job.seed)
    rows = {}
    for rule, outcome in decided.items():
        if outcome["thresholds"] is None:
            policy.set_decision_rule(tuned, scale, offset)
            pilot = PolicyPilot(loaded, decision="sample", seed=job.seed)
        else:
            policy.set_decision_rule(np.asarray(outcome["thresholds"]), scale, offset)
            pilot = PolicyPilot(loaded, decision="thresholds", seed=job.seed)
        rows[rule] = {"test": split_scores(outcome["report"]), "val": scores_val, "thresholds": outcome["thresholds"],
                      **_play(env, pilot, job)}
    policy.set_decision_rule(tuned, scale, offset)
    return rows


def _run_two_networks(job: JobSpec, config, data, rare: list[str], env) -> dict[str, Any]:
    """Train a frequent-button and a rare-button policy, then score and play them as one pilot."""
    from agents.metrics import evaluate_split
    from agents.policy_files import load_policy
    from agents.policy_pilot import PolicyPilot
    from agents.train import fit

    names = tuple(data.layout.button_names)
    rare_indices = [i for i, name in enumerate(names) if name in rare]
    frequent_indices = [i for i in range(len(names)) if i not in rare_indices]
    if not rare_indices or not frequent_indices:
        raise AblationError(f"the two-network variant needs both frequent and rare buttons (held in at most "
                            f"{RARE_PREVALENCE:.0%} of training steps), but the rare buttons are {rare} of "
                            f"{list(names)}; record more rounds")
    parts = []
    val_parts = []
    for part_name, indices in (("frequent", frequent_indices), ("rare", rare_indices)):
        part_dir = Path(job.run_dir) / part_name
        part_data = _button_subset(data, indices)
        fit(replace(config, out=str(part_dir)), part_data, part_dir)
        loaded = load_policy(part_dir)
        probabilities = _probabilities(loaded, part_data.test)
        decisions = (probabilities >= loaded.policy.thresholds.cpu().numpy()).astype(np.uint8)
        parts.append((indices, loaded, probabilities, decisions))
        val_probabilities = _probabilities(loaded, part_data.val)
        val_decisions = (val_probabilities >= loaded.policy.thresholds.cpu().numpy()).astype(np.uint8)
        val_parts.append((indices, val_probabilities, val_decisions))

    thresholds = scatter_columns([(i, p.policy.thresholds.cpu().numpy()) for i, p, _, _ in parts], len(names))
    reports = {}
    for split_name, dataset, columns in (
        ("test", data.test, [(i, probabilities, decisions) for i, _, probabilities, decisions in parts]),
        ("val", data.val, val_parts),
    ):
        reports[split_name] = evaluate_split(
            dataset.actions.numpy(), scatter_columns([(i, p) for i, p, _ in columns], len(names)),
            scatter_columns([(i, d) for i, _, d in columns], len(names)), names, thresholds=thresholds,
            episode_lengths=dataset.episode_lengths,
        )
    pilot = CombinedPilot([(indices, PolicyPilot(loaded, decision="thresholds", seed=job.seed))
                           for indices, loaded, _, _ in parts], len(names))
    return {"test": split_scores(reports["test"]),
            "val": {"macro_f1": reports["val"].macro_f1, "macro_ap": reports["val"].macro_ap},
            "parts": {"frequent": [names[i] for i in frequent_indices], "rare": [names[i] for i in rare_indices]},
            **_play(env, pilot, job)}


def run_job_in_worker(job: JobSpec) -> dict[str, Any]:
    """Process-pool entry point: one torch thread, then ``run_job`` with its printed tables sent to a log file.

    The training loop prints its validation and test tables. With several
    workers they would interleave on the terminal, so they go to
    ``RUN_DIR.log`` next to the run directory instead.
    """
    import contextlib

    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s [seed {job.seed} {job.variant}] %(message)s")
    log_path = Path(job.run_dir).with_suffix(".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log_file, contextlib.redirect_stdout(log_file):
        return run_job(job)
