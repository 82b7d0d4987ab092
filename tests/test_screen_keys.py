"""Key output releases every held key on each way out, checked through the X server with real processes and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fightenv.screen.keys import KEY_NAMES
from fightenv.screen.profile import ARENA_PROFILE, load_profile
from fightenv.screen.xvfb import launch_arena_window, private_display

pytestmark = pytest.mark.screen

REPO = Path(__file__).resolve().parent.parent
ARENA = load_profile(ARENA_PROFILE)
# Three of the Arena's button keys; KEYS[0] is its forward key, which PLAYER holds.
KEYS = tuple(ARENA.key_for_button[button] for button in ("forward", "punch", "jump"))
PAUSE_KEYSYM = KEY_NAMES[ARENA.hotkeys["pause"]]

# Holds the keys named in argv[2:] down with a KeySender, prints "held", then leaves the way argv[1] names.
HOLDER = r"""
import sys, time
from fightenv.screen.keys import KeySender

mode, keys = sys.argv[1], sys.argv[2:]
sender = KeySender(keys, watchdog_s=0.5 if mode == "watchdog" else 60.0)
sender.send([1] * len(keys))
print("held", flush=True)
if mode == "close":
    sys.stdin.readline()
    sender.close()
    print("closed", flush=True)
    sys.stdin.readline()
elif mode == "exception":
    sys.stdin.readline()
    with sender:
        raise RuntimeError("failure inside the control loop")
elif mode in ("signal", "kill"):
    while True:
        sender.heartbeat()
        time.sleep(0.01)
elif mode == "watchdog":
    time.sleep(60)  # a stalled loop: neither send nor heartbeat
"""

# Plays the Arena window through the screen env holding "forward", printing each step's held keys.
PLAYER = r"""
import numpy as np, gymnasium as gym, fightenv

env = gym.make("fightenv/Screen-v0", profile="fightenv/profiles/arena.toml")
env.reset()
action = np.zeros(10, dtype=np.uint8)
action[0] = 1
print("stepping", flush=True)
try:
    while True:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
finally:
    env.close()
