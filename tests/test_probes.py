"""State probes: each kind on constructed frames, and the Arena profile against the Arena's own state vector."""

from __future__ import annotations

import textwrap

import cv2
import gymnasium as gym
import numpy as np
import pytest

import fightenv  # noqa: F401 - registers fightenv/Arena-v0
from agents.pilots import ExpertPilot
from fightenv.arena import STATE_FEATURES
from fightenv.screen.profile import ARENA_PROFILE, load_profile
from fightenv.screen.probes import StateReader

CONTINUOUS = ("own_health", "opponent_health", "own_meter", "opponent_meter", "distance", "time_left", "own_depth")
TOLERANCE = 0.05
"""A continuous feature agrees when |probe - truth| <= 0.05 (5% of its range)."""


def reader_for(tmp_path, probes_toml: str) -> StateReader:
    text = textwrap.dedent("""
        name = "synthetic"
        [window]
        title = "x"
        [buttons]
        a = "a"
    """) + textwrap.dedent(probes_toml)
    path = tmp_path / "synthetic.toml"
    path.write_text(text)
    return StateReader(load_profile(path))


def blank(height: int = 100, width: int = 200) -> np.ndarray:
    """Return a black BGR frame."""
    return np.zeros((height, width, 3), dtype=np.uint8)


def test_bar_fill_fraction(tmp_path):
    reader = reader_for(tmp_path, """
        [[probes]]
        name = "left"
        kind = "bar"
        region = [0.0, 0.0, 0.5, 0.1]
        colors = [[0, 255, 0]]
        tolerance = 10
        [[probes]]
        name = "right"
        kind = "bar"
        region = [0.5, 0.0, 1.0, 0.1]
        colors = [[0, 255, 0]]
        tolerance = 10
        direction = "right_to_left"
    """)
    frame = blank()
    frame[0:10, 0:30] = (0, 250, 0)       # BGR: 30 of 100 columns green
    frame[0:10, 125:200] = (5, 255, 5)    # 75 of 100 columns, filled from the right

    reading = reader.read(frame)

    assert reading.values["left"] == pytest.approx(0.30)
    assert reading.values["right"] == pytest.approx(0.75)
    assert reading.state.dtype == np.float32
    assert reading.state.shape == (2,)


def test_bar_ignores_thin_noise(tmp_path):
    reader = reader_for(tmp_path, """
        [[probes]]
        name = "bar"
        kind = "bar"
        region = [0.0, 0.0, 0.5, 0.1]
        colors = [[0, 255, 0]]
    """)
    frame = blank()
    frame[0:10, 0:50] = (0, 255, 0)
    frame[0:2, 60:100] = (0, 255, 0)       # a 2-pixel line is not a filled column of a 10-pixel bar

    assert reader.read(frame).values["bar"] == pytest.approx(0.5)


def test_vertical_bar(tmp_path):
    reader = reader_for(tmp_path, """
        [[probes]]
        name = "gauge"
        kind = "bar"
        region = [0.0, 0.0, 0.1, 1.0]
        colors = [[255, 0, 0]]
        direction = "bottom_to_top"
    """)
    frame = blank()
    frame[60:100, 0:20] = (0, 0, 255)      # BGR red, the bottom 40 of 100 rows

    assert reader.read(frame).values["gauge"] == pytest.approx(0.40)


def test_color_fraction_and_threshold(tmp_path):
    reader = reader_for(tmp_path, """
        [[probes]]
        name = "share"
        kind = "color"
        region = [0.0, 0.0, 1.0, 1.0]
        colors = [[255, 140, 0], [40, 255, 40]]
        tolerance = 4
        [[probes]]
        name = "seen"
        kind = "color"
        region = [0.5, 0.0, 1.0, 1.0]
        colors = [[255, 140, 0]]
        threshold = 0.01
    """)
    frame = blank()
    frame[0:10, 0:20] = (0, 140, 255)      # 200 px orange, left half
    frame[50:60, 0:30] = (40, 255, 40)     # 300 px green

    reading = reader.read(frame)
    assert reading.values["share"] == pytest.approx(500 / 20000)
    assert reading.values["seen"] == 0.0

    frame[0:20, 150:160] = (0, 140, 255)   # 200 px orange in the right half: 2% of it
    assert reader.read(frame).values["seen"] == 1.0


