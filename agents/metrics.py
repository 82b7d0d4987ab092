"""Metrics of multi-label button predictions that stay honest when buttons are rare.

Binary accuracy says almost nothing here: with prevalences such as 40%, 30%,
20%, 10%, 5%, 3%, 2%, 1%, 0.5% and 0.5%, predicting "nothing pressed" scores
about 89%. So every report shows, per button, precision, recall, F1 and
average precision next to the button's prevalence (AP's chance level), the
macro and micro averages, exact match, binary accuracy next to the all-zero
baseline's, calibration, and press rate and hold length next to the
demonstrator's.

A button without a positive label in the evaluated split has no recall, F1 or
AP. Those fields are ``None`` (``null`` in JSON, "no positives" in tables),
never a zero, and the button is left out of the macro averages with a note.

All functions take numpy arrays: labels ``(N, n_buttons)`` in {0, 1},
probabilities ``(N, n_buttons)`` in [0, 1]. No scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from fightenv.presses import press_statistics

NO_POSITIVES = "no positives"


def _as_binary(labels: np.ndarray) -> np.ndarray:
    return np.asarray(labels) != 0


def precision_recall_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute precision and recall at every distinct score of one button, highest threshold first.

    Predicting positive when ``score >= thresholds[i]`` gives ``precision[i]``
    and ``recall[i]``. Tied scores form one threshold. Recall is NaN when
    ``labels`` has no positive. Returns ``(precision, recall, thresholds)``.
    """
    labels = _as_binary(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores must have the same length, got {labels.shape} and {scores.shape}")
    if labels.size == 0:
        empty = np.zeros(0)
        return empty, empty, empty

    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    # The last index of each run of equal scores closes one threshold.
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), sorted_scores.size - 1]
    true_positives = np.cumsum(sorted_labels)[last_of_run].astype(np.float64)
    predicted_positives = (last_of_run + 1).astype(np.float64)
    total_positives = float(labels.sum())

    precision = true_positives / predicted_positives
    recall = true_positives / total_positives if total_positives > 0 else np.full_like(true_positives, np.nan)
    return precision, recall, sorted_scores[last_of_run]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Average precision of one button: ``sum_i (R_i - R_{i-1}) * P_i`` over distinct thresholds.

    This is the step-wise area under the precision-recall curve, without
    interpolation. Its chance level is the prevalence. Returns None when
    ``labels`` has no positive.
    """
    labels = _as_binary(labels).ravel()
    if not labels.any():
        return None
    precision, recall, _ = precision_recall_curve(labels, scores)
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * precision))


@dataclass(frozen=True)
class Counts:
    """Confusion counts of one button."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def positives(self) -> int:
        return self.true_positives + self.false_negatives

    @property
    def predicted_positives(self) -> int:
        return self.true_positives + self.false_positives


