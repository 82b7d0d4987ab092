"""Per-epoch training checkpoints without pickle: safetensors for tensors, JSON for the rest.

Layout under ``RUN_DIR/checkpoint/``:

    model.safetensors        weights after the last finished epoch
    best_model.safetensors   weights of the epoch with the best validation macro AP
    optimizer.safetensors    optimizer state tensors, keyed "<param index>.<name>"
    state.json               epoch, step, early-stopping state, optimizer param groups, button names, config
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

CHECKPOINT_DIR = "checkpoint"


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable or from an incompatible run."""


@dataclass
class TrainingState:
    """Progress of a run: enough to resume it exactly at the next epoch."""

    epoch: int
    """Last finished epoch, counting from 1."""
    global_step: int
    best_val_macro_ap: float
    best_epoch: int
    epochs_without_improvement: int
    button_names: list[str]
    state_names: list[str]
    frame_shape: list[int]
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    """Per finished epoch: the train and validation summary."""
    optimizer_param_groups: list[dict[str, Any]] = field(default_factory=list)


def _write_atomic(path: Path, writer) -> None:
    tmp = path.with_name(path.name + ".tmp")
    writer(tmp)
    tmp.replace(path)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split an optimizer's state dict into flat tensors and JSON-ready param groups."""
    state_dict = optimizer.state_dict()
    tensors = {}
    for index, param_state in state_dict["state"].items():
        for name, value in param_state.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{index}.{name}"] = tensor.detach().cpu().contiguous()
    return tensors, state_dict["param_groups"]


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                      param_groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def save_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: TrainingState,
                    is_best: bool) -> None:
    """Write the checkpoint of a finished epoch; ``is_best`` also replaces ``best_model.safetensors``."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    tensors, param_groups = optimizer_tensors(optimizer)
    state.optimizer_param_groups = param_groups
    _write_atomic(directory / "model.safetensors", lambda p: save_model(model, str(p)))
    if is_best:
        _write_atomic(directory / "best_model.safetensors", lambda p: save_model(model, str(p)))
    _write_atomic(directory / "optimizer.safetensors", lambda p: save_file(tensors, str(p)))
    # state.json goes last: a checkpoint counts only once it is written.
    _write_atomic(directory / "state.json", lambda p: p.write_text(json.dumps(asdict(state), indent=2)))


def read_training_state(run_dir: Path) -> TrainingState:
    path = Path(run_dir) / CHECKPOINT_DIR / "state.json"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint to resume in {Path(run_dir)}: {path} not found; start the run "
                              "without --resume")
    try:
        return TrainingState(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as error:
        raise CheckpointError(f"checkpoint state {path} is unreadable: {error}") from error


def load_checkpoint_weights(run_dir: Path, model: nn.Module, best: bool = False) -> None:
    """Load ``model.safetensors`` (or ``best_model.safetensors``) into ``model``."""
    name = "best_model.safetensors" if best else "model.safetensors"
    path = Path(run_dir) / CHECKPOINT_DIR / name
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights not found: {path}")
    load_model(model, str(path), strict=False)


def load_checkpoint_optimizer(run_dir: Path, optimizer: torch.optim.Optimizer, state: TrainingState) -> None:
    path = Path(run_dir) / CHECKPOINT_DIR / "optimizer.safetensors"
    if not path.is_file():
        raise CheckpointError(f"checkpoint optimizer state not found: {path}")
    restore_optimizer(optimizer, load_file(str(path)), state.optimizer_param_groups)
