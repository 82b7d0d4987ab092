"""The Arena window program: command line, keys read from the X server, rounds restarting after the end."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time

import numpy as np
import pytest

from fightenv.arena.__main__ import parse_args
from fightenv.arena.window import WindowConfig
from fightenv.screen.keys import KEY_NAMES
from fightenv.screen.profile import ARENA_PROFILE, load_profile
from fightenv.screen.xvfb import launch_arena_window, private_display


def test_cli_defaults():
    window, config = parse_args(["--window"])

    assert window is True
    assert config == WindowConfig()


def test_cli_parses_options():
    _, config = parse_args(
        ["--window", "--difficulty", "hard", "--seed", "4", "--size", "320x240", "--fps", "30", "--position", "10,20"]
    )

    assert (config.difficulty, config.seed) == ("hard", 4)
    assert (config.width, config.height) == (320, 240)
    assert config.fps == 30.0
    assert config.position == (10, 20)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--size", "640by480"], "--size must look like 640x480, got '640by480'"),
        (["--fps", "100"], "fps must be from 1 to 60 frames per second, got 100.0"),
        (["--size", "32x32"], "width must be an integer from 64 to 4096 pixels, got 32"),
    ],
)
def test_cli_rejects_bad_values(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_main_without_window_flag_explains(capsys):
    from fightenv.arena.__main__ import main

    assert main([]) == 2
    assert "pass --window" in capsys.readouterr().err


def test_main_without_display_explains(monkeypatch, capsys):
    from fightenv.arena.__main__ import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)

    assert main(["--window"]) == 1
    assert "error: DISPLAY is not set" in capsys.readouterr().err


@pytest.fixture(scope="module")
def display():
    with private_display() as name:
        yield name


def forward_keysym(profile) -> str:
    """Return the X keysym name of the profile's forward key, as xdotool takes it."""
    return KEY_NAMES[profile.key_for_button["forward"]]


def read_window(reader, capture) -> dict[str, float]:
    return reader.read(capture.grab().pixels).values


def player_head_x(capture) -> float:
    """Return the column of the player's head (RGB 120, 160, 250) in the window, in pixels."""
    import cv2

    # Right after start-up the window may not show its first frame yet.
    deadline = time.monotonic() + 3.0
    while True:
        pixels = np.ascontiguousarray(capture.grab().pixels[:, :, :3])
        mask = cv2.inRange(pixels, (250, 160, 120), (250, 160, 120))
        moments = cv2.moments(mask, binaryImage=True)
        if moments["m00"] > 0:
            return moments["m10"] / moments["m00"]
        assert time.monotonic() < deadline, "the player's head is not visible"
        time.sleep(0.02)


@pytest.mark.screen
def test_held_key_moves_fighter_and_rounds_restart(display):
    from fightenv.screen.capture import WindowCapture
    from fightenv.screen.probes import StateReader

    profile = load_profile(ARENA_PROFILE)
    window = launch_arena_window(display, "--seed", "1", "--round-time", "2", "--restart-delay", "0.5")
    capture = WindowCapture(profile.window)
    reader = StateReader(profile)
    env = {**os.environ, "DISPLAY": display}
    try:
        # Wait for a fresh round, then hold the forward key with xdotool (XTest) for 0.5 s.
        deadline = time.monotonic() + 10
        while read_window(reader, capture)["time_left"] < 0.9 and time.monotonic() < deadline:
            time.sleep(0.02)
        start_x = player_head_x(capture)
        subprocess.run(["xdotool", "keydown", forward_keysym(profile)], env=env, check=True)
        time.sleep(0.5)
        subprocess.run(["xdotool", "keyup", forward_keysym(profile)], env=env, check=True)
        # At 2.6 m/s for 0.5 s the player walks about 1.3 m towards the opponent, on the right.
        assert player_head_x(capture) > start_x + 40

        # The 2 s round runs out, its end stays up, then a new round starts with a full timer.
        times = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            times.append(read_window(reader, capture)["time_left"])
            if min(times) == 0.0 and times[-1] > 0.95:
                break
            time.sleep(0.02)
        assert min(times) == 0.0
        assert times[-1] > 0.95
    finally:
        capture.close()
        window.send_signal(signal.SIGTERM)
        _, stderr = window.communicate(timeout=10)
    assert window.returncode == 0
    assert "round 1 over" in stderr
    assert "Arena window closed" in stderr


