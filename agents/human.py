"""The human pilot: a person plays with the keyboard, in real time, while every step is recorded.

Only keys mapped to buttons and the control hotkeys are read. Every other key
event returns from the listener callback before anything is stored, counted or
logged, so text typed into other windows during a session never reaches the
store, the logs or the terminal.

Default keys come from the Arena's game profile, ``fightenv/profiles/arena.toml``
(a game profile brings its own button keys):

    buttons   Right forward, Left back, Up sidestep_in, Down sidestep_out,
              Space jump, a punch, s kick, d guard, f grab, g special
    hotkeys   F1 start the next episode, F2 pause or resume, F3 end the episode,
              F4 discard the last episode, Esc stop the session

pynput reads keys from the X server (Linux with X11 or Xvfb; Wayland is not
supported). A press and release between two decisions still counts as held
for the next decision, so taps shorter than one step are not lost.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from agents.session import Decision, Observation, run_episode
from fightenv.screen.keys import KeyEchoFilter, XKeyboardState, name_of_pynput_key, normalize_key_name
from fightenv.screen.profile import ARENA_PROFILE, Profile, ProfileError, load_profile

logger = logging.getLogger(__name__)

HOTKEY_CONTROLS = ("start", "pause", "end", "discard", "stop")
PROFILE_HOTKEY_ACTIONS: dict[str, str] = {
    "start": "episode_start",
    "pause": "pause",
    "end": "episode_end",
    "stop": "stop",
}
"""Pilot control to the game profile's ``[hotkeys]`` action for the same control."""
PILOT_HOTKEYS: dict[str, str] = {"start": "f1", "discard": "f4"}
"""Keys of the controls a profile may lack. Profiles have no discard action, because the
screen env that reads them does not own the demo store, and their start action is optional."""


def hotkeys_from_profile(profile: Profile) -> dict[str, str]:
    """Map the profile's ``[hotkeys]`` to the pilot's controls; start and discard fall back to ``PILOT_HOTKEYS``."""
    hotkeys: dict[str, str] = {}
    for control in HOTKEY_CONTROLS:
        action = PROFILE_HOTKEY_ACTIONS.get(control)
        if action in profile.hotkeys:
            hotkeys[control] = profile.hotkeys[action]
        elif control in PILOT_HOTKEYS:
            hotkeys[control] = PILOT_HOTKEYS[control]
        else:
            raise ProfileError(
                f"{profile.path}: hotkeys.{action}: missing, but the human pilot needs a key for {control}; "
                f"add {action} = \"<key>\" to [hotkeys]"
            )
    return hotkeys


# One key map for the Arena: the window program, the screen env and this pilot all read arena.toml.
_ARENA_PROFILE = load_profile(ARENA_PROFILE)
DEFAULT_BUTTON_KEYS: dict[str, str] = _ARENA_PROFILE.key_for_button
DEFAULT_HOTKEYS: dict[str, str] = hotkeys_from_profile(_ARENA_PROFILE)
STATUS_INTERVAL_S = 0.5
KEYMAP_SETTLE_S = 0.05
"""Seconds after the agent's last key event on a key before a held key there counts as the person's.

Measured with ``python -m fightenv.screen.keymap_latency`` (Xvfb 21.1, pynput 1.8, a shared 2-core VM under
load): another X connection's ``XQueryKeymap`` showed an XTest press or release 0.5 ms (p50) and at most 6 ms
after the send returned. 50 ms leaves a wide margin on a slower X server."""


