"""The multi-label button policy: a CNN over stacked frames and a GRU over recent states, one logit per button.

``ButtonPolicy`` is a stable-baselines3 ``ActorCriticPolicy`` with a
``MultiBinary`` action space (a Bernoulli distribution per button), so it works
with ``policy.predict`` and with ``imitation.algorithms.bc.BC``. Its
observation is the windowed Dict from ``fightenv.wrappers``:

| key | dtype | shape | meaning |
|---|---|---|---|
| frame | uint8 in [0, 255] | ``(S * C, H, W)`` | last S frames, oldest first |
| state | float32 | ``(W, k)`` | last W state vectors, oldest first |

The temporal branch standardises each state feature with the mean and
standard deviation of the training split, kept in the weights file. Raw, the
Arena's distance feature varies with a standard deviation of about 0.04 over
expert play, about a tenth of that of the binary cues, although the expert
picks its strike and its defence by distance.

The action rule is never a silent 0.5: ``predict(deterministic=True)``
compares calibrated probabilities with per-button thresholds chosen on
validation, and raises until thresholds are set. ``deterministic=False``
samples each button from its calibrated probability.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from fightenv.wrappers import FRAME_KEY, STATE_KEY


class TemporalKind(str, Enum):
    GRU = "gru"
    LSTM = "lstm"
    CONV = "conv"


class FrameStateExtractor(BaseFeaturesExtractor):
    """Features of a windowed observation: CNN features of the frame stack next to temporal features of the states.

    Sizes come from the observation space: the CNN's flattened size is found
    with a dummy forward pass. Frames arrive scaled to [0, 1] by SB3's
    preprocessing (``normalize_images=True``).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        cnn_channels: tuple[int, int, int] = (16, 32, 32),
        frame_features: int = 128,
        state_hidden: int = 64,
        temporal: str = "gru",
    ) -> None:
        frame_space = observation_space[FRAME_KEY]
        state_space = observation_space[STATE_KEY]
        if len(frame_space.shape) != 3 or len(state_space.shape) != 2:
            raise ValueError(
                f"expected a windowed observation space with frame (S*C, H, W) and state (W, k), got frame "
                f"{frame_space.shape} and state {state_space.shape}; wrap the env with ObservationHistoryWrapper"
            )
        super().__init__(observation_space, features_dim=frame_features + state_hidden)
        in_channels = frame_space.shape[0]
        c1, c2, c3 = cnn_channels
        self.cnn = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=8, stride=4), nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=4, stride=2), nn.ReLU(),
            nn.Conv2d(c2, c3, kernel_size=3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, *frame_space.shape)).shape[1]
        self.frame_head = nn.Sequential(nn.Linear(n_flat, frame_features), nn.ReLU())

        self.temporal_kind = TemporalKind(temporal)
        window, k = state_space.shape
        if self.temporal_kind is TemporalKind.GRU:
            self.temporal = nn.GRU(k, state_hidden, batch_first=True)
        elif self.temporal_kind is TemporalKind.LSTM:
            self.temporal = nn.LSTM(k, state_hidden, batch_first=True)
        else:
            kernel = min(3, window)
            self.temporal = nn.Sequential(
                nn.Conv1d(k, state_hidden, kernel_size=kernel), nn.ReLU(),
                nn.AdaptiveMaxPool1d(1), nn.Flatten(),
            )
        self.state_head = nn.ReLU()
        # Per-feature standardisation of the state vectors, set from the training split and the identity until
        # then. They are buffers, so the weights file and the checkpoints contain them.
        self.register_buffer("state_mean", torch.zeros(k))
        self.register_buffer("state_std", torch.ones(k))

    def set_state_normalization(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Standardise state feature i as ``(x - mean[i]) / std[i]`` before the temporal branch."""
        mean, std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
        if mean.shape != self.state_mean.shape or std.shape != self.state_std.shape:
            raise ValueError(f"expected state mean and std of shape {tuple(self.state_mean.shape)}, got "
                             f"{mean.shape} and {std.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("state mean and std must be finite, and std positive")
        self.state_mean.copy_(torch.from_numpy(mean))
        self.state_std.copy_(torch.from_numpy(std))

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Return CNN features ``(B, frame_features)`` of float frames ``(B, S*C, H, W)`` scaled to [0, 1]."""
        return self.frame_head(self.cnn(frames))

    def state_features(self, states: torch.Tensor) -> torch.Tensor:
        """Return temporal features ``(B, state_hidden)`` of a state window ``(B, W, k)``."""
        states = (states - self.state_mean) / self.state_std
        if self.temporal_kind is TemporalKind.GRU:
            _, hidden = self.temporal(states)
            return self.state_head(hidden[-1])
        if self.temporal_kind is TemporalKind.LSTM:
            _, (hidden, _) = self.temporal(states)
            return self.state_head(hidden[-1])
        return self.state_head(self.temporal(states.transpose(1, 2)))

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat(
            [self.frame_features(observations[FRAME_KEY]), self.state_features(observations[STATE_KEY])], dim=1
        )


DEFAULT_NET_ARCH = {"pi": [128], "vf": []}


class ButtonPolicy(ActorCriticPolicy):
    """Actor-critic policy over buttons whose actor gives one logit per button.

    The critic (one linear layer on the shared features) exists only so that
    SB3 and imitation's ``bc.BC`` accept the class; behavioural cloning never trains it.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.MultiBinary,
        lr_schedule=None,
        net_arch: dict[str, list[int]] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(action_space, spaces.MultiBinary) or len(action_space.shape) != 1:
            raise ValueError(f"ButtonPolicy needs a MultiBinary(n) action space, got {action_space}")
        super().__init__(
            observation_space,
            action_space,
            lr_schedule if lr_schedule is not None else (lambda _: 1e-3),
            net_arch=net_arch if net_arch is not None else DEFAULT_NET_ARCH,
            activation_fn=nn.ReLU,
            ortho_init=False,
            features_extractor_class=FrameStateExtractor,
            features_extractor_kwargs=features_extractor_kwargs or {},
            share_features_extractor=True,
            **kwargs,
        )
        n_buttons = action_space.shape[0]
        # The decision rule lives in the policy file's JSON, so these buffers are not in the weights file.
        self.register_buffer("thresholds", torch.full((n_buttons,), float("nan")), persistent=False)
        self.register_buffer("platt_scale", torch.ones(n_buttons), persistent=False)
        self.register_buffer("platt_offset", torch.zeros(n_buttons), persistent=False)

    @property
    def n_buttons(self) -> int:
        return int(self.action_space.shape[0])

    def button_logits(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return raw logits ``(B, n_buttons)`` for a batch of windowed observations (frames uint8 or float)."""
        features = self.extract_features(obs)
        return self.action_net(self.mlp_extractor.forward_actor(features))

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor:
        """Return calibrated probabilities ``(B, n_buttons)`` from raw logits."""
        return torch.sigmoid(logits * self.platt_scale + self.platt_offset)

    def button_probabilities(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.calibrate(self.button_logits(obs))

    def set_output_bias(self, bias: np.ndarray) -> None:
        """Set the output layer's bias, e.g. to logit(prevalence) per button from the training split."""
        bias = np.asarray(bias, dtype=np.float32)
        if bias.shape != (self.n_buttons,):
            raise ValueError(f"expected an output bias of shape ({self.n_buttons},), got {bias.shape}")
        with torch.no_grad():
            self.action_net.bias.copy_(torch.from_numpy(bias))

    def set_decision_rule(
        self, thresholds: np.ndarray | None, platt_scale: np.ndarray | None = None, platt_offset: np.ndarray | None = None
    ) -> None:
        """Store per-button thresholds and calibration; ``thresholds=None`` leaves the policy sampling-only."""
        n = self.n_buttons
        values = np.full(n, np.nan) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        scale = np.ones(n) if platt_scale is None else np.asarray(platt_scale)
        offset = np.zeros(n) if platt_offset is None else np.asarray(platt_offset)
        for name, array in (("thresholds", values), ("platt_scale", scale), ("platt_offset", offset)):
            if array.shape != (n,):
                raise ValueError(f"expected {name} of shape ({n},), got {array.shape}")
        self.thresholds.copy_(torch.as_tensor(values, dtype=torch.float32))
        self.platt_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.platt_offset.copy_(torch.as_tensor(offset, dtype=torch.float32))

    @property
    def has_thresholds(self) -> bool:
        return not bool(torch.isnan(self.thresholds).any())

    def decide(self, probabilities: torch.Tensor, sample: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """Turn probabilities ``(B, n)`` into buttons ``(B, n)`` uint8 by thresholds or by sampling."""
        if sample:
            # Draw on the CPU so a CPU generator seeds the draws on any device.
            draws = torch.rand(probabilities.shape, generator=generator).to(probabilities.device)
            return (draws < probabilities).to(torch.uint8)
        if not self.has_thresholds:
            raise RuntimeError(
                "this policy has no per-button thresholds yet; choose them on validation episodes "
                "(agents.thresholds.choose_thresholds, then set_decision_rule) or decide by sampling"
            )
        return (probabilities >= self.thresholds.to(probabilities.device)).to(torch.uint8)

    def _predict(self, observation: dict[str, torch.Tensor], deterministic: bool = False) -> torch.Tensor:
        return self.decide(self.button_probabilities(observation), sample=not deterministic)


def make_policy(
    observation_space: spaces.Dict,
    action_space: spaces.MultiBinary,
    features_extractor_kwargs: dict[str, Any] | None = None,
    net_arch: dict[str, list[int]] | None = None,
) -> ButtonPolicy:
    """Build a ButtonPolicy; the learning rate schedule is unused because training owns its optimizer."""
    return ButtonPolicy(
        observation_space, action_space, lambda _: 1e-3,
        net_arch=net_arch, features_extractor_kwargs=features_extractor_kwargs,
    )


def windowed_spaces(
    frame_shape: tuple[int, int, int], n_state: int, n_buttons: int, n_frames: int, state_window: int
) -> tuple[spaces.Dict, spaces.MultiBinary]:
    """Return the windowed observation space and the action space of a game with these sizes."""
    channels, height, width = frame_shape
    observation_space = spaces.Dict({
        FRAME_KEY: spaces.Box(0, 255, (n_frames * channels, height, width), np.uint8),
        STATE_KEY: spaces.Box(-np.inf, np.inf, (state_window, n_state), np.float32),
    })
    return observation_space, spaces.MultiBinary(n_buttons)


def env_layout(env: gym.Env) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, int, int]]:
    """Return an env's button names, state feature names and frame shape (unwrapping as needed)."""
    base = env.unwrapped
    frame_shape = tuple(int(d) for d in base.observation_space[FRAME_KEY].shape)
    return tuple(base.button_names), tuple(base.state_names), frame_shape  # type: ignore[return-value]
