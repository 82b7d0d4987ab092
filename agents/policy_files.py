"""Policy files: ``RUN_DIR/policy.safetensors`` (weights) plus ``RUN_DIR/policy.json`` (everything else).

The JSON contains the architecture, the button and state feature names, the
frame shape, the stack sizes, the per-button thresholds and calibration, and a
training summary. Loading reads JSON and safetensors only, so it never
executes pickled code, and it checks buttons, state features and frame shape
against the env or demo store the policy is about to meet.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from agents.policy import ButtonPolicy, make_policy, windowed_spaces

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "policy.safetensors"
CONFIG_FILE = "policy.json"
FORMAT = "fightenv-button-policy"
FORMAT_VERSION = 1


class PolicyFileError(Exception):
    """A policy file is missing, malformed or does not fit the env or store it is used with."""


@dataclass
class PolicyConfig:
    """The JSON half of a policy file."""

    button_names: list[str]
    state_names: list[str]
    frame_shape: list[int]
    """``[C, H, W]`` of one frame before stacking."""
    n_frames: int
    state_window: int
    features_extractor_kwargs: dict[str, Any]
    net_arch: dict[str, list[int]]
    thresholds: list[float] | None = None
    """Per button: press when the calibrated probability >= threshold. None: sampling only."""
    threshold_methods: list[str] | None = None
    platt_scale: list[float] | None = None
    platt_offset: list[float] | None = None
    decision: str = "thresholds"
    """Default decision rule of pilots built from this file: "thresholds" or "sample"."""
    game: str | None = None
    decision_hz: float | None = None
    training: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def arena_options(self) -> dict[str, Any]:
        """Return the Arena env options that give this policy's frames and decision rate.

        A policy trained on colour, resized or faster-stepping Arena demos then plays an env like the one it
        was recorded on. The frame skip is left at the env's default when the file names no decision rate.
        """
        from fightenv.arena.rules import TICK_HZ

        channels, height, width = self.frame_shape
        options: dict[str, Any] = {"frame_size": (int(height), int(width)), "color": channels == 3}
        if self.decision_hz:
            options["frame_skip"] = max(1, round(TICK_HZ / self.decision_hz))
        return options

    def build_policy(self) -> ButtonPolicy:
        observation_space, action_space = windowed_spaces(
            tuple(self.frame_shape), len(self.state_names), len(self.button_names), self.n_frames, self.state_window
        )
        policy = make_policy(observation_space, action_space, self.features_extractor_kwargs, self.net_arch)
        policy.set_decision_rule(
            None if self.thresholds is None else np.asarray(self.thresholds),
            None if self.platt_scale is None else np.asarray(self.platt_scale),
            None if self.platt_offset is None else np.asarray(self.platt_offset),
        )
        return policy


@dataclass
class LoadedPolicy:
    policy: ButtonPolicy
    config: PolicyConfig
    run_dir: Path


def save_policy(run_dir: str | Path, policy: ButtonPolicy, config: PolicyConfig) -> None:
    """Write the weights and the JSON config of ``policy`` into ``run_dir`` (each via a temporary file)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if policy.has_thresholds:
        config.thresholds = [float(t) for t in policy.thresholds.cpu()]
    config.platt_scale = [float(s) for s in policy.platt_scale.cpu()]
    config.platt_offset = [float(s) for s in policy.platt_offset.cpu()]

    weights_tmp = run_dir / (WEIGHTS_FILE + ".tmp")
    save_model(policy, str(weights_tmp))
    weights_tmp.replace(run_dir / WEIGHTS_FILE)
    config_tmp = run_dir / (CONFIG_FILE + ".tmp")
    config_tmp.write_text(json.dumps(asdict(config), indent=2))
    config_tmp.replace(run_dir / CONFIG_FILE)


