"""Show what each probe of a game profile reads from the game window, for people writing a profile.

    python -m fightenv.screen.preview --profile my_game.toml
    python -m fightenv.screen.preview --profile my_game.toml --once --png probes.png
    python -m fightenv.screen.preview --profile my_game.toml --window-title "My Game" --seconds 30

Finds the window as the screen env does (the profile's ``[window]``, or
``--window-title``), captures it and runs every probe. Prints a table with one
row per probe: name, kind, raw number, threshold and output. The output is the
feature the env puts into its state: the raw number clipped to [0, 1], or the
bit after the threshold. A last line shows whether the ``[episode] start``
conditions hold now.
The table is redrawn ``--rate`` times a second until Ctrl+C or ``--seconds``
pass, or printed once with ``--once``. ``--png`` writes the last captured frame
with every probe's region drawn and labelled with its output.

Exit status: 0 on success, 2 on an invalid profile, no X display or no matching window.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import TextIO

import cv2
import numpy as np

from fightenv.screen.probes import Reading, StateReader
from fightenv.screen.profile import ARENA_PROFILE, Profile, ProbeSpec, ProfileError, load_profile

logger = logging.getLogger(__name__)

LABEL_COLOUR = (255, 255, 255)
"""BGR colour of label text, on a ``LABEL_BACKGROUND`` box."""
REGION_COLOURS = ((0, 220, 255), (255, 140, 0), (255, 0, 200), (80, 255, 80), (0, 120, 255), (255, 255, 0))
"""BGR colours for probe regions, cycled in profile order so that neighbouring regions differ."""


@dataclass
class PreviewConfig:
    """Options of ``python -m fightenv.screen.preview``."""

    profile: str = str(ARENA_PROFILE)
    """Game profile (TOML) whose probes to run."""
    window_title: str = ""
    """Part of the window title to capture instead of the profile's ``[window] title``."""
    once: bool = False
    """Capture and print one table, then exit."""
    png: str = ""
    """Path of a PNG of the last captured frame with every probe region drawn and labelled."""
    seconds: float | None = None
    """Stop the live table after this many seconds; None runs until Ctrl+C."""
    rate_hz: float = 4.0
    """Table refreshes per second."""

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")


def format_table(profile: Profile, reading: Reading) -> str:
    """Format one reading as a table: probe, kind, raw number, threshold, output; then the start conditions."""
    width = max(len("probe"), *(len(spec.name) for spec in profile.probes))
    lines = [f"{'probe':<{width}}  {'kind':<9} {'raw':>10}  {'threshold':<12} {'output':>7}"]
    for spec in profile.probes:
        threshold = f"{spec.threshold.compare} {spec.threshold.value:g}" if spec.threshold is not None else "-"
        output = f"{reading.values[spec.name]:.0f}" if spec.threshold is not None else f"{reading.values[spec.name]:.3f}"
        lines.append(f"{spec.name:<{width}}  {spec.kind:<9} {reading.raw[spec.name]:>10.4g}  {threshold:<12} "
                     f"{output:>7}")
    start = profile.episode.start
    if start:
        parts = [f"{c.probe} {c.threshold.compare} {c.threshold.value:g}: "
                 f"{'yes' if c.threshold.test(reading.values[c.probe]) else 'no'}" for c in start]
        holds = all(c.threshold.test(reading.values[c.probe]) for c in start)
        lines.append(f"episode start {'holds' if holds else 'does not hold'} ({'; '.join(parts)})")
    return "\n".join(lines)


def _region_box(spec: ProbeSpec, width: int, height: int) -> tuple[int, int, int, int]:
    """Map a probe's fractional region to pixel corners of the full frame, rounding as the probes do."""
    left, top, right, bottom = spec.region
    x0, y0 = int(round(left * width)), int(round(top * height))
    x1, y1 = max(x0 + 1, int(round(right * width))), max(y0 + 1, int(round(bottom * height)))
    return x0, y0, x1, y1


LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALE = 0.4
LABEL_BACKGROUND = (25, 25, 25)
LABEL_PAD = 3
SWATCH = 8
"""Side in pixels of the square in a label's region colour that ties the label to its outline."""
LABEL_GAP = 3