def test_template_finds_cut_patch(tmp_path):
    env = gym.make("fightenv/Arena-v0", render_mode="rgb_array")
    env.reset(seed=3)
    frame = cv2.cvtColor(env.render(), cv2.COLOR_RGB2BGR)
    env.close()
    patch = frame[10:50, 20:300]                 # the player's HUD corner
    assert cv2.imwrite(str(tmp_path / "hud.png"), patch)
    reader = reader_for(tmp_path, """
        [[probes]]
        name = "hud"
        kind = "template"
        region = [0.0, 0.0, 0.6, 0.2]
        template = "hud.png"
        threshold = 0.9
        [[probes]]
        name = "hud_score"
        kind = "template"
        region = [0.0, 0.0, 0.6, 0.2]
        template = "hud.png"
    """)

    found = reader.read(frame)
    assert found.values["hud"] == 1.0
    assert found.raw["hud_score"] > 0.99

    scrambled = np.random.default_rng(0).integers(0, 255, frame.shape, dtype=np.uint8)
    missing = reader.read(scrambled)
    assert missing.values["hud"] == 0.0
    assert missing.raw["hud_score"] < 0.5


def test_distance_through_homography(tmp_path):
    # Frame fractions map linearly to a 10 x 5 world: u * 10, v * 5.
    reader = reader_for(tmp_path, """
        [[probes]]
        name = "distance"
        kind = "distance"
        colors = [[255, 0, 0]]
        colors_b = [[0, 0, 255]]
        floor_image = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
        floor_world = [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]]
        scale = 10.0
        min_pixels = 4
        [[probes]]
        name = "close"
        kind = "derived"
        source = "distance"
        threshold = 0.5
        compare = "<="
    """)
    frame = blank()
    cv2.circle(frame, (40, 50), 5, (0, 0, 255), -1)    # red blob at u = 0.2
    cv2.circle(frame, (160, 50), 5, (255, 0, 0), -1)   # blue blob at u = 0.8

    reading = reader.read(frame)
    assert reading.raw["distance"] == pytest.approx(0.6, abs=0.01)
    assert reading.values["close"] == 0.0

    # A hidden blob keeps the last distance.
    frame[:, 140:] = 0
    assert reader.read(frame).raw["distance"] == pytest.approx(0.6, abs=0.01)


def test_position_along_floor_axis(tmp_path):
    # Frame fractions map linearly to a 10 x 5 world (u * 10, v * 5). The probe reports v's axis over [1, 4].
    reader = reader_for(tmp_path, """
        [[probes]]
        name = "depth"
        kind = "position"
        colors = [[255, 0, 0]]
        floor_image = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
        floor_world = [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]]
        axis = 1
        span = [1.0, 4.0]
        min_pixels = 4
    """)
    frame = blank()
    cv2.circle(frame, (60, 40), 5, (0, 0, 255), -1)    # red blob at v = 0.4, world 2.0
    assert reader.read(frame).raw["depth"] == pytest.approx(1 / 3, abs=0.02)

    frame = blank()
    cv2.circle(frame, (60, 95), 4, (0, 0, 255), -1)    # v = 0.95, world 4.75: beyond the span, clipped
    assert reader.read(frame).raw["depth"] == 1.0

    # A hidden blob keeps the last position.
    assert reader.read(blank()).raw["depth"] == 1.0


def test_position_span_must_increase(tmp_path):
    with pytest.raises(ValueError, match=r"probes\.depth\.span.*low < high"):
        reader_for(tmp_path, """
            [[probes]]
            name = "depth"
            kind = "position"
            colors = [[255, 0, 0]]
            floor_image = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
            floor_world = [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]]
            span = [4.0, 1.0]
        """)


def test_elevation_above_shadow(tmp_path):
    reader = reader_for(tmp_path, """
        [[probes]]
        name = "airborne"
        kind = "elevation"
        colors = [[0, 0, 255]]
        colors_b = [[60, 60, 60]]
        min_pixels = 4
        threshold = 0.0
        compare = ">"
    """)
    standing = blank()
    cv2.ellipse(standing, (100, 80), (12, 4), 0, 0, 360, (60, 60, 60), -1)
    standing[40:82, 96:104] = (255, 0, 0)              # legs reach into the shadow
    jumping = blank()
    cv2.ellipse(jumping, (100, 80), (12, 4), 0, 0, 360, (60, 60, 60), -1)
    jumping[30:72, 96:104] = (255, 0, 0)               # feet 8 px above the shadow's centre

    assert reader.read(standing).values["airborne"] == 0.0
    assert reader.read(jumping).values["airborne"] == 1.0
    assert reader.read(jumping).raw["airborne"] == pytest.approx((80 - 71.5) / 100, abs=0.01)
    assert reader.read(blank()).values["airborne"] == 0.0


