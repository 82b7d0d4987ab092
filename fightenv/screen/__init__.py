"""The screen backend: any game window as a Gymnasium env, seen with ``mss`` and played with ``pynput``.

- ``profile``: game profiles (TOML), ``load_profile(path)``.
- ``probes``: computer-vision state probes, ``StateReader``.
- ``capture``: window lookup and capture, black and frozen detection.
- ``keys``: key names, ``KeySender`` (releases keys on every exit), hotkeys, held keys read from X.
- ``checks``: capability checks (display, Wayland, keys).
- ``env``: ``ScreenEnv``, registered as ``fightenv/Screen-v0``.
- ``preview``: ``python -m fightenv.screen.preview``, a live table and a labelled PNG of what each probe reads.

Only ``profile`` and ``probes`` are imported here; the rest need an X display.
"""

from fightenv.screen.profile import ARENA_PROFILE, Profile, ProfileError, load_profile
from fightenv.screen.probes import Reading, StateReader

__all__ = ["ARENA_PROFILE", "Profile", "ProfileError", "Reading", "StateReader", "load_profile"]