@pytest.mark.screen
def test_window_shows_frames_pixel_exact(display):
    import cv2
    import gymnasium as gym

    import fightenv  # noqa: F401 - registers fightenv/Arena-v0
    from fightenv.arena.window import XImageWindow
    from fightenv.screen.capture import WindowCapture
    from fightenv.screen.profile import WindowSpec

    # What the probes see through mss is exactly what the renderer drew, so their
    # agreement measured on rendered frames holds for captured ones.
    env = gym.make("fightenv/Arena-v0", render_mode="rgb_array")
    env.reset(seed=5)
    for _ in range(20):
        env.step(env.action_space.sample())
    frame = env.render()
    env.close()
    window = XImageWindow("pixel test", 640, 480, position=(50, 60))
    try:
        window.show(frame)
        window.display.sync()
        capture = WindowCapture(WindowSpec(title="pixel test"))
        try:
            grab = capture.grab()
        finally:
            capture.close()
    finally:
        window.close()

    assert (grab.left, grab.top) == (50, 60)
    assert np.array_equal(cv2.cvtColor(grab.pixels, cv2.COLOR_BGRA2RGB), frame)


@pytest.mark.screen
def test_frozen_capture_is_reported(display, tmp_path):
    from fightenv.arena.window import XImageWindow
    from fightenv.screen.env import ScreenEnv

    # A window drawn once and never again, as a hung or paused game looks; its start condition never holds.
    profile = tmp_path / "frozen.toml"
    profile.write_text(textwrap.dedent("""
        name = "frozen"
        [window]
        title = "frozen game"
        [buttons]
        a = "a"
        [[probes]]
        name = "red"
        kind = "color"
        colors = [[255, 0, 0]]
        [episode]
        start = [{ probe = "red", threshold = 0.5 }]
        start_timeout_s = 1.5
    """))
    window = XImageWindow("frozen game", 320, 240)
    window.show(np.full((240, 320, 3), 90, dtype=np.uint8))
    window.display.sync()
    env = ScreenEnv(profile, send_keys=False, listen_hotkeys=False, frozen_after_s=0.5)
    try:
        with pytest.raises(TimeoutError, match=r"episode start not seen within 1\.5 s: .*read \{'red': 0\.0\}\. The capture has not changed for"):
            env.reset()
    finally:
        env.close()
        window.close()


@pytest.mark.screen
def test_focus_only_ignores_unfocused_keys(display):
    from fightenv.screen.capture import WindowCapture
    from fightenv.screen.probes import StateReader

    profile = load_profile(ARENA_PROFILE)
    window = launch_arena_window(display, "--seed", "2", "--round-time", "30", "--focus-only")
    capture = WindowCapture(profile.window)
    reader = StateReader(profile)
    env = {**os.environ, "DISPLAY": display}
    try:
        # Without a window manager nothing has the focus yet: the held key is ignored.
        start_x = player_head_x(capture)
        subprocess.run(["xdotool", "keydown", forward_keysym(profile)], env=env, check=True)
        time.sleep(0.4)
        subprocess.run(["xdotool", "keyup", forward_keysym(profile)], env=env, check=True)
        unfocused_x = player_head_x(capture)
        assert abs(unfocused_x - start_x) < 10

        # With the focus on the game window the same key walks the fighter in.
        window_id = subprocess.run(
            ["xdotool", "search", "--name", "fightenv Arena"], env=env, capture_output=True, text=True, check=True,
        ).stdout.split()[0]
        subprocess.run(["xdotool", "windowfocus", "--sync", window_id], env=env, check=True)
        subprocess.run(["xdotool", "keydown", forward_keysym(profile)], env=env, check=True)
        time.sleep(0.4)
        subprocess.run(["xdotool", "keyup", forward_keysym(profile)], env=env, check=True)
        assert player_head_x(capture) > unfocused_x + 30
    finally:
        capture.close()
        window.terminate()
        window.wait(timeout=10)
