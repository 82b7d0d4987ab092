"""scripts/bench_train.py end to end on tiny synthetic data (the numbers themselves are not asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_train_script_reports_all_trainers(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_train.py"), "--synthetic-episodes", "3", "--synthetic-steps",
         "40", "--batches", "2", "--warmup-batches", "1", "--batch-size", "16", "--num-threads", "1", "--repeats", "1",
         "--json-out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ours vs bc.BC" in done.stdout
    result = json.loads(out.read_text())
    assert set(result["trainers"]) == {"ours", "bc", "bc_button_loss"}
    for row in result["trainers"].values():
        assert row["samples_per_s"] > 0
        assert row["peak_rss_mib"] >= row["rss_after_load_mib"]
    assert result["speedup_vs_bc"] > 0


def test_bench_train_rejects_unknown_trainer():
    from agents.bench_train import BenchTrainConfig, run_bench

    with pytest.raises(ValueError, match=r"unknown trainers \['sgd'\]"):
        run_bench(BenchTrainConfig(trainers="ours,sgd"))


@pytest.mark.slow
def test_bench_quality_script_end_to_end(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_quality.py"), "--out", str(tmp_path), "--episodes", "6",
         "--eval-episodes", "2", "--epochs", "1", "--num-threads", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "targets: macro F1 gain" in done.stdout
    result = json.loads((tmp_path / "bench_quality.json").read_text())
    assert set(result["test"]) == {"default", "seed_baseline"}
    assert set(result["arena"]) == {"expert", "default", "seed_baseline"}
    assert result["arena"]["default"]["episodes"] == 2
    assert (tmp_path / "default" / "policy.json").is_file()
    assert (tmp_path / "seed_baseline" / "policy.json").is_file()
