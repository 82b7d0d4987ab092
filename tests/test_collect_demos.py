"""scripts/collect_demos.py end to end on the Arena with the scripted expert, with tiny settings."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fightenv.arena.rules as rules
from demos import load_demos
from demos.collect import CollectConfig, CollectResult, run_collection

REPO = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("collect_demos", REPO / "scripts" / "collect_demos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory, script):
    path = tmp_path_factory.mktemp("collect") / "demos"
    code = script.main(["--episodes", "3", "--max-steps", "60", "--seed", "4", "--out", str(path)])
    assert code == 0
    return path


def test_expert_session_writes_loadable_store(recorded_store):
    demo_set = load_demos(recorded_store, game="arena", button_names=rules.BUTTONS)

    assert len(demo_set.trajectories) == 3
    assert [e.seed for e in demo_set.episodes] == [4, 5, 6]
    assert all(e.pilot == "expert" for e in demo_set.episodes)
    assert demo_set.frame_shape == (1, 84, 84)
    assert demo_set.decision_hz == 15.0
    assert demo_set.state_names[0] == "own_health"
    for trajectory, episode in zip(demo_set.trajectories, demo_set.episodes):
        assert len(trajectory.acts) == episode.length <= 60
        assert set(np.unique(trajectory.acts)) <= {0.0, 1.0}
        assert demo_set.step_fields(0).sources()[0] == "expert"
    # Frames are real renders: not constant.
    assert demo_set.trajectories[0].obs.get("frame").std() > 1


def test_session_config_and_report_stored(recorded_store):
    manifest = json.loads((recorded_store / "manifest.json").read_text())
    session = manifest["sessions"][0]

    assert session["config"]["episodes"] == 3
    assert session["config"]["pilot"] == "expert"
    assert session["versions"]["gymnasium"].startswith("0.29")
    assert (recorded_store / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((recorded_store / "report.json").read_text())["episodes"] == 3


def test_expert_is_reproducible(recorded_store, tmp_path, script):
    again = tmp_path / "again"
    assert script.main(["--episodes", "1", "--max-steps", "60", "--seed", "4", "--out", str(again)]) == 0
    first = load_demos(recorded_store, episodes=[0]).trajectories[0]
    second = load_demos(again).trajectories[0]
    np.testing.assert_array_equal(first.acts, second.acts)
    np.testing.assert_array_equal(first.obs.get("frame"), second.obs.get("frame"))


def test_report_mode_prints_json(recorded_store, script, capsys):
    assert script.main(["--report", str(recorded_store), "--json", "--plot", str(recorded_store / "r.png")]) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["episodes"] == 3
    assert [b["name"] for b in report["buttons"]] == list(rules.BUTTONS)
    assert 0.5 < report["all_zero_binary_accuracy"] < 1.0


def test_report_mode_prints_table(recorded_store, script, capsys):
    assert script.main(["--report", str(recorded_store)]) == 0
    out = capsys.readouterr().out
    assert "press events" in out
    assert "co-occurrence" in out


def test_resume_appends_and_warns_on_seeds(recorded_store, script, caplog):
    with caplog.at_level(logging.WARNING):
        code = script.main(["--episodes", "1", "--max-steps", "20", "--seed", "6", "--resume", "--out", str(recorded_store)])
    assert code == 0
    assert "seeds [6] are already in store" in caplog.text
    demo_set = load_demos(recorded_store)
    assert len(demo_set.trajectories) == 4
    assert demo_set.episodes[-1].session == 1


def test_resume_with_other_frame_shape_fails(recorded_store, script, caplog):
    with caplog.at_level(logging.ERROR):
        code = script.main(["--episodes", "1", "--frame-size", "64", "--resume", "--out", str(recorded_store)])
    assert code == 2
    assert "[1, 84, 84]" in caplog.text
    assert "[1, 64, 64]" in caplog.text


def test_out_exists_without_resume_fails(recorded_store, script, caplog):
    with caplog.at_level(logging.ERROR):
        code = script.main(["--episodes", "1", "--out", str(recorded_store)])
    assert code == 2
    assert "--resume" in caplog.text


def test_report_of_missing_store_fails(tmp_path, script, caplog):
    with caplog.at_level(logging.ERROR):
        code = script.main(["--report", str(tmp_path / "missing")])
    assert code == 2
    assert "does not exist" in caplog.text


def test_invalid_options_rejected():
    with pytest.raises(ValueError, match="--workers 2 needs --pilot expert"):
        CollectConfig(pilot="human", workers=2).validate()
    with pytest.raises(ValueError, match="--episodes must be at least 1"):
        CollectConfig(episodes=0).validate()


@pytest.mark.slow
def test_workers_share_one_session(tmp_path):
    config = CollectConfig(episodes=6, workers=2, max_steps=40, seed=0, out=str(tmp_path / "demos"))
    result = run_collection(config, out_stream=sys.stderr)

    assert isinstance(result, CollectResult)
    assert result.stopped is None
    assert result.episodes == 6
    demo_set = load_demos(tmp_path / "demos")
    assert sorted(e.seed for e in demo_set.episodes) == list(range(6))
    assert {e.worker for e in demo_set.episodes} == {0, 1}
    assert {e.session for e in demo_set.episodes} == {0}
    # Worker w records episodes w, w + 2, ...: the same rounds as a single process would.
    single = tmp_path / "single"
    run_collection(CollectConfig(episodes=6, max_steps=40, seed=0, out=str(single)), out_stream=sys.stderr)
    by_seed = {e.seed: t for e, t in zip(demo_set.episodes, demo_set.trajectories)}
    for episode, trajectory in zip(load_demos(single).episodes, load_demos(single).trajectories):
        np.testing.assert_array_equal(by_seed[episode.seed].acts, trajectory.acts)


def test_profile_of_other_game_rejected(recorded_store, script, caplog):
    profile = REPO / "fightenv" / "profiles" / "fighter3d_example.toml"
    episodes_before = len(load_demos(recorded_store).episodes)
    with caplog.at_level(logging.ERROR):
        code = script.main(["--pilot", "human", "--profile", str(profile), "--resume", "--out", str(recorded_store)])

    assert code == 2
    assert "game 'arena'" in caplog.text
    assert "game 'fighter3d-example'" in caplog.text
    assert len(load_demos(recorded_store).episodes) == episodes_before


def test_profile_needs_human_pilot():
    with pytest.raises(ValueError, match="--profile x.toml needs --pilot human"):
        CollectConfig(pilot="expert", profile="x.toml").validate()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_keeps_partial_episode(tmp_path, workers):
    store = tmp_path / "demos"
    command = [
        sys.executable, str(REPO / "scripts" / "collect_demos.py"), "--episodes", "100000", "--workers", str(workers),
        "--chunk-s", "0.05", "--out", str(store),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((store / "index").glob("*.jsonl"))) < workers:
        time.sleep(0.1)
    time.sleep(0.3)
    # Ctrl+C in a terminal signals the whole process group: the script and its workers.
    os.killpg(process.pid, signal.SIGINT)
    # The closing report reads every recorded episode, which takes a while on a loaded machine.
    _, stderr = process.communicate(timeout=180)

    assert process.returncode == 1, stderr
    assert "interrupted" in stderr
    demo_set = load_demos(store)
    partial = [e for e in demo_set.episodes if e.partial]
    assert len(demo_set.episodes) > len(partial) >= 1
    assert all(e.partial_reason == "interrupted (Ctrl+C)" for e in partial)
