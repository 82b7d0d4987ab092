"""Game profiles: one TOML file per game that names what to capture, which keys to press and what to read.

A profile is validated completely on load. Every error names the file, the
TOML key and the fix, so a user editing a profile by hand learns what to change
without reading this module. ``fightenv/profiles/arena.toml`` is the profile of
the built-in Arena's window and ``fightenv/profiles/fighter3d_example.toml`` an
annotated example for a typical 3D fighter.

Layout (all tables except ``[window]``, ``[buttons]`` and ``[[probes]]`` are optional)::

    name = "arena"                 # game name, stored with demos and policies
    decision_hz = 15.0             # agent decisions per second
    [window]  title = "..."        # substring of the window title, or region = [x, y, w, h] in screen pixels
    [frame]   crop, size, color    # observation preprocessing
    [buttons] forward = "d" ...    # ordered: the action vector follows this order
    [hotkeys] pause, stop, episode_end, episode_start
    [[probes]] name, kind, ...     # state features, in order
    [episode] start, end conditions and outcome
    [reward]  weights              # reward = sum of weight * change of a feature
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fightenv.screen.keys import KEY_NAMES, normalize_key_name

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
ARENA_PROFILE = PROFILES_DIR / "arena.toml"

PROBE_KINDS = ("bar", "color", "template", "distance", "position", "elevation", "derived")
BAR_DIRECTIONS = ("left_to_right", "right_to_left", "bottom_to_top", "top_to_bottom")
COMPARISONS = (">=", "<=", ">", "<")
OUTCOMES = ("win", "loss", "draw", "compare", "none")
HOTKEY_ACTIONS = ("pause", "stop", "episode_end", "episode_start")
MAX_DECISION_HZ = 120.0
MAX_FRAME_SIDE = 1024


class ProfileError(ValueError):
    """A game profile is missing, unreadable or invalid; the message names the file, the key and the fix."""


Region = tuple[float, float, float, float]
"""(left, top, right, bottom) as fractions of the captured frame, 0 to 1."""
Color = tuple[int, int, int]
"""RGB, 0 to 255 per channel."""


@dataclass(frozen=True)
class WindowSpec:
    """Capture target: a window found by title, or a fixed screen region."""

    title: str | None = None
    """Case-sensitive substring of the window title (``_NET_WM_NAME`` or ``WM_NAME``)."""
    region: tuple[int, int, int, int] | None = None
    """Fixed screen region ``(x, y, width, height)`` in pixels, used when ``title`` is not given."""


@dataclass(frozen=True)
class FrameSpec:
    """Preprocessing of the captured client area into the observation frame."""

    crop: tuple[int, int, int, int] | None = None
    """``(x, y, width, height)`` in pixels of the client area; None keeps the whole area."""
    size: tuple[int, int] = (84, 84)
    """Observation ``(height, width)`` in pixels."""
    color: bool = False
    """RGB frames (C = 3) instead of grey (C = 1)."""


@dataclass(frozen=True)
class Threshold:
    """Turns a probe's number into a bit: ``value <compare> threshold``."""

    value: float
    compare: str = ">="

    def test(self, x: float) -> bool:
        if self.compare == ">=":
            return x >= self.value
        if self.compare == "<=":
            return x <= self.value
        if self.compare == ">":
            return x > self.value
        return x < self.value


