"""The imbalance report of a demo store: how often, how many times and how long each button is held.

A policy trained on these labels learns the imbalance, so the report also shows
what the trivial "nothing pressed" predictor scores: with rare buttons, its
binary accuracy is high, so binary accuracy is a poor measure here.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from demos.loader import load_actions
from demos.manifest import StoreLayout
from demos.store import EpisodeInfo
from fightenv.presses import press_statistics

logger = logging.getLogger(__name__)

RARE_PRESS_RATE = 0.01
"""A button held in fewer than this share of steps is flagged as barely pressed."""
MIN_PRESS_EVENTS = 20
"""A button with fewer press events than this is flagged as barely pressed: too few to learn or to validate."""


@dataclass(frozen=True)
class ButtonReport:
    """Press statistics of one button over the whole store."""

    name: str
    press_rate: float
    """Share of steps in which the button is held, in [0, 1]."""
    held_steps: int
    press_events: int
    mean_hold_steps: float | None
    """Mean press length in steps; None when never pressed."""
    mean_hold_s: float | None
    """Mean press length in seconds of game time; None when never pressed."""
    warning: str | None


@dataclass(frozen=True)
class ImbalanceReport:
    """Label imbalance of a store, with the scores of the all-zero predictor as a reference."""

    store: str
    game: str
    decision_hz: float
    episodes: int
    partial_episodes: int
    steps: int
    duration_s: float
    """Game time covered by the steps, at the store's decision rate."""
    outcomes: dict[str, int]
    buttons: list[ButtonReport]
    cooccurrence: list[list[float]]
    """``cooccurrence[i][j]``: share of the steps holding button i that also hold button j."""
    joint_steps: list[list[int]]
    """``joint_steps[i][j]``: steps in which buttons i and j are both held."""
    all_zero_binary_accuracy: float
    """Share of (step, button) labels that predicting "nothing pressed" gets right."""
    all_zero_exact_match: float
    """Share of steps in which no button is held, which the all-zero predictor matches exactly."""
    mean_buttons_held: float
    warnings: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def build_report(
    layout: StoreLayout,
    infos: Sequence[EpisodeInfo],
    actions: Sequence[np.ndarray],
    *,
    store: str = "",
    rare_press_rate: float = RARE_PRESS_RATE,
    min_press_events: int = MIN_PRESS_EVENTS,
) -> ImbalanceReport:
    """Compute the imbalance report from per-episode ``(T, n)`` button arrays."""
    names = layout.button_names
    stats = press_statistics(actions, names)
    held = np.concatenate([np.asarray(a, dtype=bool) for a in actions]) if actions else np.zeros((0, len(names)), bool)
    steps = held.shape[0]

    # Co-occurrence: joint counts, then normalised by how often the row's button is held.
    held_float = held.astype(np.float64)
    joint = held_float.T @ held_float
    diagonal = np.diag(joint)
    with np.errstate(invalid="ignore", divide="ignore"):
        conditional = np.where(diagonal[:, None] > 0, joint / diagonal[:, None], 0.0)

    buttons = []
    warnings = []
    for stat in stats:
        warning = None
        if stat.press_events == 0:
            warning = f"button {stat.name!r} is never pressed: a policy cannot learn it from this store"
        elif stat.press_rate < rare_press_rate:
            warning = (
                f"button {stat.name!r} is barely pressed ({stat.press_events} press events, "
                f"{100 * stat.press_rate:.2f}% of steps): expect a policy that never presses it "
                f"unless training reweights it"
            )
        elif stat.press_events < min_press_events:
            warning = (
                f"button {stat.name!r} has only {stat.press_events} press events ({100 * stat.press_rate:.2f}% of "
                f"steps): too few to learn when to press it or to validate it; record more episodes"
            )
        if warning:
            warnings.append(warning)
        hold = None if np.isnan(stat.mean_hold_steps) else float(stat.mean_hold_steps)
        buttons.append(
            ButtonReport(
                name=stat.name,
                press_rate=stat.press_rate,
                held_steps=stat.held_steps,
                press_events=stat.press_events,
                mean_hold_steps=hold,
                mean_hold_s=None if hold is None else hold / layout.decision_hz,
                warning=warning,
            )
        )

    all_zero_accuracy = 1.0 - float(held.mean()) if held.size else 1.0
    all_zero_exact = float((~held.any(axis=1)).mean()) if steps else 1.0
    outcomes = Counter("partial" if info.partial else str(info.outcome) for info in infos)
    return ImbalanceReport(
        store=store,
        game=layout.game,
        decision_hz=layout.decision_hz,
        episodes=len(infos),
        partial_episodes=sum(1 for info in infos if info.partial),
        steps=steps,
        duration_s=steps / layout.decision_hz,
        outcomes=dict(sorted(outcomes.items())),
        buttons=buttons,
        cooccurrence=conditional.round(6).tolist(),
        joint_steps=joint.astype(np.int64).tolist(),
        all_zero_binary_accuracy=all_zero_accuracy,
        all_zero_exact_match=all_zero_exact,
        mean_buttons_held=float(held.sum(axis=1).mean()) if steps else 0.0,
        warnings=warnings,
    )


