"""The training loop on synthetic trajectories and on recorded Arena demonstrations."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import fightenv  # noqa: F401  (registers fightenv/Arena-v0)
from agents import load_policy
from agents.dataset import WindowedDataset, WindowSpec
from agents.pilots import ExpertPilot
from agents.session import run_episode
from agents.synthetic import synthetic_trajectories
from agents.train import DataLayout, SplitData, TrainConfig, TrainingError, cpuinfo_has_bf16, fit, resolve_precision
from demos.manifest import StoreLayout
from demos.store import EpisodeStore

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
FRAME_SHAPE = (1, 36, 36)
# The last button is never pressed, to exercise "no positives" handling.
PREVALENCES = (0.4, 0.2, 0.1, 0.05, 0.0)
BUTTONS = ("forward", "punch", "guard", "grab", "special")
STATES = tuple(f"s{i}" for i in range(4))


def synthetic_split(n_frames: int = 2, state_window: int = 4, seed: int = 0, corrupt_states: bool = False) -> SplitData:
    trajectories = synthetic_trajectories(10, 150, PREVALENCES, FRAME_SHAPE, n_state=4, seed=seed)
    if corrupt_states:
        trajectories[0].obs.get("state")[5, 0] = np.nan
    spec = WindowSpec(n_frames, state_window)

    def build(indices):
        return WindowedDataset.from_trajectories([trajectories[i] for i in indices], spec)

    return SplitData(DataLayout(BUTTONS, STATES, FRAME_SHAPE, 15.0, "synthetic"), build(range(6)), build([6, 7]),
                     build([8, 9]), {"kind": "episodes"})


def small_config(tmp_path: Path, **overrides) -> TrainConfig:
    values = dict(out=str(tmp_path), epochs=2, batch_size=32, num_threads=1, progress=False, n_frames=2,
                  state_window=4, cnn_channels=(4, 8, 8), frame_features=16, state_hidden=8, hidden=16)
    values.update(overrides)
    return TrainConfig(**values)


def test_fit_writes_report_policy_and_scalars(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = fit(small_config(tmp_path), synthetic_split(), tmp_path)
    assert "'special' is never pressed in the training split" in caplog.text

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    test = metrics["test"]
    for name in BUTTONS[:4]:
        for key in ("precision", "recall", "f1", "ap", "prevalence", "threshold"):
            assert key in test["per_button"][name], (name, key)
        assert test["per_button"][name]["f1"] is not None
    assert test["per_button"]["special"]["f1"] is None
    assert test["per_button"]["special"]["ap"] is None
    for key in ("macro_f1", "macro_ap", "binary_accuracy", "all_zero_binary_accuracy", "micro_f1", "exact_match"):
        assert key in test
    assert test["macro_f1"] == pytest.approx(np.mean([test["per_button"][b]["f1"] for b in BUTTONS[:4]]))
    assert len(metrics["history"]) == 2
    assert set(metrics["history"][0]["val_per_button"]) == set(BUTTONS)
    assert metrics["history"][0]["val_per_button"]["special"]["ap"] is None
    assert result.test_report.macro_ap == pytest.approx(test["macro_ap"])

    for name in ("pr_curves.png", "press_rates.png", "calibration.png", "policy.json", "policy.safetensors"):
        assert (tmp_path / name).is_file(), name
    loaded = load_policy(tmp_path)
    assert loaded.config.button_names == list(BUTTONS)
    assert loaded.policy.has_thresholds
    assert loaded.config.training["best_epoch"] == result.best_epoch

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/macro_ap", "val/ap/forward", "perf/samples_per_s"} <= tags


def test_fit_learns_synthetic_buttons(tmp_path):
    """Buttons follow the state window, so a few epochs must beat AP's chance level (the prevalence)."""
    config = small_config(tmp_path, epochs=8, learning_rate=3e-3, tensorboard=False, plots=False)
    result = fit(config, synthetic_split(), tmp_path)
    for button in result.test_report.buttons[:3]:
        assert button.ap > button.prevalence + 0.1, button


def test_fit_bf16_autocast_learns(tmp_path):
    config = small_config(tmp_path, epochs=8, learning_rate=3e-3, precision="bf16", tensorboard=False, plots=False)
    result = fit(config, synthetic_split(), tmp_path)
    for button in result.test_report.buttons[:3]:
        assert button.ap > button.prevalence + 0.1, button


