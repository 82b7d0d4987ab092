"""The Arena as a window program that a person plays with the keyboard: ``python -m fightenv.arena --window``.

It opens a plain X11 window (python-xlib, no toolkit) whose client area is
exactly the rendered view, and runs the game in real time at 60 ticks per
second. Each tick it reads the held keys from the X server (``XQueryKeymap``),
so key events sent with XTest (``pynput``, ``xdotool``) drive it like a keyboard.
The keys come from the Arena's game profile, ``fightenv/profiles/arena.toml``:
Right forward, Left back, Up/Down sidestep in/out, space jump, a punch, s kick,
d guard, f grab, g special.

After a KO or when the round time runs out, the final picture stays up for
``restart_delay_s`` with a "K.O." or "TIME" banner, and a new round starts. This
is what a screen env's episode start and end probes see in a real game.

By default keys are read whichever window has the focus, because that also
works under Xvfb without a window manager, so a key held for another program
also moves the fighter. With ``focus_only`` (``--focus-only``) the fighter
takes keys only while the game window has the input focus.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from fightenv.arena.cpu import DIFFICULTIES, CpuOpponent
from fightenv.arena.env import WINDOW_TITLE
from fightenv.arena.render import Renderer
from fightenv.arena.rules import BUTTONS, TICK_HZ, TICK_S, Game, Outcome

logger = logging.getLogger(__name__)

# Maximum request size in bytes that python-xlib sends without the BIG-REQUESTS extension, less the header.
_MAX_REQUEST_BYTES = 65535 * 4 - 64
_RESYNC_BEHIND_S = 0.25


@dataclass
class WindowConfig:
    """Settings of the Arena window program."""

    difficulty: str = "normal"
    """CPU level: easy, normal or hard."""
    seed: int | None = None
    """Seed of the first round's CPU; later rounds continue the same random stream."""
    width: int = 640
    """Window client width in pixels."""
    height: int = 480
    """Window client height in pixels."""
    fps: float = 60.0
    """Frames drawn per second; the game itself always runs at 60 ticks per second."""
    round_time_s: float = 40.0
    """Round length in seconds of game time."""
    restart_delay_s: float = 2.0
    """Seconds the final picture of a round stays up before the next round starts."""
    profile: Path | None = None
    """Game profile whose [buttons] keys drive the player; None uses fightenv/profiles/arena.toml."""
    position: tuple[int, int] = (0, 0)
    """Requested top-left corner of the window on the screen, in pixels (a window manager may move it)."""
    max_rounds: int | None = None
    """Quit after this many rounds; None plays until the window is closed or the process is stopped."""
    focus_only: bool = False
    """Read keys only while the game window has the input focus."""

    def validate(self) -> None:
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"unknown difficulty {self.difficulty!r}; choose one of {', '.join(DIFFICULTIES)}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 64 <= value <= 4096:
                raise ValueError(f"{name} must be an integer from 64 to 4096 pixels, got {value!r}")
        if not 1.0 <= self.fps <= TICK_HZ:
            raise ValueError(f"fps must be from 1 to {TICK_HZ} frames per second, got {self.fps!r}")
        if not self.round_time_s > 0:
            raise ValueError(f"round_time_s must be positive seconds, got {self.round_time_s!r}")
        if self.restart_delay_s < 0:
            raise ValueError(f"restart_delay_s must be at least 0 seconds, got {self.restart_delay_s!r}")


class XImageWindow:
    """A top-level X11 window that shows RGB images in its client area, drawn with ``XPutImage``."""

    def __init__(self, title: str, width: int, height: int, position: tuple[int, int] = (0, 0)) -> None:
        from Xlib import X, Xatom
        from Xlib import display as xdisplay

        self.display = xdisplay.Display()
        screen = self.display.screen()
        if screen.root_depth not in (24, 32):
            raise RuntimeError(
                f"the X screen has depth {screen.root_depth}; the Arena window needs a 24-bit TrueColor screen "
                "(for Xvfb: -screen 0 1280x1024x24)"
            )
        self.width, self.height = width, height
        self.window = screen.root.create_window(
            position[0], position[1], width, height, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
            background_pixel=screen.black_pixel,
            event_mask=X.ExposureMask | X.StructureNotifyMask | X.KeyPressMask | X.KeyReleaseMask,
        )
        self.window.set_wm_name(title)
        self.window.change_property(
            self.display.intern_atom("_NET_WM_NAME"), self.display.intern_atom("UTF8_STRING"), 8, title.encode()
        )
        self.window.set_wm_class("fightenv-arena", "fightenv")
        self.window.set_wm_normal_hints(
            flags=0x3F, min_width=width, min_height=height, max_width=width, max_height=height,
        )
        self._delete_atom = self.display.intern_atom("WM_DELETE_WINDOW")
        self.window.change_property(
            self.display.intern_atom("WM_PROTOCOLS"), Xatom.ATOM, 32, [self._delete_atom]
        )
        self.gc = self.window.create_gc()
        self.window.map()
        self.display.sync()
        self._rows_per_request = max(1, _MAX_REQUEST_BYTES // (width * 4))
        self.closed = False

    def show(self, rgb: np.ndarray) -> None:
        """Draw ``rgb``, ``(height, width, 3)`` uint8, into the client area."""
        from Xlib import X

        bgrx = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
        for top in range(0, self.height, self._rows_per_request):
            rows = bgrx[top:top + self._rows_per_request]
            self.window.put_image(self.gc, 0, top, self.width, rows.shape[0], X.ZPixmap, 24, 0, rows.tobytes())
        self.display.flush()

    def poll(self) -> None:
        """Handle pending X events; set ``closed`` when the window manager requests that the window close."""
        from Xlib import X

        while self.display.pending_events():
            event = self.display.next_event()
            if event.type == X.ClientMessage and event.data[1][0] == self._delete_atom:
                self.closed = True
            elif event.type == X.DestroyNotify:
                self.closed = True

    def has_focus(self) -> bool:
        """Return True when this window has the keyboard input focus."""
        return self.display.get_input_focus().focus == self.window

    def close(self) -> None:
        try:
            self.window.destroy()
            self.display.sync()
        finally:
            self.display.close()


def draw_banner(image: np.ndarray, text: str) -> None:
    """Draw a centred banner, such as "K.O.", over the arena part of ``image`` (RGB, in place)."""
    height, width = image.shape[:2]
    scale = height / 160
    thickness = max(2, round(height / 120))
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, thickness)
    origin = ((width - w) // 2, (height + h) // 2)
    cv2.putText(image, text, (origin[0] + thickness, origin[1] + thickness), cv2.FONT_HERSHEY_DUPLEX,
                scale, (0, 0, 0), thickness)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_DUPLEX, scale, (250, 250, 250), thickness)