def report_store(path: str | os.PathLike, *, skip_bad: bool = False, **thresholds) -> ImbalanceReport:
    """Build the imbalance report of the store at ``path``, reading only the button arrays."""
    layout, infos, actions = load_actions(path, skip_bad=skip_bad)
    return build_report(layout, infos, actions, store=str(path), **thresholds)


def format_report(report: ImbalanceReport) -> str:
    """Render the report as plain-text tables for a terminal."""
    lines = [
        f"Demo store {report.store} (game {report.game}): {report.episodes} episodes "
        f"({report.partial_episodes} partial), {report.steps} steps, "
        f"{report.duration_s / 60:.1f} min of play at {report.decision_hz:g} decisions/s",
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in report.outcomes.items()),
        "",
    ]
    width = max(len("button"), *(len(b.name) for b in report.buttons))
    lines.append(f"{'button':<{width}}  {'held %':>7}  {'press events':>12}  {'mean hold (steps)':>17}  {'mean hold (s)':>13}")
    for b in report.buttons:
        hold_steps = "-" if b.mean_hold_steps is None else f"{b.mean_hold_steps:.1f}"
        hold_s = "-" if b.mean_hold_s is None else f"{b.mean_hold_s:.2f}"
        flag = "  !" if b.warning else ""
        lines.append(
            f"{b.name:<{width}}  {100 * b.press_rate:>7.2f}  {b.press_events:>12d}  {hold_steps:>17}  {hold_s:>13}{flag}"
        )

    lines += ["", "co-occurrence: % of the steps holding the row button that also hold the column button"]
    header = " " * width + "  " + " ".join(f"{i:>5d}" for i in range(len(report.buttons)))
    lines.append(header)
    for i, b in enumerate(report.buttons):
        row = " ".join(f"{100 * v:>5.0f}" for v in report.cooccurrence[i])
        lines.append(f"{b.name:<{width}}  {row}   ({i})")

    lines += [
        "",
        f"predicting 'nothing pressed' scores {100 * report.all_zero_binary_accuracy:.1f}% binary accuracy "
        f"and {100 * report.all_zero_exact_match:.1f}% exact match; a policy must beat these per button "
        f"(precision, recall, F1), not on accuracy",
    ]
    if report.warnings:
        lines.append("")
        lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)


def write_report_json(report: ImbalanceReport, path: str | os.PathLike) -> None:
    Path(path).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")


def plot_report(report: ImbalanceReport, path: str | os.PathLike) -> None:
    """Write a PNG with per-button press rate and press events, and the co-occurrence matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [b.name for b in report.buttons]
    rates = [100 * b.press_rate for b in report.buttons]
    figure, (bars, heat) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1.2, 1]})

    colors = ["tab:red" if b.warning else "tab:blue" for b in report.buttons]
    bars.bar(names, rates, color=colors)
    bars.set_yscale("log")
    bars.set_ylabel("steps held (%, log scale)")
    bars.set_title(f"press rate per button (red: barely or never pressed)\n{report.episodes} episodes, {report.steps} steps")
    bars.tick_params(axis="x", rotation=45)
    for x, b in enumerate(report.buttons):
        if b.press_rate > 0:
            bars.annotate(f"{b.press_events} ev", (x, 100 * b.press_rate), ha="center", va="bottom", fontsize=8)

    matrix = np.asarray(report.cooccurrence) * 100
    image = heat.imshow(matrix, cmap="viridis", vmin=0, vmax=100)
    heat.set_xticks(range(len(names)), names, rotation=45, ha="right")
    heat.set_yticks(range(len(names)), names)
    heat.set_title("co-occurrence: % of row-button steps\nthat also hold the column button")
    figure.colorbar(image, ax=heat, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
