"""scripts/dagger.py end to end on the Arena with tiny settings: rounds, store contents, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY_NET = ["--cnn-channels", "4", "8", "8", "--frame-features", "16", "--state-hidden", "8", "--hidden", "16"]


def script(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args], capture_output=True, text=True, timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """Record 10 expert episodes and train a tiny policy on them for one epoch."""
    root = tmp_path_factory.mktemp("dagger")
    demos, run = root / "demos", root / "bc"
    result = script("collect_demos.py", "--pilot", "expert", "--episodes", "10", "--out", str(demos))
    assert result.returncode == 0, result.stderr
    result = script("train_bc.py", "--demos", str(demos), "--out", str(run), "--epochs", "1", "--no-progress",
                    "--no-plots", "--no-tensorboard", *TINY_NET)
    assert result.returncode == 0, result.stderr
    return demos, run


def dagger_args(run: Path, out: Path, *extra: str) -> list[str]:
    return ["--policy", str(run), "--out", str(out), "--rounds", "1", "--episodes-per-round", "2",
            "--eval-episodes", "2", "--epochs", "1", "--no-progress", *extra]


@pytest.mark.slow
def test_dagger_round_writes_store_policy_and_table(trained, tmp_path):
    from demos.loader import load_demos

    _, run = trained
    out = tmp_path / "dagger"
    result = script("dagger.py", *dagger_args(run, out))
    assert result.returncode == 0, result.stderr

    rounds = json.loads((out / "rounds.json").read_text())["rounds"]
    assert [row["round"] for row in rounds] == [0, 1]
    for key in ("interventions", "intervention_rate", "corrections_per_button", "val_macro_f1", "val_macro_ap",
                "test_recall", "closed_loop_recall", "win_rate"):
        assert key in rounds[1]
    assert rounds[1]["episodes"] == 2
    assert (out / "round_1" / "policy.safetensors").is_file()
    assert "round" in result.stdout
    assert "win" in result.stdout

    corrections = load_demos(out / "corrections")
    assert len(corrections) == 2
    assert {info.round for info in corrections.episodes} == {1}
    fields = corrections.step_fields(0)
    assert fields.has_agent_action.all(), "every step stores the agent's own choice"
    corrected = fields.intervened & fields.has_corrector_action
    assert corrected.any()
    np.testing.assert_array_equal(fields.action[corrected], fields.corrector_action[corrected])
    # Hold-off steps: the corrector keeps control but has let go, so nothing is pressed.
    hold_off = fields.intervened & ~fields.has_corrector_action
    assert not fields.action[hold_off].any()
    assert set(fields.sources()) <= {"policy", "corrector"}


@pytest.mark.slow
def test_dagger_plain_mode_labels_steps(trained, tmp_path):
    from demos.loader import load_demos

    _, run = trained
    out = tmp_path / "plain"
    result = script("dagger.py", *dagger_args(run, out, "--mode", "label_all"))
    assert result.returncode == 0, result.stderr
    corrections = load_demos(out / "corrections")
    fields = corrections.step_fields(0)
    assert fields.has_corrector_action.any()
    assert not fields.intervened.any()
    np.testing.assert_array_equal(fields.action, fields.agent_action)


@pytest.mark.slow
def test_dagger_resumes_interrupted_round(trained, tmp_path):
    from demos.loader import list_episodes

    _, run = trained
    out = tmp_path / "resumed"
    args = dagger_args(run, out)
    args[args.index("--episodes-per-round") + 1] = "4"
    process = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "dagger.py"), *args], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill the run as soon as the first correction episode is on disk.
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            store = out / "corrections"
            if (store / "manifest.json").exists() and any(not e.partial for e in list_episodes(store)):
                break
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    kept = [e for e in list_episodes(out / "corrections") if not e.partial]
    assert 1 <= len(kept) < 4, "the run should have been killed in the middle of the round"

    result = script("dagger.py", *args, "--resume")
    assert result.returncode == 0, result.stderr
    finished = [e for e in list_episodes(out / "corrections") if not e.partial and e.round == 1]
    assert len(finished) == 4
    assert {e.episode_id for e in kept} <= {e.episode_id for e in finished}, "episodes recorded before are kept"
    rounds = json.loads((out / "rounds.json").read_text())["rounds"]
    assert [row["round"] for row in rounds] == [0, 1]


def test_dagger_missing_policy(tmp_path):
    result = script("dagger.py", "--policy", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no policy found in" in result.stderr
    assert "policy.json is missing" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists(), "a rejected run creates no output directory"


@pytest.mark.slow
def test_dagger_policy_with_other_buttons(trained, tmp_path):
    import shutil

    _, run = trained
    other = tmp_path / "other_buttons"
    shutil.copytree(run, other)
    config = json.loads((other / "policy.json").read_text())
    config["button_names"] = [name.upper() for name in config["button_names"]]
    (other / "policy.json").write_text(json.dumps(config))
    result = script("dagger.py", *dagger_args(other, tmp_path / "out"))
    assert result.returncode == 2
    assert "FORWARD" in result.stderr
    assert "forward" in result.stderr
    assert "Traceback" not in result.stderr


def test_dagger_refuses_existing_run_without_resume(trained, tmp_path):
    _, run = trained
    out = tmp_path / "existing"
    out.mkdir()
    (out / "rounds.json").write_text(json.dumps({"rounds": []}))
    result = script("dagger.py", *dagger_args(run, out))
    assert result.returncode == 2
    assert "already contains correction rounds; pass --resume" in result.stderr


@pytest.mark.slow
@pytest.mark.screen
def test_human_corrector_takes_over_and_stop_keeps_corrections(trained, tmp_path, xvfb_display):
    """Hold guard with xdotool during a human-corrected round, then press the stop hotkey."""
    from agents.human import DEFAULT_BUTTON_KEYS, DEFAULT_HOTKEYS
    from demos.loader import load_demos
    from fightenv.screen.keys import KEY_NAMES

    # The human corrector reads the Arena's default keys; xdotool takes their X keysym names.
    guard_key = KEY_NAMES[DEFAULT_BUTTON_KEYS["guard"]]
    stop_key = KEY_NAMES[DEFAULT_HOTKEYS["stop"]]
    start_key = KEY_NAMES[DEFAULT_HOTKEYS["start"]]

    _, run = trained
    out = tmp_path / "human"
    environment = {**os.environ, "DISPLAY": xvfb_display}
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "dagger.py"),
             *dagger_args(run, out, "--corrector", "human", "--countdown-s", "0")],
            cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 120
            while "to start episode 1/" not in stderr_path.read_text():
                assert process.poll() is None, stderr_path.read_text()
                assert time.monotonic() < deadline, "the human round did not prompt for the start hotkey"
                time.sleep(0.1)
            time.sleep(1.0)
            assert "hold any mapped key to take over" in stderr_path.read_text()
            subprocess.run(["xdotool", "key", start_key], env=environment, check=True)
            time.sleep(1.0)
            subprocess.run(["xdotool", "keydown", guard_key], env=environment, check=True)
            time.sleep(1.0)
            subprocess.run(["xdotool", "keyup", guard_key], env=environment, check=True)
            time.sleep(0.5)
            subprocess.run(["xdotool", "key", stop_key], env=environment, check=True)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    log = stderr_path.read_text()
    assert process.returncode == 1, log
    assert "stopped in round 1 by the stop hotkey" in log
    assert "Traceback" not in log

    corrections = load_demos(out / "corrections")
    fields = corrections.step_fields(0)
    guard = corrections.button_names.index("guard")
    assert fields.intervened.sum() >= 5, "about a second of held guard should be stored as corrections"
    assert fields.corrector_action[fields.intervened][:, guard].any()
    assert set(fields.sources()) <= {"policy", "corrector"}
    assert corrections.episodes[0].partial, "the episode the stop hotkey cut short is kept as partial"


def test_overlay_draws_controller_and_help():
    from agents.human_corrector import HELP_COLOUR, PLAYER_COLOUR, CorrectionOverlay
    from agents.session import Decision

    names = ("forward", "guard")
    overlay = CorrectionOverlay(names, np.array([0.5, 0.3]), show=False)
    agent = Decision(action=np.array([1, 0], np.uint8), source="policy", probabilities=np.array([0.9, 0.28]))
    quiet = overlay.draw(agent, np.zeros(2, np.uint8), np.zeros(2, bool))
    helped = overlay.draw(agent, np.array([0, 1], np.uint8), np.array([False, True]))
    assert not np.any(np.all(quiet == HELP_COLOUR, axis=-1))
    assert np.any(np.all(helped == HELP_COLOUR, axis=-1)), "a help request draws a yellow frame"
    assert np.any(np.all(helped == PLAYER_COLOUR, axis=-1)), "buttons the player holds are drawn in orange"


@pytest.mark.slow
@pytest.mark.screen
def test_relabel_replays_last_round_and_stores_labels(trained, tmp_path, xvfb_display):
    from demos.loader import load_demos

    _, run = trained
    out = tmp_path / "relabel"
    result = script("dagger.py", *dagger_args(run, out))
    assert result.returncode == 0, result.stderr
    before = load_demos(out / "corrections")

    environment = {**os.environ, "DISPLAY": xvfb_display}
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "dagger.py"), "--relabel", str(out), "--replay-speed", "4",
             "--countdown-s", "0"],
            cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 60
            while "to start replay 1/1" not in stderr_path.read_text():
                assert process.poll() is None, stderr_path.read_text()
                assert time.monotonic() < deadline, "the replay did not prompt for the start hotkey"
                time.sleep(0.05)
            time.sleep(0.5)
            subprocess.run(["xdotool", "key", "F1"], env=environment, check=True)
            subprocess.run(["xdotool", "keydown", "d"], env=environment, check=True)
            time.sleep(1.0)
            subprocess.run(["xdotool", "keyup", "d"], env=environment, check=True)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, stderr_path.read_text()

    after = load_demos(out / "corrections")
    assert len(after) == len(before) + 1
    relabelled = after.episodes[-1]
    assert relabelled.pilot == "relabel"
    assert relabelled.round == 1
    fields = after.step_fields(len(after) - 1)
    replayed = before.step_fields(len(before) - 1)
    guard = after.button_names.index("guard")
    assert fields.has_corrector_action.all()
    assert fields.corrector_action[:, guard].sum() >= 5, "about a second of held guard becomes labels"
    np.testing.assert_array_equal(fields.agent_action, replayed.action[: len(fields.agent_action)])
    np.testing.assert_array_equal(after.trajectories[-1].obs.get("frame"), before.trajectories[-1].obs.get("frame"))


@pytest.mark.slow
def test_dagger_demos_with_other_buttons(trained, tmp_path):
    import shutil

    demos, run = trained
    other = tmp_path / "other_demos"
    shutil.copytree(demos, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["button_names"] = [("taunt" if name == "special" else name) for name in manifest["button_names"]]
    (other / "manifest.json").write_text(json.dumps(manifest))
    result = script("dagger.py", *dagger_args(run, tmp_path / "out", "--demos", str(other)))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "taunt" in result.stderr
    assert "special" in result.stderr
