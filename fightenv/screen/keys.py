"""Keys: canonical key names, sending button changes as key events, hotkeys, and held keys read from X.

Key names in profiles are lower case: letters ``a``-``z``, digits ``0``-``9``,
punctuation characters, ``space``, ``enter``, ``tab``, ``esc``, ``backspace``,
arrows ``up`` ``down`` ``left`` ``right``, modifiers ``shift`` ``ctrl``
``alt`` (and ``shift_r`` ``ctrl_r`` ``alt_r``), ``f1``-``f12``, ``insert``
``delete`` ``home`` ``end`` ``page_up`` ``page_down``.

Keys go out through ``pynput``, which on X11 uses the XTest extension: the X
server receives them as if typed, and the focused window gets them. Games that
read the keyboard some other way may ignore them. On Windows, DirectInput games
often read hardware scan codes and ignore virtual-key events, so they need a
sender that types scan codes. A game that runs elevated (as administrator)
ignores events from a non-elevated sender, so run the sender elevated too.

``pynput`` is imported only when a sender or listener is built, because it
connects to the display on import and fails without one.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import string
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# Canonical key name -> X keysym name. Single characters map to their keysym below.
_SPECIAL_KEYSYMS = {
    "space": "space", "enter": "Return", "tab": "Tab", "esc": "Escape", "backspace": "BackSpace",
    "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "shift": "Shift_L", "shift_r": "Shift_R", "ctrl": "Control_L", "ctrl_r": "Control_R",
    "alt": "Alt_L", "alt_r": "Alt_R",
    "insert": "Insert", "delete": "Delete", "home": "Home", "end": "End",
    "page_up": "Prior", "page_down": "Next",
    **{f"f{n}": f"F{n}" for n in range(1, 13)},
}
_PUNCTUATION_KEYSYMS = {
    ",": "comma", ".": "period", "/": "slash", ";": "semicolon", "'": "apostrophe", "[": "bracketleft",
    "]": "bracketright", "-": "minus", "=": "equal", "`": "grave", "\\": "backslash",
}
KEY_NAMES: dict[str, str] = {
    **{c: c for c in string.ascii_lowercase + string.digits},
    **_PUNCTUATION_KEYSYMS,
    **_SPECIAL_KEYSYMS,
}
"""Every accepted key name, mapped to its X keysym name."""

_ALIASES = {
    "return": "enter", "escape": "esc", "control": "ctrl", "ctrl_l": "ctrl", "shift_l": "shift",
    "alt_l": "alt", "alt_gr": "alt_r", "pageup": "page_up", "pagedown": "page_down", "del": "delete",
    "arrow_up": "up", "arrow_down": "down", "arrow_left": "left", "arrow_right": "right",
}


def normalize_key_name(name: str) -> str:
    """Return the canonical name of key ``name`` (case-insensitive, with common aliases); raise ValueError if unknown."""
    if len(name) == 1:
        lowered = name.lower()
        if lowered in KEY_NAMES:
            return lowered
    lowered = name.strip().lower().replace(" ", "_").replace("-", "_")
    lowered = _ALIASES.get(lowered, lowered)
    if lowered not in KEY_NAMES:
        raise ValueError(
            f"unknown key name {name!r}; use a letter, digit, punctuation character or one of "
            f"{', '.join(sorted(_SPECIAL_KEYSYMS))}"
        )
    return lowered


def pynput_key(name: str) -> Any:
    """Return the ``pynput`` key object for canonical key ``name``, as an X keysym so that it goes out through XTest.

    pynput 1.8 on X11 sends a key made from a character (``KeyCode.from_char``)
    with ``XSendEvent``: such synthetic events do not change the X server's key
    state and many games ignore them. A key with a virtual-key code (the
    keysym) goes through XTest, as if typed.
    """
    from pynput.keyboard import KeyCode
    from Xlib import XK

    return KeyCode.from_vk(XK.string_to_keysym(KEY_NAMES[name]))


def name_of_pynput_key(key: Any) -> str | None:
    """Return the canonical name of a key reported by a ``pynput`` listener, or None if it has none."""
    from pynput.keyboard import Key

    if isinstance(key, Key):
        try:
            return normalize_key_name(key.name)
        except ValueError:
            return None
    char = getattr(key, "char", None)
    if char:
        try:
            return normalize_key_name(char)
        except ValueError:
            return None
    return None


# -- key output ----------------------------------------------------------------------

ECHO_WINDOW_S = 0.5
"""Seconds after this process's last event on a key during which events on that key count as its echoes."""


