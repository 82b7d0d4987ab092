"""scripts/dagger.py --profile on the Arena window program under Xvfb, with xdotool as the person correcting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fightenv.screen.keys import KEY_NAMES, any_key_down
from fightenv.screen.profile import ARENA_PROFILE, load_profile
from fightenv.screen.xvfb import launch_arena_window, private_display
from test_screen_keys import wait_until


ROOT = Path(__file__).resolve().parents[1]
ARENA = load_profile(ARENA_PROFILE)
TINY_NET = ["--cnn-channels", "4", "8", "8", "--frame-features", "16", "--state-hidden", "8", "--hidden", "16"]
# Buttons the person may press, rarest first; the test takes the first whose key the agent is not holding.
PERSON_BUTTONS = ("special", "grab", "guard")


def script(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def display():
    with private_display() as name:
        yield name


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    """Record 6 short expert episodes of the Arena env and train a tiny policy on them for one epoch."""
    root = tmp_path_factory.mktemp("dagger_screen")
    demos, run = root / "demos", root / "bc"
    result = script("collect_demos.py", "--pilot", "expert", "--episodes", "6", "--round-time-s", "8",
                    "--out", str(demos))
    assert result.returncode == 0, result.stderr
    result = script("train_bc.py", "--demos", str(demos), "--out", str(run), "--epochs", "1", "--no-progress",
                    "--no-plots", "--no-tensorboard", "--num-threads", "1", *TINY_NET)
    assert result.returncode == 0, result.stderr
    return run


def xdotool(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, check=True)


def test_profile_needs_human_corrector(tmp_path):
    result = script("dagger.py", "--policy", str(tmp_path), "--profile", str(ARENA_PROFILE))

    assert result.returncode == 2
    assert "--profile" in result.stderr
    assert "pass --corrector human" in result.stderr.lower()


@pytest.mark.screen
@pytest.mark.slow
def test_profile_window_missing(display, policy, tmp_path):
    result = script("dagger.py", "--policy", str(policy), "--out", str(tmp_path / "dagger"), "--profile",
                    str(ARENA_PROFILE), "--corrector", "human", "--no-progress")

    assert result.returncode == 2
    assert "no visible window title contains 'fightenv Arena'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.screen
@pytest.mark.slow
def test_human_correction_on_window(display, policy, tmp_path):
    from demos.loader import load_demos
    from fightenv.screen.keys import XKeyboardState

    out = tmp_path / "dagger"
    window = launch_arena_window(display, "--seed", "5", "--round-time", "5", "--restart-delay", "0.5")
    keyboard = XKeyboardState(ARENA.keys)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "dagger.py"), "--policy", str(policy), "--out", str(out),
         "--profile", str(ARENA_PROFILE), "--corrector", "human", "--rounds", "1", "--episodes-per-round", "1",
         "--epochs", "1", "--no-progress"],
        cwd=ROOT, env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    person_key = None
    try:
        # The agent is playing once one of its keys is down.
        assert wait_until(lambda: keyboard.held().any() or process.poll() is not None, timeout_s=40)
        assert process.poll() is None, process.communicate()[1]
        held = keyboard.held_names()
        person_button = next(b for b in PERSON_BUTTONS if ARENA.key_for_button[b] not in held)
        person_key = ARENA.key_for_button[person_button]

        # The person holds one key for a second, then lets go.
        xdotool(display, "keydown", KEY_NAMES[person_key])
        time.sleep(1.0)
        xdotool(display, "keyup", KEY_NAMES[person_key])
        _, stderr = process.communicate(timeout=60)
        keys_down_after_exit = any_key_down(display)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if person_key is not None:
            xdotool(display, "keyup", KEY_NAMES[person_key])
        keyboard.close()
        window.terminate()
        window.wait(timeout=10)

    assert process.returncode == 0, stderr
    assert keys_down_after_exit == []
    assert "echoes of them" in stderr

    rounds = json.loads((out / "rounds.json").read_text())["rounds"]
    assert [row["round"] for row in rounds] == [0, 1]
    assert rounds[1]["episodes"] == 1
    assert rounds[1]["interventions"] == 1
    assert rounds[1]["win_rate_source"] == "corrected_episodes"
    assert rounds[1]["closed_loop_recall"] is None
    assert rounds[0]["win_rate"] is None
    assert (out / "round_1" / "policy.safetensors").is_file()

    corrections = load_demos(out / "corrections")
    assert len(corrections) == 1
    fields = corrections.step_fields(0)
    button = ARENA.buttons.index(person_button)
    expected = np.zeros(len(ARENA.buttons), dtype=fields.corrector_action.dtype)
    expected[button] = 1
    corrected = fields.intervened & fields.has_corrector_action

    # The person's hold is one intervention, labelled with exactly the person's button.
    assert corrected.sum() >= 5
    np.testing.assert_array_equal(fields.corrector_action[corrected], np.tile(expected, (corrected.sum(), 1)))
    np.testing.assert_array_equal(fields.action[corrected], fields.corrector_action[corrected])
    # The agent pressed keys of its own while in control, and none of them read as the person's.
    agent_steps = ~fields.intervened
    assert fields.agent_action[agent_steps].any()
    assert not fields.has_corrector_action[agent_steps].any()