def read_policy_config(run_dir: str | Path) -> PolicyConfig:
    """Read and validate ``run_dir/policy.json``."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise PolicyFileError(f"policy config not found: {path}; pass the run directory written by "
                              "scripts/train_bc.py --out")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PolicyFileError(f"policy config {path} is not valid JSON: {error}") from error
    if raw.get("format") != FORMAT:
        raise PolicyFileError(f"{path} has format {raw.get('format')!r}, expected {FORMAT!r}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise PolicyFileError(f"{path} has format_version {raw.get('format_version')!r}; this fightenv reads "
                              f"version {FORMAT_VERSION}")
    try:
        return PolicyConfig(**raw)
    except TypeError as error:
        raise PolicyFileError(f"policy config {path} has unexpected or missing fields: {error}") from error


def check_layout(
    config: PolicyConfig,
    button_names: Sequence[str] | None,
    state_names: Sequence[str] | None,
    frame_shape: Sequence[int] | None,
    source: str,
    game: str | None = None,
    policy_file: str | Path | None = None,
) -> None:
    """Raise PolicyFileError when the policy's game, buttons, state features or frame shape differ from ``source``'s.

    The game is compared only when both the policy and ``source`` name one. ``policy_file``, when given, is
    named in the message.
    """
    problems = []
    if game is not None and config.game is not None and game != config.game:
        problems.append(f"games differ: policy {config.game!r}, {source} {game!r}")
    if button_names is not None and list(button_names) != list(config.button_names):
        problems.append(f"buttons differ: policy {list(config.button_names)}, {source} {list(button_names)}")
    if state_names is not None and list(state_names) != list(config.state_names):
        problems.append(f"state features differ: policy {list(config.state_names)}, {source} {list(state_names)}")
    if frame_shape is not None and list(frame_shape) != list(config.frame_shape):
        problems.append(f"frame shape differs: policy {list(config.frame_shape)}, {source} {list(frame_shape)}")
    if problems:
        where = f"policy {policy_file} does not fit the {source}: " if policy_file is not None else ""
        raise PolicyFileError(
            where + "; ".join(problems) + f". Train a policy on demonstrations from this {source}, or use the "
            "settings (game, frame size, colour) the policy was trained with."
        )


def load_policy(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    env: Any = None,
    store: Any = None,
) -> LoadedPolicy:
    """Load a policy from ``run_dir`` onto ``device`` in eval mode.

    When ``env`` is given, its unwrapped env's ``button_names``, ``state_names``
    and frame shape are checked against the policy. When ``store`` is given
    (any object with ``button_names``, ``state_names`` and ``frame_shape``, such
    as a ``demos.DemoSet``), so are its. A mismatch raises PolicyFileError naming both lists.
    """
    run_dir = Path(run_dir)
    config = read_policy_config(run_dir)
    if env is not None:
        from agents.policy import env_layout

        buttons, states, frame_shape = env_layout(env)
        check_layout(config, buttons, states, frame_shape, "env", game=getattr(env.unwrapped, "game_name", None),
                     policy_file=run_dir / CONFIG_FILE)
    if store is not None:
        check_layout(config, store.button_names, store.state_names, store.frame_shape, "demo store",
                     game=getattr(store, "game", None), policy_file=run_dir / CONFIG_FILE)

    weights = run_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise PolicyFileError(f"policy weights not found: {weights}; the run may not have finished its first epoch")
    try:
        policy = config.build_policy()
    except ValueError as error:
        raise PolicyFileError(f"policy config {run_dir / CONFIG_FILE} is invalid: {error}. Use the files "
                              "scripts/train_bc.py wrote, unedited, or train the policy again") from error
    try:
        missing, unexpected = load_model(policy, str(weights), strict=False)
    except Exception as error:  # safetensors raises several types for corrupt or mismatched files
        raise PolicyFileError(f"cannot read policy weights {weights}: {error}") from error
    # Shared modules appear under several names; safetensors stores one of them.
    own_keys = set(policy.state_dict().keys())
    missing = [key for key in missing if key in own_keys and not _is_alias(key) and key not in _OPTIONAL_KEYS]
    if missing or unexpected:
        raise PolicyFileError(f"policy weights {weights} do not match the architecture in {CONFIG_FILE}: "
                              f"missing {missing}, unexpected {unexpected}")
    policy.to(device)
    policy.set_training_mode(False)
    logger.info("loaded policy from %s (buttons %s)", run_dir, config.button_names)
    return LoadedPolicy(policy=policy, config=config, run_dir=run_dir)


# Weights that policy files written before state standardisation lack; they load with the identity.
_OPTIONAL_KEYS = frozenset({"features_extractor.state_mean", "features_extractor.state_std"})


def _is_alias(key: str) -> bool:
    return key.startswith(("pi_features_extractor.", "vf_features_extractor."))
