"""Tests of the quality ablations: aggregation, re-decision, two-network combination, markdown, and a tiny run."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents.benchmark.ablation_jobs import (
    DECISION_RULES,
    REFERENCE,
    AblationError,
    CombinedPilot,
    redecide,
    scatter_columns,
)
from agents.benchmark.ablation_report import SECTIONS, aggregate_sections, spread
from agents.benchmark.ablations import (
    SECTION_NAMES,
    AblationSettings,
    ablation_markdown,
    plan_jobs,
    run_ablations,
    section_variants,
    tiny_settings,
)
from agents.session import Decision

BUTTONS = ("forward", "punch", "guard", "grab")


def _row(macro_f1: float, win_rate: float, guard_recall: float | None, grab_recall: float | None,
         val_macro_f1: float = 0.5) -> dict:
    return {
        "test": {"macro_f1": macro_f1, "macro_ap": macro_f1 + 0.1,
                 "recall": {"forward": 0.9, "punch": 0.7, "guard": guard_recall, "grab": grab_recall},
                 "press_rate": {name: 0.1 for name in BUTTONS}},
        "val": {"macro_f1": val_macro_f1, "macro_ap": 0.6},
        "win_rate": win_rate, "wins": int(win_rate * 10), "episodes": 10,
    }


def _job_result(seed: int, variant: str, rows: dict, guard_events: int = 12, grab_events: int = 4) -> dict:
    return {
        "seed": seed, "variant": variant, "job": {"run_dir": f"/runs/seed{seed}/{variant}"},
        "decision_hz": 15.0, "button_names": list(BUTTONS),
        "train_prevalence": {"forward": 0.4, "punch": 0.1, "guard": 0.02, "grab": 0.005},
        "rare_buttons": ["guard", "grab"], "test_press_events": {"forward": 50, "punch": 30, "guard": guard_events,
                                                                 "grab": grab_events},
        "rows": rows, "elapsed_s": 1.0,
    }


def _fixture_results() -> dict:
    """Three seeds of the reference and the focal variant, with known numbers."""
    results = {}
    for seed, (f1, focal_f1, guard_events) in enumerate([(0.40, 0.30, 10), (0.50, 0.32, 12), (0.60, 0.34, 14)]):
        results[(seed, REFERENCE)] = _job_result(seed, REFERENCE, {
            rule: _row(f1 - 0.1 * i, 0.2 * seed, 0.5, None if seed == 0 else 0.25)
            for i, rule in enumerate(DECISION_RULES)
        }, guard_events=guard_events)
        results[(seed, "focal")] = _job_result(seed, "focal", {"thresholds": _row(focal_f1, 0.8, 0.9, 0.75)})
    return results


def test_spread_mean_std_range():
    stats = spread([0.4, None, 0.5, 0.6])
    assert stats["n"] == 3
    assert stats["mean"] == pytest.approx(0.5)
    assert stats["std"] == pytest.approx(0.1)
    assert stats["min"] == pytest.approx(0.4)
    assert stats["max"] == pytest.approx(0.6)


def test_spread_single_and_empty():
    assert spread([0.3])["std"] == 0.0
    assert spread([None, None]) == {"mean": None, "std": None, "min": None, "max": None, "n": 0}


def test_aggregate_over_seeds():
    tables = aggregate_sections(("loss", "decision"), (0, 1, 2), _fixture_results())
    loss_rows = {row["variant"]: row for row in tables["loss"]["rows"]}
    reference = loss_rows[REFERENCE]["metrics"]
    assert reference["test_macro_f1"]["mean"] == pytest.approx(0.5)
    assert reference["test_macro_f1"]["std"] == pytest.approx(0.1)
    assert reference["win_rate"]["mean"] == pytest.approx(0.2)
    assert loss_rows["focal"]["metrics"]["test_macro_f1"]["mean"] == pytest.approx(0.32)
    # Seed 0 has no grab positives, so its rare recall is guard's alone.
    assert loss_rows[REFERENCE]["per_seed"]["0"]["rare_recall"] == pytest.approx(0.5)
    assert loss_rows[REFERENCE]["per_seed"]["1"]["rare_recall"] == pytest.approx(0.375)
    assert loss_rows[REFERENCE]["rare_recall_per_button"]["grab"]["n"] == 2
    # Variants without a finished job are rows without seeds.
    assert loss_rows["bce_ratio"]["seeds"] == []
    assert loss_rows["bce_ratio"]["metrics"]["test_macro_f1"]["mean"] is None


def test_aggregate_press_events_and_summary():
    tables = aggregate_sections(("loss", "decision"), (0, 1, 2), _fixture_results())
    assert tables["loss"]["rare_buttons"] == ["guard", "grab"]
    assert tables["loss"]["test_press_events"]["guard"]["mean"] == pytest.approx(12.0)
    assert tables["loss"]["test_press_events"]["grab"]["mean"] == pytest.approx(4.0)
    summary = tables["loss"]["summary"]
    assert summary.startswith("Highest test macro F1: asymmetric, pos_weight none (reference) (0.500 ± 0.100)")
    assert "highest win rate: focal (gamma 2) (80% ± 0%), +60 points against the reference" in summary


def test_aggregate_decision_rules_share_one_job():
    tables = aggregate_sections(("decision",), (0, 1, 2), _fixture_results())
    means = [row["metrics"]["test_macro_f1"]["mean"] for row in tables["decision"]["rows"]]
    assert [row["rule"] for row in tables["decision"]["rows"]] == list(DECISION_RULES)
    assert means == pytest.approx([0.5, 0.4, 0.3, 0.2])


def test_aggregate_offset_labels_in_ms():
    results = _fixture_results()
    for k in range(1, 5):
        for seed in range(3):
            results[(seed, f"offset_{k}")] = _job_result(seed, f"offset_{k}", {"thresholds": _row(0.4, 0.5, 0.5, 0.5)})
    labels = [row["label"] for row in aggregate_sections(("offset",), (0, 1, 2), results)["offset"]["rows"]]
    assert labels[0] == "0 steps (reference), 0 ms"
    assert labels[4] == "4 steps, 267 ms"


def test_split_summary_names_gap():
    results = _fixture_results()
    for seed in range(3):
        results[(seed, "frame_split")] = _job_result(seed, "frame_split",
                                                     {"thresholds": _row(0.3, 0.1, 0.2, 0.2, val_macro_f1=0.9)})
    summary = aggregate_sections(("split",), (0, 1, 2), results)["split"]["summary"]
    assert summary.startswith("Whole episodes (reference) claims validation macro F1 0.500 and scores 0.500")
    assert "random frames of the non-test episodes claims validation macro F1 0.900 and scores 0.300" in summary
    assert "(gap +0.600)" in summary


def test_aggregate_without_finished_jobs(tmp_path):
    tables = aggregate_sections(("loss", "split"), (0, 1, 2), {})
    assert tables["loss"]["summary"] == "No finished runs."
    assert tables["split"]["summary"] == "No finished runs."
    assert tables["loss"]["rare_buttons"] == []
    settings = {"episodes": 40, "epochs": 15, "eval_episodes": 20, "difficulty": "normal"}
    text = ablation_markdown({"settings": settings, "sections": tables}, tmp_path / "figures", tmp_path)
    assert "| focal (gamma 2) | n/a | n/a | n/a | n/a |" in text
    assert not (tmp_path / "figures").exists()


def _decision_arrays(seed: int = 0, n: int = 4000):
    rng = np.random.default_rng(seed)
    rates = np.array([0.4, 0.1, 0.02, 0.005])
    probabilities = np.clip(rng.beta(1, 1 / rates - 1, size=(n, 4)), 0, 1).astype(np.float32)
    labels = (rng.random((n, 4)) < probabilities).astype(np.float32)
    return labels, probabilities


def test_redecide_fixed_half_and_tuned():
    val_labels, val_probabilities = _decision_arrays(0)
    test_labels, test_probabilities = _decision_arrays(1)
    tuned = np.array([0.3, 0.2, 0.1, 0.05])
    decided = redecide(val_labels, val_probabilities, test_labels, test_probabilities, BUTTONS,
                       np.array([0.4, 0.1, 0.02, 0.005]), tuned, [len(test_labels)], seed=0)
    assert list(decided) == list(DECISION_RULES)
    assert decided["fixed_0.5"]["thresholds"] == [0.5] * 4
    assert decided["max_f1"]["thresholds"] == pytest.approx(tuned.tolist())
    half = decided["fixed_0.5"]["report"].per_button()["forward"]
    expected_rate = float((test_probabilities[:, 0] >= 0.5).mean())
    assert half.press_rate == pytest.approx(expected_rate)


def test_redecide_press_rate_matches_validation():
    val_labels, val_probabilities = _decision_arrays(0)
    test_labels, test_probabilities = _decision_arrays(1)
    decided = redecide(val_labels, val_probabilities, test_labels, test_probabilities, BUTTONS,
                       np.array([0.4, 0.1, 0.02, 0.005]), np.full(4, 0.5), [len(test_labels)], seed=0)
    report = decided["press_rate"]["report"].per_button()
    for i, name in enumerate(BUTTONS):
        assert report[name].press_rate == pytest.approx(val_labels[:, i].mean(), abs=0.02), name


def test_redecide_sampling_seeded():
    val_labels, val_probabilities = _decision_arrays(0)
    test_labels, test_probabilities = _decision_arrays(1)
    args = (val_labels, val_probabilities, test_labels, test_probabilities, BUTTONS,
            np.array([0.4, 0.1, 0.02, 0.005]), np.full(4, 0.5), [len(test_labels)])
    first = redecide(*args, seed=3)["sample"]
    second = redecide(*args, seed=3)["sample"]
    assert first["thresholds"] is None
    assert first["report"].macro_f1 == second["report"].macro_f1
    sampled_rate = first["report"].per_button()["forward"].press_rate
    assert sampled_rate == pytest.approx(float(test_probabilities[:, 0].mean()), abs=0.03)


def test_scatter_columns_places_buttons():
    frequent = np.array([[1, 0], [0, 1]], dtype=np.uint8)
    rare = np.array([[1], [0]], dtype=np.uint8)
    combined = scatter_columns([([0, 2], frequent), ([1], rare)], 3)
    assert combined.tolist() == [[1, 1, 0], [0, 0, 1]]
    assert combined.dtype == np.uint8


@pytest.mark.parametrize("parts", [[([0, 1], np.zeros(2)), ([1], np.zeros(1))], [([0], np.zeros(1))]])
def test_scatter_columns_rejects_bad_cover(parts):
    with pytest.raises(AblationError, match="expected each of 0..1 once"):
        scatter_columns(parts, 2)


class _FixedPilot:
    """A pilot that always returns the same buttons and probabilities."""

    name = "fixed"

    def __init__(self, action, probabilities):
        self.action = np.asarray(action, dtype=np.uint8)
        self.probabilities = np.asarray(probabilities, dtype=np.float32)
        self.resets = 0

    def reset(self, env, seed):
        self.resets += 1

    def act(self, obs):
        return Decision(action=self.action, source="policy", probabilities=self.probabilities)


def test_combined_pilot_merges_parts():
    frequent, rare = _FixedPilot([1, 0, 1], [0.9, 0.1, 0.8]), _FixedPilot([1], [0.3])
    pilot = CombinedPilot([([0, 1, 3], frequent), ([2], rare)], 4)
    pilot.reset(None, 5)
    decision = pilot.act({})
    assert decision.action.tolist() == [1, 0, 1, 1]
    assert decision.probabilities.tolist() == pytest.approx([0.9, 0.1, 0.3, 0.8])
    assert frequent.resets == 1
    assert rare.resets == 1


def test_markdown_from_fixture(tmp_path):
    settings = {"episodes": 40, "epochs": 15, "eval_episodes": 20, "difficulty": "normal"}
    result = {"settings": settings, "failed_jobs": {"seed2/bce_ratio": "TrainingError: loss became nan"},
              "sections": aggregate_sections(("loss", "decision"), (0, 1, 2), _fixture_results())}
    figure_dir, page_dir = tmp_path / "docs" / "figures", tmp_path / "docs"
    text = ablation_markdown(result, figure_dir, page_dir)
    assert (figure_dir / "ablation_loss.png").stat().st_size > 0
    assert (figure_dir / "ablation_decision.png").stat().st_size > 0
    assert "## Ablation: Loss" in text
    assert "## Ablation: Decision rule" in text
    assert "![Loss](figures/ablation_loss.png)" in text
    assert "Press events of each rare button in the test split (mean per seed): guard 12.0, grab 4.0." in text
    assert "Recall of guard, grab rests on fewer than 20 press events per seed and is noisy." in text
    assert "| asymmetric, pos_weight none (reference) | 0.500 ± 0.100 | 0.600 ± 0.100 |" in text
    assert "| bce, pos_weight neg/pos (capped at 20) | n/a |" in text
    assert "- seed2/bce_ratio: TrainingError: loss became nan" in text


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="unknown ablation sections \\['losses'\\]"):
        AblationSettings(sections=("losses",))
    with pytest.raises(ValueError, match="episodes must be at least 3, got 2"):
        AblationSettings(episodes=2)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        AblationSettings(seeds=(1, 1))


def test_plan_jobs_shares_reference(tmp_path):
    settings = AblationSettings(seeds=(0, 1), sections=("decision", "split", "loss"))
    variants = section_variants(settings.sections)
    assert variants[0] == REFERENCE
    assert variants.count(REFERENCE) == 1
    assert set(variants) == {row["variant"] for name in settings.sections for row in SECTIONS[name]["rows"]}
    jobs = plan_jobs(settings, tmp_path)
    assert len(jobs) == 2 * len(variants)
    demos = tmp_path / "seed0" / f"demos_{settings.episodes}rounds_normal"
    assert {job.demos for job in jobs if job.seed == 0} == {str(demos)}
    assert jobs[0].eval_seed != jobs[-1].eval_seed


def test_every_section_named():
    assert set(SECTIONS) == set(SECTION_NAMES)


@pytest.mark.slow
def test_tiny_run_end_to_end(tmp_path):
    settings = replace(tiny_settings(), sections=("decision", "two_networks"))
    result = run_ablations(settings, tmp_path)
    assert result["failed_jobs"] == {}
    written = json.loads((tmp_path / "ablations.json").read_text())
    assert set(written["sections"]) == {"decision", "two_networks"}
    two = {row["variant"]: row for row in written["sections"]["two_networks"]["rows"]}
    for row in two.values():
        assert row["seeds"] == [0]
        f1 = row["metrics"]["test_macro_f1"]["mean"]
        assert f1 is not None and 0.0 <= f1 <= 1.0
        assert row["metrics"]["win_rate"]["n"] == 1
    job = json.loads((tmp_path / "seed0" / "two_networks" / "result.json").read_text())
    parts = job["rows"]["thresholds"]["parts"]
    assert sorted(parts["frequent"] + parts["rare"]) == sorted(job["button_names"])
    assert parts["rare"] == job["rare_buttons"]
    assert (tmp_path / "seed0" / "two_networks" / "rare" / "policy.json").is_file()

    # A second run finds every result and trains nothing.
    reference_file = tmp_path / "seed0" / REFERENCE / "result.json"
    modified_ns = reference_file.stat().st_mtime_ns
    again = run_ablations(settings, tmp_path)
    assert reference_file.stat().st_mtime_ns == modified_ns
    assert again["sections"] == result["sections"]

    text = ablation_markdown(again, tmp_path / "figures", tmp_path)
    assert "## Ablation: Two networks against one" in text
    assert not math.isnan(again["jobs"][f"seed0/{REFERENCE}"]["elapsed_s"])
