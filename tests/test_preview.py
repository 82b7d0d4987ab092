"""python -m fightenv.screen.preview against the Arena window program under Xvfb."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from fightenv.screen.xvfb import launch_arena_window, private_display

pytestmark = pytest.mark.screen

ROOT = Path(__file__).resolve().parents[1]


def preview(*args: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fightenv.screen.preview", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=environ if environ is not None else dict(os.environ))


def table_rows(stdout: str) -> dict[str, list[str]]:
    """Split the printed probe table into rows by probe name: kind, raw, threshold..., output."""
    return {line.split()[0]: line.split()[1:] for line in stdout.splitlines()[2:] if line and line[0] != " "}


@pytest.fixture(scope="module")
def display():
    with private_display() as name:
        yield name


@pytest.fixture(scope="module")
def arena_window(display):
    # A long round: the capture is taken well before either fighter can lose health.
    window = launch_arena_window(display, "--seed", "3", "--round-time", "60")
    yield window
    window.terminate()
    window.wait(timeout=10)


def test_preview_once_writes_png(arena_window, tmp_path):
    png = tmp_path / "probes" / "arena.png"

    result = preview("--once", "--png", str(png))

    assert result.returncode == 0, result.stderr
    image = cv2.imread(str(png))
    assert image is not None
    assert image.shape == (480, 640, 3)
    rows = table_rows(result.stdout)
    assert rows["own_health"][0] == "bar"
    assert rows["own_health"][-1] == "1.000"
    assert rows["opponent_health"][-1] == "1.000"
    assert rows["opponent_attacking"][-1] in ("0", "1")  # a thresholded probe prints a bit
    assert "episode start" in result.stdout


def test_preview_png_marks_regions(arena_window, tmp_path):
    png = tmp_path / "arena.png"

    result = preview("--once", "--png", str(png))
    assert result.returncode == 0, result.stderr

    # The own_health region (0.04, 0.035, 0.44, 0.085 of 640x480) gets an outline in the first region colour.
    image = cv2.imread(str(png))
    top_edge = image[round(0.035 * 480), round(0.04 * 640) + 5:round(0.44 * 640) - 5]
    assert (top_edge == (0, 220, 255)).all(axis=1).mean() > 0.5


def test_preview_live_stops_after_seconds(arena_window):
    result = preview("--seconds", "0.6", "--rate", "10")

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("episode start") >= 3


def test_preview_window_not_found(arena_window):
    result = preview("--once", "--window-title", "no such game")

    assert result.returncode == 2
    assert "no visible window title contains 'no such game'" in result.stderr
    assert "fightenv Arena" in result.stderr
    # The user passed --window-title, so the fix names that option, not the profile's [window] title.
    assert "pass part of one of these titles to --window-title" in result.stderr
    assert "[window] title" not in result.stderr


def test_preview_png_unwritable(arena_window):
    result = preview("--once", "--png", "/proc/no_such_dir/probes.png")

    assert result.returncode == 2
    assert "could not write the PNG /proc/no_such_dir/probes.png" in result.stderr
    assert "Traceback" not in result.stderr


def test_preview_png_needs_png_suffix(arena_window, tmp_path):
    result = preview("--once", "--png", str(tmp_path / "probes.jpgx"))

    assert result.returncode == 2
    assert "pass a --png file path ending in .png" in result.stderr
    assert "Traceback" not in result.stderr


def test_preview_help_shows_default_profile():
    result = preview("--help")

    assert result.returncode == 0
    assert "(default:" in result.stdout
    assert "arena.toml)" in result.stdout.replace("\n", "").replace(" ", "")


def test_preview_labels_readable(arena_window):
    # Labels are white text on dark boxes that overlap no other label; blob probes mark what they found.
    from fightenv.screen.capture import WindowCapture
    from fightenv.screen.preview import LABEL_BACKGROUND, REGION_COLOURS, draw_probes, layout_labels
    from fightenv.screen.probes import StateReader
    from fightenv.screen.profile import ARENA_PROFILE, load_profile

    profile = load_profile(ARENA_PROFILE)
    capture = WindowCapture(profile.window)
    try:
        pixels = capture.grab().pixels
    finally:
        capture.close()
    reader = StateReader(profile)
    reading = reader.read(pixels)
    points = reader.blob_points()
    image = draw_probes(pixels, profile, reading, points)
    height, width = image.shape[:2]
    labels = layout_labels(profile, reading, width, height)

    assert len(labels) == sum(spec.kind != "derived" for spec in profile.probes)
    boxes = [box for _, _, box in labels]
    for i, (left, top, right, bottom) in enumerate(boxes):
        assert 0 <= left < right <= width, boxes[i]
        assert 0 <= top < bottom <= height, boxes[i]
        for other in boxes[i + 1:]:
            overlap = left < other[2] and other[0] < right and top < other[3] and other[1] < bottom
            assert not overlap, (boxes[i], other)
        patch = image[top:bottom, left:right].reshape(-1, 3)
        assert (patch == LABEL_BACKGROUND).all(axis=1).mean() > 0.5, labels[i][1]
        assert (patch == (255, 255, 255)).all(axis=1).any(), labels[i][1]

    # Both fighters stand in view, so the distance probe found both shadows, and own_depth the player's again.
    # Probes that find the same blob mark the same spot, and the one drawn last (later in the profile) shows.
    names = [spec.name for spec in profile.probes]
    first, second = points["distance"]
    (own_shadow,) = points["own_depth"]
    assert first is not None
    assert second is not None
    assert own_shadow == pytest.approx(first)
    for x, y in (first, second):
        marking = [name for name in names if any(
            point is not None and abs(point[0] - x) <= 1 and abs(point[1] - y) <= 1 for point in points.get(name, ()))]
        colour = REGION_COLOURS[names.index(marking[-1]) % len(REGION_COLOURS)]
        assert tuple(image[int(round(y)), int(round(x))]) == colour, marking
    assert set(points) == {"distance", "own_depth", "opponent_airborne", "own_airborne"}


def test_preview_without_display():
    environ = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}

    result = preview("--once", environ=environ)

    assert result.returncode == 2
    assert "DISPLAY is not set" in result.stderr
    assert "Traceback" not in result.stderr