def draw_probes(pixels: np.ndarray, profile: Profile, reading: Reading,
                blob_points: Mapping[str, Sequence[tuple[float, float] | None]] | None = None) -> np.ndarray:
    """Return a BGR copy of a captured BGRA frame with each probe's region outlined and labelled with its output.

    Each label is white text on a dark box beside its region, with a square in the region's colour, placed
    where it covers no other label (and, where there is room, no other region). ``blob_points`` (from
    ``StateReader.blob_points``) marks what the distance, position and elevation probes found: ``+`` for the first
    point (the ``colors`` blob, or the body's bottom centre), ``x`` for the second (the ``colors_b`` blob or
    the shadow), joined by a line. Derived probes read another probe's number, not the frame, so they get
    no outline.
    """
    image = cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    height, width = image.shape[:2]
    drawn = [(index, spec) for index, spec in enumerate(profile.probes) if spec.kind != "derived"]
    regions = {spec.name: _region_box(spec, width, height) for _, spec in drawn}
    for index, spec in drawn:
        x0, y0, x1, y1 = regions[spec.name]
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), REGION_COLOURS[index % len(REGION_COLOURS)], 1)

    for index, spec in drawn:
        colour = REGION_COLOURS[index % len(REGION_COLOURS)]
        points = (blob_points or {}).get(spec.name, ())
        _mark_points(image, points, colour)

    for index, text, (x, y, right, bottom) in layout_labels(profile, reading, width, height):
        colour = REGION_COLOURS[index % len(REGION_COLOURS)]
        cv2.rectangle(image, (x, y), (right - 1, bottom - 1), LABEL_BACKGROUND, -1)
        swatch_top = y + (bottom - y - SWATCH) // 2
        cv2.rectangle(image, (x + LABEL_PAD, swatch_top), (x + LABEL_PAD + SWATCH - 1, swatch_top + SWATCH - 1),
                      colour, -1)
        (_, text_height), _ = cv2.getTextSize(text, LABEL_FONT, LABEL_SCALE, 1)
        cv2.putText(image, text, (x + 2 * LABEL_PAD + SWATCH, y + LABEL_PAD + text_height), LABEL_FONT,
                    LABEL_SCALE, LABEL_COLOUR, 1, cv2.LINE_AA)
    return image


def layout_labels(profile: Profile, reading: Reading, width: int,
                  height: int) -> list[tuple[int, str, tuple[int, int, int, int]]]:
    """Return (probe index, text, box) of each drawn probe's label, boxes as ``(left, top, right, bottom)`` pixels.

    No two boxes overlap while the frame has room for them.
    """
    drawn = [(index, spec) for index, spec in enumerate(profile.probes) if spec.kind != "derived"]
    regions = {spec.name: _region_box(spec, width, height) for _, spec in drawn}
    # Labels keep off the regions smaller than a quarter of the frame; any spot covers the larger ones.
    small_regions = [box for box in regions.values() if (box[2] - box[0]) * (box[3] - box[1]) < width * height / 4]
    placed: list[tuple[int, int, int, int]] = []
    labels = []
    for index, spec in drawn:
        value = reading.values[spec.name]
        text = f"{spec.name}={value:.0f}" if spec.threshold is not None else f"{spec.name}={value:.2f}"
        (text_width, text_height), baseline = cv2.getTextSize(text, LABEL_FONT, LABEL_SCALE, 1)
        size = (SWATCH + 3 * LABEL_PAD + text_width, text_height + baseline + 2 * LABEL_PAD)
        x, y = _place_label(regions[spec.name], size, (width, height), placed, small_regions)
        box = (x, y, x + size[0], y + size[1])
        placed.append(box)
        labels.append((index, text, box))
    return labels


def _mark_points(image: np.ndarray, points: Sequence[tuple[float, float] | None], colour) -> None:
    """Draw a blob probe's points: + for the first, x for the second, a line between them when both exist."""
    found = [None if point is None else (int(round(point[0])), int(round(point[1]))) for point in points]
    if len(found) == 2 and found[0] is not None and found[1] is not None:
        cv2.line(image, found[0], found[1], colour, 1, cv2.LINE_AA)
    for point, marker in zip(found, (cv2.MARKER_CROSS, cv2.MARKER_TILTED_CROSS)):
        if point is None:
            continue
        # A black marker under the coloured one keeps it visible on any background.
        cv2.drawMarker(image, point, (0, 0, 0), marker, 15, 4)
        cv2.drawMarker(image, point, colour, marker, 13, 2)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_label(region: tuple[int, int, int, int], size: tuple[int, int], frame: tuple[int, int],
                 placed: Sequence[tuple[int, int, int, int]],
                 avoid: Sequence[tuple[int, int, int, int]]) -> tuple[int, int]:
    """Return the top-left corner of a label of ``size`` beside ``region``, clear of the ``placed`` labels.

    Candidate spots are right of, below, left of and above the region, each slid down (up for above) in
    label-sized steps and kept inside the frame. The first spot within 3 steps that covers none of the
    ``avoid`` regions wins. Next comes, for a region in ``avoid``, the first spot off the region itself.
    Last comes the first spot clear of labels, so the labels of regions as big as the frame stack at its
    right edge. Only when no spot is clear of labels does the label go to the frame's top-left corner.
    """
    x0, y0, x1, y1 = region
    label_width, label_height = size
    frame_width, frame_height = frame
    anchors = [
        (x1 + LABEL_GAP, y0, label_height + 1),
        (x0, y1 + LABEL_GAP, label_height + 1),
        (x0 - LABEL_GAP - label_width, y0, label_height + 1),
        (x0, y0 - LABEL_GAP - label_height, -(label_height + 1)),
    ]
    spots = []
    for anchor_x, anchor_y, step_y in anchors:
        for slide in range(30):
            x = min(max(anchor_x, 0), frame_width - label_width)
            y = min(max(anchor_y + slide * step_y, 0), frame_height - label_height)
            box = (x, y, x + label_width, y + label_height)
            if not any(_overlaps(box, other) for other in placed):
                spots.append((slide, box))
    for slide, box in spots:
        if slide < 3 and not any(_overlaps(box, other) for other in avoid):
            return box[0], box[1]
    if region in avoid:
        for _, box in spots:
            if not _overlaps(box, region):
                return box[0], box[1]
    return spots[0][1][:2] if spots else (0, 0)


