"""Metrics against hand-computed values and brute-force reference computations."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from agents.metrics import (
    NO_POSITIVES,
    average_precision,
    confusion_counts,
    evaluate_split,
    expected_calibration_error,
    format_split_table,
    precision_recall_curve,
    precision_recall_f1,
)
from agents.thresholds import PlattScaling, ThresholdMode, choose_thresholds, fit_platt_scaling


def reference_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Brute force: for every distinct score as threshold, precision times the recall gained."""
    total = labels.sum()
    previous_recall = 0.0
    ap = 0.0
    for threshold in sorted(set(scores.tolist()), reverse=True):
        predicted = scores >= threshold
        tp = (predicted & (labels == 1)).sum()
        recall = tp / total
        ap += (recall - previous_recall) * tp / predicted.sum()
        previous_recall = recall
    return float(ap)


def test_average_precision_hand_computed():
    # Ranked: 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.1 (neg). AP = 0.5 * 1 + 0.5 * 2/3.
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    assert average_precision(labels, scores) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_average_precision_ties_form_one_threshold():
    # All scores equal: one threshold, precision = prevalence, recall 1.
    labels = np.array([1, 0, 0, 0])
    scores = np.full(4, 0.3)
    assert average_precision(labels, scores) == pytest.approx(0.25)


def test_average_precision_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = (rng.random(200) < 0.1).astype(int)
        labels[0] = 1
        scores = np.round(rng.random(200), 2)  # rounding creates ties
        assert average_precision(labels, scores) == pytest.approx(reference_average_precision(labels, scores))


def test_average_precision_no_positives_is_none():
    assert average_precision(np.zeros(5), np.linspace(0, 1, 5)) is None


def test_precision_recall_curve_values():
    precision, recall, thresholds = precision_recall_curve(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1]))
    np.testing.assert_allclose(thresholds, [0.9, 0.8, 0.7, 0.1])
    np.testing.assert_allclose(precision, [1.0, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1.0, 1.0])


def test_confusion_and_f1_hand_computed():
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    predictions = np.array([[1, 1], [0, 0], [1, 0], [0, 1]])
    counts = confusion_counts(labels, predictions)
    assert (counts[0].true_positives, counts[0].false_positives, counts[0].false_negatives) == (1, 1, 1)
    assert counts[0].true_negatives == 1
    precision, recall, f1 = precision_recall_f1(counts[0])
    assert precision == pytest.approx(0.5)
    assert recall == pytest.approx(0.5)
    assert f1 == pytest.approx(0.5)
    precision, recall, f1 = precision_recall_f1(counts[1])
    assert (precision, recall) == (pytest.approx(0.5), pytest.approx(1.0))
    assert f1 == pytest.approx(2 / 3)


def test_f1_zero_when_never_predicted():
    counts = confusion_counts(np.array([[1], [0]]), np.array([[0], [0]]))
    assert precision_recall_f1(counts[0]) == (0.0, 0.0, 0.0)


def test_expected_calibration_error_hand_computed():
    # Bin [0.2, 0.3): probs 0.2, 0.2, positives 1 of 2 -> gap 0.3.
    # Bin [0.9, 1.0]: probs 0.9, 1.0, positives 2 of 2 -> mean 0.95, gap 0.05.
    labels = np.array([1, 0, 1, 1])
    probabilities = np.array([0.2, 0.2, 0.9, 1.0])
    assert expected_calibration_error(labels, probabilities, n_bins=10) == pytest.approx(0.5 * 0.3 + 0.5 * 0.05)


def test_expected_calibration_error_perfect_is_zero():
    labels = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    probabilities = np.array([0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75])
    assert expected_calibration_error(labels, probabilities, n_bins=4) == pytest.approx(0.0)


def make_split(rng: np.random.Generator, n: int = 400):
    prevalences = np.array([0.4, 0.1, 0.02, 0.0])
    labels = (rng.random((n, 4)) < prevalences).astype(np.uint8)
    probabilities = np.clip(labels * 0.6 + rng.random((n, 4)) * 0.4, 0, 1)
    return labels, probabilities


def test_evaluate_split_baselines_and_averages():
    rng = np.random.default_rng(1)
    labels, probabilities = make_split(rng)
    thresholds = [0.5, 0.5, 0.5, 0.5]
    decisions = probabilities >= 0.5
    report = evaluate_split(labels, probabilities, decisions, ["a", "b", "c", "d"], thresholds=thresholds,
                            episode_lengths=[100, 300])

    assert report.all_zero_binary_accuracy == pytest.approx(1 - labels.mean())
    assert report.binary_accuracy == pytest.approx((labels == decisions).mean())
    assert report.exact_match == pytest.approx(np.all(labels == decisions, axis=1).mean())
    assert report.all_zero_exact_match == pytest.approx((labels.sum(1) == 0).mean())
    f1s = [b.f1 for b in report.buttons[:3]]
    assert report.macro_f1 == pytest.approx(np.mean(f1s))
    assert report.macro_ap == pytest.approx(np.mean([b.ap for b in report.buttons[:3]]))
    tp = (labels & decisions).sum()
    fp = (~labels.astype(bool) & decisions).sum()
    fn = (labels.astype(bool) & ~decisions).sum()
    assert report.micro_f1 == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert report.n_episodes == 2


