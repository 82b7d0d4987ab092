"""Behavioural cloning of multi-hot button presses: the training loop behind ``scripts/train_bc.py``.

The loop consumes the same imitation Trajectories as ``bc.BC`` but gathers
windowed batches from preloaded uint8 tensors (``agents.dataset``) and skips
BC's critic and entropy terms, which is why it is faster (see
``scripts/bench_train.py``). One run:

1. load demonstrations and split them by episode (or by frame for the naive baseline);
2. build the policy with its output bias at logit(prevalence) of the training split;
3. train with the configured loss, evaluating validation episodes after every
   epoch, checkpointing every epoch, and stopping early on validation macro AP;
4. reload the best epoch, calibrate probabilities and choose per-button
   thresholds on validation, then report on test episodes: terminal table,
   ``metrics.json``, PNG plots, and the policy files.

Launched by ``torchrun``, it trains with DistributedDataParallel (gloo on CPU,
NCCL on GPU); rank 0 writes every file.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn
from tqdm import tqdm

from agents.checkpoint import (
    TrainingState,
    load_checkpoint_optimizer,
    load_checkpoint_weights,
    read_training_state,
    save_checkpoint,
)
from agents.cli import help_field as _help
from agents.dataset import WindowedDataset, WindowSpec
from agents.losses import ButtonLoss, LossConfig, LossKind, PosWeightMode, build_loss, button_prevalence
from agents.metrics import SplitReport, evaluate_split, format_split_table
from agents.policy import ButtonPolicy, FrameStateExtractor, TemporalKind, make_policy, windowed_spaces
from agents.policy_files import PolicyConfig, save_policy
from agents.thresholds import PlattScaling, ThresholdMode, choose_thresholds, fit_platt_scaling
from fightenv.wrappers import FRAME_KEY, STATE_KEY

logger = logging.getLogger(__name__)


class Preset(str, Enum):
    DEFAULT = "default"
    SEED_BASELINE = "seed-baseline"
    """The naive recipe: plain BCE, threshold 0.5 for every button, random-frame split, no calibration."""


class SplitKind(str, Enum):
    EPISODES = "episodes"
    FRAMES = "frames"


class TrainingError(Exception):
    """Training cannot start or continue; the message gives the reason and the fix."""


@dataclass
class TrainConfig:
    """Configuration of one training run; every field is a command-line option of scripts/train_bc.py."""

    demos: str = _help("demo store directory written by scripts/collect_demos.py (required)", default="")
    out: str = _help("run directory for the policy files, checkpoints, metrics and plots", default="runs/bc")
    preset: Preset = _help("default: the recommended recipe; seed-baseline: plain BCE, threshold 0.5, "
                           "random-frame split (overrides loss, pos_weight, threshold_mode, split, calibrate)",
                           default=Preset.DEFAULT)
    resume: bool = _help("continue the run in --out from its last checkpoint", default=False)
    skip_bad: bool = _help("leave out corrupt or truncated episode files with a warning instead of stopping",
                           default=False)
    init_from: str = _help("start from the weights of this policy run directory (warm start, as in DAgger "
                           "rounds); the architecture options must match it", default="")
    epochs: int = _help("maximum number of epochs", default=30)
    batch_size: int = _help("samples per optimizer step (per process under torchrun)", default=256)
    learning_rate: float = _help("Adam learning rate", default=1e-3)
    weight_decay: float = _help("Adam weight decay", default=0.0)
    patience: int = _help("stop once more than this many epochs in a row bring no better validation macro AP",
                          default=4)
    seed: int = _help("seed of the split, the initialisation, the batch order and sampling", default=0)
    n_frames: int = _help("frames stacked into the observation", default=2)
    state_window: int = _help("recent state vectors the temporal branch sees", default=8)
    temporal: str = _help("temporal branch over the state window: gru, lstm or conv", default="gru")
    cnn_channels: tuple[int, int, int] = _help("output channels of the three conv layers", default=(16, 32, 32))
    frame_features: int = _help("size of the frame features", default=128)
    state_hidden: int = _help("size of the temporal features", default=64)
    hidden: int = _help("size of the hidden layer between features and logits", default=128)
    normalize_state: bool = _help("standardise each state feature with its mean and standard deviation over the "
                                  "training split (stored with the weights)", default=True)
    loss: LossKind = _help("training loss: bce, focal, asymmetric or logit_adjusted", default=LossKind.ASYMMETRIC)
    # In the loss ablation of BENCHMARKS.md (three recordings of 60 Arena expert rounds) the asymmetric loss had
    # test macro F1 0.688 with the smallest spread over seeds (0.004) and the highest win rate. Focal scored
    # 0.006 higher and BCE with pos_weight sqrt(neg/pos) had a higher rare-button recall, both within the
    # spread, so the default stays asymmetric. BCE with pos_weight neg/pos was the weakest (0.655).
    pos_weight: PosWeightMode = _help("pos_weight of the bce loss: none, ratio (neg/pos) or sqrt (sqrt(neg/pos))",
                                      default=PosWeightMode.NONE)
    pos_weight_cap: float = _help("upper bound of pos_weight (weights are also clipped to >= 1)", default=20.0)
    focal_gamma: float = _help("focusing exponent of the focal loss", default=2.0)
    asymmetric_gamma_neg: float = _help("negative focusing exponent of the asymmetric loss", default=4.0)
    asymmetric_margin: float = _help("probability margin below which the asymmetric loss ignores negatives",
                                     default=0.05)
    logit_adjust_tau: float = _help("scale of the prior's logit in the logit-adjusted loss", default=1.0)
    split: SplitKind = _help("episodes: whole episodes per split; frames: random steps of the non-test episodes for "
                             "train and validation (the leaky naive recipe)",
                             default=SplitKind.EPISODES)
    split_fractions: tuple[float, float, float] = _help("train, validation and test shares", default=(0.7, 0.15, 0.15))
    action_offset: int = _help("pair observation t with the action of step t + k (reaction delay, steps)", default=0)
    threshold_mode: ThresholdMode = _help("per-button thresholds chosen on validation: max_f1 or press_rate "
                                          "(fixed_0.5 only for the baseline)", default=ThresholdMode.MAX_F1)
    calibrate: bool = _help("fit per-button Platt scaling on validation before choosing thresholds", default=True)
    decision: str = _help("decision rule for the test report and the policy file: thresholds or sample",
                          default="thresholds")
    device: str = _help("torch device: auto, cpu, cuda or cuda:N", default="auto")
    precision: str = _help("auto, fp32 or bf16. bf16 runs the CNN under bfloat16 autocast (weights, the other "
                           "layers and the loss stay float32); auto picks it where the hardware computes bfloat16 "
                           "natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs that support it) and fp32 elsewhere",
                           default="auto")
    num_threads: int = _help("torch CPU threads per process; 0 picks available cores divided by processes",
                             default=0)
    eval_batch_size: int = _help("samples per forward pass when evaluating", default=1024)
    log_every_steps: int = _help("optimizer steps between TensorBoard train scalars", default=20)
    plots: bool = _help("write PNG plots of the test report", default=True)
    tensorboard: bool = _help("write TensorBoard scalars under RUN_DIR/tensorboard", default=True)
    progress: bool = _help("show a progress bar per epoch", default=True)

    def __post_init__(self) -> None:
        self.preset = Preset(self.preset)
        self.loss = LossKind(self.loss)
        self.pos_weight = PosWeightMode(self.pos_weight)
        self.split = SplitKind(self.split)
        self.threshold_mode = ThresholdMode(self.threshold_mode)
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.decision not in ("thresholds", "sample"):
            raise ValueError(f"decision must be 'thresholds' or 'sample', got {self.decision!r}")
        if self.temporal not in {kind.value for kind in TemporalKind}:
            raise ValueError(f"temporal must be one of {', '.join(kind.value for kind in TemporalKind)}, "
                             f"got {self.temporal!r}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError as error:
                raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}") from error
        for name in ("epochs", "batch_size", "n_frames", "state_window", "eval_batch_size", "log_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0 epochs, got {self.patience}")

    def loss_config(self) -> LossConfig:
        return LossConfig(
            kind=self.loss, pos_weight=self.pos_weight, pos_weight_cap=self.pos_weight_cap,
            focal_gamma=self.focal_gamma, asymmetric_gamma_neg=self.asymmetric_gamma_neg,
            asymmetric_margin=self.asymmetric_margin, logit_adjust_tau=self.logit_adjust_tau,
        )

    def extractor_kwargs(self) -> dict[str, Any]:
        return {
            "cnn_channels": list(self.cnn_channels), "frame_features": self.frame_features,
            "state_hidden": self.state_hidden, "temporal": self.temporal,
        }

    def net_arch(self) -> dict[str, list[int]]:
        return {"pi": [self.hidden], "vf": []}

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=lambda value: value.value))


ARCHITECTURE_FIELDS = ("n_frames", "state_window", "temporal", "cnn_channels", "frame_features", "state_hidden",
                       "hidden", "action_offset", "normalize_state")


def apply_preset(config: TrainConfig) -> TrainConfig:
    """Return ``config`` with the preset's settings applied."""
    if config.preset is Preset.SEED_BASELINE:
        return replace(
            config, loss=LossKind.BCE, pos_weight=PosWeightMode.NONE, threshold_mode=ThresholdMode.FIXED_HALF,
            split=SplitKind.FRAMES, calibrate=False,
        )
    return config