def test_fit_sets_state_statistics(tmp_path):
    fit(small_config(tmp_path / "a", epochs=1, tensorboard=False, plots=False), synthetic_split(), tmp_path / "a")
    # Sample t pairs state t with action t, so the final observation of each training episode is left out.
    trajectories = synthetic_trajectories(10, 150, PREVALENCES, FRAME_SHAPE, n_state=4, seed=0)
    states = np.concatenate([trajectories[i].obs.get("state")[:-1] for i in range(6)]).astype(np.float64)
    extractor = load_policy(tmp_path / "a").policy.features_extractor
    np.testing.assert_allclose(extractor.state_mean.numpy(), states.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(extractor.state_std.numpy(), states.std(axis=0), rtol=1e-5)

    # A warm start keeps the statistics its weights were trained with, not those of the new split.
    config = small_config(tmp_path / "b", epochs=1, tensorboard=False, plots=False, init_from=str(tmp_path / "a"))
    fit(config, synthetic_split(seed=1), tmp_path / "b")
    warm = load_policy(tmp_path / "b").policy.features_extractor
    torch.testing.assert_close(warm.state_mean, extractor.state_mean)
    torch.testing.assert_close(warm.state_std, extractor.state_std)


def test_warm_start_names_differing_options(tmp_path, caplog):
    fit(small_config(tmp_path / "a", epochs=1, tensorboard=False, plots=False), synthetic_split(), tmp_path / "a")
    config = small_config(tmp_path / "b", epochs=1, init_from=str(tmp_path / "a"), temporal="conv", hidden=32)
    with pytest.raises(TrainingError) as error:
        fit(config, synthetic_split(), tmp_path / "b")
    message = str(error.value)
    assert "--temporal: policy gru, this run conv" in message
    assert "--hidden: policy 16, this run 32" in message
    assert "--n-frames" not in message

    # --no-normalize-state cannot undo the statistics the starting weights were trained with.
    config = small_config(tmp_path / "c", epochs=1, tensorboard=False, plots=False, init_from=str(tmp_path / "a"),
                          normalize_state=False)
    with caplog.at_level(logging.WARNING):
        fit(config, synthetic_split(), tmp_path / "c")
    assert "--no-normalize-state does not apply to a warm start" in caplog.text


def test_resume_continues_from_checkpoint(tmp_path):
    data = synthetic_split()
    fit(small_config(tmp_path, epochs=1, tensorboard=False, plots=False), data, tmp_path)
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1
    result = fit(small_config(tmp_path, epochs=2, resume=True, tensorboard=False, plots=False), data, tmp_path)
    assert [entry["epoch"] for entry in result.history] == [1, 2]
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["global_step"] > state["global_step"]


def test_resume_rejects_other_buttons(tmp_path):
    data = synthetic_split()
    fit(small_config(tmp_path, epochs=1, tensorboard=False, plots=False), data, tmp_path)
    other = SplitData(DataLayout(("a", "b", "c", "d", "e"), STATES, FRAME_SHAPE), data.train, data.val, data.test,
                      data.description)
    config_before = (tmp_path / "config.json").read_text()
    with pytest.raises(TrainingError) as error:
        fit(small_config(tmp_path, epochs=2, resume=True), other, tmp_path)
    assert str(list(BUTTONS)) in str(error.value)
    assert "['a', 'b', 'c', 'd', 'e']" in str(error.value)
    assert (tmp_path / "config.json").read_text() == config_before


def test_resume_rejects_other_architecture(tmp_path):
    data = synthetic_split()
    fit(small_config(tmp_path, epochs=1, tensorboard=False, plots=False), data, tmp_path)
    with pytest.raises(TrainingError, match="n_frames: run 2, now 3"):
        fit(small_config(tmp_path, epochs=2, resume=True, n_frames=3), synthetic_split(n_frames=3), tmp_path)


def test_nan_loss_names_batch_and_step(tmp_path):
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 1, batch \d+ \(global step \d+\)"):
        fit(small_config(tmp_path, tensorboard=False, plots=False), synthetic_split(corrupt_states=True), tmp_path)


def test_empty_split_is_rejected():
    with pytest.raises(ValueError, match="the split is empty"):
        WindowedDataset.from_trajectories([], WindowSpec())


def test_precision_auto_follows_the_cpu_flags():
    zen4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
    skylake = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
    sapphire_rapids = "flags\t\t: avx512f amx_tile amx_bf16\n"
    assert cpuinfo_has_bf16(zen4)
    assert cpuinfo_has_bf16(sapphire_rapids)
    assert not cpuinfo_has_bf16(skylake)
    assert not cpuinfo_has_bf16("")
    # An explicit choice is kept whatever the hardware.
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="decision must be 'thresholds' or 'sample'"):
        TrainConfig(decision="always")
    with pytest.raises(ValueError, match="precision must be 'auto', 'fp32' or 'bf16'"):
        TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match="'focal_loss' is not a valid LossKind"):
        TrainConfig(loss="focal_loss")
    with pytest.raises(ValueError, match="temporal must be one of gru, lstm, conv, got 'transformer'"):
        TrainConfig(temporal="transformer")
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N, got 'tpu'"):
        TrainConfig(device="tpu")


