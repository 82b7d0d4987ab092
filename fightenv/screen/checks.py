"""Capability checks that run before the screen backend captures a frame or presses a key.

Each failure raises ``CapabilityError`` with the value that failed and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


class CapabilityError(RuntimeError):
    """The machine cannot capture the game or send it keys; the message gives the cause and the fix."""


class WindowNotFoundError(CapabilityError):
    """No visible window's title contains the profile's title."""

    def __init__(self, message: str, title: str = "", visible_titles: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.title = title
        self.visible_titles = visible_titles
        """Titles of the visible windows when the search failed, sorted."""


def check_display(environ: dict[str, str] | None = None) -> str:
    """Check that an X11 display is reachable and that the session is not Wayland; return ``$DISPLAY``."""
    environ = os.environ if environ is None else environ
    session_type = environ.get("XDG_SESSION_TYPE", "")
    wayland = environ.get("WAYLAND_DISPLAY", "")
    if wayland or session_type.lower() == "wayland":
        raise CapabilityError(
            f"this is a Wayland session (WAYLAND_DISPLAY={wayland!r}, XDG_SESSION_TYPE={session_type!r}); "
            "screen capture with mss and key output with pynput need X11. Log in to an X11 session "
            "(\"GNOME on Xorg\" or similar on the login screen), or run the game and fightenv inside "
            "an X server such as Xvfb or Xephyr and set DISPLAY to it"
        )
    display_name = environ.get("DISPLAY", "")
    if not display_name:
        raise CapabilityError(
            "DISPLAY is not set, so there is no X server to capture or send keys to; run from a desktop "
            "session, or start one (for example `Xvfb :99 -screen 0 1280x1024x24 &` then `export DISPLAY=:99`)"
        )
    from Xlib import display as xdisplay
    from Xlib.error import DisplayError

    try:
        display = xdisplay.Display(display_name)
    except (DisplayError, OSError) as error:
        raise CapabilityError(
            f"cannot connect to the X server at DISPLAY={display_name!r} ({error}); check that it is running "
            "and that this user may connect (xhost, XAUTHORITY)"
        ) from error
    try:
        if display.query_extension("XTEST") is None:
            raise CapabilityError(
                f"the X server at DISPLAY={display_name!r} lacks the XTEST extension, which pynput needs to "
                "send keys; enable it (Xvfb has it unless started with -extension XTEST)"
            )
    finally:
        display.close()
    return display_name


def check_keys(keys: Iterable[str], display_name: str | None = None) -> None:
    """Check that every key name has a keycode in the X server's keyboard mapping.

    A key without a keycode would be typed through a temporarily remapped
    keycode, which many games do not read. This check cannot tell whether the
    game reads XTest events at all: on Windows, DirectInput games may need
    scan codes, and an elevated game ignores a non-elevated sender.
    """
    from Xlib import XK
    from Xlib import display as xdisplay

    from fightenv.screen.keys import KEY_NAMES, normalize_key_name

    display = xdisplay.Display(display_name or os.environ.get("DISPLAY"))
    try:
        missing = []
        for key in keys:
            name = normalize_key_name(key)
            if display.keysym_to_keycode(XK.string_to_keysym(KEY_NAMES[name])) == 0:
                missing.append(f"{name} (keysym {KEY_NAMES[name]})")
    finally:
        display.close()
    if missing:
        raise CapabilityError(
            f"key(s) {missing} have no keycode in the X keyboard mapping, so the game may ignore them; "
            "map them to other keys in the profile's [buttons], or add them with xmodmap"
        )
