"""The screen env driving the Arena window program under Xvfb: frames from mss, keys through pynput."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time

import gymnasium as gym
import numpy as np
import pytest

import fightenv
from agents.session import Decision, run_episode
from fightenv.arena import BUTTONS, STATE_FEATURES
from fightenv.screen.capture import CaptureError, CaptureMonitor, Grab
from fightenv.screen.checks import CapabilityError, WindowNotFoundError, check_display
from fightenv.screen.keys import KEY_NAMES
from fightenv.screen.profile import ARENA_PROFILE, WindowSpec, load_profile
from fightenv.screen.xvfb import launch_arena_window, private_display

FORWARD, PUNCH = BUTTONS.index("forward"), BUTTONS.index("punch")
ARENA_HOTKEYS = load_profile(ARENA_PROFILE).hotkeys


@pytest.fixture(scope="module")
def display():
    with private_display() as name:
        yield name


@pytest.fixture(scope="module")
def arena_window(display):
    window = launch_arena_window(display, "--seed", "7", "--round-time", "8", "--restart-delay", "0.5")
    yield window
    window.terminate()
    window.wait(timeout=10)


class RushPilot:
    """Walks forward until in range, then jabs every other step; records the features it saw."""

    name = "rush"

    def __init__(self) -> None:
        self.features: list[dict[str, float]] = []

    def reset(self, env, seed):
        self.features.clear()
        self.state_names = env.unwrapped.state_names

    def act(self, obs):
        state = dict(zip(self.state_names, obs["state"]))
        self.features.append(state)
        action = np.zeros(len(BUTTONS), dtype=np.uint8)
        if state["in_range"]:
            action[PUNCH] = len(self.features) % 2
        else:
            action[FORWARD] = 1
        return Decision(action=action, source="policy")


class TimestampRecorder:
    def __init__(self) -> None:
        self.timestamps: list[float] = []
        self.ended_with: str | None = None

    def begin_episode(self, seed, first_obs):
        self.first_obs = first_obs

    def add_step(self, obs, decision, timestamp_s, reward):
        self.timestamps.append(timestamp_s)

    def end_episode(self, final_obs, outcome, info):
        self.ended_with = outcome


@pytest.mark.screen
@pytest.mark.slow
def test_session_plays_arena_window(display, arena_window):
    env = gym.make(fightenv.SCREEN_ID, profile=str(ARENA_PROFILE))
    try:
        unwrapped = env.unwrapped
        assert unwrapped.button_names == BUTTONS
        assert unwrapped.state_names == STATE_FEATURES
        assert unwrapped.decision_hz == 15.0
        assert unwrapped.game_name == "arena"
        assert env.action_space == gym.spaces.MultiBinary(10)
        assert env.observation_space["frame"].shape == (1, 84, 84)

        pilot, recorder = RushPilot(), TimestampRecorder()
        result = run_episode(env, pilot, seed=0, recorder=recorder, max_steps=200)
    finally:
        env.close()

    # The episode ran through the session loop and ended with the round.
    assert result.steps > 20
    assert result.outcome in ("win", "loss", "draw")
    assert recorder.ended_with == result.outcome
    assert np.all(np.diff(recorder.timestamps) > 0)
    assert result.actions.shape == (result.steps, 10)

    # The game responded: the fighter walked in, and a health bar dropped.
    first, seen = pilot.features[0], pilot.features
    assert first["time_left"] >= 0.97  # reset returned at a round's start
    assert first["own_health"] == 1.0
    assert first["opponent_health"] == 1.0
    assert min(f["distance"] for f in seen) < first["distance"] - 0.1
    assert min(min(f["own_health"], f["opponent_health"]) for f in seen) < 1.0

    # The loop measured itself at about the profile's rate.
    timing = result.final_info["timing"]
    assert 13.5 <= timing["achieved_hz"] <= 15.5
    assert {"capture", "preprocess", "probes", "policy", "send_keys"} <= set(timing["phases"])


def press_key(display: str, key: str) -> None:
    """Press and release the key with canonical name ``key`` (such as "f2" or "esc") through xdotool."""
    subprocess.run(["xdotool", "key", KEY_NAMES[key]], env={**os.environ, "DISPLAY": display}, check=True)


@pytest.mark.screen
def test_hotkeys_end_episode_and_stop(display, arena_window):
    from fightenv.screen.env import ScreenEnv, StopRequested

    env = ScreenEnv(ARENA_PROFILE)
    idle = np.zeros(10, dtype=np.uint8)
    try:
        env.reset()
        _, _, terminated, truncated, _ = env.step(idle)
        assert not (terminated or truncated)

        # The episode_end hotkey marks the episode's end: terminated, with no outcome read off the screen.
        press_key(display, ARENA_HOTKEYS["episode_end"])
        time.sleep(0.2)
        _, _, terminated, truncated, info = env.step(idle)
        assert terminated
        assert not truncated
        assert info["outcome"] is None

        # The stop hotkey ends the session: the running episode is truncated and the next reset raises.
        press_key(display, ARENA_HOTKEYS["stop"])
        time.sleep(0.2)
        _, _, terminated, truncated, info = env.step(idle)
        assert truncated
        assert info["stop_requested"]
        with pytest.raises(StopRequested, match="the stop hotkey was pressed"):
            env.reset()
    finally:
        env.close()


@pytest.mark.screen
def test_hotkey_listener_ignores_other_keys(display):
    from fightenv.screen.keys import HotkeyListener

    # Listen to two of the Arena's hotkeys; its button keys and its other hotkeys must be ignored.
    profile = load_profile(ARENA_PROFILE)
    listened = {action: profile.hotkeys[action] for action in ("pause", "stop")}
    actions: list[str] = []
    listener = HotkeyListener(listened, actions.append)
    listener.start()
    try:
        for key in (*profile.keys[:2], listened["pause"], "space", profile.hotkeys["episode_end"], listened["stop"]):
            press_key(display, key)
        time.sleep(0.3)
    finally:
        listener.stop()

    assert actions == ["pause", "stop"]


@pytest.mark.screen
def test_capture_follows_moved_window(display, arena_window):
    from fightenv.screen.capture import WindowCapture
    from fightenv.screen.probes import StateReader

    profile = load_profile(ARENA_PROFILE)
    capture = WindowCapture(profile.window)
    reader = StateReader(profile)
    env = {**os.environ, "DISPLAY": display}
    window_id = subprocess.run(
        ["xdotool", "search", "--name", "fightenv Arena"], env=env, capture_output=True, text=True, check=True,
    ).stdout.split()[0]
    try:
        before = capture.grab()
        assert before.pixels.shape == (480, 640, 4)
        subprocess.run(["xdotool", "windowmove", "--sync", window_id, "300", "200"], env=env, check=True)
        time.sleep(0.1)  # the window program redraws the exposed window within one frame

        grab = capture.grab()

        assert capture.box == (300, 200, 640, 480)
        assert (grab.left, grab.top) == (300, 200)
        # The sky in the top-left corner (RGB 34, 38, 52) is where it was in the client area.
        assert tuple(grab.pixels[4, 4, :3]) == (52, 38, 34)
        assert tuple(before.pixels[4, 4, :3]) == (52, 38, 34)
        assert reader.read(grab.pixels).state.shape == (len(STATE_FEATURES),)
    finally:
        subprocess.run(["xdotool", "windowmove", "--sync", window_id, "0", "0"], env=env, check=False)
        capture.close()


@pytest.mark.screen
def test_missing_window_lists_titles(display, arena_window):
    from fightenv.screen.capture import WindowCapture

    with pytest.raises(WindowNotFoundError, match=r"no visible window title contains 'No Such Game'\. Visible windows: \['fightenv Arena'\]"):
        WindowCapture(WindowSpec(title="No Such Game"))


@pytest.mark.screen
def test_black_capture_is_reported(display, tmp_path):
    from fightenv.screen.env import ScreenEnv

    # An empty part of the Xvfb screen, far from the Arena window, captures black.
    profile = tmp_path / "black.toml"
    profile.write_text(textwrap.dedent("""
        name = "black"
        [window]
        region = [1000, 800, 200, 200]
        [buttons]
        a = "a"
        [[probes]]
        name = "anything"
        kind = "color"
        colors = [[255, 255, 255]]
        [episode]
        start = [{ probe = "anything", threshold = 0.5 }]
    """))
    env = ScreenEnv(profile, send_keys=False, listen_hotkeys=False)
    try:
        with pytest.raises(CaptureError, match=r"the capture is black .* Switch the game to windowed or borderless"):
            env.reset()
    finally:
        env.close()


def test_wayland_session_rejected():
    with pytest.raises(CapabilityError, match=r"this is a Wayland session \(WAYLAND_DISPLAY='wayland-0'"):
        check_display({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"})
    with pytest.raises(CapabilityError, match=r"XDG_SESSION_TYPE='wayland'\); screen capture with mss"):
        check_display({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"})


def test_missing_display_rejected():
    with pytest.raises(CapabilityError, match=r"DISPLAY is not set, so there is no X server .*export DISPLAY=:99"):
        check_display({})


def test_unreachable_display_rejected():
    with pytest.raises(CapabilityError, match=r"cannot connect to the X server at DISPLAY=':987'"):
        check_display({"DISPLAY": ":987"})


def test_monitor_flags_black_and_frozen():
    monitor = CaptureMonitor()
    black = np.zeros((48, 64, 4), dtype=np.uint8)
    picture = np.full((48, 64, 4), 120, dtype=np.uint8)

    monitor.update(Grab(black, 10.0, 0, 0))
    monitor.update(Grab(black, 11.5, 0, 0))
    assert monitor.black_s(11.5) == pytest.approx(1.5)

    monitor.update(Grab(picture, 12.0, 0, 0))
    assert monitor.black_s(12.0) == 0.0
    monitor.update(Grab(picture.copy(), 15.0, 0, 0))
    assert monitor.frozen_s(15.0) == pytest.approx(3.0)

    changed = picture.copy()
    changed[8, 8] = 200
    monitor.update(Grab(changed, 16.0, 0, 0))
    assert monitor.frozen_s(16.0) == 0.0


def test_loop_timer_report_and_absorb():
    from fightenv.screen.timing import LoopTimer

    first, second = LoopTimer(10.0), LoopTimer(10.0)
    for i in range(11):
        first.mark_step(i * 0.1, overrun=(i == 5))
        first.add("capture", 0.001 * (i + 1))
    for i in range(6):
        second.mark_step(100.0 + i * 0.2, overrun=False)
        second.add("capture", 0.002)

    report = first.report()
    assert report.achieved_hz == pytest.approx(10.0)
    assert report.steps == 10
    assert report.overruns == 1
    assert report.phases["capture"].p50_ms == pytest.approx(6.0)
    assert report.phases["capture"].max_ms == pytest.approx(11.0)

    total = LoopTimer(10.0)
    total.absorb(first)
    total.absorb(second)
    combined = total.report()
    # 10 intervals in 1 s plus 5 intervals in 1 s; the gap between the runs does not count.
    assert combined.achieved_hz == pytest.approx(7.5)
    assert combined.steps == 15
    assert combined.phases["capture"].count == 17


@pytest.mark.screen
def test_bench_writes_results(tmp_path):
    from fightenv.screen.bench import BenchScreenConfig, format_results, run_benchmark, write_results

    results = run_benchmark(BenchScreenConfig(steps=20, hz=30.0, json=str(tmp_path / "bench.json")))
    path = write_results(results, tmp_path / "bench.json")
    text = format_results(results)

    per_step = results["capture_preprocess_probes"]
    assert 0.0 < per_step["p50_ms"] <= per_step["p99_ms"] <= per_step["max_ms"]
    assert results["timing"]["steps"] == 20
    assert 25.0 <= results["timing"]["achieved_hz"] <= 31.0
    assert set(results["timing"]["phases"]) == {"policy", "send_keys", "capture", "preprocess", "probes"}
    assert "capture + preprocess + probes per step" in text
    assert path.read_text().startswith("{")


@pytest.mark.screen
def test_unmapped_key_rejected():
    from Xlib import XK, X
    from Xlib import display as xdisplay

    from fightenv.screen.checks import check_keys

    # A private server whose keyboard mapping lacks "o", as a layout without the key would.
    with private_display() as name:
        connection = xdisplay.Display(name)
        keycode = connection.keysym_to_keycode(XK.string_to_keysym("o"))
        width = len(connection.get_keyboard_mapping(keycode, 1)[0])
        connection.change_keyboard_mapping(keycode, [[X.NoSymbol] * width])
        connection.sync()
        connection.close()

        check_keys(["d", "space", "f8"])
        with pytest.raises(CapabilityError, match=r"key\(s\) \['o \(keysym o\)'\] have no keycode .* map them to other keys"):
            check_keys(["d", "o"])


def test_preprocess_crop_grey_and_colour():
    from fightenv.screen.env import preprocess
    from fightenv.screen.profile import FrameSpec

    pixels = np.zeros((480, 640, 4), dtype=np.uint8)
    pixels[:, 320:] = (0, 0, 255, 255)  # BGRA: the right half is red

    grey = preprocess(pixels, FrameSpec(size=(84, 84)))
    assert grey.shape == (1, 84, 84)
    assert grey.dtype == np.uint8
    assert grey[0, 0, 0] == 0
    assert grey[0, 0, -1] == 76  # the BT.601 luma of pure red

    colour = preprocess(pixels, FrameSpec(crop=(320, 0, 320, 240), size=(60, 80), color=True))
    assert colour.shape == (3, 60, 80)
    assert np.all(colour[0] == 255)
    assert np.all(colour[1:] == 0)


def test_preprocess_rejects_crop_outside_capture():
    from fightenv.screen.env import preprocess
    from fightenv.screen.profile import FrameSpec

    pixels = np.zeros((480, 640, 4), dtype=np.uint8)
    with pytest.raises(CaptureError, match=r"\[frame\] crop \[600, 0, 100, 100\] reaches outside the 640x480 capture"):
        preprocess(pixels, FrameSpec(crop=(600, 0, 100, 100)))


def test_black_capture_is_no_ko(display):
    """An unmapped window captures black: no reward, no KO by the end probe, truncated after a second."""
    window = launch_arena_window(display, "--seed", "11", "--round-time", "30")
    env = gym.make(fightenv.SCREEN_ID, profile=str(ARENA_PROFILE))
    window_ids: list[str] = []
    try:
        env.reset()
        for _ in range(5):
            env.step(np.zeros(10, dtype=np.int8))
        # Other tests of this module may have an Arena window open too: unmap every one, map them back after.
        window_ids = subprocess.run(["xdotool", "search", "--name", "fightenv Arena"], capture_output=True,
                                    text=True, env={**os.environ, "DISPLAY": display}, check=True).stdout.split()
        for window_id in window_ids:
            subprocess.run(["xdotool", "windowunmap", window_id], env={**os.environ, "DISPLAY": display}, check=True)
        rewards, ends = [], []
        for _ in range(60):
            _, reward, terminated, truncated, info = env.step(np.zeros(10, dtype=np.int8))
            rewards.append(reward)
            if terminated or truncated:
                ends.append((terminated, truncated, info["outcome"]))
                break
    finally:
        env.close()
        for window_id in window_ids:
            subprocess.run(["xdotool", "windowmap", window_id], env={**os.environ, "DISPLAY": display}, check=False)
        window.terminate()
        window.wait(timeout=10)
    assert ends, "a second of black capture should end the episode"
    terminated, truncated, outcome = ends[0]
    assert truncated and not terminated
    assert outcome is None, "a black frame must not read as a KO"
    assert all(reward == 0.0 for reward in rewards[2:])


def test_reset_start_now_skips_start_probes(display, arena_window):
    env = gym.make(fightenv.SCREEN_ID, profile=str(ARENA_PROFILE))
    try:
        env.reset()
        for _ in range(30):  # two seconds into the round: the start probes no longer hold
            obs, *_ = env.step(np.zeros(10, dtype=np.int8))
        started_s = time.monotonic()
        obs, _ = env.reset(options={"start_now": True})
        waited_s = time.monotonic() - started_s
    finally:
        env.close()
    time_left = obs["state"][STATE_FEATURES.index("time_left")]
    assert time_left < 0.97, "the round was already under way"
    assert waited_s < 1.0


def test_reset_logs_wait_for_start(display, arena_window, caplog):
    # Mid-round the start probes do not hold, so reset waits; the start hotkey ends the wait.
    import threading

    start_keysym = KEY_NAMES[ARENA_HOTKEYS["episode_start"]]
    press_start = threading.Timer(
        0.5, subprocess.run, args=(["xdotool", "key", start_keysym],),
        kwargs={"env": {**os.environ, "DISPLAY": display}, "check": True},
    )
    env = gym.make(fightenv.SCREEN_ID, profile=str(ARENA_PROFILE))
    try:
        obs, _ = env.reset(options={"start_now": True})
        time_left = STATE_FEATURES.index("time_left")
        # Step until the round has run a while and has more than 2 s left: then no round can start
        # before the hotkey press.
        for _ in range(300):
            if 0.3 < obs["state"][time_left] < 0.9:
                break
            obs, *_ = env.step(np.zeros(10, dtype=np.int8))
        press_start.start()
        with caplog.at_level("INFO", logger="fightenv.screen.env"):
            env.reset()
    finally:
        press_start.join(timeout=5)
        env.close()
    waits = [record.getMessage() for record in caplog.records if "waiting for the episode start" in record.getMessage()]
    assert len(waits) == 1
    assert f"press {ARENA_HOTKEYS['episode_start'].upper()} or start a round in the game" in waits[0]
    assert "times out after 120 s" in waits[0]