class KeyEchoFilter:
    """Keys this process sends through XTest, so that its own keyboard listener can drop their echoes.

    pynput's X11 listener reads the RECORD extension, which reports XTest
    events exactly like typed keys. pynput's ``injected`` flag does not tell
    them apart on Xorg, because XTest events do not carry ``send_event``.
    Counting sent events does not work either. Under Xvfb 21.1 (Debian 12),
    pynput 1.8's listener hears each XTest event twice, and the X server adds
    autorepeat presses while a key is held, which can arrive in a burst with
    the key's release.

    So a sender calls ``expect(key, pressed)`` before each event it sends, and
    the listener drops an event on ``key`` (``consume`` returns True) while
    the sender has that key down and for ``window_s`` after the sender's
    last event on it.

    A person's event on a key the sender holds, or touched less than
    ``window_s`` ago, is dropped too. So a listener uses these events only for
    hotkeys and for taps shorter than a step; ``agents.human.KeyboardState``
    reads the person's held keys from the X server's key state instead (see
    ``busy``). Autorepeat cannot stand in for that state, because the X server
    autorepeats only the most recently pressed key, and each key the agent
    presses ends the autorepeat of the person's key.
    """

    def __init__(self, window_s: float = ECHO_WINDOW_S) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be positive seconds, got {window_s!r}")
        self.window_s = window_s
        self._lock = threading.Lock()
        self._down: set[str] = set()
        self._last_sent_s: dict[str, float] = {}
        self.sent = 0
        """Key events the sender announced."""
        self.dropped = 0
        """Events the listener dropped as echoes (duplicates and autorepeats included)."""

    def expect(self, key: str, pressed: bool) -> None:
        """Record that this process is about to send a press (``pressed``) or release of canonical key ``key``."""
        with self._lock:
            if pressed:
                self._down.add(key)
            else:
                self._down.discard(key)
            self._last_sent_s[key] = time.monotonic()
            self.sent += 1

    def consume(self, key: str, pressed: bool) -> bool:
        """Return True when a press or release of ``key`` that a listener heard is an echo of this process's keys."""
        with self._lock:
            last_s = self._last_sent_s.get(key)
            echo = key in self._down or (last_s is not None and time.monotonic() - last_s <= self.window_s)
            if echo:
                self.dropped += 1
            return echo

    def busy(self, keys: Sequence[str], within_s: float) -> np.ndarray:
        """Return one bool per key in ``keys``: the sender has it down now or sent an event on it within ``within_s``."""
        now = time.monotonic()
        with self._lock:
            return np.array(
                [key in self._down or now - self._last_sent_s.get(key, -float("inf")) <= within_s for key in keys],
                dtype=bool,
            )


