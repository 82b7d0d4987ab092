"""Show what each probe of a game profile reads from the game window, for people writing a profile.

    python -m fightenv.screen.preview --profile my_game.toml
    python -m fightenv.screen.preview --profile my_game.toml --once --png probes.png
    python -m fightenv.screen.preview --profile my_game.toml --window-title "My Game" --seconds 30

Finds the window as the screen env does (the profile's ``[window]``, or
``--window-title``), captures it and runs every probe. Prints a table with one
row per probe: name, kind, raw number, threshold and output. The output is the
feature the env puts into its state: the raw number clipped to [0, 1], or the
bit after the threshold. A last line says whether the ``[episode] start``
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
from typing import TextIO

import cv2
import numpy as np

from fightenv.screen.probes import Reading, StateReader
from fightenv.screen.profile import ARENA_PROFILE, Profile, ProbeSpec, ProfileError, load_profile

logger = logging.getLogger(__name__)

LABEL_COLOUR = (255, 255, 255)
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


def draw_probes(pixels: np.ndarray, profile: Profile, reading: Reading) -> np.ndarray:
    """Return a BGR copy of a captured BGRA frame with each probe's region outlined and labelled with its output.

    Derived probes read another probe's number, not the frame, so they get no outline.
    Labels of probes that share a region are stacked below its top edge.
    """
    image = cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    height, width = image.shape[:2]
    labels_in_box: dict[tuple[int, int, int, int], int] = {}
    for index, spec in enumerate(profile.probes):
        if spec.kind == "derived":
            continue
        colour = REGION_COLOURS[index % len(REGION_COLOURS)]
        box = _region_box(spec, width, height)
        x0, y0, x1, y1 = box
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), colour, 1)
        value = reading.values[spec.name]
        label = f"{spec.name}={value:.0f}" if spec.threshold is not None else f"{spec.name}={value:.2f}"
        row = labels_in_box.get(box, 0)
        labels_in_box[box] = row + 1
        origin = (x0 + 2, min(height - 3, y1 + 11 + 12 * row) if y1 - y0 < 20 else y0 + 11 + 12 * row)
        cv2.putText(image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
    return image


def write_png(path: Path, pixels: np.ndarray, profile: Profile, reading: Reading) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), draw_probes(pixels, profile, reading)):
        raise OSError(f"could not write the PNG {path}; check that the directory is writable")


def run_preview(config: PreviewConfig, stream: TextIO = sys.stdout) -> Reading:
    """Capture the window, print the probe table (once or live) and write the PNG; return the last reading.

    Raises ``ProfileError`` for an invalid profile and ``CapabilityError`` (``WindowNotFoundError``
    included) when there is no usable X display or no matching window.
    """
    from fightenv.screen.capture import WindowCapture
    from fightenv.screen.checks import check_display

    profile = load_profile(config.profile)
    window = profile.window
    if config.window_title:
        window = dataclasses.replace(window, title=config.window_title)
    check_display()
    capture = WindowCapture(window)
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
        write_png(Path(config.png), grab.pixels, profile, reading)
        logger.info("wrote %s (%dx%d) with %d probe regions", config.png, grab.pixels.shape[1],
                    grab.pixels.shape[0], sum(spec.kind != "derived" for spec in profile.probes))
    return reading


def parse_args(argv: list[str] | None = None) -> PreviewConfig:
    parser = argparse.ArgumentParser(
        prog="python -m fightenv.screen.preview", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", default=str(ARENA_PROFILE), help="game profile (TOML) whose probes to run")
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
