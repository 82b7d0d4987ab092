"""Multi-label losses for button logits, each returning its terms in a frozen dataclass.

All losses take logits ``(B, n_buttons)`` float and targets ``(B, n_buttons)``
float in {0, 1}, and average over the batch and the buttons. Besides the
optimised ``loss``, every call reports the plain unweighted BCE, so runs with
different losses can be compared on one scale.

- ``WeightedBCELoss``: BCE with a per-button ``pos_weight`` from the training
  split. A weight w shifts a well-fitted model's logit by about log w, which
  is why thresholds are tuned on validation afterwards.
- ``FocalLoss``: down-weights easy examples by ``(1 - p_t) ** gamma``.
- ``AsymmetricLoss``: focal with separate exponents for positives and
  negatives, plus a probability margin that discards very easy negatives.
- ``LogitAdjustedBCELoss``: BCE on ``logit + tau * logit(prior)``; the raw
  logit then estimates the balanced (prior-free) log-odds.

Focal and asymmetric losses are not proper scoring rules: they inflate
probabilities, so calibrate before thresholding or sampling.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)


class PosWeightMode(str, Enum):
    NONE = "none"
    """Every weight is 1: plain BCE."""
    RATIO = "ratio"
    """neg / pos per button."""
    SQRT = "sqrt"
    """sqrt(neg / pos) per button."""


class LossKind(str, Enum):
    BCE = "bce"
    FOCAL = "focal"
    ASYMMETRIC = "asymmetric"
    LOGIT_ADJUSTED = "logit_adjusted"


@dataclass(frozen=True)
class LossTerms:
    """One loss evaluation: the value to optimise and the terms to log."""

    loss: torch.Tensor
    """Scalar to call ``backward`` on."""
    bce: torch.Tensor
    """Scalar unweighted BCE, detached, comparable across losses."""
    per_button: torch.Tensor
    """``(n_buttons,)`` detached mean of ``loss`` per button."""


def button_prevalence(actions: np.ndarray) -> np.ndarray:
    """Return the share of steps each button is held in ``(N, n_buttons)`` actions, float64."""
    actions = np.asarray(actions)
    if actions.ndim != 2 or actions.shape[0] == 0:
        raise ValueError(f"expected non-empty actions of shape (N, n_buttons), got shape {actions.shape}")
    return (actions != 0).mean(axis=0)


def compute_pos_weight(
    positives: np.ndarray,
    n_steps: int,
    button_names: Sequence[str],
    mode: PosWeightMode | str = PosWeightMode.SQRT,
    cap: float = 20.0,
) -> np.ndarray:
    """Compute per-button ``pos_weight`` from positive counts in the training split.

    The weight is neg/pos (``ratio``), sqrt(neg/pos) (``sqrt``) or 1
    (``none``), clipped to ``[1, cap]``. A button never pressed in training
    gets ``cap`` (finite) and a warning naming it, unless ``mode`` is
    ``none``. Returns ``(n_buttons,)`` float32.
    """
    mode = PosWeightMode(mode)
    positives = np.asarray(positives, dtype=np.float64)
    if positives.shape != (len(button_names),):
        raise ValueError(f"expected {len(button_names)} positive counts for buttons {list(button_names)}, "
                         f"got shape {positives.shape}")
    if not cap >= 1.0:
        raise ValueError(f"pos_weight cap must be >= 1, got {cap}")
    if n_steps <= 0:
        raise ValueError(f"n_steps must be positive, got {n_steps}; the training split is empty")
    if mode is PosWeightMode.NONE:
        return np.ones(len(button_names), dtype=np.float32)

    for name, count in zip(button_names, positives):
        if count == 0:
            logger.warning("button '%s' has no positives in the training split; its pos_weight is set to the "
                           "cap %.1f", name, cap)
    negatives = n_steps - positives
    with np.errstate(divide="ignore"):
        ratio = np.where(positives > 0, negatives / np.maximum(positives, 1), np.inf)
    weight = np.sqrt(ratio) if mode is PosWeightMode.SQRT else ratio
    return np.clip(weight, 1.0, cap).astype(np.float32)


def _plain_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.detach(), targets).detach()


def _terms(elementwise: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> LossTerms:
    return LossTerms(
        loss=elementwise.mean(),
        bce=_plain_bce(logits, targets),
        per_button=elementwise.detach().mean(0),
    )


class ButtonLoss(torch.nn.Module):
    """Base class: ``forward(logits, targets) -> LossTerms``."""

    def initial_bias(self, prevalence: np.ndarray) -> np.ndarray:
        """Return the output bias that makes the loss's effective probability equal ``prevalence`` at start."""
        p = np.clip(np.asarray(prevalence, dtype=np.float64), 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p)).astype(np.float32)


class WeightedBCELoss(ButtonLoss):
    """BCE with a per-button ``pos_weight`` (all ones for plain BCE)."""

    def __init__(self, pos_weight: Sequence[float] | np.ndarray) -> None:
        super().__init__()
        self.register_buffer("pos_weight", torch.as_tensor(np.asarray(pos_weight), dtype=torch.float32))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> LossTerms:
        elementwise = F.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=self.pos_weight, reduction="none"
        )
        return _terms(elementwise, logits, targets)


