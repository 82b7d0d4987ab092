"""Capture: find a game window on X11, follow it when it moves, grab its client area with ``mss``.

Also detects black and frozen captures, which is what exclusive-fullscreen
games, GPU overlays and minimised windows give.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from fightenv.screen.checks import CapabilityError, WindowNotFoundError, check_display
from fightenv.screen.profile import WindowSpec

logger = logging.getLogger(__name__)

BLACK_MAX_LEVEL = 8
"""A frame whose brightest sampled pixel channel is at most this is black."""


class CaptureError(RuntimeError):
    """The capture failed or shows nothing usable; the message gives the cause and the fix."""


def _window_title(display, window) -> str | None:
    from Xlib.error import XError

    try:
        utf8 = window.get_full_text_property(display.intern_atom("_NET_WM_NAME"))
        if utf8:
            return utf8 if isinstance(utf8, str) else utf8.decode(errors="replace")
        name = window.get_wm_name()
    except XError:
        return None
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return name or None


def list_windows(display) -> list[tuple[object, str]]:
    """Return ``(window, title)`` for every viewable window with a title, in stacking order."""
    from Xlib import X
    from Xlib.error import XError

    found = []
    stack = [display.screen().root]
    while stack:
        window = stack.pop()
        try:
            children = window.query_tree().children
        except XError:
            continue
        for child in children:
            try:
                viewable = child.get_attributes().map_state == X.IsViewable
            except XError:
                continue
            if not viewable:
                continue
            title = _window_title(display, child)
            if title:
                found.append((child, title))
            stack.append(child)
    return found


def find_window(display, title: str):
    """Return the viewable window whose title contains ``title``; raise ``WindowNotFoundError`` listing the titles."""
    windows = list_windows(display)
    matches = [window for window, name in windows if title in name]
    if not matches:
        titles = sorted({name for _, name in windows})
        raise WindowNotFoundError(
            f"no visible window title contains {title!r}. Visible windows: {titles or 'none'}. "
            "Start the game (and un-minimise it), or set [window] title in the profile to part of one of these",
            title=title, visible_titles=tuple(titles),
        )
    if len(matches) > 1:
        logger.warning("%d windows match title %r; capturing the first", len(matches), title)
    return matches[0]


@dataclass
class Grab:
    """One captured frame: ``pixels`` is ``(H, W, 4)`` BGRA uint8; ``timestamp_s`` is ``time.monotonic()`` after the grab."""

    pixels: np.ndarray
    timestamp_s: float
    left: int
    top: int


class WindowCapture:
    """Grabs a window's client area (or a fixed screen region) with ``mss``, following the window when it moves."""

    def __init__(self, spec: WindowSpec) -> None:
        import mss
        from Xlib import display as xdisplay

        display_name = check_display()
        self.spec = spec
        self.display = xdisplay.Display(display_name)
        try:
            self.window = find_window(self.display, spec.title) if spec.title is not None else None
        except BaseException:
            self.display.close()
            raise
        self._mss = mss.MSS() if hasattr(mss, "MSS") else mss.mss()
        screen = self.display.screen()
        self.screen_size = (screen.width_in_pixels, screen.height_in_pixels)
        self._warned_clipped = False
        self.box = self._locate()
        logger.info("capturing %s at %s", f"window {spec.title!r}" if self.window else "screen region", self.box)

    def _locate(self) -> tuple[int, int, int, int]:
        """Return the client area as ``(left, top, width, height)`` in screen pixels, clipped to the screen."""
        from Xlib.error import XError

        if self.window is None:
            left, top, width, height = self.spec.region
        else:
            try:
                geometry = self.window.get_geometry()
                origin = self.window.translate_coords(self.display.screen().root, 0, 0)
            except XError as error:
                raise CaptureError(
                    f"window {self.spec.title!r} is gone ({error}); restart the game, then the session"
                ) from error
            # translate_coords maps the root origin into the window; negate to get the window's screen position.
            left, top, width, height = -origin.x, -origin.y, geometry.width, geometry.height
        screen_w, screen_h = self.screen_size
        right, bottom = min(left + width, screen_w), min(top + height, screen_h)
        clipped_left, clipped_top = max(left, 0), max(top, 0)
        if right <= clipped_left or bottom <= clipped_top:
            raise CaptureError(
                f"the capture area {(left, top, width, height)} lies outside the {screen_w}x{screen_h} screen; "
                "move the game window onto the screen"
            )
        box = (clipped_left, clipped_top, right - clipped_left, bottom - clipped_top)
        if box != (left, top, width, height) and not self._warned_clipped:
            # Probe regions are fractions of the captured area, so a clipped capture shifts them.
            logger.warning(
                "the window %s reaches off the %dx%d screen; capturing only %s, and probes may misread until "
                "the whole window is on screen", (left, top, width, height), screen_w, screen_h, box,
            )
            self._warned_clipped = True
        return box

    def grab(self) -> Grab:
        """Capture the client area where the window is now."""
        self.box = self._locate()
        left, top, width, height = self.box
        shot = self._mss.grab({"left": left, "top": top, "width": width, "height": height})
        timestamp_s = time.monotonic()
        pixels = np.frombuffer(shot.bgra, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        return Grab(pixels=pixels, timestamp_s=timestamp_s, left=left, top=top)

    def is_viewable(self) -> bool:
        from Xlib import X
        from Xlib.error import XError

        if self.window is None:
            return True
        try:
            return self.window.get_attributes().map_state == X.IsViewable
        except XError:
            return False

    def diagnose_black(self) -> str:
        """Explain a black capture: minimised or unmapped window, or a game that draws past the X server."""
        if not self.is_viewable():
            return (
                f"window {self.spec.title!r} is minimised or unmapped, so the capture is black; restore the window"
            )
        return (
            "the capture is black although the window is visible: exclusive-fullscreen and some GPU-accelerated "
            "games draw past the X server. Switch the game to windowed or borderless-windowed mode"
        )

    def close(self) -> None:
        self._mss.close()
        self.display.close()


class CaptureMonitor:
    """Tracks whether recent captures are black or unchanged (frozen)."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self.last_change_s: float | None = None
        self.black_since_s: float | None = None

    def update(self, grab: Grab) -> None:
        sample = grab.pixels[::8, ::8, :3]
        if int(sample.max(initial=0)) <= BLACK_MAX_LEVEL:
            if self.black_since_s is None:
                self.black_since_s = grab.timestamp_s
        else:
            self.black_since_s = None
        if self._previous is None or sample.shape != self._previous.shape or not np.array_equal(sample, self._previous):
            self.last_change_s = grab.timestamp_s
        self._previous = sample.copy()

    def black_s(self, now_s: float) -> float:
        return 0.0 if self.black_since_s is None else now_s - self.black_since_s

    def frozen_s(self, now_s: float) -> float:
        return 0.0 if self.last_change_s is None else now_s - self.last_change_s


__all__ = ["CapabilityError", "CaptureError", "CaptureMonitor", "Grab", "WindowCapture", "find_window", "list_windows"]
