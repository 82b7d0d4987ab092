"""Observation wrappers that give a policy temporal context: a frame stack and a window of state vectors.

Temporal context comes through the observation, never by feeding back the
previous action, because a policy that sees its last action learns to repeat
it (the copycat problem).

``ObservationHistoryWrapper`` keeps the Dict keys and replace the arrays in place:

| key | before | after | order |
|---|---|---|---|
| frame | ``(C, H, W)`` uint8 | ``(S * C, H, W)`` uint8 | oldest frame's channels first |
| state | ``(k,)`` float32 | ``(W, k)`` float32 | oldest row first |

At the start of an episode the history is padded by repeating the first
observation. The training dataset (``agents.dataset``) builds the same windows
from recorded trajectories, and a test checks that both agree step by step.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

FRAME_KEY = "frame"
STATE_KEY = "state"


class ObservationHistory:
    """The last ``n_frames`` frames and ``state_window`` state vectors of one episode.

    ``reset(obs)`` starts an episode and ``push(obs)`` appends a step; both
    return the windowed observation. Used by the wrappers and by the policy pilot.
    """

    def __init__(self, n_frames: int, state_window: int) -> None:
        if n_frames < 1:
            raise ValueError(f"n_frames must be at least 1, got {n_frames}")
        if state_window < 1:
            raise ValueError(f"state_window must be at least 1, got {state_window}")
        self.n_frames = n_frames
        self.state_window = state_window
        self._frames: deque[np.ndarray] = deque(maxlen=n_frames)
        self._states: deque[np.ndarray] = deque(maxlen=state_window)

    @property
    def started(self) -> bool:
        return bool(self._frames)

    def clear(self) -> None:
        self._frames.clear()
        self._states.clear()

    def reset(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Fill the history with copies of ``obs`` and return the windowed observation."""
        self.clear()
        frame, state = self._check(obs)
        for _ in range(self.n_frames):
            self._frames.append(frame)
        for _ in range(self.state_window):
            self._states.append(state)
        return self.window(obs)

    def push(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Append ``obs`` and return the windowed observation; the first push of an episode acts as ``reset``."""
        if not self.started:
            return self.reset(obs)
        frame, state = self._check(obs)
        self._frames.append(frame)
        self._states.append(state)
        return self.window(obs)

    def window(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return ``obs`` with ``frame`` and ``state`` replaced by the current windows."""
        windowed = dict(obs)
        windowed[FRAME_KEY] = np.concatenate(list(self._frames), axis=0)
        windowed[STATE_KEY] = np.stack(list(self._states), axis=0)
        return windowed

    @staticmethod
    def _check(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if FRAME_KEY not in obs or STATE_KEY not in obs:
            raise KeyError(f"expected an observation with keys '{FRAME_KEY}' and '{STATE_KEY}', "
                           f"got keys {sorted(obs)}")
        frame = np.asarray(obs[FRAME_KEY], dtype=np.uint8)
        state = np.asarray(obs[STATE_KEY], dtype=np.float32)
        if frame.ndim != 3 or state.ndim != 1:
            raise ValueError(f"expected frame (C, H, W) and state (k,), got {frame.shape} and {state.shape}; "
                             "the observation may already be windowed")
        return frame.copy(), state.copy()


def windowed_observation_space(space: spaces.Dict, n_frames: int, state_window: int) -> spaces.Dict:
    """Return the Dict space of windowed observations of an env with Dict(frame, state) observations."""
    if not isinstance(space, spaces.Dict) or FRAME_KEY not in space.spaces or STATE_KEY not in space.spaces:
        raise ValueError(f"expected a Dict observation space with '{FRAME_KEY}' and '{STATE_KEY}', got {space}")
    frame_space = space[FRAME_KEY]
    state_space = space[STATE_KEY]
    channels, height, width = frame_space.shape
    (k,) = state_space.shape
    new_spaces = dict(space.spaces)
    new_spaces[FRAME_KEY] = spaces.Box(0, 255, (n_frames * channels, height, width), np.uint8)
    low = np.broadcast_to(np.asarray(getattr(state_space, "low", -np.inf), np.float32), (k,))
    high = np.broadcast_to(np.asarray(getattr(state_space, "high", np.inf), np.float32), (k,))
    new_spaces[STATE_KEY] = spaces.Box(
        np.tile(low, (state_window, 1)), np.tile(high, (state_window, 1)), (state_window, k), np.float32
    )
    return spaces.Dict(new_spaces)


class ObservationHistoryWrapper(gym.Wrapper):
    """Replace ``frame`` by a stack of the last ``n_frames`` frames and ``state`` by the last ``state_window`` states."""

    def __init__(self, env: gym.Env, n_frames: int = 1, state_window: int = 1) -> None:
        super().__init__(env)
        self.history = ObservationHistory(n_frames, state_window)
        self.observation_space = windowed_observation_space(env.observation_space, n_frames, state_window)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self.history.reset(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.history.push(obs), reward, terminated, truncated, info