class KeyboardState:
    """Held buttons and pending hotkeys, updated by a pynput listener thread.

    ``button_keys`` maps each button name to a key name; ``hotkeys`` maps the
    controls start, pause, end, discard and stop to key names. None for either
    takes the Arena's keys (``DEFAULT_BUTTON_KEYS``, ``DEFAULT_HOTKEYS``).

    ``echo`` is the ``KeyEchoFilter`` of a key sender in this process (a
    screen env's ``key_echo``). With it, the held buttons come from the X
    server's key state (``XQueryKeymap``) less the keys the agent holds now or
    sent an event on within ``settle_s``, and the listener adds only presses
    that are not echoes (taps shorter than a step). Listening alone cannot
    tell who holds a key: the agent's XTest events look typed, and the X
    server autorepeats only the last key pressed, so the agent's next press
    ends the autorepeat of a key the person has down.

    NOTE: the X server keeps one down state per key, so a key that agent and
    person both hold reads as the agent's. The person's press is seen only
    after the agent's release plus ``settle_s``, and under Xvfb (one XTest
    device for both) the agent's release lifts the person's key as well.
    Whether a real keyboard's key stays down then on Xorg is untested.
    """

    def __init__(
        self,
        button_names: Sequence[str],
        button_keys: Mapping[str, str] | None = None,
        hotkeys: Mapping[str, str] | None = None,
        echo: KeyEchoFilter | None = None,
        settle_s: float = KEYMAP_SETTLE_S,
    ) -> None:
        if not settle_s >= 0:
            raise ValueError(f"settle_s must be seconds >= 0, got {settle_s!r}")
        button_keys = dict(DEFAULT_BUTTON_KEYS if button_keys is None else button_keys)
        hotkeys = dict(DEFAULT_HOTKEYS if hotkeys is None else hotkeys)
        missing = [name for name in button_names if name not in button_keys]
        if missing:
            raise ValueError(f"no key is mapped to button(s) {missing}; map every button of {list(button_names)}")
        clashes = {normalize_key_name(k) for k in button_keys.values()} & {normalize_key_name(k) for k in hotkeys.values()}
        if clashes:
            raise ValueError(f"key(s) {sorted(clashes)} are mapped both to a button and to a hotkey; pick other keys")
        self.button_names = tuple(button_names)
        self.button_keys = {name: normalize_key_name(button_keys[name]) for name in button_names}
        self.hotkeys = {control: normalize_key_name(key) for control, key in hotkeys.items()}
        self._button_of_key = {key: i for i, key in enumerate(self.button_keys[n] for n in self.button_names)}
        self._hotkey_of_key = {key: control for control, key in self.hotkeys.items()}
        self.echo = echo
        self.settle_s = settle_s
        self._keymap: XKeyboardState | None = None
        self._lock = threading.Lock()
        self._held = np.zeros(len(button_names), dtype=np.uint8)
        self._pressed_since_sample = np.zeros(len(button_names), dtype=np.uint8)
        self._events: set[str] = set()
        self._event_signal = threading.Condition(self._lock)
        self._listener = None

    def start(self) -> KeyboardState:
        """Start listening; raises ``DisplayError`` (a ``RuntimeError``) when no X display is available."""
        if not os.environ.get("DISPLAY"):
            wayland = " (Wayland is not supported; run an X11 session)" if os.environ.get("WAYLAND_DISPLAY") else ""
            from fightenv.arena.env import DisplayError

            raise DisplayError(
                f"--pilot human reads the keyboard through an X display, but DISPLAY is unset{wayland}. "
                f"Run it in an X11 desktop session, or under Xvfb for tests."
            )
        from pynput import keyboard

        self._listener = keyboard.Listener(on_press=self._on_press, on_release=self._on_release)
        self._listener.start()
        self._listener.wait()
        if self.echo is not None:
            self._keymap = XKeyboardState([self.button_keys[name] for name in self.button_names])
        return self

    def close(self) -> None:
        """Stop the listener thread and close the key state's X connection."""
        if self._listener is not None:
            self._listener.stop()
            # Wait for the thread to leave its X connection, so closing the display afterwards cannot break it.
            self._listener.join(timeout=2.0)
            self._listener = None
        if self._keymap is not None:
            self._keymap.close()
            self._keymap = None

    def __enter__(self) -> KeyboardState:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # The two callbacks run on the listener thread for every key event on the display.
    # Unmapped keys return at once: nothing about them is stored, counted or logged.

    def _on_press(self, key) -> None:
        name = name_of_pynput_key(key)
        button = self._button_of_key.get(name)
        if button is not None:
            if self.echo is not None and self.echo.consume(name, True):
                return
            with self._lock:
                self._held[button] = 1
                self._pressed_since_sample[button] = 1
            return
        control = self._hotkey_of_key.get(name)
        if control is not None:
            with self._event_signal:
                self._events.add(control)
                self._event_signal.notify_all()

    def _on_release(self, key) -> None:
        name = name_of_pynput_key(key)
        button = self._button_of_key.get(name)
        if button is not None:
            if self.echo is not None and self.echo.consume(name, False):
                return
            with self._lock:
                self._held[button] = 0

    def sample(self) -> np.ndarray:
        """Return the buttons held now or pressed since the last sample, ``(n,)`` uint8."""
        with self._lock:
            pressed = self._pressed_since_sample.copy()
            self._pressed_since_sample[:] = 0
            held = self._held.copy()
        if self._keymap is not None:
            held = self._person_keys_down().astype(np.uint8)
        return held | pressed

    def held_now(self) -> np.ndarray:
        """Return the buttons whose keys are down now, ``(n,)`` bool, without the presses since the last sample."""
        if self._keymap is not None:
            return self._person_keys_down()
        with self._lock:
            return self._held.astype(bool)

    def _person_keys_down(self) -> np.ndarray:
        """Return the buttons whose keys the X server has down, less those the agent has down or just sent."""
        down = self._keymap.held()
        agent = self.echo.busy(self._keymap.names, self.settle_s)
        return down & ~agent

    def release_all(self) -> None:
        """Forget held buttons, e.g. after a pause, so a key released unseen does not stay held."""
        with self._lock:
            self._held[:] = 0
            self._pressed_since_sample[:] = 0

    def has_event(self, control: str) -> bool:
        with self._lock:
            return control in self._events

    def take_event(self, control: str) -> bool:
        """Return True and clear the event when hotkey ``control`` was pressed."""
        with self._lock:
            if control in self._events:
                self._events.discard(control)
                return True
            return False

    def clear_events(self) -> None:
        with self._lock:
            self._events.clear()

    def wait_for_event(self, controls: Sequence[str], timeout_s: float | None = None) -> str | None:
        """Block until one of ``controls`` is pressed; return it (cleared), or None after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._event_signal:
            while True:
                for control in controls:
                    if control in self._events:
                        self._events.discard(control)
                        return control
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._event_signal.wait(timeout=0.1 if remaining is None else min(0.1, remaining))

    def describe(self) -> str:
        buttons = ", ".join(f"{self.button_keys[n]} {n}" for n in self.button_names)
        controls = ", ".join(f"{key} {control}" for control, key in self.hotkeys.items())
        return f"buttons: {buttons}\nhotkeys: {controls}"


@dataclass
class PacingStats:
    """Timing of one episode of the real-time loop."""

    steps: int
    wall_time_s: float
    """Time from the first decision to now, less pauses."""
    tick_span_s: float
    """Time from the first decision to the last, less pauses."""
    nominal_hz: float
    dropped_steps: int
    """Decision ticks that passed without a decision because the loop ran late."""
    max_late_s: float
    """Largest delay of a decision after its tick."""

    @property
    def achieved_hz(self) -> float:
        """Decisions per second between the first and the last decision."""
        return (self.steps - 1) / self.tick_span_s if self.steps > 1 and self.tick_span_s > 0 else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "steps": self.steps,
            "wall_time_s": self.wall_time_s,
            "tick_span_s": self.tick_span_s,
            "nominal_hz": self.nominal_hz,
            "achieved_hz": self.achieved_hz,
            "dropped_steps": self.dropped_steps,
            "max_late_s": self.max_late_s,
        }


class RealTimePacer:
    """Holds a loop to ``rate_hz`` ticks on absolute deadlines and counts the ticks it misses."""

    def __init__(self, rate_hz: float) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.period_s = 1.0 / rate_hz
        self.rate_hz = rate_hz
        self.reset()

    def reset(self) -> None:
        self._next_s: float | None = None
        self._first_s: float | None = None
        self._last_s = 0.0
        self._paused_s = 0.0
        self.steps = 0
        self.dropped_steps = 0
        self.max_late_s = 0.0

    def wait(self) -> None:
        """Sleep until the next tick; when the loop is more than a tick late, count the missed ticks."""
        now = time.monotonic()
        if self._next_s is None:
            self._next_s = now
            self._first_s = now
        elif now < self._next_s:
            time.sleep(self._next_s - now)
            now = time.monotonic()
        late_s = now - self._next_s
        self.max_late_s = max(self.max_late_s, late_s)
        missed = math.floor(late_s / self.period_s)
        if missed > 0:
            # Re-anchor on the current time instead of rushing through the missed ticks.
            self.dropped_steps += missed
            self._next_s += missed * self.period_s
        self._next_s += self.period_s
        self._last_s = now
        self.steps += 1

    def pause(self) -> float:
        """Return the time at which a pause starts; pass it to ``resume``."""
        return time.monotonic()

    def resume(self, paused_at_s: float) -> None:
        """Shift the deadlines past a pause, so the paused time counts neither as late nor as run time."""
        paused_for = time.monotonic() - paused_at_s
        if self._next_s is not None:
            self._paused_s += paused_for
            self._next_s += paused_for

    def stats(self) -> PacingStats:
        if self._first_s is None:
            return PacingStats(0, 0.0, 0.0, self.rate_hz, 0, 0.0)
        wall = time.monotonic() - self._first_s - self._paused_s
        span = self._last_s - self._first_s - self._paused_s
        return PacingStats(self.steps, wall, span, self.rate_hz, self.dropped_steps, self.max_late_s)


class HumanPilot:
    """The person at the keyboard as a pilot, paced in real time at the env's decision rate."""

    name = "human"

    def __init__(self, keyboard_state: KeyboardState, decision_hz: float, status=None, pace: bool = True) -> None:
        self.keyboard = keyboard_state
        self.pacer = RealTimePacer(decision_hz)
        self.pace = pace
        """False when the env keeps the schedule itself (the screen env sleeps to each step's slot)."""
        self.status = status
        """Called after each decision, e.g. a ``StatusLine``; None for no live output."""

    def reset(self, env: gym.Env, seed: int | None) -> None:
        self.pacer.reset()
        self.keyboard.release_all()

    def act(self, obs: Observation) -> Decision:
        if self.keyboard.take_event("pause"):
            self._pause()
        if self.pace:
            self.pacer.wait()
        if self.status is not None:
            self.status()
        return Decision(action=self.keyboard.sample(), source=self.name)

    def _pause(self) -> None:
        paused_at = self.pacer.pause()
        logger.info("paused; press %s to resume", self.keyboard.hotkeys["pause"])
        # End, discard and stop also leave the pause; they stay pending for the session loop.
        while self.keyboard.wait_for_event(["pause"], timeout_s=0.1) is None:
            if any(self.keyboard.has_event(control) for control in ("end", "discard", "stop")):
                break
        self.keyboard.release_all()
        self.pacer.resume(paused_at)
        logger.info("resumed")


