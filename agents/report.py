"""PNG plots of a test report: precision-recall curves, press rates and calibration."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from agents.metrics import SplitReport, precision_recall_curve, reliability_curve

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pr_curves(path: Path, labels: np.ndarray, probabilities: np.ndarray, report: SplitReport) -> None:
    """Plot one precision-recall curve per button, with its prevalence (AP's chance level) as a dashed line."""
    plt = _pyplot()
    n = len(report.buttons)
    columns = min(5, n)
    rows = int(np.ceil(n / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    for i, button in enumerate(report.buttons):
        axis = axes[i // columns][i % columns]
        if button.positives == 0:
            axis.text(0.5, 0.5, "no positives", ha="center", va="center")
        else:
            precision, recall, _ = precision_recall_curve(labels[:, i], probabilities[:, i])
            axis.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="post")
            axis.axhline(button.prevalence, linestyle="--", color="grey", label=f"prevalence {button.prevalence:.3f}")
            if button.recall is not None:
                axis.plot([button.recall], [button.precision], "o", color="red", label="threshold")
            axis.legend(fontsize=7, loc="upper right")
        ap = "n/a" if button.ap is None else f"{button.ap:.2f}"
        axis.set_title(f"{button.name} (AP {ap})", fontsize=9)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel("recall", fontsize=8)
        axis.set_ylabel("precision", fontsize=8)
    for j in range(n, rows * columns):
        axes[j // columns][j % columns].axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_press_rates(path: Path, report: SplitReport) -> None:
    """Plot press rate and mean hold length per button, the policy next to the demonstrator."""
    plt = _pyplot()
    names = [b.name for b in report.buttons]
    x = np.arange(len(names))
    figure, (rate_axis, hold_axis) = plt.subplots(1, 2, figsize=(12, 4))
    rate_axis.bar(x - 0.2, [b.demo_press_rate for b in report.buttons], 0.4, label="demonstrator")
    rate_axis.bar(x + 0.2, [b.press_rate for b in report.buttons], 0.4, label="policy")
    rate_axis.set_ylabel("share of steps held")
    rate_axis.set_yscale("symlog", linthresh=0.01)
    hold_axis.bar(x - 0.2, [b.demo_mean_hold_steps or 0.0 for b in report.buttons], 0.4, label="demonstrator")
    hold_axis.bar(x + 0.2, [b.mean_hold_steps or 0.0 for b in report.buttons], 0.4, label="policy")
    hold_axis.set_ylabel("mean hold length (steps)")
    for axis in (rate_axis, hold_axis):
        axis.set_xticks(x, names, rotation=45, ha="right")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_calibration(path: Path, labels: np.ndarray, probabilities: np.ndarray, report: SplitReport) -> None:
    """Plot a reliability diagram over all buttons pooled, and mean probability against prevalence per button."""
    plt = _pyplot()
    figure, (reliability_axis, mean_axis) = plt.subplots(1, 2, figsize=(11, 4.5))
    mean_probability, positive_share, counts = reliability_curve(labels, probabilities)
    filled = counts > 0
    reliability_axis.plot([0, 1], [0, 1], "--", color="grey")
    reliability_axis.plot(mean_probability[filled], positive_share[filled], "o-")
    reliability_axis.set_xlabel("mean predicted probability in bin")
    reliability_axis.set_ylabel("share of positives in bin")
    reliability_axis.set_title(f"all buttons pooled, ECE {report.ece:.3f}")

    prevalence = [b.prevalence for b in report.buttons]
    mean_axis.scatter(prevalence, [b.mean_probability for b in report.buttons])
    for b in report.buttons:
        mean_axis.annotate(b.name, (b.prevalence, b.mean_probability), fontsize=7)
    top = max(max(prevalence), max(b.mean_probability for b in report.buttons), 1e-3) * 1.1
    mean_axis.plot([0, top], [0, top], "--", color="grey")
    mean_axis.set_xlabel("prevalence (demonstrator)")
    mean_axis.set_ylabel("mean predicted probability")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_plots(run_dir: Path, labels: np.ndarray, probabilities: np.ndarray, report: SplitReport) -> list[Path]:
    """Write ``pr_curves.png``, ``press_rates.png`` and ``calibration.png`` into ``run_dir``."""
    paths = [run_dir / "pr_curves.png", run_dir / "press_rates.png", run_dir / "calibration.png"]
    plot_pr_curves(paths[0], labels, probabilities, report)
    plot_press_rates(paths[1], report)
    plot_calibration(paths[2], labels, probabilities, report)
    return paths
