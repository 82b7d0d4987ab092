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

from fightenv.screen.keys import KEY_NAMES, XKeyboardState, any_key_down
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


def start_one_round(display: str, policy: Path, out: Path, episodes: int = 1) -> subprocess.Popen:
    """Start scripts/dagger.py for one round of ``episodes`` episodes on the Arena window, the person correcting."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "dagger.py"), "--policy", str(policy), "--out", str(out),
         "--profile", str(ARENA_PROFILE), "--corrector", "human", "--rounds", "1", "--episodes-per-round",
         str(episodes), "--epochs", "1", "--no-progress"],
        cwd=ROOT, env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


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

    out = tmp_path / "dagger"
    window = launch_arena_window(display, "--seed", "5", "--round-time", "5", "--restart-delay", "0.5")
    keyboard = XKeyboardState(ARENA.keys)
    process = start_one_round(display, policy, out)
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


class TapThenIdleAgent:
    """An agent that holds ``button`` for the first 3 steps, then taps ``other`` every fourth step.

    Its release of ``button`` starts the person's hold (on a timer thread); its later presses of ``other``
    end the X server's autorepeat of the person's key, as a playing agent does.
    """

    name = "scripted"

    def __init__(self, button: int, other: int, on_release) -> None:
        self.button, self.other, self.on_release = button, other, on_release
        self.steps = 0

    def reset(self, env, seed):
        self.steps = 0

    def act(self, obs):
        from agents.session import Decision

        action = np.zeros(len(ARENA.buttons), dtype=np.uint8)
        if self.steps < 3:
            action[self.button] = 1
        elif self.steps == 3:
            self.on_release()
        elif self.steps % 4 == 0:
            action[self.other] = 1
        self.steps += 1
        return Decision(action=action, source="policy", probabilities=None)


@pytest.mark.screen
@pytest.mark.slow
def test_hold_after_agent_release_recorded(display, tmp_path, caplog):
    # The agent uses guard, lets go, and 0.1 s later the person holds guard for 1 s. A correction budget
    # of 3 steps is spent early in the hold: every held step is still recorded, with one warning.
    import threading

    import gymnasium as gym

    import fightenv
    from agents.correction import CorrectedPilot, CorrectionBudget, CorrectionMode
    from agents.dagger import _screen_corrector
    from agents.session import run_episode
    from demos.loader import load_demos
    from demos.store import EpisodeStore

    guard, punch = ARENA.buttons.index("guard"), ARENA.buttons.index("punch")
    guard_keysym = KEY_NAMES[ARENA.key_for_button["guard"]]
    window = launch_arena_window(display, "--seed", "5", "--round-time", "30")
    env = gym.make(fightenv.SCREEN_ID, profile=str(ARENA_PROFILE))

    def hold_guard() -> None:
        time.sleep(0.1)
        xdotool(display, "keydown", guard_keysym)
        time.sleep(1.0)
        xdotool(display, "keyup", guard_keysym)

    holder = threading.Thread(target=hold_guard)
    agent = TapThenIdleAgent(guard, punch, on_release=holder.start)
    corrector = None
    store_path = tmp_path / "corrections"
    try:
        corrector = _screen_corrector(env, ARENA.buttons, None)
        pilot = CorrectedPilot(agent, corrector, CorrectionMode.TAKEOVER, CorrectionBudget(3), holdoff_steps=2)
        store = EpisodeStore.open(
            store_path, "create", game="arena", button_names=ARENA.buttons, state_names=ARENA.state_names,
            frame_shape=env.unwrapped.frame_shape, decision_hz=ARENA.decision_hz, pilot="policy+human",
        )
        with caplog.at_level("WARNING", logger="agents.correction"):
            run_episode(env, pilot, seed=0, recorder=store, max_steps=40, reset_options={"start_now": True})
        store.close()
        holder.join(timeout=5)
    finally:
        if holder.is_alive():
            holder.join(timeout=5)
        xdotool(display, "keyup", guard_keysym)
        if corrector is not None:
            corrector.keyboard.close()
            corrector.overlay.close()
        env.close()
        window.terminate()
        window.wait(timeout=10)

    fields = load_demos(store_path).step_fields(0)
    corrected = fields.intervened & fields.has_corrector_action
    expected = np.zeros(len(ARENA.buttons), dtype=fields.corrector_action.dtype)
    expected[guard] = 1
    # 1 s at 15 steps/s, less the settle time and one step of slack at either end.
    assert corrected.sum() >= 12
    np.testing.assert_array_equal(fields.corrector_action[corrected], np.tile(expected, (corrected.sum(), 1)))
    np.testing.assert_array_equal(fields.action[corrected], fields.corrector_action[corrected])
    assert not fields.intervened[:4].any()
    assert pilot.interventions == 1

    warnings = [record for record in caplog.records if "budget is spent" in record.getMessage()]
    assert len(warnings) == 1
    assert corrector.budget_spent
    agent_view = corrector.overlay.last_image
    plain = corrector.overlay.draw(_idle_decision(), np.zeros(len(ARENA.buttons), np.uint8),
                                   np.zeros(len(ARENA.buttons), bool))
    spent = corrector.overlay.draw(_idle_decision(), np.zeros(len(ARENA.buttons), np.uint8),
                                   np.zeros(len(ARENA.buttons), bool), budget_spent=True)
    assert agent_view is not None
    assert not np.array_equal(plain[:24], spent[:24])
    # The overlay's last frame carries the notice: its header matches the spent drawing where the notice sits.
    np.testing.assert_array_equal(agent_view[:24, -135:], spent[:24, -135:])


def _idle_decision():
    from agents.session import Decision

    return Decision(action=np.zeros(len(ARENA.buttons), dtype=np.uint8), source="policy", probabilities=None)


@pytest.mark.screen
@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop_hotkey", "sigint"])
def test_stopped_run_exits_1(display, policy, tmp_path, how):
    import signal

    out = tmp_path / "dagger"
    # Short rounds keep the wait for a round start short; three of them outlast the stop.
    window = launch_arena_window(display, "--seed", "5", "--round-time", "5", "--restart-delay", "0.5")
    keyboard = XKeyboardState(ARENA.keys)
    process = start_one_round(display, policy, out, episodes=3)
    try:
        # Stop once the agent is playing (one of its keys is down).
        assert wait_until(lambda: keyboard.held().any() or process.poll() is not None, timeout_s=40)
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.5)
        if how == "sigint":
            process.send_signal(signal.SIGINT)
        else:
            xdotool(display, "key", KEY_NAMES[ARENA.hotkeys["stop"]])
        _, stderr = process.communicate(timeout=60)
        keys_down_after_exit = any_key_down(display)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        keyboard.close()
        window.terminate()
        window.wait(timeout=10)

    cause = "Ctrl+C" if how == "sigint" else "the stop hotkey"
    assert process.returncode == 1, stderr
    assert f"stopped in round 1 by {cause}" in stderr
    assert "continue with --resume" in stderr
    assert "Traceback" not in stderr
    assert keys_down_after_exit == []
    # The interrupted episode is kept for --resume.
    assert (out / "corrections" / "manifest.json").is_file()