def confusion_counts(labels: np.ndarray, predictions: np.ndarray) -> list[Counts]:
    """Count true and false positives and negatives per button of ``(N, n_buttons)`` arrays."""
    labels = _as_binary(labels)
    predictions = _as_binary(predictions)
    if labels.shape != predictions.shape or labels.ndim != 2:
        raise ValueError(
            f"labels and predictions must both be (N, n_buttons), got {labels.shape} and {predictions.shape}"
        )
    tp = (labels & predictions).sum(axis=0)
    fp = (~labels & predictions).sum(axis=0)
    fn = (labels & ~predictions).sum(axis=0)
    tn = (~labels & ~predictions).sum(axis=0)
    return [Counts(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(tp, fp, fn, tn)]


def precision_recall_f1(counts: Counts) -> tuple[float | None, float | None, float | None]:
    """Return precision, recall and F1 of one button; all None when it has no positive label.

    With positives but no positive prediction, precision is 0 (the button is
    never pressed when it should be), so F1 is 0 as well.
    """
    if counts.positives == 0:
        return None, None, None
    tp = counts.true_positives
    precision = tp / counts.predicted_positives if counts.predicted_positives else 0.0
    recall = tp / counts.positives
    f1 = 2 * tp / (2 * tp + counts.false_positives + counts.false_negatives)
    return precision, recall, f1


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins.

    ``sum_b (|b| / N) * |mean probability in b - positive share in b|``; bin b
    holds probabilities in ``[b / n_bins, (b + 1) / n_bins)``, the last bin
    includes 1. Arrays of any shape are flattened, so passing ``(N, n_buttons)``
    pools all buttons. Returns NaN for empty input.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    labels = _as_binary(labels).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    if labels.size == 0:
        return float("nan")
    bins = np.minimum((probabilities * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    probability_sums = np.bincount(bins, weights=probabilities, minlength=n_bins)
    positive_sums = np.bincount(bins, weights=labels.astype(np.float64), minlength=n_bins)
    filled = counts > 0
    gaps = np.abs(probability_sums[filled] - positive_sums[filled]) / counts[filled]
    return float(np.sum(gaps * counts[filled]) / labels.size)


def reliability_curve(
    labels: np.ndarray, probabilities: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per equal-width bin the mean probability, the positive share and the count (for plots)."""
    labels = _as_binary(labels).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    bins = np.minimum((probabilities * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_probability = np.bincount(bins, weights=probabilities, minlength=n_bins) / counts
        positive_share = np.bincount(bins, weights=labels.astype(np.float64), minlength=n_bins) / counts
    return mean_probability, positive_share, counts


@dataclass(frozen=True)
class ButtonReport:
    """Metrics of one button on one split.

    Recall, F1 and AP are None when the split has no positive label of the
    button; precision is None then as well.
    """

    name: str
    positives: int
    prevalence: float
    """Share of steps in which the demonstrator held the button: AP's chance level."""
    precision: float | None
    recall: float | None
    f1: float | None
    ap: float | None
    threshold: float | None
    """Probability at or above which the policy presses; None when the policy samples."""
    mean_probability: float
    """Mean predicted probability, to compare with ``prevalence``."""
    ece: float
    press_rate: float
    """Share of steps in which the policy's decisions press the button."""
    demo_press_rate: float
    mean_hold_steps: float | None
    """Mean length of the policy's press events in steps; None when it never presses."""
    demo_mean_hold_steps: float | None


@dataclass(frozen=True)
class SplitReport:
    """Metrics of all buttons on one split, with the averages and the baselines that put them in context."""

    buttons: list[ButtonReport]
    n_steps: int
    n_episodes: int
    macro_f1: float | None
    micro_f1: float | None
    macro_ap: float | None
    exact_match: float
    all_zero_exact_match: float
    binary_accuracy: float
    all_zero_binary_accuracy: float
    ece: float
    """Expected calibration error over all buttons pooled."""
    notes: list[str] = field(default_factory=list)

    def per_button(self) -> dict[str, ButtonReport]:
        return {button.name: button for button in self.buttons}

    def to_dict(self) -> dict:
        """Return a JSON-ready dict; buttons are keyed by name under ``per_button``."""
        result = asdict(self)
        result["per_button"] = {button["name"]: button for button in result.pop("buttons")}
        return result


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def _split_episodes(array: np.ndarray, episode_lengths: Sequence[int]) -> list[np.ndarray]:
    if sum(episode_lengths) != array.shape[0]:
        raise ValueError(
            f"episode lengths sum to {sum(episode_lengths)} steps but the arrays have {array.shape[0]} rows"
        )
    return np.split(array, np.cumsum(episode_lengths)[:-1])


def _nan_to_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def evaluate_split(
    labels: np.ndarray,
    probabilities: np.ndarray,
    decisions: np.ndarray,
    button_names: Sequence[str],
    *,
    thresholds: Sequence[float] | None,
    episode_lengths: Sequence[int] | None = None,
    n_calibration_bins: int = 10,
) -> SplitReport:
    """Compute every metric of one split.

    Args:
        labels: ``(N, n_buttons)`` demonstrator actions in {0, 1}.
        probabilities: ``(N, n_buttons)`` policy probabilities, for AP and calibration.
        decisions: ``(N, n_buttons)`` buttons the policy would press, for
            precision, recall, F1, exact match, press rate and hold length.
        button_names: one name per column.
        thresholds: the per-button thresholds that produced ``decisions``, or
            None when they came from sampling.
        episode_lengths: steps per episode, in row order, so that hold lengths
            never run across an episode boundary. None treats all rows as one episode.
    """
    labels = _as_binary(labels)
    decisions = _as_binary(decisions)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n_buttons = len(button_names)
    for name, array in (("labels", labels), ("probabilities", probabilities), ("decisions", decisions)):
        if array.ndim != 2 or array.shape[1] != n_buttons:
            raise ValueError(f"{name} must be (N, {n_buttons}) for buttons {list(button_names)}, got {array.shape}")
    if not labels.shape == probabilities.shape == decisions.shape:
        raise ValueError(
            f"labels, probabilities and decisions differ in shape: {labels.shape}, {probabilities.shape}, "
            f"{decisions.shape}"
        )
    if thresholds is not None and len(thresholds) != n_buttons:
        raise ValueError(f"expected {n_buttons} thresholds, got {len(thresholds)}")
    n_steps = labels.shape[0]
    if n_steps == 0:
        raise ValueError("cannot evaluate an empty split: it has no steps")
    lengths = list(episode_lengths) if episode_lengths is not None else [n_steps]

    demo_presses = press_statistics(_split_episodes(labels.astype(np.uint8), lengths), button_names)
    policy_presses = press_statistics(_split_episodes(decisions.astype(np.uint8), lengths), button_names)
    counts = confusion_counts(labels, decisions)

    buttons = []
    notes = []
    for i, name in enumerate(button_names):
        precision, recall, f1 = precision_recall_f1(counts[i])
        if counts[i].positives == 0:
            notes.append(f"button '{name}' has no positives in this split: left out of macro F1 and macro AP")
        buttons.append(
            ButtonReport(
                name=name,
                positives=counts[i].positives,
                prevalence=float(labels[:, i].mean()),
                precision=precision,
                recall=recall,
                f1=f1,
                ap=average_precision(labels[:, i], probabilities[:, i]),
                threshold=None if thresholds is None else float(thresholds[i]),
                mean_probability=float(probabilities[:, i].mean()),
                ece=expected_calibration_error(labels[:, i], probabilities[:, i], n_calibration_bins),
                press_rate=policy_presses[i].press_rate,
                demo_press_rate=demo_presses[i].press_rate,
                mean_hold_steps=_nan_to_none(policy_presses[i].mean_hold_steps),
                demo_mean_hold_steps=_nan_to_none(demo_presses[i].mean_hold_steps),
            )
        )

    # Micro F1 pools the counts of every button; buttons without positives still add false positives.
    tp = sum(c.true_positives for c in counts)
    fp = sum(c.false_positives for c in counts)
    fn = sum(c.false_negatives for c in counts)
    micro_f1 = 2 * tp / (2 * tp + fp + fn) if tp + fn > 0 else None

    return SplitReport(
        buttons=buttons,
        n_steps=n_steps,
        n_episodes=len(lengths),
        macro_f1=_mean_or_none([b.f1 for b in buttons]),
        micro_f1=micro_f1,
        macro_ap=_mean_or_none([b.ap for b in buttons]),
        exact_match=float(np.all(labels == decisions, axis=1).mean()),
        all_zero_exact_match=float((~labels.any(axis=1)).mean()),
        binary_accuracy=float((labels == decisions).mean()),
        all_zero_binary_accuracy=float((~labels).mean()),
        ece=expected_calibration_error(labels, probabilities, n_calibration_bins),
        notes=notes,
    )


def _cell(value: float | None, fmt: str = "{:.3f}") -> str:
    return NO_POSITIVES if value is None else fmt.format(value)


def format_split_table(report: SplitReport, title: str = "") -> str:
    """Render a split report as a plain-text table for the terminal."""
    header = (
        f"{'button':<14}{'prev':>7}{'AP':>14}{'prec':>14}{'recall':>14}{'F1':>14}{'thresh':>8}"
        f"{'rate':>7}{'d_rate':>7}{'hold':>7}{'d_hold':>7}{'p_mean':>8}"
    )
    lines = [title] if title else []
    lines.append(header)
    lines.append("-" * len(header))
    for b in report.buttons:
        hold = "-" if b.mean_hold_steps is None else f"{b.mean_hold_steps:.1f}"
        demo_hold = "-" if b.demo_mean_hold_steps is None else f"{b.demo_mean_hold_steps:.1f}"
        threshold = "sample" if b.threshold is None else f"{b.threshold:.3f}"
        lines.append(
            f"{b.name:<14}{b.prevalence:>7.3f}{_cell(b.ap):>14}{_cell(b.precision):>14}{_cell(b.recall):>14}"
            f"{_cell(b.f1):>14}{threshold:>8}{b.press_rate:>7.3f}{b.demo_press_rate:>7.3f}{hold:>7}"
            f"{demo_hold:>7}{b.mean_probability:>8.3f}"
        )
    lines.append("-" * len(header))
    lines.append(
        f"macro F1 {_cell(report.macro_f1)}   micro F1 {_cell(report.micro_f1)}   macro AP {_cell(report.macro_ap)}"
        f"   exact match {report.exact_match:.3f} (all-zero {report.all_zero_exact_match:.3f})"
    )
    lines.append(
        f"binary accuracy {report.binary_accuracy:.3f} (all-zero baseline {report.all_zero_binary_accuracy:.3f})"
        f"   ECE {report.ece:.3f}   {report.n_steps} steps in {report.n_episodes} episodes"
    )
    lines.append("rate, hold: the policy's press rate and mean hold in steps. d_rate, d_hold: the demonstrator's. "
                 "p_mean: mean probability.")
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines)