"""


@pytest.fixture(scope="module")
def display():
    with private_display() as name:
        yield name


@pytest.fixture
def keyboard(display):
    from fightenv.screen.keys import XKeyboardState

    state = XKeyboardState(KEYS)
    yield state
    # Leave no key down for the next test, whatever this one did.
    keysyms = [KEY_NAMES[key] for key in KEYS]
    subprocess.run(["xdotool", "keyup", *keysyms], env={**os.environ, "DISPLAY": display}, check=False)
    state.close()


def start(display: str, code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO, env={**os.environ, "DISPLAY": display},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_line(process: subprocess.Popen, expected: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip() == expected:
            return
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"no {expected!r} line from the subprocess: {process.stderr.read()}")


def wait_until(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def all_down(keyboard) -> bool:
    return bool(keyboard.held().all())


def none_down(keyboard) -> bool:
    return not keyboard.held().any()


def test_sigkill_leaves_keys_down(display, keyboard):
    # The control case: a process that cannot release its keys leaves them down, so the checks below can fail.
    holder = start(display, HOLDER, "kill", *KEYS)
    wait_for_line(holder, "held")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)

    assert all_down(keyboard)


def test_close_releases_keys(display, keyboard):
    holder = start(display, HOLDER, "close", *KEYS)
    wait_for_line(holder, "held")
    assert wait_until(lambda: all_down(keyboard))

    holder.stdin.write("\n")
    holder.stdin.flush()
    wait_for_line(holder, "closed")
    assert none_down(keyboard)
    assert holder.poll() is None

    holder.communicate("\n", timeout=30)


def test_exception_releases_keys(display, keyboard):
    holder = start(display, HOLDER, "exception", *KEYS)
    wait_for_line(holder, "held")
    assert wait_until(lambda: all_down(keyboard))

    _, stderr = holder.communicate("\n", timeout=30)

    assert holder.returncode == 1
    assert "failure inside the control loop" in stderr
    assert none_down(keyboard)


@pytest.mark.parametrize(("signum", "returncode"), [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_signal_releases_keys(display, keyboard, signum, returncode):
    # Python re-raises an unhandled SIGINT on exit (return code -2); SIGTERM becomes SystemExit(143).
    holder = start(display, HOLDER, "signal", *KEYS)
    wait_for_line(holder, "held")
    assert wait_until(lambda: all_down(keyboard))

    holder.send_signal(signum)
    _, stderr = holder.communicate(timeout=30)

    assert holder.returncode == returncode
    assert f"signal {signal.Signals(signum).name}: released keys {list(KEYS)}" in stderr
    assert none_down(keyboard)


def test_signal_inside_press_deferred(display, keyboard):
    # A signal that arrives inside an X call is handled once the call returns, so that the handler's own X
    # calls cannot wait on a lock that the interrupted call holds.
    from fightenv.screen.keys import KeySender

    sender = KeySender(KEYS[:1], watchdog_s=None)
    controller = sender._controller
    calls = []

    class SignallingController:
        """The real controller, with SIGTERM arriving at the start of every press."""

        def press(self, key):
            signal.raise_signal(signal.SIGTERM)
            calls.append("press")
            controller.press(key)

        def release(self, key):
            calls.append("release")
            controller.release(key)

    sender._controller = SignallingController()
    try:
        with pytest.raises(SystemExit) as exit_info:
            sender.send([1])
    finally:
        sender.close()

    assert exit_info.value.code == 128 + signal.SIGTERM
    assert calls == ["press", "release"]
    assert none_down(keyboard)


def test_watchdog_releases_stalled_keys(display, keyboard):
    holder = start(display, HOLDER, "watchdog", *KEYS)
    wait_for_line(holder, "held")
    assert wait_until(lambda: all_down(keyboard), timeout_s=0.4)

    assert wait_until(lambda: none_down(keyboard), timeout_s=2.0)
    assert holder.poll() is None  # released by the watchdog, not by an exit

    holder.kill()
    holder.wait(timeout=30)


@pytest.mark.slow
def test_pause_hotkey_releases_and_resumes(display, keyboard):
    window = launch_arena_window(display, "--seed", "3", "--round-time", "30")
    player = start(display, PLAYER)
    try:
        wait_for_line(player, "stepping", timeout_s=60)
        forward = lambda: bool(keyboard.held()[0])  # noqa: E731 - KEYS[0] is the Arena's forward key
        assert wait_until(forward)

        # Pause: every key goes up at once and stays up while paused.
        subprocess.run(["xdotool", "key", PAUSE_KEYSYM], env={**os.environ, "DISPLAY": display}, check=True)
        assert wait_until(lambda: none_down(keyboard), timeout_s=5.0)
        time.sleep(0.5)
        assert none_down(keyboard)
        assert player.poll() is None

        # Resume: the next step presses forward again.
        subprocess.run(["xdotool", "key", PAUSE_KEYSYM], env={**os.environ, "DISPLAY": display}, check=True)
        assert wait_until(forward, timeout_s=5.0)

        # SIGTERM while stepping through the env.
        player.send_signal(signal.SIGTERM)
        player.communicate(timeout=30)
        assert none_down(keyboard)
    finally:
        player.kill()
        window.terminate()
        window.wait(timeout=10)


def test_echo_filter_window():
    from fightenv.screen.keys import KeyEchoFilter

    echo = KeyEchoFilter(window_s=0.2)
    echo.expect("a", True)

    assert echo.consume("a", True)
    assert echo.consume("a", True)  # the duplicate and autorepeat presses of a held key
    assert not echo.consume("g", True)

    echo.expect("a", False)
    assert echo.consume("a", False)
    time.sleep(0.3)
    assert not echo.consume("a", True)
    assert echo.sent == 2
    assert echo.dropped == 3


def test_keyboard_state_drops_sender_echoes(display, keyboard):
    # A KeySender and a listener in one process: the sender's keys must not read as a person's,
    # while a key typed by another client (xdotool, as a person) must.
    from agents.human import KeyboardState
    from fightenv.screen.keys import KeyEchoFilter, KeySender

    echo = KeyEchoFilter()
    buttons = ("forward", "punch", "special")
    state = KeyboardState(buttons, ARENA.key_for_button, echo=echo).start()
    sender = KeySender([ARENA.key_for_button[b] for b in buttons], watchdog_s=None, handle_signals=False, echo=echo)
    person_keysym = KEY_NAMES[ARENA.key_for_button["special"]]
    try:
        sender.send([1, 1, 0])
        assert wait_until(lambda: keyboard.held()[:2].all(), timeout_s=2.0)
        time.sleep(0.8)  # long enough for autorepeat presses of the held keys
        subprocess.run(["xdotool", "keydown", person_keysym], env={**os.environ, "DISPLAY": display}, check=True)
        assert wait_until(lambda: state.held_now()[2], timeout_s=2.0)
        held_with_person = state.held_now()
        sender.send([0, 0, 0])
        subprocess.run(["xdotool", "keyup", person_keysym], env={**os.environ, "DISPLAY": display}, check=True)
        assert wait_until(lambda: not state.held_now().any(), timeout_s=2.0)
        time.sleep(0.2)
        state.sample()  # clears the person's press, which a sample reports once even after its release
        held_after = state.sample()
    finally:
        sender.close()
        state.close()

    assert held_with_person.tolist() == [False, False, True]
    assert not held_after.any()
    assert echo.dropped >= 2


def test_sender_leaves_person_keys(display, keyboard):
    from fightenv.screen.keys import KeySender

    sender = KeySender(KEYS, watchdog_s=None, handle_signals=False)
    try:
        sender.send([1, 1, 1], leave=[True, False, False])
        assert wait_until(lambda: keyboard.held()[1:].all(), timeout_s=2.0)
        assert not keyboard.held()[0]

        # A key the sender holds and the person now holds too is not released under them.
        sender.send([0, 0, 0], leave=[False, True, False])
        assert wait_until(lambda: not keyboard.held()[2], timeout_s=2.0)
        assert keyboard.held()[1]
        assert sender.held == (KEYS[1],)
    finally:
        sender.close()
    assert none_down(keyboard)


def test_person_hold_after_agent_release(display, keyboard):
    # The agent taps punch, then presses forward; the person holds punch from 0.1 s after the agent's release.
    # The agent's later press ends the X server's autorepeat of the person's key, so only the key state
    # (XQueryKeymap) shows the hold for its whole length.
    from agents.human import KEYMAP_SETTLE_S, KeyboardState
    from fightenv.screen.keys import KeyEchoFilter, KeySender

    echo = KeyEchoFilter()
    buttons = ("forward", "punch", "special")
    state = KeyboardState(buttons, ARENA.key_for_button, echo=echo).start()
    sender = KeySender([ARENA.key_for_button[b] for b in buttons], watchdog_s=None, handle_signals=False, echo=echo)
    person_keysym = KEY_NAMES[ARENA.key_for_button["punch"]]
    environ = {**os.environ, "DISPLAY": display}
    samples = []
    try:
        sender.send([0, 1, 0])
        time.sleep(0.2)
        sender.send([0, 0, 0])
        time.sleep(0.1)
        subprocess.run(["xdotool", "keydown", person_keysym], env=environ, check=True)
        held_from_s = time.monotonic()
        time.sleep(0.1)
        sender.send([1, 0, 0], leave=state.held_now())
        # At least 1 s and 12 samples, however slowly a loaded machine samples.
        while time.monotonic() - held_from_s < 1.0 or len(samples) < 12:
            samples.append(state.sample())
            time.sleep(1 / 15)
        subprocess.run(["xdotool", "keyup", person_keysym], env=environ, check=True)
        sender.send([0, 0, 0])
        time.sleep(KEYMAP_SETTLE_S + 0.05)
        state.sample()  # clears the presses the listener saw during the hold
        after = state.sample()
    finally:
        sender.close()
        state.close()

    samples = np.array(samples)
    assert len(samples) >= 12
    # Every sample of the hold reads punch, and none reads the agent's forward.
    assert samples[:, 1].all()
    assert not samples[:, 0].any()
    assert not after.any()