# -- scripts/train_bc.py on recorded Arena demonstrations ------------------------------------------------------


def record_arena_demos(path: Path, episodes: int, round_time_s: float = 6.0) -> None:
    env = gym.make("fightenv/Arena-v0", round_time_s=round_time_s)
    with EpisodeStore.open(path, "create", **asdict(StoreLayout.from_env(env))) as store:
        for seed in range(episodes):
            run_episode(env, ExpertPilot(seed=seed), seed=seed, recorder=store)


SMALL_ARGS = ["--epochs", "2", "--batch-size", "64", "--num-threads", "1", "--no-progress", "--cnn-channels", "4",
              "8", "8", "--frame-features", "16", "--state-hidden", "8", "--hidden", "16"]


def run_script(args: list[str], timeout_s: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(REPO / "scripts" / "train_bc.py"), *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO)


@pytest.mark.slow
def test_train_bc_script_on_arena_demos(tmp_path):
    demos = tmp_path / "demos"
    record_arena_demos(demos, episodes=8)
    out = tmp_path / "run"
    done = run_script(["--demos", str(demos), "--out", str(out), *SMALL_ARGS])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "binary accuracy" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]["per_button"]) == set(fightenv.arena.BUTTONS)
    assert metrics["split"]["kind"] == "episodes"
    assert json.loads((out / "config.json").read_text())["epochs"] == 2

    env = gym.make("fightenv/Arena-v0")
    assert load_policy(out, env=env).config.thresholds is not None

    baseline = tmp_path / "baseline"
    done = run_script(["--demos", str(demos), "--out", str(baseline), "--preset", "seed-baseline", *SMALL_ARGS])
    assert done.returncode == 0, done.stderr[-3000:]
    baseline_metrics = json.loads((baseline / "metrics.json").read_text())
    assert baseline_metrics["split"]["kind"] == "frames"
    # Both recipes are scored on the same held-out test episodes.
    assert baseline_metrics["split"]["test"] == metrics["split"]["test"]
    assert baseline_metrics["test"]["n_steps"] == metrics["test"]["n_steps"]
    metrics = baseline_metrics
    assert all(button["threshold"] == 0.5 for button in metrics["test"]["per_button"].values())

    # A second run into the same directory without --resume must not overwrite it.
    done = run_script(["--demos", str(demos), "--out", str(out), *SMALL_ARGS])
    assert done.returncode == 2
    assert "pass --resume" in done.stderr


@pytest.mark.slow
def test_train_bc_script_rejects_too_few_episodes(tmp_path):
    demos = tmp_path / "demos"
    record_arena_demos(demos, episodes=2, round_time_s=2.0)
    done = run_script(["--demos", str(demos), "--out", str(tmp_path / "run"), *SMALL_ARGS])
    assert done.returncode == 2
    assert "cannot split the 2 episodes" in done.stderr
    assert "Traceback" not in done.stderr

    done = run_script(["--demos", str(demos), "--out", str(tmp_path / "run2"), "--split-fractions", "0", "0.5",
                       "0.5", *SMALL_ARGS])
    assert done.returncode == 2
    assert "the training split of 2 episodes is empty" in done.stderr
    assert "Traceback" not in done.stderr


def test_init_from_checked_before_split(tmp_path):
    synthetic_run = tmp_path / "synthetic"
    fit(small_config(synthetic_run, epochs=1, tensorboard=False, plots=False), synthetic_split(), synthetic_run)
    demos = tmp_path / "demos"
    # Two episodes are too few to split, so the split's error would come first if the policy were checked late.
    record_arena_demos(demos, episodes=2, round_time_s=2.0)
    done = run_script(["--demos", str(demos), "--out", str(tmp_path / "run"), "--init-from", str(synthetic_run),
                       *SMALL_ARGS])
    assert done.returncode == 2
    assert f"policy {synthetic_run / 'policy.json'} does not fit the demo store: " in done.stderr
    assert "buttons differ" in done.stderr
    assert "cannot split" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    demos = tmp_path / "demos"
    record_arena_demos(demos, episodes=6, round_time_s=4.0)
    out = tmp_path / "run"
    torchrun = Path(PYTHON).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", str(REPO / "scripts" / "train_bc.py"),
         "--demos", str(demos), "--out", str(out), "--device", "cpu", *SMALL_ARGS],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "x 2 processes" in done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 2
    assert load_policy(out).policy.has_thresholds