class KeySender:
    """Holds keys down while their buttons are 1, and releases every held key on any way out.

    ``send(action)`` presses the keys whose buttons became 1 and releases those
    that became 0. Every key this sender holds down is released by ``close()``,
    by ``release_all()``, at interpreter exit, and on SIGINT and SIGTERM. After
    a signal the previous handler runs, except that SIGTERM under the default
    handler raises ``SystemExit(143)`` so that ``finally`` blocks still run. A
    signal that arrives while the main thread is inside an X call of this
    sender is handled as soon as that call returns. pynput runs python-xlib in
    its threaded mode, whose locks are not reentrant, so a release sent from
    the handler in the middle of a press could wait forever. A watchdog thread also releases the keys when neither ``send`` nor
    ``heartbeat`` has been called for ``watchdog_s`` seconds.

    With an ``echo`` filter, every press and release is announced to it
    before it goes out, so a keyboard listener in this process can tell the
    sender's events from a person's.

    NOTE: SIGKILL and a crash of the Python process itself cannot be caught.
    Keys sent through XTest then stay down until something releases them, for
    example ``xdotool keyup KEY``.
    """

    def __init__(
        self,
        keys: Sequence[str],
        watchdog_s: float | None = 0.5,
        handle_signals: bool = True,
        echo: KeyEchoFilter | None = None,
    ) -> None:
        from pynput.keyboard import Controller

        self.key_names = tuple(normalize_key_name(k) for k in keys)
        self._keys = [pynput_key(k) for k in self.key_names]
        self._controller = Controller()
        self.echo = echo
        self._held = np.zeros(len(self._keys), dtype=bool)
        self._lock = threading.RLock()
        self._main_thread_x_calls = 0
        """Depth of this sender's X calls now running on the main thread, where signal handlers run."""
        self._deferred_signal: int | None = None
        self._closed = False
        self._last_beat_s = time.monotonic()
        self.watchdog_s = watchdog_s
        self.watchdog_releases = 0

        self._previous_handlers: dict[int, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        atexit.register(self.release_all)

        self._stop_watchdog = threading.Event()
        self._watchdog: threading.Thread | None = None
        if watchdog_s is not None:
            if watchdog_s <= 0:
                raise ValueError(f"watchdog_s must be positive seconds or None, got {watchdog_s!r}")
            self._watchdog = threading.Thread(target=self._watch, name="key-watchdog", daemon=True)
            self._watchdog.start()

    @property
    def held(self) -> tuple[str, ...]:
        """Names of the keys this sender holds down now."""
        with self._lock:
            return tuple(name for name, down in zip(self.key_names, self._held) if down)

    def send(self, action: np.ndarray | Sequence[int], leave: np.ndarray | Sequence[bool] | None = None) -> None:
        """Press the keys of buttons that became 1 and release those that became 0.

        Keys marked in ``leave`` (one bool per key) are neither pressed nor
        released by this call: a person holds them down, so a press would
        repeat theirs and a release would lift their key. The sender keeps its
        own record of such a key and settles it on a later call.
        """
        requested = np.asarray(action).reshape(-1).astype(bool)
        if requested.shape != self._held.shape:
            raise ValueError(f"action must have one value per key {list(self.key_names)}, got shape {np.shape(action)}")
        untouched = np.zeros_like(requested) if leave is None else np.asarray(leave).reshape(-1).astype(bool)
        if untouched.shape != self._held.shape:
            raise ValueError(f"leave must have one value per key {list(self.key_names)}, got shape {np.shape(leave)}")
        with self._lock, self._x_calls():
            if self._closed:
                raise RuntimeError("this KeySender is closed; create a new one")
            self._last_beat_s = time.monotonic()
            for i in np.flatnonzero(self._held & ~requested & ~untouched):
                self._release(i)
            for i in np.flatnonzero(requested & ~self._held & ~untouched):
                if self.echo is not None:
                    self.echo.expect(self.key_names[i], True)
                # Recorded before the press, so that a signal handled in between releases this key too.
                self._held[i] = True
                self._controller.press(self._keys[i])

    @contextlib.contextmanager
    def _x_calls(self):
        """Mark a block of X calls, so that a signal arriving on the main thread meanwhile waits for its end."""
        on_main_thread = threading.current_thread() is threading.main_thread()
        if on_main_thread:
            self._main_thread_x_calls += 1
        try:
            yield
        finally:
            if on_main_thread:
                self._main_thread_x_calls -= 1
                if self._main_thread_x_calls == 0 and self._deferred_signal is not None:
                    signum, self._deferred_signal = self._deferred_signal, None
                    self._on_signal(signum, None)

    def _release(self, i: int) -> None:
        if self.echo is not None:
            self.echo.expect(self.key_names[i], False)
        self._controller.release(self._keys[i])
        self._held[i] = False

    def heartbeat(self) -> None:
        """Tell the watchdog that the loop is alive without changing any key."""
        self._last_beat_s = time.monotonic()

    def release_all(self) -> list[str]:
        """Release every key this sender holds; return their names."""
        with self._lock, self._x_calls():
            released = []
            for i in np.flatnonzero(self._held):
                try:
                    self._release(i)
                except Exception:  # noqa: BLE001 - keep releasing the other keys whatever one failure was.
                    logger.exception("releasing key %r failed", self.key_names[i])
                self._held[i] = False
                released.append(self.key_names[i])
            return released

    def close(self) -> None:
        """Release every held key, stop the watchdog and restore the previous signal handlers."""
        with self._lock:
            self.release_all()
            self._closed = True
        self._stop_watchdog.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=1.0)
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self._previous_handlers.items():
                if signal.getsignal(signum) == self._on_signal:
                    signal.signal(signum, handler)
        self._previous_handlers.clear()
        atexit.unregister(self.release_all)

    def __enter__(self) -> KeySender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._main_thread_x_calls > 0:
            # The main thread is inside an X call, so _x_calls handles the signal when the call returns.
            self._deferred_signal = signum
            return
        released = self.release_all()
        logger.warning("signal %s: released keys %s", signal.Signals(signum).name, released)
        previous = self._previous_handlers.get(signum, signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_IGN:
            return
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise SystemExit(128 + signum)

    def _watch(self) -> None:
        interval = min(0.05, self.watchdog_s / 4)
        while not self._stop_watchdog.wait(interval):
            stalled_s = time.monotonic() - self._last_beat_s
            if stalled_s > self.watchdog_s and self._held.any():
                released = self.release_all()
                if released:
                    self.watchdog_releases += 1
                    logger.warning(
                        "no key update for %.2f s (watchdog limit %.2f s): released keys %s",
                        stalled_s, self.watchdog_s, released,
                    )


# -- hotkeys -------------------------------------------------------------------------


class HotkeyListener:
    """Calls ``callback(action)`` when a hotkey goes down; ignores and stores no other key.

    ``hotkeys`` maps an action ("pause", "stop", "episode_end") to a canonical key name.
    """

    def __init__(self, hotkeys: dict[str, str], callback: Callable[[str], None]) -> None:
        from pynput import keyboard

        self._actions = {normalize_key_name(key): action for action, key in hotkeys.items()}
        self._callback = callback
        self._listener = keyboard.Listener(on_press=self._on_press)
        self._listener.daemon = True

    def start(self) -> None:
        self._listener.start()
        self._listener.wait()

    def stop(self) -> None:
        self._listener.stop()
        if self._listener is threading.current_thread():
            return
        # pynput 1.8's X11 listener sends its RECORD "disable" on the connection that is blocked
        # waiting for events, so the listener thread waits for the next key event. Disabling the
        # context from the listener's second connection, and flushing it, ends the thread now.
        stop_display = getattr(self._listener, "_display_stop", None)
        context = getattr(self._listener, "_context", None)
        if stop_display is not None and context is not None:
            try:
                stop_display.record_disable_context(context)
                stop_display.flush()
            except Exception:  # noqa: BLE001 - the connection may already be closed, which also ends the thread.
                pass
        self._listener.join(timeout=2.0)
        if self._listener.is_alive():
            logger.warning("the hotkey listener thread did not stop within 2 s; it is a daemon thread and ends with the process")

    def _on_press(self, key: Any) -> None:
        name = name_of_pynput_key(key)
        action = self._actions.get(name) if name is not None else None
        if action is None:
            return
        try:
            self._callback(action)
        except Exception:  # noqa: BLE001 - an exception would stop the listener thread for good.
            logger.exception("hotkey %r (%s) handler failed", name, action)


# -- reading held keys from the X server ---------------------------------------------


class XKeyboardState:
    """Reads which of some keys are held now, straight from the X server (``XQueryKeymap``).

    Only the keys named at construction are looked at; the rest of the keymap
    is discarded. ``display`` is an open ``Xlib.display.Display`` or None to
    open one on ``$DISPLAY``.
    """

    def __init__(self, names: Iterable[str], display: Any = None) -> None:
        from Xlib import XK
        from Xlib import display as xdisplay

        self._own_display = display is None
        self.display = display if display is not None else xdisplay.Display()
        self.names = tuple(normalize_key_name(n) for n in names)
        self.keycodes: list[int] = []
        for name in self.names:
            keysym = XK.string_to_keysym(KEY_NAMES[name])
            keycode = self.display.keysym_to_keycode(keysym)
            if keycode == 0:
                raise ValueError(
                    f"key {name!r} (keysym {KEY_NAMES[name]}) has no keycode in this X server's keyboard "
                    "mapping; pick another key or add it with xmodmap"
                )
            self.keycodes.append(keycode)

    def held(self) -> np.ndarray:
        """Return ``(len(names),)`` bool: which of the keys are down now."""
        keymap = self.display.query_keymap()
        return np.array([bool(keymap[code // 8] >> (code % 8) & 1) for code in self.keycodes], dtype=bool)

    def held_names(self) -> tuple[str, ...]:
        return tuple(name for name, down in zip(self.names, self.held()) if down)

    def close(self) -> None:
        if self._own_display:
            self.display.close()


def any_key_down(display_name: str | None = None) -> list[int]:
    """Return the keycodes of every key the X server reports down; for tests and diagnostics."""
    from Xlib import display as xdisplay

    display = xdisplay.Display(display_name or os.environ.get("DISPLAY"))
    try:
        keymap = display.query_keymap()
    finally:
        display.close()
    return [byte * 8 + bit for byte, value in enumerate(keymap) for bit in range(8) if value >> bit & 1]