class FocalLoss(ButtonLoss):
    """Focal loss ``-alpha_t * (1 - p_t) ** gamma * log p_t``; ``alpha`` None weights classes equally."""

    def __init__(self, gamma: float = 2.0, alpha: float | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0.0 < alpha < 1.0:
            raise ValueError(f"focal alpha must be in (0, 1) or None, got {alpha}")
        self.gamma = gamma
        self.alpha = alpha

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> LossTerms:
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        p = torch.sigmoid(logits)
        p_t = p * targets + (1 - p) * (1 - targets)
        elementwise = (1 - p_t).pow(self.gamma) * bce
        if self.alpha is not None:
            elementwise = elementwise * (self.alpha * targets + (1 - self.alpha) * (1 - targets))
        return _terms(elementwise, logits, targets)


class AsymmetricLoss(ButtonLoss):
    """Asymmetric loss (Ridnik et al., 2021) for multi-label data with few positives.

    Positives: ``-(1 - p) ** gamma_pos * log p``. Negatives use the shifted
    probability ``p_m = max(p - margin, 0)``: ``-p_m ** gamma_neg * log(1 - p_m)``,
    so negatives with ``p < margin`` add nothing.
    """

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, margin: float = 0.05) -> None:
        super().__init__()
        if gamma_pos < 0 or gamma_neg < 0:
            raise ValueError(f"asymmetric gammas must be >= 0, got gamma_pos={gamma_pos}, gamma_neg={gamma_neg}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"asymmetric margin must be in [0, 1), got {margin}")
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.margin = margin

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> LossTerms:
        p = torch.sigmoid(logits)
        p_shifted = (p - self.margin).clamp(min=0.0)
        # log(1 - p_shifted) from logits stays finite where p_shifted is 0.
        log_p = F.logsigmoid(logits)
        log_not_p_shifted = torch.log1p(-p_shifted.clamp(max=1 - 1e-6))
        positive = -(1 - p).pow(self.gamma_pos) * log_p
        negative = -p_shifted.pow(self.gamma_neg) * log_not_p_shifted
        elementwise = targets * positive + (1 - targets) * negative
        return _terms(elementwise, logits, targets)


class LogitAdjustedBCELoss(ButtonLoss):
    """BCE on ``logits + tau * logit(prior)`` (logit adjustment, Menon et al., 2021, for binary labels).

    The model's raw logit then learns the log-odds with the prior taken out,
    which ranks rare presses as if buttons were balanced.
    """

    def __init__(self, prior: Sequence[float] | np.ndarray, tau: float = 1.0) -> None:
        super().__init__()
        p = np.clip(np.asarray(prior, dtype=np.float64), 1e-4, 1 - 1e-4)
        self.tau = tau
        self.register_buffer("adjustment", torch.as_tensor(tau * np.log(p / (1 - p)), dtype=torch.float32))

    def initial_bias(self, prevalence: np.ndarray) -> np.ndarray:
        # The adjusted logit, not the raw one, should start at logit(prevalence).
        return super().initial_bias(prevalence) - self.adjustment.numpy()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> LossTerms:
        elementwise = F.binary_cross_entropy_with_logits(logits + self.adjustment, targets, reduction="none")
        return _terms(elementwise, logits, targets)


@dataclass(frozen=True)
class LossConfig:
    """Loss kind and parameters of a training run."""

    kind: LossKind = LossKind.BCE
    pos_weight: PosWeightMode = PosWeightMode.NONE
    pos_weight_cap: float = 20.0
    focal_gamma: float = 2.0
    asymmetric_gamma_neg: float = 4.0
    asymmetric_margin: float = 0.05
    logit_adjust_tau: float = 1.0


def build_loss(config: LossConfig, train_actions: np.ndarray, button_names: Sequence[str]) -> ButtonLoss:
    """Build the configured loss from the training split's actions ``(N, n_buttons)``."""
    kind = LossKind(config.kind)
    actions = np.asarray(train_actions) != 0
    for name, count in zip(button_names, actions.sum(axis=0)):
        if count == 0:
            logger.warning("button '%s' is never pressed in the training split, so the policy cannot learn when "
                           "to press it; record demonstrations that press it", name)
    if kind is LossKind.BCE:
        weight = compute_pos_weight(
            actions.sum(0), actions.shape[0], button_names, config.pos_weight, config.pos_weight_cap
        )
        logger.info("pos_weight per button: %s",
                    ", ".join(f"{n}={w:.2f}" for n, w in zip(button_names, weight)))
        return WeightedBCELoss(weight)
    if kind is LossKind.FOCAL:
        return FocalLoss(gamma=config.focal_gamma)
    if kind is LossKind.ASYMMETRIC:
        return AsymmetricLoss(gamma_neg=config.asymmetric_gamma_neg, margin=config.asymmetric_margin)
    # A never-pressed button's prior of 0 is clipped to 1e-4 inside the loss.
    prior = button_prevalence(actions)
    return LogitAdjustedBCELoss(prior, tau=config.logit_adjust_tau)

