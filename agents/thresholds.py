"""Per-button decision thresholds and probability calibration, fitted on validation episodes.

A loss with ``pos_weight`` w shifts a well-fitted model's logits by about
log w, and focal or asymmetric losses inflate probabilities, so a fixed 0.5
threshold means nothing. The policy instead stores one threshold per button,
chosen on validation episodes and then frozen, and optionally a per-button
Platt scaling ``sigmoid(scale * logit + offset)`` so that probabilities (and
sampling from them) match observed press frequencies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch

from agents.metrics import precision_recall_curve

logger = logging.getLogger(__name__)


class ThresholdMode(str, Enum):
    MAX_F1 = "max_f1"
    """Per button, the threshold with the highest F1 on validation."""
    PRESS_RATE = "press_rate"
    """Per button, the threshold at which the policy presses as often as the demonstrator on validation."""
    FIXED_HALF = "fixed_0.5"
    """0.5 for every button: only for the naive baseline, never a default."""


@dataclass(frozen=True)
class ThresholdChoice:
    """Thresholds of all buttons and how each was chosen."""

    thresholds: np.ndarray
    """``(n_buttons,)`` float64: press when probability >= threshold."""
    methods: list[str]
    """Per button: the mode used, or a fallback such as "press_rate_fallback"."""


def _press_rate_threshold(scores: np.ndarray, rate: float) -> float:
    """Return the threshold at which a share ``rate`` of ``scores`` is at or above it."""
    if rate <= 0.0 or scores.size == 0:
        # Above every score: never press.
        return float(np.nextafter(scores.max(), np.inf)) if scores.size else 1.0
    k = max(1, int(round(min(rate, 1.0) * scores.size)))
    return float(np.sort(scores)[::-1][min(k, scores.size) - 1])


def _max_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(thresholds[int(np.argmax(f1))])


def choose_thresholds(
    labels: np.ndarray,
    probabilities: np.ndarray,
    button_names: Sequence[str],
    mode: ThresholdMode | str = ThresholdMode.MAX_F1,
    fallback_press_rates: Sequence[float] | None = None,
    warn: bool = True,
    min_positives: int = 10,
    max_rate_ratio: float = 4.0,
) -> ThresholdChoice:
    """Choose one threshold per button from validation labels ``(N, n)`` and probabilities ``(N, n)``.

    A button without a positive label in validation has no F1 to maximise. Its
    threshold then matches ``fallback_press_rates[i]`` (the training split's
    press rate) and a warning names it; without fallback rates it is set above
    every validation probability, so the policy never presses it. ``warn=False``
    skips that warning, for the repeated choices of a per-epoch report.

    In ``MAX_F1`` mode a button with fewer than ``min_positives`` positive
    steps in validation gets the threshold that matches its validation press
    rate instead, and no threshold may press a button more than
    ``max_rate_ratio`` times as often as the validation labels do.
    """
    mode = ThresholdMode(mode)
    labels = np.asarray(labels) != 0
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n_buttons = len(button_names)
    if labels.shape != probabilities.shape or labels.ndim != 2 or labels.shape[1] != n_buttons:
        raise ValueError(
            f"labels and probabilities must both be (N, {n_buttons}), got {labels.shape} and {probabilities.shape}"
        )
    if labels.shape[0] == 0:
        raise ValueError("cannot choose thresholds on an empty validation split; give the split some episodes")

    thresholds = np.empty(n_buttons, dtype=np.float64)
    methods = []
    for i, name in enumerate(button_names):
        column_labels, column_scores = labels[:, i], probabilities[:, i]
        if mode is ThresholdMode.FIXED_HALF:
            thresholds[i], method = 0.5, mode.value
        elif not column_labels.any():
            rate = 0.0 if fallback_press_rates is None else float(fallback_press_rates[i])
            thresholds[i] = _press_rate_threshold(column_scores, rate)
            method = "press_rate_fallback"
            if warn:
                logger.warning(
                    "button '%s' has no positives in the validation split, so its threshold %.4f matches the "
                    "training press rate %.4f instead; record more episodes with this button to tune it",
                    name, thresholds[i], rate,
                )
        elif mode is ThresholdMode.MAX_F1 and column_labels.sum() < min_positives:
            # An F1 maximised over a handful of positives picks a threshold by luck, often a tiny one
            # that presses the button all the time in play.
            thresholds[i] = _press_rate_threshold(column_scores, float(column_labels.mean()))
            method = "press_rate_few_positives"
            if warn:
                logger.warning(
                    "button '%s' has only %d positive steps in the validation split (fewer than %d), so its "
                    "threshold %.4f matches its validation press rate instead of maximising F1",
                    name, int(column_labels.sum()), min_positives, thresholds[i],
                )
        elif mode is ThresholdMode.MAX_F1:
            thresholds[i], method = _max_f1_threshold(column_labels, column_scores), mode.value
            # Cap how much more often than the demonstrator the button may be pressed.
            cap = _press_rate_threshold(column_scores, max_rate_ratio * float(column_labels.mean()))
            if thresholds[i] < cap:
                thresholds[i], method = cap, "max_f1_rate_capped"
        else:
            thresholds[i] = _press_rate_threshold(column_scores, float(column_labels.mean()))
            method = mode.value
        methods.append(method)
    return ThresholdChoice(thresholds=thresholds, methods=methods)


@dataclass(frozen=True)
class PlattScaling:
    """Per-button calibration ``p = sigmoid(scale * logit + offset)``."""

    scale: np.ndarray
    offset: np.ndarray

    @classmethod
    def identity(cls, n_buttons: int) -> PlattScaling:
        return cls(np.ones(n_buttons, dtype=np.float32), np.zeros(n_buttons, dtype=np.float32))

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities ``(N, n)`` float32 from raw logits ``(N, n)``."""
        z = np.asarray(logits, dtype=np.float64) * self.scale + self.offset
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def fit_platt_scaling(
    logits: np.ndarray, labels: np.ndarray, button_names: Sequence[str], max_iter: int = 100
) -> PlattScaling:
    """Fit a per-button Platt scaling by minimising the log loss on validation logits ``(N, n)``.

    Buttons without both positive and negative labels keep the identity,
    because the optimum would run to infinity.
    """
    logits_t = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    labels_t = torch.as_tensor(np.asarray(labels) != 0, dtype=torch.float64)
    n_buttons = len(button_names)
    if logits_t.shape != labels_t.shape or logits_t.ndim != 2 or logits_t.shape[1] != n_buttons:
        raise ValueError(f"logits and labels must both be (N, {n_buttons}), got {tuple(logits_t.shape)} "
                         f"and {tuple(labels_t.shape)}")
    fittable = (labels_t.sum(0) > 0) & (labels_t.sum(0) < labels_t.shape[0])
    scale = torch.ones(n_buttons, dtype=torch.float64, requires_grad=True)
    offset = torch.zeros(n_buttons, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([scale, offset], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        z = logits_t * scale + offset
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, labels_t, reduction="none").mean(0)
        total = (loss * fittable).sum()
        total.backward()
        return total

    if bool(fittable.any()):
        optimizer.step(closure)
    scale_np = np.where(fittable.numpy(), scale.detach().numpy(), 1.0).astype(np.float32)
    offset_np = np.where(fittable.numpy(), offset.detach().numpy(), 0.0).astype(np.float32)
    for i in np.flatnonzero(~fittable.numpy()):
        logger.warning("button '%s' lacks positive or negative labels in validation; its probabilities stay "
                       "uncalibrated", button_names[i])
    return PlattScaling(scale=scale_np, offset=offset_np)
