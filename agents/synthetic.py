"""Synthetic demonstrations with skewed, learnable button prevalences, for tests and benchmarks.

State features follow smooth mean-reverting AR(1) processes; button i is pressed while feature
``i % k`` stays above the quantile that gives it the requested prevalence, so
presses last several steps and a policy can learn them from the
state window. Frames are noise with a bright column whose position follows
feature 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from imitation.data.types import DictObs, Trajectory

DEFAULT_PREVALENCES = (0.4, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01)


def synthetic_trajectories(
    n_episodes: int,
    steps_per_episode: int,
    prevalences: Sequence[float] = DEFAULT_PREVALENCES,
    frame_shape: tuple[int, int, int] = (1, 84, 84),
    n_state: int = 8,
    seed: int = 0,
) -> list[Trajectory]:
    """Return ``n_episodes`` Trajectories with ``DictObs(frame (T+1, C, H, W) uint8, state (T+1, k) float32)``."""
    rng = np.random.default_rng(seed)
    prevalences = np.asarray(prevalences, dtype=np.float64)
    n_buttons = len(prevalences)
    total = steps_per_episode + 1
    walks = []
    for _ in range(n_episodes):
        # AR(1) with coefficient 0.9: smooth, and every episode covers the same stationary range.
        noise = rng.normal(0, 0.45, size=(total, n_state))
        walk = np.empty((total, n_state), dtype=np.float32)
        walk[0] = rng.normal(0, 1.0, size=n_state)
        for t in range(1, total):
            walk[t] = 0.9 * walk[t - 1] + noise[t]
        walks.append(walk)
    pooled = np.concatenate(walks)
    # Thresholds over the pooled walks give each button its prevalence across the whole set.
    thresholds = np.array([np.quantile(pooled[:, i % n_state] * (1 + i // n_state), 1 - p) if p > 0 else np.inf
                           for i, p in enumerate(prevalences)])
    channels, height, width = frame_shape
    # Like demos.load_demos, every episode's frames are a view of one buffer.
    frame_buffer = rng.integers(0, 60, size=(n_episodes * total, channels, height, width), dtype=np.uint8)
    trajectories = []
    for episode, walk in enumerate(walks):
        signal = np.stack([walk[:, i % n_state] * (1 + i // n_state) for i in range(n_buttons)], axis=1)
        acts = (signal[:-1] > thresholds).astype(np.float32)
        frames = frame_buffer[episode * total:(episode + 1) * total]
        column = np.clip(((np.tanh(walk[:, 0] / 3) + 1) / 2 * (width - 1)).astype(int), 0, width - 1)
        frames[np.arange(total), :, :, column] = 255
        trajectories.append(Trajectory(obs=DictObs({"frame": frames, "state": walk}), acts=acts, infos=None,
                                       terminal=True))
    return trajectories