@dataclass(frozen=True)
class ProbeSpec:
    """One named feature read off the captured frame; ``kind`` selects which fields apply.

    - ``bar``: fill fraction of a bar in ``colors``, filling from the side ``direction`` names.
    - ``color``: fraction of the region's pixels within ``tolerance`` of one of ``colors``.
    - ``template``: best normalised cross-correlation of ``template`` inside the region, clipped to [0, 1].
    - ``distance``: ground distance between the centroids of two colour blobs,
      mapped through the floor homography and divided by ``scale``, clipped to [0, 1].
    - ``position``: where one colour blob's centroid lies along one floor axis
      (``axis`` 0 or 1 of the ``floor_world`` points), mapped through the floor
      homography, with ``span`` = [low, high] in world units scaled to [0, 1] and clipped.
    - ``elevation``: height of a body blob's lowest pixel above the centroid of
      its shadow blob, as a fraction of the frame height (negative when standing).
    - ``derived``: another probe's value, to threshold it a second time.

    With ``threshold`` set the feature is a bit (0 or 1); otherwise it is the number.
    """

    name: str
    kind: str
    region: Region = (0.0, 0.0, 1.0, 1.0)
    colors: tuple[Color, ...] = ()
    tolerance: int = 0
    """Maximum absolute difference per RGB channel for a pixel to match a colour."""
    direction: str = "left_to_right"
    threshold: Threshold | None = None
    in_state: bool = True
    """False keeps the probe out of the state vector, for episode conditions only."""
    template: Path | None = None
    colors_b: tuple[Color, ...] = ()
    """Second blob (``distance``) or shadow blob (``elevation``)."""
    floor_image: tuple[tuple[float, float], ...] = ()
    """Four floor points in the frame, as (u, v) fractions; with ``floor_world`` they define the homography."""
    floor_world: tuple[tuple[float, float], ...] = ()
    """The same four points on the floor, in world units (for example metres)."""
    scale: float = 1.0
    """World units that map to a ``distance`` value of 1."""
    axis: int = 0
    """Floor coordinate a ``position`` probe reports: 0 for the first of each ``floor_world`` pair, 1 for the second."""
    span: tuple[float, float] = (0.0, 1.0)
    """World coordinates that a ``position`` probe maps to 0 and to 1."""
    source: str | None = None
    """Probe whose value a ``derived`` probe thresholds."""
    min_pixels: int = 1
    """Blob probes: fewer matching pixels than this count as "not visible"."""
    step: int = 1
    """Read every ``step``-th pixel in both directions; 2 quarters the cost for cues several pixels wide."""


@dataclass(frozen=True)
class Condition:
    """``probe <compare> threshold``, used for episode start and end."""

    probe: str
    threshold: Threshold


@dataclass(frozen=True)
class EndCondition:
    """An episode end: all ``conditions`` hold; how it ends and who won."""

    conditions: tuple[Condition, ...]
    outcome: str = "none"
    """"win", "loss", "draw", "compare" (higher ``score_own`` than ``score_opponent`` wins) or "none"."""
    truncated: bool = False
    """True for ends that are not a result of play, such as a round timer running out."""


@dataclass(frozen=True)
class EpisodeSpec:
    start: tuple[Condition, ...] = ()
    """All must hold for ``reset`` to return; empty means the first captured frame starts the episode."""
    end: tuple[EndCondition, ...] = ()
    """Any one ends the episode."""
    score_own: str | None = None
    score_opponent: str | None = None
    start_timeout_s: float = 60.0
    """``reset`` raises when the start conditions have not held for this long."""
    max_episode_s: float | None = None
    """Truncate episodes longer than this, in seconds of wall time."""


@dataclass(frozen=True)
class Profile:
    """A validated game profile; ``load_profile`` builds it from a TOML file."""

    name: str
    path: Path
    window: WindowSpec
    frame: FrameSpec
    buttons: tuple[str, ...]
    keys: tuple[str, ...]
    """Key per button, in ``buttons`` order, as canonical key names (see ``fightenv.screen.keys``)."""
    hotkeys: dict[str, str]
    """Control action ("pause", "stop", "episode_end", "episode_start") to canonical key name."""
    probes: tuple[ProbeSpec, ...]
    decision_hz: float = 15.0
    episode: EpisodeSpec = field(default_factory=EpisodeSpec)
    reward_weights: dict[str, float] = field(default_factory=dict)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.probes if p.in_state)

    @property
    def key_for_button(self) -> dict[str, str]:
        return dict(zip(self.buttons, self.keys))


# -- loading -------------------------------------------------------------------------