def test_evaluate_split_no_positives_reported_as_none():
    rng = np.random.default_rng(2)
    labels, probabilities = make_split(rng)
    decisions = probabilities >= 0.5
    report = evaluate_split(labels, probabilities, decisions, ["a", "b", "c", "d"], thresholds=[0.5] * 4)
    button = report.per_button()["d"]
    assert button.positives == 0
    assert button.f1 is None
    assert button.ap is None
    assert button.recall is None
    assert any("'d' has no positives" in note for note in report.notes)
    assert NO_POSITIVES in format_split_table(report)
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["per_button"]["d"]["f1"] is None
    assert as_json["per_button"]["a"]["threshold"] == 0.5


def test_evaluate_split_hold_lengths_respect_episodes():
    # One button held for the last step of episode 1 and the first step of episode 2: two presses of 1 step.
    labels = np.array([[0], [1], [1], [0]], dtype=np.uint8)
    report = evaluate_split(labels, labels.astype(float), labels, ["a"], thresholds=[0.5], episode_lengths=[2, 2])
    assert report.buttons[0].demo_mean_hold_steps == pytest.approx(1.0)
    whole = evaluate_split(labels, labels.astype(float), labels, ["a"], thresholds=[0.5])
    assert whole.buttons[0].demo_mean_hold_steps == pytest.approx(2.0)


def test_evaluate_split_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"must be \(N, 2\)"):
        evaluate_split(np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((3, 3)), ["a", "b"], thresholds=None)
    with pytest.raises(ValueError, match="episode lengths sum to 5"):
        evaluate_split(np.zeros((4, 1)), np.zeros((4, 1)), np.zeros((4, 1)), ["a"], thresholds=None,
                       episode_lengths=[5])


def test_max_f1_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    labels, probabilities = make_split(rng, 300)
    choice = choose_thresholds(labels[:, :3], probabilities[:, :3], ["a", "b", "c"], ThresholdMode.MAX_F1,
                               min_positives=0, max_rate_ratio=np.inf)
    for i in range(3):
        best = max(
            precision_recall_f1(confusion_counts(labels[:, i:i + 1], probabilities[:, i:i + 1] >= t)[0])[2]
            for t in np.unique(probabilities[:, i])
        )
        chosen = precision_recall_f1(
            confusion_counts(labels[:, i:i + 1], probabilities[:, i:i + 1] >= choice.thresholds[i])[0])[2]
        assert chosen == pytest.approx(best)
    assert choice.methods == ["max_f1"] * 3


def test_max_f1_with_few_positives_matches_press_rate():
    rng = np.random.default_rng(5)
    labels = np.zeros((2000, 1), dtype=np.uint8)
    labels[rng.choice(2000, 4, replace=False)] = 1
    probabilities = rng.random((2000, 1)) * 0.01
    choice = choose_thresholds(labels, probabilities, ["jump"], ThresholdMode.MAX_F1, min_positives=10)
    assert choice.methods == ["press_rate_few_positives"]
    assert (probabilities >= choice.thresholds[0]).mean() == pytest.approx(4 / 2000, abs=0.001)


def test_max_f1_press_rate_is_capped():
    rng = np.random.default_rng(6)
    labels = (rng.random((4000, 1)) < 0.01).astype(np.uint8)
    # Positives score below every negative, so the F1-optimal threshold presses at every step.
    probabilities = np.where(labels == 1, rng.random((4000, 1)) * 0.01, 0.01 + rng.random((4000, 1)) * 0.99)
    choice = choose_thresholds(labels, probabilities, ["grab"], ThresholdMode.MAX_F1, max_rate_ratio=4.0)
    assert choice.methods == ["max_f1_rate_capped"]
    assert (probabilities >= choice.thresholds[0]).mean() <= 4.0 * labels.mean() + 1e-3


def test_press_rate_threshold_matches_demonstrator_rate():
    rng = np.random.default_rng(4)
    labels = (rng.random((1000, 1)) < 0.05).astype(np.uint8)
    probabilities = rng.random((1000, 1))
    choice = choose_thresholds(labels, probabilities, ["a"], ThresholdMode.PRESS_RATE)
    assert (probabilities >= choice.thresholds[0]).mean() == pytest.approx(labels.mean(), abs=0.002)


def test_threshold_fallback_warns_for_button_without_positives(caplog):
    rng = np.random.default_rng(5)
    probabilities = rng.random((500, 2))
    labels = np.zeros((500, 2), dtype=np.uint8)
    labels[:50, 0] = 1
    with caplog.at_level(logging.WARNING):
        choice = choose_thresholds(labels, probabilities, ["punch", "special"], fallback_press_rates=[0.1, 0.02])
    assert "'special' has no positives" in caplog.text
    assert choice.methods[1] == "press_rate_fallback"
    assert (probabilities[:, 1] >= choice.thresholds[1]).mean() == pytest.approx(0.02, abs=0.003)


def test_platt_scaling_recovers_shifted_logits():
    rng = np.random.default_rng(6)
    true_logits = rng.normal(-2.0, 2.0, size=(20000, 2))
    labels = (rng.random(true_logits.shape) < 1 / (1 + np.exp(-true_logits))).astype(np.uint8)
    # A pos_weight of e^2 shifts logits by about +2; Platt scaling should undo it.
    shifted = true_logits + 2.0
    scaling = fit_platt_scaling(shifted, labels, ["a", "b"])
    np.testing.assert_allclose(scaling.scale, [1.0, 1.0], atol=0.1)
    np.testing.assert_allclose(scaling.offset, [-2.0, -2.0], atol=0.15)
    assert PlattScaling.identity(2).apply(np.zeros((1, 2)))[0, 0] == pytest.approx(0.5)
