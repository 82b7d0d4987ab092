"""Train, validation and test splits of a demo set: by episode (honest) and by random frame (leaky baseline).

Adjacent frames of one episode are near duplicates, so a split that puts frames
of one episode on both sides scores validation frames the model has nearly seen.
``split_episodes`` keeps every episode whole and, among many random candidate
splits, picks the one whose per-button press-event rate in each split is
closest to the whole set's, so rare buttons are represented in validation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from demos.loader import DemoSet
from fightenv.presses import count_press_events

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class EpisodeSplit:
    """Episode indices (positions in ``DemoSet.trajectories``) of each split."""

    train: list[int]
    val: list[int]
    test: list[int]
    imbalance: float
    """Mean relative deviation of the per-button press-event rates of the splits from the whole set's; 0 is perfect."""
    press_events: dict[str, dict[str, int]]
    """Press events per split and button: ``press_events["val"]["grab"]``."""

    def to_dict(self) -> dict:
        return {
            "train": self.train, "val": self.val, "test": self.test,
            "imbalance": self.imbalance, "press_events": self.press_events,
        }


@dataclass(frozen=True)
class FrameSplit:
    """Steps of each split as ``(episode index, step index)`` rows, ``(N, 2)`` int64."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_episodes(
    demo_set: DemoSet,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    *,
    min_val_events: int = 20,
    candidates: int = 200,
) -> EpisodeSplit:
    """Split whole episodes into train, validation and test.

    Draws ``candidates`` random assignments with the episode counts that
    ``fractions`` give and returns the one whose per-button press-event rates
    (events per step) in every split are closest to the whole set's. Logs a
    warning naming the button and the count when the validation or test split
    contains fewer than ``min_val_events`` press events of a button.

    Raises ``ValueError`` when there are fewer episodes than splits with a
    non-zero fraction.
    """
    fractions = _check_fractions(fractions)
    n_episodes = len(demo_set.trajectories)
    counts = _split_counts(n_episodes, fractions)

    # Per episode: steps and press events per button, the only inputs of the score.
    steps = np.array([len(t.acts) for t in demo_set.trajectories], dtype=np.float64)
    events = np.stack([count_press_events(t.acts) for t in demo_set.trajectories]).astype(np.float64)
    whole_rate = events.sum(axis=0) / steps.sum()
    pressed = whole_rate > 0

    rng = np.random.default_rng(seed)
    best_score = np.inf
    best_order = None
    for _ in range(max(1, candidates)):
        order = rng.permutation(n_episodes)
        score = _imbalance(order, counts, steps, events, whole_rate, pressed)
        if score < best_score:
            best_score, best_order = score, order

    parts = _cut(best_order, counts)
    split_events = {
        name: {
            button: int(events[part, b].sum()) for b, button in enumerate(demo_set.button_names)
        }
        for name, part in zip(SPLIT_NAMES, parts)
    }
    split = EpisodeSplit(
        train=sorted(int(i) for i in parts[0]),
        val=sorted(int(i) for i in parts[1]),
        test=sorted(int(i) for i in parts[2]),
        imbalance=float(best_score),
        press_events=split_events,
    )
    _warn_rare(split, fractions, min_val_events)
    logger.info(
        "episode split: %d train, %d val, %d test episodes; imbalance %.3f (best of %d candidates)",
        len(split.train), len(split.val), len(split.test), split.imbalance, candidates,
    )
    return split


def split_frames(
    demo_set: DemoSet, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> FrameSplit:
    """Split individual steps at random, ignoring episodes.

    This is the leaky baseline: neighbouring, nearly identical frames land on
    both sides, which inflates validation scores. Use ``split_episodes`` to
    measure a policy.
    """
    fractions = _check_fractions(fractions)
    rows = np.concatenate(
        [
            np.stack([np.full(len(t.acts), i, dtype=np.int64), np.arange(len(t.acts), dtype=np.int64)], axis=1)
            for i, t in enumerate(demo_set.trajectories)
        ]
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    counts = _split_counts(len(rows), fractions)
    parts = _cut(order, counts)
    return FrameSplit(*(rows[np.sort(part)] for part in parts))


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    values = np.asarray(fractions, dtype=np.float64)
    if values.shape != (3,) or np.any(values < 0) or not np.isclose(values.sum(), 1.0):
        raise ValueError(
            f"fractions must be three non-negative numbers (train, val, test) that sum to 1, got {list(fractions)}"
        )
    return values


def _split_counts(n_items: int, fractions: np.ndarray) -> list[int]:
    """Items per split: every split with a non-zero fraction gets at least one, train takes the rest."""
    needed = int(np.count_nonzero(fractions))
    if n_items < needed:
        raise ValueError(
            f"cannot split {n_items} episodes into {needed} non-empty splits with fractions {list(fractions)}; "
            f"record at least {needed} episodes, or set a fraction to 0."
        )
    counts = [0, 0, 0]
    for i in (1, 2):
        if fractions[i] > 0:
            counts[i] = max(1, int(round(fractions[i] * n_items)))
    counts[0] = n_items - counts[1] - counts[2]
    if fractions[0] > 0 and counts[0] < 1:
        # Rounding gave val and test everything; take one back for train from the larger of them.
        counts[1 if counts[1] >= counts[2] else 2] -= 1
        counts[0] = 1
    return counts


def _cut(order: np.ndarray, counts: list[int]) -> list[np.ndarray]:
    bounds = np.cumsum([0, *counts])
    return [order[bounds[i] : bounds[i + 1]] for i in range(3)]


def _imbalance(order, counts, steps, events, whole_rate, pressed) -> float:
    deviations = []
    for part in _cut(order, counts):
        if len(part) == 0:
            continue
        rate = events[part].sum(axis=0) / steps[part].sum()
        deviations.append(np.abs(rate[pressed] - whole_rate[pressed]) / whole_rate[pressed])
    if not deviations or not pressed.any():
        return 0.0
    return float(np.mean(np.concatenate(deviations)))


def _warn_rare(split: EpisodeSplit, fractions: np.ndarray, min_val_events: int) -> None:
    for name, fraction in zip(SPLIT_NAMES[1:], fractions[1:]):
        if fraction == 0:
            continue
        for button, count in split.press_events[name].items():
            if count < min_val_events:
                logger.warning(
                    "the %s split contains only %d press event%s of button %r (fewer than %d): its %s scores "
                    "for this button are noisy; record more episodes with this button pressed",
                    name, count, "" if count == 1 else "s", button, min_val_events, name,
                )