def write_png(path: Path, pixels: np.ndarray, profile: Profile, reading: Reading,
              blob_points: Mapping[str, Sequence[tuple[float, float] | None]] | None = None) -> None:
    """Write ``draw_probes`` of the frame to ``path``; raise OSError naming the path when it cannot be written."""
    if path.suffix.lower() != ".png" or path.is_dir():
        raise OSError(f"could not write the PNG {path}: pass a --png file path ending in .png")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"could not write the PNG {path}: cannot create its directory ({error.strerror}); "
                      "pass a --png path in a writable directory") from error
    if not cv2.imwrite(str(path), draw_probes(pixels, profile, reading, blob_points)):
        raise OSError(f"could not write the PNG {path}; pass a --png path in a writable directory")


def run_preview(config: PreviewConfig, stream: TextIO = sys.stdout) -> Reading:
    """Capture the window, print the probe table (once or live) and write the PNG; return the last reading.

    Raises ``ProfileError`` for an invalid profile and ``CapabilityError`` (``WindowNotFoundError``
    included) when there is no usable X display or no matching window.
    """
    from fightenv.screen.capture import WindowCapture
    from fightenv.screen.checks import WindowNotFoundError, check_display

    profile = load_profile(config.profile)
    window = profile.window
    if config.window_title:
        window = dataclasses.replace(window, title=config.window_title)
    check_display()
    try:
        capture = WindowCapture(window)
    except WindowNotFoundError as error:
        if not config.window_title:
            raise
        raise WindowNotFoundError(
            f"no visible window title contains {config.window_title!r} (--window-title). Visible windows: "
            f"{list(error.visible_titles) or 'none'}. Start the game (and un-minimise it), or pass part of one "
            "of these titles to --window-title",
            title=config.window_title, visible_titles=error.visible_titles,
        ) from None
    reader = StateReader(profile)
    live = not config.once
    redraw = live and stream.isatty()
    period_s = 1.0 / config.rate_hz
    started_s = time.monotonic()
    try:
        while True:
            grab = capture.grab()
            reading = reader.read(grab.pixels)
            table = format_table(profile, reading)
            header = f"{window.title or 'screen region'} at {capture.box}, {time.monotonic() - started_s:.1f} s"
            if redraw:
                stream.write("\x1b[H\x1b[J")  # cursor home, clear the screen
            stream.write(f"{header}\n{table}\n" + ("" if redraw else "\n"))
            stream.flush()
            if not live or (config.seconds is not None and time.monotonic() - started_s >= config.seconds):
                break
            time.sleep(max(0.0, period_s - (time.monotonic() - grab.timestamp_s)))
    except KeyboardInterrupt:
        logger.info("stopped by Ctrl+C")
    finally:
        capture.close()
    if config.png:
        write_png(Path(config.png), grab.pixels, profile, reading, reader.blob_points())
        logger.info("wrote %s (%dx%d) with %d probe regions", config.png, grab.pixels.shape[1],
                    grab.pixels.shape[0], sum(spec.kind != "derived" for spec in profile.probes))
    return reading


def parse_args(argv: list[str] | None = None) -> PreviewConfig:
    parser = argparse.ArgumentParser(
        prog="python -m fightenv.screen.preview", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", default=str(ARENA_PROFILE),
                        help="game profile (TOML) whose probes to run (default: %(default)s)")
    parser.add_argument("--window-title", default="",
                        help="part of the window title to capture instead of the profile's [window] title")
    parser.add_argument("--once", action="store_true", help="capture and print one table, then exit")
    parser.add_argument("--png", default="", help="write the last captured frame with every probe region drawn "
                        "and labelled to this PNG path")
    parser.add_argument("--seconds", type=float, default=None, help="stop the live table after this many seconds "
                        "(default: run until Ctrl+C)")
    parser.add_argument("--rate", type=float, default=4.0, dest="rate_hz", help="table refreshes per second")
    args = parser.parse_args(argv)
    try:
        return PreviewConfig(**vars(args))
    except ValueError as error:
        parser.error(str(error))  # exits with status 2
        raise


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.info("config: %s", dataclasses.asdict(config))
    from fightenv.screen.capture import CaptureError
    from fightenv.screen.checks import CapabilityError

    try:
        run_preview(config)
    except (ProfileError, CapabilityError, CaptureError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