def test_step_two_matches_full_reading(tmp_path):
    probes = """
        [[probes]]
        name = "cue"
        kind = "color"
        colors = [[255, 255, 0]]
        step = {step}
    """
    full = reader_for(tmp_path, probes.format(step=1))
    sampled = reader_for(tmp_path, probes.format(step=2))
    frame = blank()
    frame[20:60, 40:120] = (0, 255, 255)

    assert sampled.read(frame).values["cue"] == pytest.approx(full.read(frame).values["cue"], abs=1e-3)


def test_reader_rejects_grey_frame():
    reader = StateReader(load_profile(ARENA_PROFILE))
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) BGR or \(H, W, 4\) BGRA uint8 frame, got \(480, 640\)"):
        reader.read(np.zeros((480, 640), dtype=np.uint8))


def collect_arena_pairs(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Play the expert on the Arena; return its true state vectors and the probes' reading of the 640x480 view."""
    reader = StateReader(load_profile(ARENA_PROFILE))
    env = gym.make("fightenv/Arena-v0", render_mode="rgb_array")
    pilot = ExpertPilot(seed=seed)
    truths, probes = [], []
    episode_seed = seed
    obs, _ = env.reset(seed=episode_seed)
    pilot.reset(env, episode_seed)
    while len(truths) < steps:
        window = cv2.cvtColor(env.render(), cv2.COLOR_RGB2BGRA)
        truths.append(obs["state"])
        probes.append(reader.read(window).state)
        obs, _, terminated, truncated, _ = env.step(pilot.act(obs).action)
        if terminated or truncated:
            episode_seed += 1
            obs, _ = env.reset(seed=episode_seed)
            pilot.reset(env, episode_seed)
    env.close()
    return np.array(truths), np.array(probes)


@pytest.mark.slow
def test_arena_profile_reproduces_state():
    truths, probes = collect_arena_pairs(2000)
    profile = load_profile(ARENA_PROFILE)
    assert profile.state_names == STATE_FEATURES

    for i, name in enumerate(STATE_FEATURES):
        truth, probe = truths[:, i], probes[:, i]
        if name in CONTINUOUS:
            agreement = np.mean(np.abs(probe - truth) <= TOLERANCE)
        else:
            agreement = np.mean(probe == truth)
        assert agreement >= 0.95, f"{name}: {agreement:.3f} of 2000 steps agree"

        # Agreement alone is easy for rare bits; also check that their 1s are found.
        positives = truth == 1.0
        if name not in CONTINUOUS and positives.sum() >= 5:
            recall = np.mean(probe[positives] == 1.0)
            precision = np.mean(truth[probe == 1.0] == 1.0)
            assert recall >= 0.9, f"{name}: recall {recall:.3f} over {positives.sum()} positives"
            assert precision >= 0.9, f"{name}: precision {precision:.3f}"


@pytest.mark.slow
def test_arena_floor_probes_hold_in_the_air():
    # Random buttons jump far more often than the expert. The floor probes read shadows, which stay on the floor.
    reader = StateReader(load_profile(ARENA_PROFILE))
    env = gym.make("fightenv/Arena-v0", render_mode="rgb_array")
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    truths, probes = [], []
    for step in range(1500):
        truths.append(obs["state"])
        probes.append(reader.read(cv2.cvtColor(env.render(), cv2.COLOR_RGB2BGRA)).state)
        obs, _, terminated, truncated, _ = env.step((rng.random(10) < 0.15).astype(np.uint8))
        if terminated or truncated:
            obs, _ = env.reset(seed=step)
    env.close()
    truths, probes = np.array(truths), np.array(probes)

    airborne = truths[:, STATE_FEATURES.index("own_airborne")] == 1
    assert airborne.sum() >= 50
    for name in ("distance", "own_depth"):
        column = STATE_FEATURES.index(name)
        error = np.abs(probes[airborne, column] - truths[airborne, column])
        assert np.mean(error <= TOLERANCE) >= 0.95, name