class StatusLine:
    """The live line on stderr: rate, dropped steps and episode count, redrawn twice a second."""

    def __init__(self, total_episodes: int, telemetry, stream=None) -> None:
        self.total_episodes = total_episodes
        self.telemetry = telemetry
        """Callable returning the running episode's telemetry: steps, achieved_hz, nominal_hz, dropped_steps."""
        self.episodes_done = 0
        self.stream = stream or sys.stderr
        self._last_s = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last_s < STATUS_INTERVAL_S:
            return
        self._last_s = now
        stats = self.telemetry()
        self.stream.write(
            f"\rrecording episode {self.episodes_done + 1}/{self.total_episodes} | step {stats['steps']} | "
            f"{stats['achieved_hz']:5.1f}/{stats['nominal_hz']:g} steps/s | dropped {stats['dropped_steps']}   "
        )
        self.stream.flush()

    def end_line(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def record_human_session(env: gym.Env, store, config, keyboard_state: KeyboardState | None = None):
    """Record up to ``config.episodes`` episodes played from the keyboard into ``store``.

    Each episode waits for the start hotkey, counts down ``config.countdown_s``
    seconds, then runs in real time until the round ends or the end, discard or
    stop hotkey is pressed. Per episode, the achieved rate and dropped steps are
    logged and written to the store's telemetry.
    """
    from demos.collect import CollectResult, stop_on_failure

    base = env.unwrapped
    # A screen env (a real game) keeps its own schedule and names the game's keys in its profile.
    screen_profile = getattr(base, "profile", None)
    button_keys = screen_profile.key_for_button if screen_profile is not None else None
    keys = keyboard_state or KeyboardState(base.button_names, button_keys)
    if keyboard_state is None:
        keys.start()
    pilot = HumanPilot(keys, float(base.decision_hz), pace=screen_profile is None)
    status = StatusLine(config.episodes, telemetry=lambda: _episode_telemetry(base, pilot))
    pilot.status = status
    result = CollectResult()
    start_s = time.monotonic()
    number = 0
    sys.stderr.write(keys.describe() + "\n")
    try:
        with stop_on_failure(result):
            while result.episodes < config.episodes:
                sys.stderr.write(
                    f"press {keys.hotkeys['start']} to start episode {result.episodes + 1}/{config.episodes} "
                    f"({keys.hotkeys['discard']} discards the last one, {keys.hotkeys['stop']} stops)\n"
                )
                control = keys.wait_for_event(["start", "discard", "stop"])
                if control == "stop":
                    break
                if control == "discard":
                    if store.discard_last_episode() is not None:
                        result.episodes -= 1
                    continue
                if _countdown(config.countdown_s, keys):
                    break

                keys.clear_events()
                # The start hotkey starts the episode now: a real game's env does not wait for its start probes.
                episode = run_episode(
                    env, pilot, seed=config.seed + number, recorder=store, max_steps=config.max_steps,
                    should_stop=lambda: keys.has_event("end") or keys.has_event("discard") or keys.has_event("stop"),
                    reset_options={"start_now": True} if screen_profile is not None else None,
                )
                number += 1
                status.end_line()
                telemetry = _episode_telemetry(base, pilot)
                logger.info(
                    "episode %d: %d steps, outcome %s, %.2f of %g steps/s, %d dropped steps",
                    number, episode.steps, episode.outcome, telemetry["achieved_hz"], telemetry["nominal_hz"],
                    telemetry["dropped_steps"],
                )
                last = store.episodes_written[-1] if store.episodes_written else None
                store.append_telemetry({"episode_id": last.episode_id if last else None, **telemetry})
                keys.take_event("end")
                # An episode stopped before its first step (for example while a real game's reset waited for
                # the round to start) holds nothing worth keeping.
                if keys.take_event("discard") or episode.steps == 0:
                    store.discard_last_episode()
                    if keys.take_event("stop"):
                        break
                    continue
                result.episodes += 1
                result.steps += episode.steps
                status.episodes_done = result.episodes
                if keys.take_event("stop"):
                    break
    finally:
        store.close(result.stopped)
        if keyboard_state is None:
            keys.close()
    result.wall_time_s = time.monotonic() - start_s
    if result.episodes < config.episodes and result.stopped is None:
        # Any early stop makes scripts/collect_demos.py exit with status 1, and the recorded episodes are kept.
        result.stopped = (f"stopped by the {keys.hotkeys['stop']} hotkey after {result.episodes} of "
                          f"{config.episodes} episodes")
        logger.info("session %s", result.stopped)
    return result


def _episode_telemetry(base_env, pilot: HumanPilot) -> dict:
    """Achieved rate and dropped steps of the last episode, from the pilot's pacer or the screen env's timer."""
    if pilot.pace:
        return pilot.pacer.stats().to_dict()
    report = base_env.timing_report()
    return {
        "steps": report.steps,
        "nominal_hz": report.target_hz,
        "achieved_hz": report.achieved_hz,
        "dropped_steps": report.overruns,
        "phases": {name: vars(stats) for name, stats in report.phases.items()},
    }


def wait_for_start(keys: KeyboardState, label: str, countdown_s: float) -> bool:
    """Prompt for the start hotkey before ``label`` (e.g. "episode 1/3"), then count down; return True on stop."""
    sys.stderr.write(f"press {keys.hotkeys['start']} to start {label} ({keys.hotkeys['stop']} stops)\n")
    if keys.wait_for_event(["start", "stop"]) == "stop":
        return True
    if _countdown(countdown_s, keys):
        return True
    keys.clear_events()
    return False


def _countdown(seconds: float, keys: KeyboardState) -> bool:
    """Count down on stderr; return True when the stop hotkey ends the session during it."""
    remaining = seconds
    while remaining > 0:
        sys.stderr.write(f"recording starts in {math.ceil(remaining)} s\n")
        step = min(1.0, remaining)
        if keys.wait_for_event(["stop"], timeout_s=step) == "stop":
            return True
        remaining -= step
    return False