@dataclass(frozen=True)
class DataLayout:
    """Button names, state feature names and frame shape of the demonstrations, which the policy file repeats."""

    button_names: tuple[str, ...]
    state_names: tuple[str, ...]
    frame_shape: tuple[int, int, int]
    decision_hz: float | None = None
    game: str | None = None


@dataclass
class SplitData:
    """The three datasets of a run and a JSON description of how they were split."""

    layout: DataLayout
    train: WindowedDataset
    val: WindowedDataset
    test: WindowedDataset
    description: dict[str, Any]


def split_demo_set(config: TrainConfig, demo_set: Any) -> SplitData:
    """Split a ``demos.DemoSet`` into windowed train, validation and test datasets.

    Test is always the held-out episodes of ``demos.splits.split_episodes``.
    Train and validation are the other episodes, or random steps of them when
    ``config.split`` is "frames" (the leaky naive recipe).
    """
    import demos.splits

    layout = DataLayout(
        button_names=tuple(demo_set.button_names), state_names=tuple(demo_set.state_names),
        frame_shape=tuple(demo_set.frame_shape), decision_hz=demo_set.decision_hz, game=demo_set.game,
    )
    spec = WindowSpec(config.n_frames, config.state_window)
    trajectories = demo_set.trajectories
    try:
        split = demos.splits.split_episodes(demo_set, config.split_fractions, seed=config.seed)
    except ValueError as error:
        raise TrainingError(f"cannot split the {len(trajectories)} episodes of {demo_set.path}: {error}") from error
    if not split.train:
        raise TrainingError(f"the training split of {len(trajectories)} episodes is empty; record more "
                            "episodes or raise the first --split-fractions value")
    if not split.val or not split.test:
        raise TrainingError(f"the validation or test split is empty ({len(split.val)} and {len(split.test)} "
                            "episodes); record more episodes")
    test = WindowedDataset.from_trajectories([trajectories[i] for i in split.test], spec)

    if config.split is SplitKind.EPISODES:
        train, val = (WindowedDataset.from_trajectories([trajectories[i] for i in part], spec)
                      for part in (split.train, split.val))
        description = {"kind": "episodes", **split.to_dict()}
    else:
        # The naive recipe draws train and validation steps at random from the non-test episodes.
        # Test keeps the held-out episodes of the episode split, so both recipes are scored on the same steps.
        rest = WindowedDataset.from_trajectories([trajectories[i] for i in sorted(split.train + split.val)], spec)
        order = np.random.default_rng(config.seed).permutation(len(rest))
        train_share = config.split_fractions[0] / (config.split_fractions[0] + config.split_fractions[1])
        n_train = int(round(train_share * len(rest)))
        if n_train == 0 or n_train == len(rest):
            raise TrainingError(f"a random-frame split of {len(rest)} steps leaves train or validation empty; "
                                "record more steps")
        train, val = rest.subset(np.sort(order[:n_train])), rest.subset(np.sort(order[n_train:]))
        description = {
            "kind": "frames", "train_steps": len(train), "val_steps": len(val), "test": split.test,
            "note": "train and validation are random steps of the same episodes, so neighbouring frames fall on "
                    "both sides and validation scores are inflated; test is the held-out episodes of the "
                    "episode split",
        }
    return SplitData(layout, train, val, test, description=description)


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistributedContext:
    """Join the process group that torchrun describes in RANK and WORLD_SIZE; a single process skips it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(torch_dist.get_rank(), torch_dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    return device


def native_bf16(device: torch.device) -> bool:
    """Return whether ``device`` computes bfloat16 natively, so that autocast to it speeds training up.

    On a CPU without AVX512-BF16 or AMX, bfloat16 is emulated and slower than float32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return cpuinfo_has_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def cpuinfo_has_bf16(cpuinfo: str) -> bool:
    """Return whether the first ``flags`` line of a Linux ``/proc/cpuinfo`` text names AVX512-BF16 or AMX-BF16."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return bool(set(line.split(":", 1)[1].split()) & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """Turn ``--precision auto`` into "bf16" or "fp32" for ``device``. Other values pass through unchanged."""
    if name != "auto":
        return name
    return "bf16" if native_bf16(device) else "fp32"


def set_threads(config: TrainConfig, world_size: int) -> int:
    if config.num_threads > 0:
        threads = config.num_threads
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cores // world_size)
    torch.set_num_threads(threads)
    return threads


class LogitsModel(nn.Module):
    """The policy's actor as a plain module for the training loop, so DistributedDataParallel can wrap it.

    It computes ``ButtonPolicy.button_logits`` along a faster path: uint8 frames
    are scaled to [0, 1] in place rather than through SB3's preprocessing,
    which allocates a second float buffer, and with ``frames_bf16`` only the
    CNN runs under bfloat16 autocast, while the temporal branch, the head and
    the loss stay float32.
    """

    def __init__(self, policy: ButtonPolicy, frames_bf16: bool = False) -> None:
        super().__init__()
        self.policy = policy
        self.frames_bf16 = frames_bf16

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        extractor = self.policy.features_extractor
        frames = obs[FRAME_KEY]
        frames = frames.to(torch.float32).div_(255.0) if frames.dtype == torch.uint8 else frames.float()
        with torch.autocast(frames.device.type, dtype=torch.bfloat16, enabled=self.frames_bf16):
            frame_features = extractor.frame_features(frames)
        features = torch.cat([frame_features.float(), extractor.state_features(obs[STATE_KEY].float())], dim=1)
        return self.policy.action_net(self.policy.mlp_extractor.forward_actor(features))


@torch.no_grad()
def predict_logits(policy: ButtonPolicy, dataset: WindowedDataset, batch_size: int,
                   device: torch.device) -> np.ndarray:
    """Return the raw logits ``(N, n_buttons)`` float32 of every sample of ``dataset``."""
    was_training = policy.training
    policy.set_training_mode(False)
    chunks = []
    for start in range(0, len(dataset), batch_size):
        index = torch.arange(start, min(start + batch_size, len(dataset)))
        obs, _ = dataset.batch(index, device)
        chunks.append(policy.button_logits(obs).float().cpu())
    policy.set_training_mode(was_training)
    return torch.cat(chunks).numpy()


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))).astype(np.float32)


@dataclass
class TrainResult:
    run_dir: Path
    test_report: SplitReport | None
    val_report: SplitReport | None
    best_epoch: int
    history: list[dict[str, Any]]


def init_policy(config: TrainConfig, layout: DataLayout, loss_fn: ButtonLoss, prevalence: np.ndarray) -> ButtonPolicy:
    """Build the policy for ``layout`` with its output bias at the loss's initial bias for ``prevalence``.

    For BCE-type losses that bias is logit(prevalence) per button of the
    training split, so the first epoch starts from the base rates instead of 0.5.
    """
    observation_space, action_space = windowed_spaces(
        layout.frame_shape, len(layout.state_names), len(layout.button_names), config.n_frames, config.state_window
    )
    policy = make_policy(observation_space, action_space, config.extractor_kwargs(), config.net_arch())
    policy.set_output_bias(loss_fn.initial_bias(prevalence))
    # Behavioural cloning never uses the critic; frozen parameters also keep DDP from waiting on their gradients.
    for parameter in policy.value_net.parameters():
        parameter.requires_grad_(False)
    return policy


def state_statistics(dataset: WindowedDataset) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and standard deviation ``(k,)`` of each state feature over the samples of ``dataset``.

    A feature that never varies gets a standard deviation of 1, so it passes through shifted but unscaled.
    Non-finite values are left out here, because the loss check stops training on them later and names the batch.
    """
    current = dataset.states[dataset.state_rows[:, -1]].double().numpy()
    current = np.where(np.isfinite(current), current, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature with no finite value at all
        mean, std = np.nanmean(current, axis=0), np.nanstd(current, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def _check_resume(state: TrainingState, config: TrainConfig, layout: DataLayout) -> None:
    if list(state.button_names) != list(layout.button_names):
        raise TrainingError(
            f"cannot resume: the run was trained on buttons {list(state.button_names)} but the demos have "
            f"buttons {list(layout.button_names)}; resume with the original demos or start a new --out"
        )
    if list(state.state_names) != list(layout.state_names) or list(state.frame_shape) != list(layout.frame_shape):
        raise TrainingError(
            f"cannot resume: the run was trained on state features {list(state.state_names)} and frames "
            f"{list(state.frame_shape)} but the demos have {list(layout.state_names)} and "
            f"{list(layout.frame_shape)}; resume with the original demos or start a new --out"
        )
    stored = state.config
    current = config.to_dict()
    changed = [f"{name}: run {stored.get(name)!r}, now {current[name]!r}" for name in ARCHITECTURE_FIELDS
               if name in stored and stored[name] != current[name]]
    if changed:
        raise TrainingError("cannot resume with another architecture (" + "; ".join(changed) +
                            "); pass the run's original values or start a new --out")


def _architecture(n_frames: int, state_window: int, extractor_kwargs: dict[str, Any],
                  net_arch: dict[str, list[int]]) -> dict[str, str]:
    """Return the architecture options of a policy as option name -> printable value, defaults filled in."""
    parameters = inspect.signature(FrameStateExtractor.__init__).parameters
    extractor = {name: parameter.default for name, parameter in parameters.items()
                 if parameter.default is not inspect.Parameter.empty}
    extractor.update(extractor_kwargs)
    values = {"n_frames": n_frames, "state_window": state_window, **extractor, "hidden": net_arch.get("pi")}
    return {name: " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            for name, value in values.items()}


def _load_initial_weights(policy: ButtonPolicy, config: TrainConfig, layout: DataLayout) -> None:
    """Copy the weights of the policy in ``config.init_from`` into ``policy``, checking layout and architecture."""
    from agents.policy_files import load_policy

    run_dir = config.init_from
    loaded = load_policy(run_dir, device="cpu", store=layout)
    start = loaded.config
    this_run = _architecture(config.n_frames, config.state_window, config.extractor_kwargs(), config.net_arch())
    starting = _architecture(start.n_frames, start.state_window, start.features_extractor_kwargs, start.net_arch)
    changed = [f"--{name.replace('_', '-')}: policy {starting[name]}, this run {this_run[name]}"
               for name in this_run if starting[name] != this_run[name]]
    if changed:
        raise TrainingError(f"cannot start from {run_dir}: its network differs from this run's options ("
                            + "; ".join(changed) + "); pass the policy's values or train without --init-from")
    policy.load_state_dict(loaded.policy.state_dict())
    extractor = policy.features_extractor
    identity = bool((extractor.state_mean == 0).all() and (extractor.state_std == 1).all())
    if config.normalize_state and identity:
        logger.warning("the starting policy %s has no state statistics (it was trained with raw state features), "
                       "so this run keeps the raw features its weights expect", run_dir)
    elif not config.normalize_state and not identity:
        logger.warning("--no-normalize-state does not apply to a warm start: this run keeps the state statistics "
                       "of the starting policy %s, which its weights expect", run_dir)
    logger.info("starting from the weights of %s", run_dir)


def _epoch_permutation(n_samples: int, seed: int, epoch: int, context: DistributedContext) -> torch.Tensor:
    """Return this process's shuffled sample indices for ``epoch``; every process gets equally many."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n_samples, generator=generator)
    per_process = n_samples // context.world_size
    return order[context.rank * per_process:(context.rank + 1) * per_process]


def _validation_summary(config: TrainConfig, policy: ButtonPolicy, data: SplitData, loss_fn: nn.Module,
                        device: torch.device) -> tuple[dict[str, Any], SplitReport]:
    """Score the current weights on validation after an epoch.

    The thresholds behind this F1 are tuned on the same validation steps, so
    per-epoch F1 is optimistic. Early stopping therefore uses macro AP, which needs no threshold.
    """
    logits = predict_logits(policy, data.val, config.eval_batch_size, device)
    labels = data.val.actions.numpy()
    probabilities = _sigmoid(logits)
    choice = choose_thresholds(labels, probabilities, data.layout.button_names, config.threshold_mode,
                               fallback_press_rates=button_prevalence(data.train.actions.numpy()), warn=False)
    decisions = probabilities >= choice.thresholds
    report = evaluate_split(labels, probabilities, decisions, data.layout.button_names,
                            thresholds=choice.thresholds, episode_lengths=data.val.episode_lengths)
    with torch.no_grad():
        terms = loss_fn(torch.from_numpy(logits).to(device), torch.from_numpy(labels).to(device))
    summary = {"val_loss": float(terms.loss), "val_bce": float(terms.bce), "val_macro_ap": report.macro_ap,
               "val_macro_f1": report.macro_f1, "val_micro_f1": report.micro_f1,
               "val_exact_match": report.exact_match, "val_binary_accuracy": report.binary_accuracy,
               "val_ece": report.ece,
               "val_per_button": {b.name: {"ap": b.ap, "f1": b.f1, "precision": b.precision, "recall": b.recall,
                                           "threshold": b.threshold} for b in report.buttons}}
    return summary, report


def _log_split_scalars(writer, prefix: str, report: SplitReport, step: int) -> None:
    for name in ("macro_ap", "macro_f1", "micro_f1", "exact_match", "binary_accuracy", "ece"):
        value = getattr(report, name)
        if value is not None:
            writer.add_scalar(f"{prefix}/{name}", value, step)
    for button in report.buttons:
        for metric in ("ap", "f1", "recall", "precision"):
            value = getattr(button, metric)
            if value is not None:
                writer.add_scalar(f"{prefix}/{metric}/{button.name}", value, step)


def fit(config: TrainConfig, data: SplitData, run_dir: str | Path) -> TrainResult:
    """Train, select the best epoch, calibrate, choose thresholds and report on the test split."""
    run_dir = Path(run_dir)
    device = resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    context = init_distributed(device)
    threads = set_threads(config, context.world_size)
    layout = data.layout
    if len(data.train) == 0:
        raise TrainingError("the training split has no steps; record more episodes")
    if len(data.train) < context.world_size * config.batch_size and context.enabled:
        logger.warning("each of %d processes gets fewer than one full batch of %d samples",
                       context.world_size, config.batch_size)

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    train_actions = data.train.actions.numpy()
    loss_fn = build_loss(config.loss_config(), train_actions, layout.button_names).to(device)
    policy = init_policy(config, layout, loss_fn, button_prevalence(train_actions)).to(device)
    optimizer = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=config.learning_rate,
                                 weight_decay=config.weight_decay)

    if config.init_from and not config.resume:
        # The starting policy's weights include its own state statistics, so none are computed here.
        _load_initial_weights(policy, config, layout)
    elif config.normalize_state and not config.resume:
        policy.features_extractor.set_state_normalization(*state_statistics(data.train))
    if config.resume:
        state = read_training_state(run_dir)
        _check_resume(state, config, layout)
        load_checkpoint_weights(run_dir, policy)
        load_checkpoint_optimizer(run_dir, optimizer, state)
        logger.info("resuming %s after epoch %d (step %d, best val macro AP %.4f at epoch %d)", run_dir,
                    state.epoch, state.global_step, state.best_val_macro_ap, state.best_epoch)
    else:
        state = TrainingState(epoch=0, global_step=0, best_val_macro_ap=-1.0, best_epoch=0,
                              epochs_without_improvement=0, button_names=list(layout.button_names),
                              state_names=list(layout.state_names), frame_shape=list(layout.frame_shape),
                              config=config.to_dict())
    # Written only once the demos loaded and a resume passed its checks, so a rejected run changes nothing.
    run_dir.mkdir(parents=True, exist_ok=True)
    if context.is_main:
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    precision = resolve_precision(config.precision, device)
    if config.precision == "auto":
        logger.info("precision auto: %s on %s", precision, device)
    model: nn.Module = LogitsModel(policy, frames_bf16=precision == "bf16")
    if context.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    writer = None
    if context.is_main and config.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tensorboard"))
    logger.info("training on %d samples (%d val, %d test), %d buttons, device %s, %d threads x %d processes",
                len(data.train), len(data.val), len(data.test), len(layout.button_names), device, threads,
                context.world_size)

    stopped_early = state.epochs_without_improvement > config.patience
    for epoch in range(state.epoch + 1, config.epochs + 1):
        if stopped_early:
            break
        order = _epoch_permutation(len(data.train), config.seed, epoch, context)
        n_batches = max(1, int(np.ceil(len(order) / config.batch_size)))
        policy.set_training_mode(True)
        epoch_start_s = time.perf_counter()
        loss_sum = bce_sum = 0.0
        progress = tqdm(range(n_batches), desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                        disable=not (config.progress and context.is_main), leave=False)
        for batch_index in progress:
            # Gather the batch: uint8 frames become float inside the policy.
            index = order[batch_index * config.batch_size:(batch_index + 1) * config.batch_size]
            obs, targets = data.train.batch(index, device)

            # Loss, with a stop on a non-finite value that every process agrees on.
            logits = model(obs)
            terms = loss_fn(logits.float(), targets)
            finite = torch.isfinite(terms.loss.detach()).float()
            if context.enabled:
                torch_dist.all_reduce(finite, op=torch_dist.ReduceOp.MIN)
            if finite.item() < 1.0:
                raise TrainingError(
                    f"loss became {terms.loss.item()} at epoch {epoch}, batch {batch_index} (global step "
                    f"{state.global_step}); lower --learning-rate or check the demos for invalid states"
                )

            # Backward and step.
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            optimizer.step()
            state.global_step += 1
            loss_sum += terms.loss.item()
            bce_sum += terms.bce.item()

            # Log.
            if writer is not None and state.global_step % config.log_every_steps == 0:
                writer.add_scalar("train/loss", terms.loss.item(), state.global_step)
                writer.add_scalar("train/bce", terms.bce.item(), state.global_step)
            progress.set_postfix(loss=f"{terms.loss.item():.4f}")
        progress.close()
        epoch_time_s = time.perf_counter() - epoch_start_s
        samples_per_s = len(order) * context.world_size / epoch_time_s

        # Validate on every process (weights are identical), so the early-stopping decision needs no message.
        summary, val_report = _validation_summary(config, policy, data, loss_fn, device)
        summary.update(epoch=epoch, train_loss=loss_sum / n_batches, train_bce=bce_sum / n_batches,
                       samples_per_s=samples_per_s, epoch_time_s=epoch_time_s)
        state.history.append(summary)
        val_ap = val_report.macro_ap if val_report.macro_ap is not None else -1.0
        is_best = val_ap > state.best_val_macro_ap
        if is_best:
            state.best_val_macro_ap, state.best_epoch, state.epochs_without_improvement = val_ap, epoch, 0
        else:
            state.epochs_without_improvement += 1
        state.epoch = epoch
        logger.info("epoch %d: train loss %.4f, val loss %.4f, val macro AP %.4f, val macro F1 %s, %.0f samples/s",
                    epoch, summary["train_loss"], summary["val_loss"], val_ap,
                    "n/a" if val_report.macro_f1 is None else f"{val_report.macro_f1:.4f}", samples_per_s)

        # Log and checkpoint on rank 0.
        if context.is_main:
            if writer is not None:
                writer.add_scalar("train/epoch_loss", summary["train_loss"], state.global_step)
                writer.add_scalar("val/loss", summary["val_loss"], state.global_step)
                writer.add_scalar("val/bce", summary["val_bce"], state.global_step)
                _log_split_scalars(writer, "val", val_report, state.global_step)
                writer.add_scalar("perf/samples_per_s", samples_per_s, state.global_step)
                writer.add_scalar("perf/epoch_time_s", epoch_time_s, state.global_step)
            save_checkpoint(run_dir, policy, optimizer, state, is_best)

        # Stop early.
        if state.epochs_without_improvement > config.patience:
            logger.info("stopping early: validation macro AP has not improved for %d epochs (best %.4f at epoch %d)",
                        state.epochs_without_improvement, state.best_val_macro_ap, state.best_epoch)
            stopped_early = True

    if context.enabled:
        torch_dist.barrier()
    result = TrainResult(run_dir, None, None, state.best_epoch, state.history)
    if context.is_main:
        result = _finish(config, data, run_dir, policy, loss_fn, state, device, precision, writer)
    if writer is not None:
        writer.close()
    if context.enabled:
        torch_dist.barrier()
        torch_dist.destroy_process_group()
    return result


def _finish(config: TrainConfig, data: SplitData, run_dir: Path, policy: ButtonPolicy, loss_fn: nn.Module,
            state: TrainingState, device: torch.device, precision: str, writer) -> TrainResult:
    """Reload the best epoch, fix the decision rule on validation, and report on test episodes."""
    layout = data.layout
    load_checkpoint_weights(run_dir, policy, best=True)
    policy.to(device)

    # Calibrate and choose thresholds on validation.
    val_labels = data.val.actions.numpy()
    val_logits = predict_logits(policy, data.val, config.eval_batch_size, device)
    scaling = (fit_platt_scaling(val_logits, val_labels, layout.button_names) if config.calibrate
               else PlattScaling.identity(len(layout.button_names)))
    val_probabilities = scaling.apply(val_logits)
    train_prevalence = button_prevalence(data.train.actions.numpy())
    choice = choose_thresholds(val_labels, val_probabilities, layout.button_names, config.threshold_mode,
                               fallback_press_rates=train_prevalence)
    policy.set_decision_rule(choice.thresholds, scaling.scale, scaling.offset)

    # Report on validation and test.
    sample = config.decision == "sample"
    generator = torch.Generator().manual_seed(config.seed)
    reports = {}
    arrays = {}
    for name, dataset, logits in (("val", data.val, val_logits),
                                  ("test", data.test, predict_logits(policy, data.test, config.eval_batch_size,
                                                                     device))):
        labels = dataset.actions.numpy()
        # Calibrate and decide in float32 with the policy's own buffers, as the saved policy does (and as
        # dagger.py scores it). A max-F1 threshold equals one validation probability, so a float64 path
        # could count that step as pressed where the saved policy does not.
        with torch.no_grad():
            calibrated = policy.calibrate(torch.from_numpy(logits).to(device))
            decisions = policy.decide(calibrated, sample=sample, generator=generator).cpu().numpy()
        probabilities = calibrated.cpu().numpy()
        reports[name] = evaluate_split(labels, probabilities, decisions, layout.button_names,
                                       thresholds=None if sample else choice.thresholds,
                                       episode_lengths=dataset.episode_lengths)
        arrays[name] = (labels, probabilities)
    test_report = reports["test"]
    print(format_split_table(reports["val"], title=f"validation split, best epoch {state.best_epoch} (thresholds "
                                                   "were chosen on these steps, so F1 here is optimistic)"))
    print()
    print(format_split_table(test_report, title=f"test split ({data.description['kind']} split, "
                                                f"best epoch {state.best_epoch})"))
    if data.description["kind"] == "frames":
        print("note: validation used random steps of the training episodes, so its scores (and the early "
              "stopping) are inflated; these test episodes are held out")
    if writer is not None:
        _log_split_scalars(writer, "test", test_report, state.global_step)

    # Write metrics, plots and the policy files.
    training_summary = {
        "preset": config.preset.value, "loss": config.loss.value, "pos_weight": config.pos_weight.value,
        "threshold_mode": config.threshold_mode.value, "calibrated": config.calibrate, "seed": config.seed,
        "precision": precision,
        "epochs_run": state.epoch, "best_epoch": state.best_epoch, "best_val_macro_ap": state.best_val_macro_ap,
        "train_steps": len(data.train), "val_steps": len(data.val), "test_steps": len(data.test),
        "split": data.description["kind"], "test_macro_f1": test_report.macro_f1,
        "test_macro_ap": test_report.macro_ap, "train_prevalence": dict(zip(layout.button_names,
                                                                            train_prevalence.tolist())),
    }
    metrics = {
        "test": test_report.to_dict(), "val": reports["val"].to_dict(), "history": state.history,
        "threshold_methods": dict(zip(layout.button_names, choice.methods)), "split": data.description,
        "training": training_summary, "config": config.to_dict(),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if config.plots:
        from agents.report import write_plots

        write_plots(run_dir, *arrays["test"], test_report)
    policy_config = PolicyConfig(
        button_names=list(layout.button_names), state_names=list(layout.state_names),
        frame_shape=list(layout.frame_shape), n_frames=config.n_frames, state_window=config.state_window,
        features_extractor_kwargs=config.extractor_kwargs(), net_arch=config.net_arch(),
        threshold_methods=choice.methods, decision=config.decision, game=layout.game,
        decision_hz=layout.decision_hz, training=training_summary,
    )
    save_policy(run_dir, policy, policy_config)
    logger.info("wrote %s, %s and the policy files to %s", "metrics.json", "plots" if config.plots else "no plots",
                run_dir)
    return TrainResult(run_dir, test_report, reports["val"], state.best_epoch, state.history)


def run(config: TrainConfig) -> TrainResult:
    """Load the demos named in ``config``, train and report; the entry point of scripts/train_bc.py."""
    from demos.loader import load_demos

    config = apply_preset(config)
    if not config.demos:
        raise TrainingError("no demo store given; pass --demos DIR (a store written by scripts/collect_demos.py)")
    run_dir = Path(config.out)
    if (run_dir / "checkpoint" / "state.json").exists() and not config.resume:
        raise TrainingError(f"{run_dir} already contains a run; pass --resume to continue it or choose another --out")
    logger.info("config: %s", json.dumps(config.to_dict()))
    demo_set = load_demos(config.demos, action_offset=config.action_offset, skip_bad=config.skip_bad)
    if config.init_from and not config.resume:
        # Refuse a starting policy that cannot fit these demos before splitting them; fit() checks again
        # when it loads the weights.
        from agents.policy_files import CONFIG_FILE, check_layout, read_policy_config

        check_layout(read_policy_config(config.init_from), demo_set.button_names, demo_set.state_names,
                     demo_set.frame_shape, "demo store", game=demo_set.game,
                     policy_file=Path(config.init_from) / CONFIG_FILE)
    data = split_demo_set(config, demo_set)
    return fit(config, data, run_dir)
