"""Losses and pos_weight against closed-form values."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from agents.losses import (
    AsymmetricLoss,
    FocalLoss,
    LossConfig,
    LossKind,
    LogitAdjustedBCELoss,
    PosWeightMode,
    WeightedBCELoss,
    build_loss,
    compute_pos_weight,
)

BUTTONS = ["forward", "guard", "special"]


def test_pos_weight_modes():
    positives = np.array([50, 4, 1])
    ratio = compute_pos_weight(positives, 100, BUTTONS, PosWeightMode.RATIO, cap=1000)
    np.testing.assert_allclose(ratio, [1.0, 24.0, 99.0])
    sqrt = compute_pos_weight(positives, 100, BUTTONS, PosWeightMode.SQRT, cap=1000)
    np.testing.assert_allclose(sqrt, [1.0, math.sqrt(24), math.sqrt(99)], rtol=1e-6)
    capped = compute_pos_weight(positives, 100, BUTTONS, PosWeightMode.RATIO, cap=20)
    np.testing.assert_allclose(capped, [1.0, 20.0, 20.0])
    none = compute_pos_weight(positives, 100, BUTTONS, PosWeightMode.NONE)
    np.testing.assert_allclose(none, [1.0, 1.0, 1.0])


def test_pos_weight_clipped_to_at_least_one():
    # A button held 90% of the time would get 1/9 < 1.
    weight = compute_pos_weight(np.array([90]), 100, ["forward"], PosWeightMode.RATIO)
    assert weight[0] == 1.0


def test_pos_weight_never_pressed_is_finite(caplog):
    with caplog.at_level(logging.WARNING):
        weight = compute_pos_weight(np.array([10, 0, 3]), 100, BUTTONS, PosWeightMode.SQRT, cap=20)
    assert np.all(np.isfinite(weight))
    assert weight[1] == 20.0
    assert "'guard' has no positives in the training split" in caplog.text


def test_pos_weight_rejects_empty_split():
    with pytest.raises(ValueError, match="training split is empty"):
        compute_pos_weight(np.zeros(3), 0, BUTTONS)


def test_weighted_bce_matches_formula():
    logits = torch.tensor([[0.3, -1.2, 2.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0]])
    weight = np.array([1.0, 4.0, 9.0], dtype=np.float32)
    terms = WeightedBCELoss(weight)(logits, targets)
    sig = torch.sigmoid(logits)[0]
    expected = (-(1.0 * math.log(sig[0])) - math.log(1 - sig[1]) - 9.0 * math.log(sig[2])) / 3
    assert terms.loss.item() == pytest.approx(expected, rel=1e-5)
    plain = -(math.log(sig[0]) + math.log(1 - sig[1]) + math.log(sig[2])) / 3
    assert terms.bce.item() == pytest.approx(plain, rel=1e-5)
    assert terms.per_button.shape == (3,)


def test_focal_gamma_zero_equals_bce():
    logits = torch.randn(8, 3)
    targets = (torch.rand(8, 3) < 0.3).float()
    focal = FocalLoss(gamma=0.0)(logits, targets)
    assert focal.loss.item() == pytest.approx(focal.bce.item(), rel=1e-6)


def test_focal_hand_computed():
    logits = torch.tensor([[0.0]])
    targets = torch.tensor([[1.0]])
    # p = 0.5: (1 - 0.5)^2 * log 2.
    assert FocalLoss(gamma=2.0)(logits, targets).loss.item() == pytest.approx(0.25 * math.log(2), rel=1e-6)


def test_asymmetric_discards_easy_negatives():
    loss = AsymmetricLoss(gamma_pos=0.0, gamma_neg=4.0, margin=0.05)
    easy_negative = torch.tensor([[-4.0]])  # p ~= 0.018 < margin
    assert loss(easy_negative, torch.zeros(1, 1)).loss.item() == 0.0
    positive = torch.tensor([[0.0]])
    assert loss(positive, torch.ones(1, 1)).loss.item() == pytest.approx(math.log(2), rel=1e-6)
    hard_negative = torch.tensor([[0.0]])  # p = 0.5, p_m = 0.45
    expected = -(0.45 ** 4) * math.log(0.55)
    assert loss(hard_negative, torch.zeros(1, 1)).loss.item() == pytest.approx(expected, rel=1e-5)


def test_logit_adjusted_shifts_by_prior_logit():
    prior = np.array([0.1])
    loss = LogitAdjustedBCELoss(prior, tau=1.0)
    logits = torch.tensor([[0.5]])
    shifted = 0.5 + math.log(0.1 / 0.9)
    expected = -math.log(1 / (1 + math.exp(-shifted)))
    assert loss(logits, torch.ones(1, 1)).loss.item() == pytest.approx(expected, rel=1e-6)
    # The raw bias that makes the adjusted probability equal the prior is 0 at tau = 1.
    assert loss.initial_bias(prior)[0] == pytest.approx(0.0, abs=1e-6)


def test_losses_are_finite_and_differentiable():
    logits = torch.randn(16, 3, requires_grad=True) * 10
    targets = (torch.rand(16, 3) < 0.2).float()
    actions = np.array([[1, 0, 0]] * 10 + [[0, 1, 0]], dtype=np.uint8)
    for kind in LossKind:
        loss = build_loss(LossConfig(kind=kind), actions, BUTTONS)
        terms = loss(logits, targets)
        assert torch.isfinite(terms.loss), kind
        (grad,) = torch.autograd.grad(terms.loss, logits)
        assert torch.all(torch.isfinite(grad)), kind


def test_build_loss_sqrt_pos_weight():
    actions = np.zeros((100, 3), dtype=np.uint8)
    actions[:50, 0] = 1
    actions[:4, 1] = 1
    actions[:1, 2] = 1
    loss = build_loss(LossConfig(pos_weight=PosWeightMode.SQRT), actions, BUTTONS)
    assert isinstance(loss, WeightedBCELoss)
    np.testing.assert_allclose(loss.pos_weight.numpy(), [1.0, math.sqrt(24), math.sqrt(99)], rtol=1e-6)
