"""Throughput and peak memory of this package's training loop against imitation's ``bc.BC.train``.

Each trainer runs in its own fresh process (spawned one after another, so
they never share the CPU), on the same trajectories, with the same
ButtonPolicy, the same initial weights, batch size and number of batches:

- ``ours``: the float32 step of ``agents.train.fit``: ``agents.dataset.WindowedDataset``
  batches through ``agents.train.LogitsModel`` with the plain BCE of
  ``agents.losses`` (the same objective as bc.BC's Bernoulli log-likelihood).
- ``ours_bf16``: the same loop with the CNN under bfloat16 autocast
  (``scripts/train_bc.py --precision bf16``, and what the default
  ``--precision auto`` picks where the hardware computes bfloat16 natively).
- ``bc``: imitation's ``bc.BC`` fed the windowed trajectories a user of imitation
  would build (every stacked frame materialised), with its stock loss.
- ``bc_button_loss``: ``bc.BC`` with ``agents.bc_adapter.ButtonLossCalculator``
  as its loss, which shows how much of the gap is the loss and how much the data path.

Each trainer runs ``repeats`` times, interleaved with the others; the report
gives the median samples/s and the largest peak memory. Peak memory is the
process's maximum resident set size (``ru_maxrss``). The
report also gives the resident size after loading the data, so the training
overhead can be read separately.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queue_module
import resource
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agents.cli import help_field as _help

logger = logging.getLogger(__name__)

TRAINERS = ("ours", "ours_bf16", "bc", "bc_button_loss")


@dataclass
class BenchTrainConfig:
    """Configuration of scripts/bench_train.py."""

    demos: str = _help("demo store to train on; empty uses synthetic 84x84 demonstrations", default="")
    synthetic_episodes: int = _help("synthetic episodes when --demos is empty", default=40)
    synthetic_steps: int = _help("steps per synthetic episode", default=500)
    batches: int = _help("optimizer steps each trainer runs (after warm-up)", default=60)
    warmup_batches: int = _help("optimizer steps run before timing starts", default=5)
    batch_size: int = _help("samples per optimizer step", default=256)
    n_frames: int = _help("frames stacked into the observation", default=2)
    state_window: int = _help("recent state vectors the temporal branch sees", default=8)
    num_threads: int = _help("torch CPU threads of each trainer process", default=2)
    device: str = _help("torch device: cpu or cuda", default="cpu")
    seed: int = _help("seed of data, weights and batch order", default=0)
    trainers: str = _help("comma-separated trainers to run: " + ", ".join(TRAINERS), default="ours,bc,bc_button_loss")
    repeats: int = _help("runs of each trainer, interleaved; the report takes the median samples/s", default=3)
    json_out: str = _help("path of the JSON result; empty writes none", default="")


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load_trajectories(config: BenchTrainConfig):
    if config.demos:
        from demos.loader import load_demos

        demo_set = load_demos(config.demos)
        return demo_set.trajectories, tuple(demo_set.button_names)
    from agents.synthetic import DEFAULT_PREVALENCES, synthetic_trajectories

    trajectories = synthetic_trajectories(config.synthetic_episodes, config.synthetic_steps,
                                          DEFAULT_PREVALENCES + (0.015, 0.005), (1, 84, 84), n_state=16,
                                          seed=config.seed)
    return trajectories, tuple(f"button{i}" for i in range(trajectories[0].acts.shape[1]))


def _run_trainer(name: str, config: BenchTrainConfig, queue) -> None:
    """Train ``config.batches`` steps with one trainer and put its measurements on ``queue``."""
    import torch

    from agents.dataset import WindowedDataset, WindowSpec
    from agents.losses import WeightedBCELoss
    from agents.policy import make_policy, windowed_spaces
    from agents.train import LogitsModel

    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    trajectories, button_names = _load_trajectories(config)
    rss_after_load = _max_rss_mib()

    spec = WindowSpec(config.n_frames, config.state_window)
    frame_shape = tuple(trajectories[0].obs.get("frame").shape[1:])
    n_state = trajectories[0].obs.get("state").shape[1]
    observation_space, action_space = windowed_spaces(frame_shape, n_state, len(button_names), spec.n_frames,
                                                      spec.state_window)
    policy = make_policy(observation_space, action_space).to(device)
    total_batches = config.warmup_batches + config.batches
    prepare_start_s = time.perf_counter()

    if name in ("ours", "ours_bf16"):
        dataset = WindowedDataset.from_trajectories(trajectories, spec)
        n_samples = len(dataset)
        loss_fn = WeightedBCELoss(np.ones(len(button_names))).to(device)
        for parameter in policy.value_net.parameters():
            parameter.requires_grad_(False)
        optimizer = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=1e-3)
        generator = torch.Generator().manual_seed(config.seed)
        model = LogitsModel(policy, frames_bf16=name == "ours_bf16")
        prepare_s = time.perf_counter() - prepare_start_s
        policy.set_training_mode(True)
        start_s = 0.0
        for step in range(total_batches):
            if step == config.warmup_batches:
                start_s = time.perf_counter()
            index = torch.randint(0, n_samples, (config.batch_size,), generator=generator)
            obs, targets = dataset.batch(index, device)
            terms = loss_fn(model(obs), targets)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            optimizer.step()
        train_s = time.perf_counter() - start_s
    else:
        from imitation.algorithms import bc

        windowed = WindowedDataset.from_trajectories(trajectories, spec).windowed_trajectories()
        n_samples = sum(len(t.acts) for t in windowed)
        trainer = bc.BC(observation_space=observation_space, action_space=action_space,
                        rng=np.random.default_rng(config.seed), policy=policy, demonstrations=windowed,
                        batch_size=config.batch_size, device=device)
        if name == "bc_button_loss":
            from agents.bc_adapter import ButtonLossCalculator

            trainer.loss_calculator = ButtonLossCalculator(WeightedBCELoss(np.ones(len(button_names))))
        prepare_s = time.perf_counter() - prepare_start_s
        trainer.train(n_batches=config.warmup_batches, progress_bar=False, log_interval=10**9)
        start_s = time.perf_counter()
        trainer.train(n_batches=config.batches, progress_bar=False, log_interval=10**9)
        train_s = time.perf_counter() - start_s

    queue.put({
        "trainer": name,
        "samples": n_samples,
        "samples_per_s": config.batches * config.batch_size / train_s,
        "train_s": train_s,
        "prepare_s": prepare_s,
        "peak_rss_mib": _max_rss_mib(),
        "rss_after_load_mib": rss_after_load,
    })


@dataclass
class BenchTrainResult:
    config: dict[str, Any]
    trainers: dict[str, dict[str, Any]]
    compared: str | None
    """The loop of ours compared with bc.BC: the faster of "ours" and "ours_bf16"."""
    speedup_vs_bc: float | None
    peak_memory_ratio_vs_bc: float | None
    training_memory_ratio_vs_bc: float | None
    """(peak - after load) of ours over the same for bc.BC: the memory the training itself adds."""
    default_precision: str = "fp32"
    """Precision that ``scripts/train_bc.py``'s default ``--precision auto`` picks on this machine: fp32 or bf16."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_bench(config: BenchTrainConfig) -> BenchTrainResult:
    """Run each trainer in a fresh spawned process, one after another, and compare them."""
    names = [name.strip() for name in config.trainers.split(",") if name.strip()]
    unknown = sorted(set(names) - set(TRAINERS))
    if unknown:
        raise ValueError(f"unknown trainers {unknown}; choose from {list(TRAINERS)}")
    if config.repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {config.repeats}")
    context = multiprocessing.get_context("spawn")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    # Interleave the trainers so that a burst of load from other processes hits all of them alike.
    for name in [name for _ in range(config.repeats) for name in names]:
        queue = context.Queue()
        process = context.Process(target=_run_trainer, args=(name, config, queue))
        process.start()
        result = None
        while result is None:
            try:
                result = queue.get(timeout=5.0)
            except queue_module.Empty:
                if not process.is_alive():
                    raise RuntimeError(f"trainer {name} exited with status {process.exitcode} before reporting; "
                                       "see its traceback above") from None
        process.join()
        logger.info("%s: %.0f samples/s, peak RSS %.0f MiB", name, result["samples_per_s"], result["peak_rss_mib"])
        runs[name].append(result)

    results = {}
    for name, rows in runs.items():
        summary = dict(rows[0])
        summary["samples_per_s"] = float(np.median([row["samples_per_s"] for row in rows]))
        summary["samples_per_s_runs"] = [row["samples_per_s"] for row in rows]
        summary["peak_rss_mib"] = max(row["peak_rss_mib"] for row in rows)
        summary["rss_after_load_mib"] = max(row["rss_after_load_mib"] for row in rows)
        results[name] = summary

    speedup = memory_ratio = training_ratio = None
    fastest_ours = max((name for name in ("ours", "ours_bf16") if name in results),
                       key=lambda name: results[name]["samples_per_s"], default=None)
    if fastest_ours is not None and "bc" in results:
        ours, stock = results[fastest_ours], results["bc"]
        speedup = ours["samples_per_s"] / stock["samples_per_s"]
        memory_ratio = ours["peak_rss_mib"] / stock["peak_rss_mib"]
        stock_training = stock["peak_rss_mib"] - stock["rss_after_load_mib"]
        if stock_training > 0:
            training_ratio = (ours["peak_rss_mib"] - ours["rss_after_load_mib"]) / stock_training
    import torch

    from agents.train import resolve_precision

    default_precision = resolve_precision("auto", torch.device(config.device))
    return BenchTrainResult(asdict(config), results, fastest_ours, speedup, memory_ratio, training_ratio,
                            default_precision)


def format_bench(result: BenchTrainResult) -> str:
    lines = [f"{'trainer':<16}{'samples/s':>11}{'peak RSS MiB':>14}{'after load MiB':>16}{'prepare s':>11}"]
    for name, row in result.trainers.items():
        lines.append(f"{name:<16}{row['samples_per_s']:>11.0f}{row['peak_rss_mib']:>14.0f}"
                     f"{row['rss_after_load_mib']:>16.0f}{row['prepare_s']:>11.2f}")
    stock = result.trainers.get("bc")
    for name in ("ours", "ours_bf16"):
        ours = result.trainers.get(name)
        if ours is not None and stock is not None:
            lines.append(f"{name} vs bc.BC: {ours['samples_per_s'] / stock['samples_per_s']:.2f}x samples/s "
                         f"(target >= 1.5), {ours['peak_rss_mib'] / stock['peak_rss_mib']:.2f}x peak memory "
                         "(target <= 0.6)")
    return "\n".join(lines)