def _button_mask(held: np.ndarray) -> int:
    mask = 0
    for i in np.flatnonzero(held):
        mask |= 1 << int(i)
    return mask


def run_window(config: WindowConfig, stop: threading.Event | None = None) -> dict:
    """Play rounds in an X window until it closes, ``stop`` is set, SIGTERM arrives or ``max_rounds`` end.

    Returns a summary: rounds played, outcomes, ticks run and how many ticks
    started more than one tick late.
    """
    from fightenv.screen.keys import XKeyboardState
    from fightenv.screen.profile import ARENA_PROFILE, load_profile

    config.validate()
    profile = load_profile(config.profile or ARENA_PROFILE)
    if profile.buttons != BUTTONS:
        raise ValueError(
            f"profile {profile.path} lists buttons {list(profile.buttons)}, but the Arena's buttons are "
            f"{list(BUTTONS)}; list exactly these, in this order"
        )
    logger.info("Arena window config: %s", asdict(config))

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    window = XImageWindow(WINDOW_TITLE, config.width, config.height, config.position)
    keyboard = XKeyboardState(profile.keys, display=window.display)
    renderer = Renderer(config.width, config.height)
    rng = np.random.default_rng(config.seed)
    round_ticks = max(1, round(config.round_time_s * TICK_HZ))
    ticks_per_frame = max(1, round(TICK_HZ / config.fps))
    logger.info(
        "window %r (%dx%d) open; keys %s", WINDOW_TITLE, config.width, config.height,
        dict(zip(profile.buttons, profile.keys)),
    )

    outcomes: list[str] = []
    total_ticks = late_ticks = 0
    try:
        while not stop.is_set() and not window.closed:
            if config.max_rounds is not None and len(outcomes) >= config.max_rounds:
                break
            game = Game(round_ticks)
            cpu = CpuOpponent(DIFFICULTIES[config.difficulty], rng)
            next_tick_s = time.monotonic()

            # Play the round in real time: one game tick per 1/60 s, keys read each tick.
            while not game.done and not stop.is_set() and not window.closed:
                window.poll()
                buttons = 0
                if not config.focus_only or window.has_focus():
                    buttons = _button_mask(keyboard.held())
                game.tick(buttons, cpu.buttons(game))
                total_ticks += 1
                if game.tick_count % ticks_per_frame == 0 or game.done:
                    window.show(renderer.render(game))
                next_tick_s += TICK_S
                behind_s = time.monotonic() - next_tick_s
                if behind_s > TICK_S:
                    late_ticks += 1
                if behind_s > _RESYNC_BEHIND_S:
                    next_tick_s = time.monotonic()
                elif behind_s < 0:
                    time.sleep(-behind_s)
            if not game.done:
                break

            # Show the result, then start the next round.
            knocked_out = min(f.health for f in game.fighters) <= 0.0
            outcome = {Outcome.WIN: "win", Outcome.LOSS: "loss", Outcome.DRAW: "draw"}[game.outcome]
            outcomes.append(outcome)
            logger.info("round %d over: %s (%s) after %d ticks", len(outcomes), outcome,
                        "KO" if knocked_out else "time", game.tick_count)
            final = renderer.render(game)
            draw_banner(final, "K.O." if knocked_out else "TIME")
            window.show(final)
            end_s = time.monotonic() + config.restart_delay_s
            while time.monotonic() < end_s and not stop.is_set() and not window.closed:
                window.poll()
                time.sleep(0.02)
    finally:
        window.close()
    summary = {"rounds": len(outcomes), "outcomes": outcomes, "ticks": total_ticks, "late_ticks": late_ticks}
    logger.info("Arena window closed: %s", summary)
    return summary