def load_profile(path: str | Path) -> Profile:
    """Read and validate the game profile at ``path``; raise ``ProfileError`` naming the key and the fix."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ProfileError(
            f"game profile {str(path)!r} not found; pass the path of a .toml profile, "
            f"for example {str(ARENA_PROFILE)!r}"
        )
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{path}: invalid TOML ({error}); fix the syntax at that line") from error
    return _Parser(path).profile(data)


class _Parser:
    """Validates one profile's parsed TOML; every error names ``self.path`` and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> ProfileError:
        return ProfileError(f"{self.path}: {key}: {message}")

    def table(self, data: dict, key: str, required: bool = False) -> dict:
        value = data.get(key.rsplit(".", 1)[-1])
        if value is None:
            if required:
                raise self.fail(key, f"missing table [{key}]; add it (see {ARENA_PROFILE.name} for an example)")
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {value!r}")
        return value

    def unknown(self, data: dict, key: str, allowed: tuple[str, ...]) -> None:
        extra = sorted(set(data) - set(allowed))
        if extra:
            raise self.fail(key, f"unknown key(s) {extra}; the allowed keys are {sorted(allowed)}")

    def number(self, data: dict, key: str, name: str, default=None, low=None, high=None) -> float:
        value = data.get(name, default)
        full = f"{key}.{name}" if key else name
        if value is None:
            raise self.fail(full, "missing; add a number")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(full, f"expected a number, got {value!r}")
        if low is not None and value < low or high is not None and value > high:
            raise self.fail(full, f"expected a number from {low} to {high}, got {value!r}")
        return float(value)

    def integer(self, data: dict, key: str, name: str, default=None, low=None, high=None) -> int:
        value = data.get(name, default)
        full = f"{key}.{name}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(full, f"expected an integer, got {value!r}")
        if low is not None and value < low or high is not None and value > high:
            raise self.fail(full, f"expected an integer from {low} to {high}, got {value!r}")
        return value

    def string(self, data: dict, key: str, name: str, default=None, choices: tuple[str, ...] | None = None) -> str:
        value = data.get(name, default)
        full = f"{key}.{name}" if key else name
        if value is None:
            raise self.fail(full, "missing; add a string")
        if not isinstance(value, str) or not value:
            raise self.fail(full, f"expected a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(full, f"expected one of {list(choices)}, got {value!r}")
        return value

    def boolean(self, data: dict, key: str, name: str, default: bool) -> bool:
        value = data.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key}.{name}", f"expected true or false, got {value!r}")
        return value

    def key_name(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a key name string such as \"d\", \"space\" or \"f8\", got {value!r}")
        try:
            return normalize_key_name(value)
        except ValueError as error:
            raise self.fail(key, str(error)) from None

    # -- sections ----------------------------------------------------------------------

    def profile(self, data: dict) -> Profile:
        self.unknown(data, "(top level)", (
            "name", "decision_hz", "window", "frame", "buttons", "hotkeys", "probes", "episode", "reward",
        ))
        name = self.string(data, "", "name")
        decision_hz = self.number(data, "", "decision_hz", default=15.0, low=0.1, high=MAX_DECISION_HZ)
        window = self.window(self.table(data, "window", required=True))
        frame = self.frame(self.table(data, "frame"))
        buttons, keys = self.buttons(self.table(data, "buttons", required=True))
        hotkeys = self.hotkeys(self.table(data, "hotkeys"), keys)
        probes = self.probes(data.get("probes"))
        names = {p.name for p in probes}
        episode = self.episode(self.table(data, "episode"), names)
        reward = self.reward(self.table(data, "reward"), names)
        return Profile(
            name=name, path=self.path, window=window, frame=frame, buttons=buttons, keys=keys,
            hotkeys=hotkeys, probes=probes, decision_hz=decision_hz, episode=episode, reward_weights=reward,
        )

    def window(self, data: dict) -> WindowSpec:
        self.unknown(data, "window", ("title", "region"))
        if ("title" in data) == ("region" in data):
            raise self.fail(
                "window", "set exactly one of title (a substring of the window title) or region = [x, y, width, height]"
            )
        if "title" in data:
            return WindowSpec(title=self.string(data, "window", "title"))
        return WindowSpec(region=self.pixel_box(data["region"], "window.region"))

    def pixel_box(self, value: Any, key: str) -> tuple[int, int, int, int]:
        if (
            not isinstance(value, list) or len(value) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise self.fail(key, f"expected [x, y, width, height] in whole pixels, got {value!r}")
        x, y, width, height = value
        if x < 0 or y < 0 or width <= 0 or height <= 0:
            raise self.fail(key, f"expected x, y >= 0 and width, height > 0, got {value!r}")
        return x, y, width, height

    def frame(self, data: dict) -> FrameSpec:
        self.unknown(data, "frame", ("crop", "size", "color"))
        crop = self.pixel_box(data["crop"], "frame.crop") if "crop" in data else None
        size = data.get("size", [84, 84])
        if isinstance(size, int) and not isinstance(size, bool):
            size = [size, size]
        if (
            not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= MAX_FRAME_SIDE for v in size)
        ):
            raise self.fail("frame.size", f"expected [height, width] from 8 to {MAX_FRAME_SIDE} pixels, got {size!r}")
        return FrameSpec(crop=crop, size=(size[0], size[1]), color=self.boolean(data, "frame", "color", False))

    def buttons(self, data: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if not data:
            raise self.fail("buttons", "no buttons; add one line per button, such as forward = \"d\"")
        keys = tuple(self.key_name(f"buttons.{button}", key) for button, key in data.items())
        seen: dict[str, str] = {}
        for button, key in zip(data, keys):
            if key in seen:
                raise self.fail(
                    f"buttons.{button}", f"key {key!r} is already mapped to button {seen[key]!r}; give each button its own key"
                )
            seen[key] = button
        return tuple(data), keys

    def hotkeys(self, data: dict, button_keys: tuple[str, ...]) -> dict[str, str]:
        self.unknown(data, "hotkeys", HOTKEY_ACTIONS)
        hotkeys = {action: self.key_name(f"hotkeys.{action}", key) for action, key in data.items()}
        for action, key in hotkeys.items():
            if key in button_keys:
                raise self.fail(f"hotkeys.{action}", f"key {key!r} is also a button key; pick a key no button uses")
        if len(set(hotkeys.values())) != len(hotkeys):
            raise self.fail("hotkeys", f"two hotkeys share a key in {hotkeys}; give each its own key")
        return hotkeys

    def probes(self, value: Any) -> tuple[ProbeSpec, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail("probes", "no probes; add at least one [[probes]] table with a name and a kind")
        probes: list[ProbeSpec] = []
        names: set[str] = set()
        for index, data in enumerate(value):
            key = f"probes[{index}]"
            if not isinstance(data, dict):
                raise self.fail(key, f"expected a table, got {data!r}")
            name = self.string(data, key, "name")
            key = f"probes.{name}"
            if name in names:
                raise self.fail(key, "duplicate probe name; probe names must be unique")
            probe = self.probe(data, key, name)
            if probe.kind == "derived" and probe.source not in names:
                raise self.fail(f"{key}.source", f"unknown probe {probe.source!r}; name a probe defined above this one")
            probes.append(probe)
            names.add(name)
        if not any(p.in_state for p in probes):
            raise self.fail("probes", "every probe has in_state = false; the state vector needs at least one feature")
        return tuple(probes)

    def probe(self, data: dict, key: str, name: str) -> ProbeSpec:
        kind = self.string(data, key, "kind", choices=PROBE_KINDS)
        common = ("name", "kind", "threshold", "compare", "in_state")
        allowed = {
            "bar": ("region", "colors", "tolerance", "direction"),
            "color": ("region", "colors", "tolerance"),
            "template": ("region", "template"),
            "distance": ("region", "colors", "colors_b", "tolerance", "floor_image", "floor_world", "scale", "min_pixels"),
            "position": ("region", "colors", "tolerance", "floor_image", "floor_world", "axis", "span", "min_pixels"),
            "elevation": ("region", "colors", "colors_b", "tolerance", "min_pixels"),
            "derived": ("source",),
        }[kind]
        if "region" in allowed:
            allowed = allowed + ("step",)
        self.unknown(data, key, common + allowed)

        fields: dict[str, Any] = {"name": name, "kind": kind, "in_state": self.boolean(data, key, "in_state", True)}
        if "region" in allowed:
            fields["region"] = self.region(data.get("region", [0.0, 0.0, 1.0, 1.0]), f"{key}.region")
            fields["step"] = self.integer(data, key, "step", default=1, low=1, high=8)
        if "colors" in allowed:
            fields["colors"] = self.colors(data.get("colors"), f"{key}.colors")
            fields["tolerance"] = self.integer(data, key, "tolerance", default=0, low=0, high=255)
        if "colors_b" in allowed:
            fields["colors_b"] = self.colors(data.get("colors_b"), f"{key}.colors_b")
        if "min_pixels" in allowed:
            fields["min_pixels"] = self.integer(data, key, "min_pixels", default=1, low=1)
        if kind == "bar":
            fields["direction"] = self.string(data, key, "direction", default="left_to_right", choices=BAR_DIRECTIONS)
        if kind == "template":
            template = self.path.parent / self.string(data, key, "template")
            if not template.is_file():
                raise self.fail(
                    f"{key}.template",
                    f"template image {str(template)!r} not found; give a PNG path relative to the profile's folder",
                )
            fields["template"] = template
        if kind in ("distance", "position"):
            fields["floor_image"] = self.points(data.get("floor_image"), f"{key}.floor_image", fractions=True)
            fields["floor_world"] = self.points(data.get("floor_world"), f"{key}.floor_world", fractions=False)
        if kind == "distance":
            fields["scale"] = self.number(data, key, "scale", default=1.0, low=1e-9)
        if kind == "position":
            fields["axis"] = self.integer(data, key, "axis", default=0, low=0, high=1)
            fields["span"] = self.span(data.get("span"), f"{key}.span")
        if kind == "derived":
            fields["source"] = self.string(data, key, "source")

        # An optional threshold turns the number into a bit; derived probes exist only to add one.
        if "threshold" in data:
            compare = self.string(data, key, "compare", default=">=", choices=COMPARISONS)
            fields["threshold"] = Threshold(self.number(data, key, "threshold"), compare)
        elif "compare" in data:
            raise self.fail(f"{key}.compare", "compare needs a threshold; add threshold = NUMBER or remove compare")
        elif kind == "derived":
            raise self.fail(f"{key}.threshold", "a derived probe needs a threshold; add threshold = NUMBER")
        return ProbeSpec(**fields)

    def region(self, value: Any, key: str) -> Region:
        if (
            not isinstance(value, list) or len(value) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise self.fail(key, f"expected [left, top, right, bottom] as fractions of the frame, got {value!r}")
        left, top, right, bottom = (float(v) for v in value)
        if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
            raise self.fail(
                key, f"expected 0 <= left < right <= 1 and 0 <= top < bottom <= 1 (fractions of the frame), got {value!r}"
            )
        return left, top, right, bottom

    def colors(self, value: Any, key: str) -> tuple[Color, ...]:
        if isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"expected a list of RGB colours such as [[60, 220, 80]], got {value!r}")
        colors = []
        for color in value:
            if (
                not isinstance(color, list) or len(color) != 3
                or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
            ):
                raise self.fail(key, f"expected RGB colours of three integers from 0 to 255, got {color!r}")
            colors.append((color[0], color[1], color[2]))
        return tuple(colors)

    def span(self, value: Any, key: str) -> tuple[float, float]:
        if (
            not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not value[0] < value[1]
        ):
            raise self.fail(key, f"expected [low, high] in floor_world units with low < high, got {value!r}")
        return float(value[0]), float(value[1])

    def points(self, value: Any, key: str, fractions: bool) -> tuple[tuple[float, float], ...]:
        if (
            not isinstance(value, list) or len(value) != 4
            or not all(
                isinstance(p, list) and len(p) == 2
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p) for p in value
            )
        ):
            raise self.fail(key, f"expected four [x, y] points, got {value!r}")
        if fractions and not all(0.0 <= c <= 1.0 for p in value for c in p):
            raise self.fail(key, f"expected frame points as fractions from 0 to 1, got {value!r}")
        return tuple((float(p[0]), float(p[1])) for p in value)

    def conditions(self, value: Any, key: str, names: set[str]) -> tuple[Condition, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of tables {{probe, threshold, compare}}, got {value!r}")
        conditions = []
        for index, data in enumerate(value):
            item = f"{key}[{index}]"
            if not isinstance(data, dict):
                raise self.fail(item, f"expected a table {{probe, threshold, compare}}, got {data!r}")
            self.unknown(data, item, ("probe", "threshold", "compare"))
            probe = self.string(data, item, "probe")
            if probe not in names:
                raise self.fail(f"{item}.probe", f"unknown probe {probe!r}; name one of {sorted(names)}")
            threshold = Threshold(
                self.number(data, item, "threshold"), self.string(data, item, "compare", ">=", COMPARISONS)
            )
            conditions.append(Condition(probe, threshold))
        return tuple(conditions)

    def episode(self, data: dict, names: set[str]) -> EpisodeSpec:
        self.unknown(data, "episode", ("start", "end", "score_own", "score_opponent", "start_timeout_s", "max_episode_s"))
        start = self.conditions(data.get("start", []), "episode.start", names)
        ends = []
        for index, item in enumerate(data.get("end", [])):
            key = f"episode.end[{index}]"
            if not isinstance(item, dict):
                raise self.fail(key, f"expected a table {{when, outcome, truncated}}, got {item!r}")
            self.unknown(item, key, ("when", "outcome", "truncated"))
            conditions = self.conditions(item.get("when"), f"{key}.when", names)
            if not conditions:
                raise self.fail(f"{key}.when", "empty; list at least one condition")
            ends.append(EndCondition(
                conditions=conditions,
                outcome=self.string(item, key, "outcome", "none", OUTCOMES),
                truncated=self.boolean(item, key, "truncated", False),
            ))
        scores = {}
        for name in ("score_own", "score_opponent"):
            if name in data:
                scores[name] = self.string(data, "episode", name)
                if scores[name] not in names:
                    raise self.fail(f"episode.{name}", f"unknown probe {scores[name]!r}; name one of {sorted(names)}")
        if any(end.outcome == "compare" for end in ends) and len(scores) != 2:
            raise self.fail("episode", "an end with outcome = \"compare\" needs score_own and score_opponent probes")
        max_episode_s = data.get("max_episode_s")
        return EpisodeSpec(
            start=start, end=tuple(ends), **scores,
            start_timeout_s=self.number(data, "episode", "start_timeout_s", default=60.0, low=0.1),
            max_episode_s=None if max_episode_s is None else self.number(data, "episode", "max_episode_s", low=0.1),
        )

    def reward(self, data: dict, names: set[str]) -> dict[str, float]:
        weights = {}
        self.unknown(data, "reward", ("weights",))
        table = self.table(data, "reward.weights")
        for probe, weight in table.items():
            if probe not in names:
                raise self.fail(f"reward.weights.{probe}", f"unknown probe; name one of {sorted(names)}")
            weights[probe] = self.number(table, "reward.weights", probe)
        return weights


def describe_keys() -> str:
    """Return the accepted key names as one line, for help text and errors."""
    return ", ".join(sorted(KEY_NAMES))
