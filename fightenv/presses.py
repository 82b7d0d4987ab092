"""Press statistics of button sequences: how often, how many times and how long each button is held.

Used by the imbalance report of recorded demonstrations, by the evaluation of a
pilot in the Arena and by the training report, so that all three count press
events and hold lengths the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ButtonPresses:
    """Press statistics of one button over a set of episodes."""

    name: str
    held_steps: int
    """Steps in which the button was held."""
    press_events: int
    """Transitions from released to held, counting a hold at an episode's first step."""
    press_rate: float
    """Share of steps in which the button was held, in [0, 1]."""
    mean_hold_steps: float
    """Mean length of a press event in steps; NaN when the button was never pressed."""

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "held_steps": self.held_steps,
            "press_events": self.press_events,
            "press_rate": self.press_rate,
            "mean_hold_steps": None if np.isnan(self.mean_hold_steps) else self.mean_hold_steps,
        }


def count_press_events(actions: np.ndarray) -> np.ndarray:
    """Count, per button, the runs of consecutive held steps in one episode.

    ``actions`` is ``(T, n_buttons)`` with values in {0, 1}; returns ``(n_buttons,)`` int64.
    """
    held = np.asarray(actions, dtype=bool)
    if held.ndim != 2:
        raise ValueError(f"expected actions of shape (T, n_buttons), got shape {held.shape}")
    if held.shape[0] == 0:
        return np.zeros(held.shape[1], dtype=np.int64)
    starts = held[1:] & ~held[:-1]
    return held[0].astype(np.int64) + starts.sum(axis=0, dtype=np.int64)


def press_statistics(episodes: Iterable[np.ndarray], button_names: Sequence[str]) -> list[ButtonPresses]:
    """Summarise press rate, press events and mean hold length per button over episodes.

    Each episode is a ``(T, n_buttons)`` array of held buttons. Runs are counted
    within episodes, never across an episode boundary.
    """
    n_buttons = len(button_names)
    held_steps = np.zeros(n_buttons, dtype=np.int64)
    events = np.zeros(n_buttons, dtype=np.int64)
    total_steps = 0
    for actions in episodes:
        actions = np.asarray(actions)
        if actions.ndim != 2 or actions.shape[1] != n_buttons:
            raise ValueError(
                f"expected actions of shape (T, {n_buttons}) for buttons {list(button_names)}, "
                f"got shape {actions.shape}"
            )
        held_steps += (actions != 0).sum(axis=0)
        events += count_press_events(actions)
        total_steps += actions.shape[0]

    stats = []
    for i, name in enumerate(button_names):
        rate = held_steps[i] / total_steps if total_steps else 0.0
        hold = held_steps[i] / events[i] if events[i] else float("nan")
        stats.append(ButtonPresses(name, int(held_steps[i]), int(events[i]), float(rate), float(hold)))
    return stats
