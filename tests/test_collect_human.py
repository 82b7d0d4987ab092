"""The human pilot under Xvfb: real key events from xdotool, and no leak of other keystrokes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.human import DEFAULT_BUTTON_KEYS, DEFAULT_HOTKEYS
from demos import load_demos
from fightenv.screen.keys import KEY_NAMES, normalize_key_name

REPO = Path(__file__).resolve().parents[1]
SECRET_WORDS = ("hunter2", "xyzzy", "plover")
# No key of this text is mapped to a button or a hotkey; test_secret_text_uses_no_mapped_key checks it.
SECRET_TEXT = "-".join(SECRET_WORDS)
# X keysym names of the human pilot's default keys (the Arena profile's), as xdotool takes them.
BUTTON = {button: KEY_NAMES[key] for button, key in DEFAULT_BUTTON_KEYS.items()}
HOTKEY = {control: KEY_NAMES[key] for control, key in DEFAULT_HOTKEYS.items()}

pytestmark = [pytest.mark.screen, pytest.mark.slow]


def xdotool(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, env={**os.environ, "DISPLAY": display}, timeout=30)


def wait_for_text(path: Path, text: str, timeout_s: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            pytest.fail(f"collect_demos exited with {process.returncode} before printing {text!r}:\n{path.read_text()}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {text!r} in the output of collect_demos:\n{path.read_text()}")


@pytest.fixture(scope="module")
def human_session(xvfb_display, tmp_path_factory):
    """Run a one-episode human session of 45 steps (3 s at 15 steps/s) driven by xdotool."""
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed; install the Debian package xdotool")
    tmp_path = tmp_path_factory.mktemp("human")
    store = tmp_path / "store"
    stdout_path = tmp_path / "stdout.txt"
    stderr_path = tmp_path / "stderr.txt"
    command = [
        sys.executable, str(REPO / "scripts" / "collect_demos.py"), "--pilot", "human", "--episodes", "1",
        "--countdown-s", "0", "--max-steps", "45", "--out", str(store),
    ]
    environment = {**os.environ, "DISPLAY": xvfb_display, "PYTHONPATH": str(REPO)}
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=environment, cwd=tmp_path)
        try:
            wait_for_text(stderr_path, "to start episode 1/1", 60, process)
            xdotool(xvfb_display, "key", HOTKEY["start"])
            wait_for_text(stderr_path, "recording episode 1/1", 20, process)

            # Hold forward, type unrelated text, then hold guard.
            xdotool(xvfb_display, "keydown", BUTTON["forward"])
            time.sleep(0.6)
            xdotool(xvfb_display, "keyup", BUTTON["forward"])
            xdotool(xvfb_display, "type", "--delay", "30", SECRET_TEXT)
            xdotool(xvfb_display, "keydown", BUTTON["guard"])
            time.sleep(0.6)
            xdotool(xvfb_display, "keyup", BUTTON["guard"])
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return process.returncode, store, stdout_path.read_text(), stderr_path.read_text(), tmp_path


def test_secret_text_uses_no_mapped_key():
    from fightenv.screen.profile import ARENA_PROFILE, load_profile

    profile = load_profile(ARENA_PROFILE)
    mapped = {*DEFAULT_BUTTON_KEYS.values(), *DEFAULT_HOTKEYS.values(), *profile.keys, *profile.hotkeys.values()}
    typed = {normalize_key_name(character) for character in SECRET_TEXT}

    assert typed.isdisjoint(mapped), f"SECRET_TEXT types mapped keys {sorted(typed & mapped)}"


def test_human_keys_recorded(human_session):
    returncode, store, _, stderr, _ = human_session
    assert returncode == 0, stderr
    demo_set = load_demos(store)
    actions = demo_set.actions(0)
    names = demo_set.button_names

    assert len(demo_set.episodes) == 1
    assert demo_set.episodes[0].pilot == "human"
    assert demo_set.episodes[0].length == 45
    assert demo_set.step_fields(0).sources() == ["human"] * 45
    assert actions[:, names.index("forward")].sum() >= 3
    assert actions[:, names.index("guard")].sum() >= 3
    # Only the two held keys are buttons; the typed text is not.
    others = [i for i, name in enumerate(names) if name not in ("forward", "guard")]
    assert actions[:, others].sum() == 0


def test_typed_text_leaks_nowhere(human_session):
    _, _, stdout, stderr, root = human_session
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".ep" for p in files)
    for word in SECRET_WORDS:
        assert word not in stdout
        assert word not in stderr
        for file in files:
            assert word.encode() not in file.read_bytes(), f"{word!r} found in {file}"


def test_human_telemetry_written(human_session):
    _, store, _, _, _ = human_session
    lines = (store / "telemetry" / "s0000-w000.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    assert len(lines) == 1
    assert entry["steps"] == 45
    assert entry["nominal_hz"] == 15.0
    assert entry["dropped_steps"] >= 0
    # Real-time pacing: 45 steps at 15 steps/s take about 3 s, never much less.
    assert 2.8 < entry["wall_time_s"] < 3.0 + 45 / 15.0
    assert entry["achieved_hz"] <= 15.0 * 1.05


def test_hotkeys_pause_end_discard_stop(xvfb_display, tmp_path):
    """Pause and resume, end an episode early, discard the next one, then stop the session."""
    store = tmp_path / "store"
    stderr_path = tmp_path / "stderr.txt"
    command = [
        sys.executable, str(REPO / "scripts" / "collect_demos.py"), "--pilot", "human", "--episodes", "5",
        "--countdown-s", "0", "--out", str(store),
    ]
    environment = {**os.environ, "DISPLAY": xvfb_display, "PYTHONPATH": str(REPO)}
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=environment, cwd=tmp_path)
        try:
            wait_for_text(stderr_path, "to start episode 1/5", 60, process)
            xdotool(xvfb_display, "key", HOTKEY["start"])
            wait_for_text(stderr_path, "recording episode 1/5", 20, process)
            xdotool(xvfb_display, "key", HOTKEY["pause"])
            wait_for_text(stderr_path, f"paused; press {DEFAULT_HOTKEYS['pause']} to resume", 10, process)
            time.sleep(0.5)
            xdotool(xvfb_display, "key", HOTKEY["pause"])
            wait_for_text(stderr_path, "resumed", 10, process)
            time.sleep(0.5)
            xdotool(xvfb_display, "key", HOTKEY["end"])
            wait_for_text(stderr_path, "to start episode 2/5", 20, process)

            xdotool(xvfb_display, "key", HOTKEY["start"])
            wait_for_text(stderr_path, "recording episode 2/5", 20, process)
            time.sleep(0.3)
            xdotool(xvfb_display, "key", HOTKEY["discard"])
            wait_for_text(stderr_path, "discarded episode s0000-w000-e000001", 20, process)
            xdotool(xvfb_display, "key", HOTKEY["stop"])
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    log = stderr_path.read_text()
    # Stopping before the 5 requested episodes is exit status 1; the recorded episode is kept.
    assert process.returncode == 1, log
    demo_set = load_demos(store)
    assert [e.episode_id for e in demo_set.episodes] == ["s0000-w000-e000000"]
    episode = demo_set.episodes[0]
    assert not episode.partial
    # About 1 s of play at 15 steps/s; the 0.5 s pause adds no steps.
    assert 8 <= episode.length <= 25
    timestamps = demo_set.step_fields(0).timestamp_s
    assert np.diff(timestamps).max() >= 0.4
    telemetry = [json.loads(line) for line in (store / "telemetry" / "s0000-w000.jsonl").read_text().splitlines()]
    assert len(telemetry) == 2
    # The episode ended early; the discarded one is in the telemetry too, under its own id.
    assert telemetry[0]["episode_id"] == "s0000-w000-e000000"
    assert telemetry[1]["episode_id"] == "s0000-w000-e000001"
    assert telemetry[0]["steps"] == episode.length
    assert f"session stopped by the {DEFAULT_HOTKEYS['stop']} hotkey after 1 of 5 episodes" in log


def test_profile_session_records_game_window(xvfb_display, tmp_path):
    """Record the Arena window program through its profile: the screen env captures, the person's keys are read."""
    from fightenv.screen.profile import ARENA_PROFILE, load_profile
    from fightenv.screen.xvfb import launch_arena_window

    # With a profile the pilot reads the profile's button keys and keeps its own hotkeys.
    forward = KEY_NAMES[load_profile(ARENA_PROFILE).key_for_button["forward"]]

    store = tmp_path / "store"
    stderr_path = tmp_path / "stderr.txt"
    window = launch_arena_window(xvfb_display, "--seed", "1", "--round-time", "6", "--restart-delay", "0.3")
    command = [
        sys.executable, str(REPO / "scripts" / "collect_demos.py"), "--pilot", "human", "--profile", str(ARENA_PROFILE),
        "--episodes", "1", "--countdown-s", "0", "--max-steps", "30", "--out", str(store),
    ]
    environment = {**os.environ, "DISPLAY": xvfb_display, "PYTHONPATH": str(REPO)}
    try:
        with open(stderr_path, "w") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=environment, cwd=tmp_path)
            try:
                wait_for_text(stderr_path, "to start episode 1/1", 60, process)
                xdotool(xvfb_display, "key", HOTKEY["start"])
                wait_for_text(stderr_path, "recording episode 1/1", 30, process)
                # The pilot and the game window both read the profile's forward key from the X server.
                xdotool(xvfb_display, "keydown", forward)
                time.sleep(0.6)
                xdotool(xvfb_display, "keyup", forward)
                process.wait(timeout=60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    finally:
        window.send_signal(signal.SIGTERM)
        window.communicate(timeout=10)

    log = stderr_path.read_text()
    assert process.returncode == 0, log
    demo_set = load_demos(store)
    episode = demo_set.episodes[0]
    assert demo_set.game == "arena"
    assert episode.profile_name == "arena"
    assert len(episode.profile_hash) == 16
    assert episode.length == 30
    assert demo_set.actions(0)[:, demo_set.button_names.index("forward")].sum() >= 3
    assert demo_set.trajectories[0].obs.get("frame").std() > 1
    telemetry = json.loads((store / "telemetry" / "s0000-w000.jsonl").read_text().splitlines()[0])
    assert telemetry["steps"] == 30
    assert "capture" in telemetry["phases"]
