"""Synthetic episodes for the demo store tests: skewed multi-hot buttons and random uint8 frames."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from agents.session import Decision
from demos import EpisodeStore

BUTTONS = ("forward", "back", "guard", "grab", "special")
PRESS_RATES = np.array([0.4, 0.2, 0.05, 0.02, 0.01])
STATE_NAMES = tuple(f"feature_{i}" for i in range(6))
FRAME_SHAPE = (1, 16, 16)
DECISION_HZ = 15.0


def open_store(path: Path, mode: str = "create", **kwargs) -> EpisodeStore:
    return EpisodeStore.open(
        path, mode, game="synthetic", button_names=BUTTONS, state_names=STATE_NAMES,
        frame_shape=FRAME_SHAPE, decision_hz=DECISION_HZ, **kwargs,
    )


def make_episode(rng: np.random.Generator, steps: int, frame_shape=FRAME_SHAPE):
    """Return ``steps + 1`` observations and ``steps`` actions with held runs of 1 to 4 steps."""
    frames = rng.integers(0, 256, size=(steps + 1, *frame_shape), dtype=np.uint8)
    states = rng.random((steps + 1, len(STATE_NAMES)), dtype=np.float32)
    starts = rng.random((steps, len(BUTTONS))) < PRESS_RATES / 2
    actions = np.zeros((steps, len(BUTTONS)), dtype=np.uint8)
    for t, b in zip(*np.nonzero(starts)):
        actions[t : t + rng.integers(1, 5), b] = 1
    return frames, states, actions


def record_episode(store: EpisodeStore, rng: np.random.Generator, steps: int, seed: int = 0, outcome="win",
                   decision_for=None):
    """Record one synthetic episode through the recorder methods; return what was recorded."""
    frames, states, actions = make_episode(rng, steps)
    store.begin_episode(seed, {"frame": frames[0], "state": states[0]})
    for t in range(steps):
        decision = decision_for(t, actions[t]) if decision_for else Decision(action=actions[t], source="expert")
        store.add_step({"frame": frames[t], "state": states[t]}, decision, time.monotonic(), float(t))
    info = store.end_episode({"frame": frames[-1], "state": states[-1]}, outcome, {"tick": steps * 4})
    return frames, states, actions, info
