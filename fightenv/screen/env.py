"""Any game window as a Gymnasium env: ``fightenv/Screen-v0`` with ``profile=PATH``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from fightenv.screen.capture import CaptureError, CaptureMonitor, Grab, WindowCapture
from fightenv.screen.checks import check_display, check_keys
from fightenv.screen.keys import HotkeyListener, KeyEchoFilter, KeySender
from fightenv.screen.probes import Reading, StateReader
from fightenv.screen.profile import Condition, FrameSpec, Profile, load_profile
from fightenv.screen.timing import LoopTimer, TimingReport

logger = logging.getLogger(__name__)

BLACK_WARN_S = 1.0
FROZEN_WARN_S = 5.0
_WARN_EVERY_S = 10.0


class StopRequested(KeyboardInterrupt):
    """Stop request from the hotkey, raised by ``reset`` so that scripts end as on Ctrl+C and keep what they recorded."""


def preprocess(pixels: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """Turn a captured ``(H, W, 4)`` BGRA frame into an observation frame ``(C, height, width)`` uint8."""
    if spec.crop is not None:
        x, y, width, height = spec.crop
        if x + width > pixels.shape[1] or y + height > pixels.shape[0]:
            raise CaptureError(
                f"[frame] crop {list(spec.crop)} reaches outside the {pixels.shape[1]}x{pixels.shape[0]} capture; "
                "shrink the crop or enlarge the game window"
            )
        pixels = pixels[y:y + height, x:x + width]
    out_height, out_width = spec.size
    if spec.color:
        rgb = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB)
        return cv2.resize(rgb, (out_width, out_height), interpolation=cv2.INTER_AREA).transpose(2, 0, 1).copy()
    grey = cv2.cvtColor(pixels, cv2.COLOR_BGRA2GRAY)
    return cv2.resize(grey, (out_width, out_height), interpolation=cv2.INTER_AREA)[np.newaxis]


def _holds(conditions: tuple[Condition, ...], values: dict[str, float]) -> bool:
    return all(c.threshold.test(values[c.probe]) for c in conditions)


class ScreenEnv(gym.Env):
    """A game window seen through screen capture and played through key presses, described by a game profile.

    ## Buttons (action space)

    ``MultiBinary(n)`` in the order of the profile's ``[buttons]``; 1 means the
    button's key is held during the step. Each step presses the keys whose
    buttons became 1 and releases those that became 0.

    ## Observation space

    | key | dtype | shape | range | meaning |
    |---|---|---|---|---|
    | frame | uint8 | (C, H, W) | [0, 255] | the captured client area after ``[frame]`` crop, grey (C = 1) or RGB (C = 3), resized |
    | state | float32 | (k,) | [0, 1] | the probes with ``in_state``, in profile order (``state_names``) |

    ## Reward

    Sum over ``[reward.weights]`` of weight times the change of that feature
    during the step; 0 without weights.

    ## Episode start

    ``reset`` releases every key, then captures at the decision rate until all
    ``[episode] start`` conditions hold, or the ``episode_start`` hotkey is
    pressed; ``reset(options={"start_now": True})`` starts at once. It raises
    ``TimeoutError`` after ``start_timeout_s`` and ``StopRequested`` after the
    stop hotkey.

    ## Termination and truncation

    Terminated when an ``[[episode.end]]`` condition holds (unless it is marked
    ``truncated``) or the ``episode_end`` hotkey is pressed. Truncated by ends
    marked ``truncated``, by ``max_episode_s`` and by the stop hotkey.
    ``info["outcome"]`` is "win", "loss", "draw" or None.

    ## Real-time loop

    A step sends the keys, sleeps until its slot on a fixed schedule of one
    step per decision period, then captures, preprocesses and runs the probes.
    Each phase (policy, send_keys, capture, preprocess, probes) is timed;
    ``timing_report()`` gives p50/p99 per phase, the achieved rate and the
    steps that overran their deadline, and ``info["timing"]`` carries it at
    the end of an episode. The pause hotkey releases every key at once and
    holds ``step`` until pressed again.

    ## Sharing the keyboard with a person

    A keyboard listener in the same process (a human corrector) hears this
    env's own key events, because XTest events look typed. Give it
    ``key_echo``: the env announces every event it sends there, and the
    listener drops their echoes. ``set_person_keys(held)`` tells the env which
    buttons' keys the person holds down (``held()`` returns one bool per
    button); the env then neither presses those keys again nor releases them,
    and only adds or releases the agent's other keys.

    ## Arguments

    - ``profile``: path of a game profile (TOML) or a loaded ``Profile``.
    - ``watchdog_s``: release all keys when no step arrives for this long; default 0.5 s or 8 decision periods, whichever is longer.
    - ``send_keys``: False observes only (for watching a person play); nothing is pressed.
    - ``listen_hotkeys``: False ignores the profile's hotkeys.
    - ``render_mode``: "rgb_array" returns the last captured client area as RGB.
    - ``frozen_after_s``: seconds without any change in the capture before it is reported as frozen.

    Keys go out through XTest: on Windows, DirectInput games may need scan
    codes and elevated games an elevated sender, which this env does not do.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        profile: str | Path | Profile,
        watchdog_s: float | None = None,
        send_keys: bool = True,
        listen_hotkeys: bool = True,
        render_mode: str | None = None,
        frozen_after_s: float = FROZEN_WARN_S,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; choose one of {self.metadata['render_modes']} or None")
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
        profile = self.profile
        self.render_mode = render_mode
        self.frozen_after_s = frozen_after_s
        self.game_name = profile.name
        self.button_names = profile.buttons
        self.state_names = profile.state_names
        self.decision_hz = profile.decision_hz
        self.period_s = 1.0 / profile.decision_hz
        self.metadata = {**self.metadata, "render_fps": profile.decision_hz}
        channels = 3 if profile.frame.color else 1
        self.frame_shape = (channels, *profile.frame.size)
        self.action_space = spaces.MultiBinary(len(profile.buttons))
        self.observation_space = spaces.Dict({
            "frame": spaces.Box(0, 255, self.frame_shape, dtype=np.uint8),
            "state": spaces.Box(0.0, 1.0, (len(self.state_names),), dtype=np.float32),
        })

        # Capability checks come before any capture or key press.
        check_display()
        if send_keys:
            check_keys(profile.keys)
        if listen_hotkeys and profile.hotkeys:
            check_keys(profile.hotkeys.values())
        self.capture: WindowCapture | None = None
        self.sender: KeySender | None = None
        self.key_echo = KeyEchoFilter()
        """Every key event this env sends, for a keyboard listener in this process to drop (see the class docs)."""
        self._person_keys: Callable[[], np.ndarray] | None = None
        self.listener: HotkeyListener | None = None
        self._hotkey_lock = threading.Lock()
        self.paused = False
        self.stop_requested = False
        self._end_requested = False
        self._start_requested = False
        try:
            self.capture = WindowCapture(profile.window)
            watchdog_s = watchdog_s if watchdog_s is not None else max(0.5, 8 * self.period_s)
            self.sender = KeySender(profile.keys, watchdog_s=watchdog_s, echo=self.key_echo) if send_keys else None
            if listen_hotkeys and profile.hotkeys:
                self.listener = HotkeyListener(profile.hotkeys, self._on_hotkey)
                self.listener.start()
        except BaseException:
            self.close()
            raise
        self.reader = StateReader(profile)
        self.monitor = CaptureMonitor()
        self.timer = LoopTimer(profile.decision_hz)

        self._last_grab: Grab | None = None
        self._last_reading: Reading | None = None
        self._episode_start_s = 0.0
        self._steps = 0
        self._last_obs_s: float | None = None
        self._schedule_s = 0.0
        self._last_warning_s = -float("inf")

    def set_person_keys(self, held: Callable[[], np.ndarray] | None) -> None:
        """Set the function returning which buttons' keys a person has down now (one bool per button), or None."""
        self._person_keys = held

    # -- hotkeys (called on the listener thread) -----------------------------------

    def _on_hotkey(self, action: str) -> None:
        with self._hotkey_lock:
            if action == "pause":
                self.paused = not self.paused
                if self.paused and self.sender is not None:
                    released = self.sender.release_all()
                    logger.info("paused by hotkey; released keys %s", released)
                else:
                    logger.info("resumed by hotkey")
            elif action == "stop":
                self.stop_requested = True
                if self.sender is not None:
                    self.sender.release_all()
                logger.info("stop requested by hotkey")
            elif action == "episode_end":
                self._end_requested = True
                logger.info("episode end marked by hotkey")
            elif action == "episode_start":
                self._start_requested = True

    # -- capture ------------------------------------------------------------------------

    def _observe(self) -> tuple[dict[str, np.ndarray], Reading]:
        with self.timer.phase("capture"):
            grab = self.capture.grab()
        self.monitor.update(grab)
        with self.timer.phase("preprocess"):
            frame = preprocess(grab.pixels, self.profile.frame)
        with self.timer.phase("probes"):
            reading = self.reader.read(grab.pixels)
        self._last_grab, self._last_reading = grab, reading
        self._warn_if_blank(grab.timestamp_s)
        return {"frame": frame, "state": reading.state}, reading

    def _warn_if_blank(self, now_s: float) -> None:
        if now_s - self._last_warning_s < _WARN_EVERY_S:
            return
        if self.monitor.black_s(now_s) > BLACK_WARN_S:
            logger.warning("%s", self.capture.diagnose_black())
            self._last_warning_s = now_s
        elif self.monitor.frozen_s(now_s) > self.frozen_after_s:
            logger.warning(
                "the capture has not changed for %.1f s: the game may be paused, minimised or drawing in "
                "exclusive fullscreen; switch it to windowed or borderless mode if it is running",
                self.monitor.frozen_s(now_s),
            )
            self._last_warning_s = now_s

    def _sleep_until(self, deadline_s: float) -> bool:
        """Sleep until ``deadline_s`` (monotonic); return True when it had already passed (an overrun)."""
        remaining = deadline_s - time.monotonic()
        if remaining < 0:
            return True
        while remaining > 0:
            if self.sender is not None:
                self.sender.heartbeat()
            time.sleep(min(remaining, 0.05))
            remaining = deadline_s - time.monotonic()
        return False

    def _wait_while_paused(self) -> None:
        while self.paused and not self.stop_requested:
            if self.sender is not None:
                self.sender.release_all()
                self.sender.heartbeat()
            time.sleep(0.02)

    # -- Gymnasium API ------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self.sender is not None:
            self.sender.release_all()
        if self.stop_requested:
            raise StopRequested("the stop hotkey was pressed; the session ends")
        self._end_requested = self._start_requested = False
        self.timer.reset()

        # Wait for the start conditions, at the decision rate, unless the caller starts the episode now
        # (options={"start_now": True}, as a person's start hotkey does in a recording session).
        start_now = bool(options and options.get("start_now"))
        start = self.profile.episode.start
        timeout_s = self.profile.episode.start_timeout_s
        waited_from_s = time.monotonic()
        announced = False
        while True:
            self._wait_while_paused()
            if self.stop_requested:
                raise StopRequested("the stop hotkey was pressed; the session ends")
            obs, reading = self._observe()
            now_s = self._last_grab.timestamp_s
            if self.monitor.black_s(now_s) > BLACK_WARN_S:
                raise CaptureError(self.capture.diagnose_black())
            if start_now or self._start_requested or _holds(start, reading.values):
                break
            if not announced:
                logger.info("%s", self._waiting_message(timeout_s))
                announced = True
            if now_s - waited_from_s > timeout_s:
                details = {c.probe: round(reading.values[c.probe], 3) for c in start}
                frozen = self.monitor.frozen_s(now_s)
                hint = (
                    f" The capture has not changed for {frozen:.1f} s: is the game paused, minimised or in "
                    "exclusive fullscreen?" if frozen > self.frozen_after_s else ""
                )
                raise TimeoutError(
                    f"episode start not seen within {timeout_s} s: start conditions "
                    f"{[f'{c.probe} {c.threshold.compare} {c.threshold.value}' for c in start]} read {details}.{hint} "
                    "Start a round in the game, press the episode_start hotkey, or fix [episode] start in "
                    f"{self.profile.path}"
                )
            self._sleep_until(now_s + self.period_s)

        self._schedule_s = time.monotonic()
        self._episode_start_s = self._last_grab.timestamp_s
        self._last_obs_s = time.monotonic()
        self._steps = 0
        self.timer.mark_step(self._last_grab.timestamp_s, overrun=False)
        return obs, self._info(reading, outcome=None)

    def _waiting_message(self, timeout_s: float) -> str:
        start_key = self.profile.hotkeys.get("episode_start") if self.listener is not None else None
        press = f"press {start_key.upper()} or " if start_key else ""
        return f"waiting for the episode start: {press}start a round in the game (times out after {timeout_s:g} s)"

    def step(self, action):
        if self._last_reading is None or self._last_obs_s is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action).reshape(-1)
        if action.shape != (len(self.button_names),):
            raise ValueError(
                f"action must have one value per button {list(self.button_names)}, got shape {action.shape}"
            )
        try:
            return self._step(action)
        except BaseException:
            if self.sender is not None:
                self.sender.release_all()
            raise

    def _step(self, action: np.ndarray):
        self.timer.add("policy", time.monotonic() - self._last_obs_s)
        previous = self._last_reading
        deadline_s = self._schedule_s + self.period_s

        # A pause holds the step with every key released; the paused time is not a deadline miss.
        if self.paused:
            paused_from_s = time.monotonic()
            self._wait_while_paused()
            deadline_s += time.monotonic() - paused_from_s

        # Send the button changes, then wait out the decision period and look.
        if self.sender is not None and not self.stop_requested:
            with self.timer.phase("send_keys"):
                leave = None if self._person_keys is None else self._person_keys()
                self.sender.send(action, leave=leave)
        overrun = self._sleep_until(deadline_s)
        # Steps keep a fixed schedule; after an overrun the schedule restarts from now instead of catching up.
        self._schedule_s = time.monotonic() if overrun else deadline_s
        obs, reading = self._observe()
        self.timer.mark_step(self._last_grab.timestamp_s, overrun)
        self._steps += 1

        terminated = truncated = False
        outcome = None
        if self.monitor.black_since_s is not None:
            # A black capture reads as empty bars: it says nothing about the game, so it earns no reward and
            # ends no episode by its probes. Rewards resume against the last frame that showed the game.
            self._last_reading = previous
            reward = 0.0
            if self.monitor.black_s(self._last_grab.timestamp_s) > BLACK_WARN_S:
                logger.warning("ending the episode as truncated: %s", self.capture.diagnose_black())
                truncated = True
        else:
            reward = sum(
                weight * (reading.values[name] - previous.values[name])
                for name, weight in self.profile.reward_weights.items()
            )
            for end in self.profile.episode.end:
                if _holds(end.conditions, reading.values):
                    outcome = self._outcome(end.outcome, reading)
                    truncated, terminated = end.truncated, not end.truncated
                    break
        if self._end_requested:
            self._end_requested = False
            terminated = terminated or not truncated
        max_s = self.profile.episode.max_episode_s
        if max_s is not None and self._last_grab.timestamp_s - self._episode_start_s >= max_s:
            truncated = not terminated
        if self.stop_requested and not terminated:
            truncated = True

        info = self._info(reading, outcome)
        if terminated or truncated:
            if self.sender is not None:
                self.sender.release_all()
            report = self.timing_report()
            info["timing"] = report.to_dict()
            logger.info("episode over after %d steps (outcome %s):\n%s", self._steps, outcome, report.table())
        self._last_obs_s = time.monotonic()
        return obs, float(reward), terminated, truncated, info

    def _outcome(self, outcome: str, reading: Reading) -> str | None:
        if outcome == "none":
            return None
        if outcome != "compare":
            return outcome
        own = reading.values[self.profile.episode.score_own]
        opponent = reading.values[self.profile.episode.score_opponent]
        if own > opponent:
            return "win"
        if own < opponent:
            return "loss"
        return "draw"

    def _info(self, reading: Reading, outcome: str | None) -> dict[str, Any]:
        now_s = self._last_grab.timestamp_s
        return {
            "outcome": outcome,
            "tick": self._steps,
            "timestamp_s": now_s,
            "features": dict(reading.values),
            "capture_box": self.capture.box,
            "capture_black_s": self.monitor.black_s(now_s),
            "capture_frozen_s": self.monitor.frozen_s(now_s),
            "paused": self.paused,
            "stop_requested": self.stop_requested,
        }

    @property
    def last_capture_s(self) -> float | None:
        """``time.monotonic()`` right after the latest capture, or None before the first."""
        return None if self._last_grab is None else self._last_grab.timestamp_s

    def timing_report(self) -> TimingReport:
        """Return the measured timing of the current episode's loop."""
        return self.timer.report()

    def render(self):
        if self.render_mode != "rgb_array" or self._last_grab is None:
            return None
        return cv2.cvtColor(self._last_grab.pixels, cv2.COLOR_BGRA2RGB)

    def close(self) -> None:
        if getattr(self, "sender", None) is not None:
            self.sender.close()
            self.sender = None
        if getattr(self, "listener", None) is not None:
            self.listener.stop()
            self.listener = None
        if getattr(self, "capture", None) is not None:
            self.capture.close()
            self.capture = None
