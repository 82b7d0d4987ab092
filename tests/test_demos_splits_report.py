"""Episode splits and the imbalance report, on synthetic stores with known press statistics."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from demos import EmptyStoreError, load_demos
from demos.manifest import StoreLayout
from demos.report import build_report, format_report, plot_report, report_store
from demos.splits import split_episodes, split_frames
from test_demos_synthetic import BUTTONS, open_store, record_episode


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("splits") / "store"
    rng = np.random.default_rng(11)
    with open_store(path) as store:
        for seed in range(20):
            record_episode(store, rng, int(rng.integers(40, 120)), seed=seed)
    return load_demos(path)


def test_split_covers_every_episode_once(demo_set):
    split = split_episodes(demo_set, seed=0)
    together = split.train + split.val + split.test

    assert sorted(together) == list(range(20))
    assert (len(split.train), len(split.val), len(split.test)) == (14, 3, 3)


def test_split_is_seeded(demo_set):
    assert split_episodes(demo_set, seed=5) == split_episodes(demo_set, seed=5)


def test_split_search_beats_single_draw(demo_set):
    single = [split_episodes(demo_set, seed=s, candidates=1).imbalance for s in range(10)]
    searched = split_episodes(demo_set, seed=0, candidates=300).imbalance

    assert searched <= min(single)
    assert searched < np.mean(single)


def test_split_counts_press_events(demo_set):
    split = split_episodes(demo_set, seed=0)
    total = sum(split.press_events[name]["forward"] for name in ("train", "val", "test"))
    expected = sum(int(((t.acts[1:, 0] == 1) & (t.acts[:-1, 0] == 0)).sum() + t.acts[0, 0]) for t in demo_set.trajectories)
    assert total == expected


def test_split_warns_on_rare_button(demo_set, caplog):
    with caplog.at_level(logging.WARNING, logger="demos.splits"):
        split = split_episodes(demo_set, seed=0, min_val_events=20)
    count = split.press_events["val"]["special"]
    assert count < 20
    events = "press event" if count == 1 else "press events"
    assert f"the val split contains only {count} {events} of button 'special'" in caplog.text


def test_split_too_few_episodes(demo_set):
    two = load_demos(demo_set.path, episodes=[0, 1])
    with pytest.raises(ValueError, match="cannot split 2 episodes into 3 non-empty splits"):
        split_episodes(two)


def test_split_invalid_fractions(demo_set):
    with pytest.raises(ValueError, match="sum to 1"):
        split_episodes(demo_set, fractions=(0.8, 0.3, 0.1))


def test_frame_split_mixes_episodes(demo_set):
    split = split_frames(demo_set, seed=0)
    total = sum(len(t.acts) for t in demo_set.trajectories)

    assert len(split.train) + len(split.val) + len(split.test) == total
    assert len(np.unique(np.concatenate([split.train, split.val, split.test]), axis=0)) == total
    # The leak the baseline shows: validation frames come from episodes that train also uses.
    assert len(set(split.val[:, 0]) & set(split.train[:, 0])) > 10


# -- report ------------------------------------------------------------------------------------

LAYOUT = StoreLayout("synthetic", BUTTONS, ("x",), (1, 4, 4), 10.0)


def test_report_matches_hand_counts():
    actions = [
        np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.uint8),
        np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=np.uint8),
    ]
    report = build_report(LAYOUT, [], actions, min_press_events=2)
    forward, back, guard, grab, special = report.buttons

    assert report.steps == 6
    assert forward.held_steps == 4
    assert forward.press_events == 3
    assert forward.press_rate == pytest.approx(4 / 6)
    assert forward.mean_hold_steps == pytest.approx(4 / 3)
    assert forward.mean_hold_s == pytest.approx(4 / 3 / 10.0)
    assert back.press_events == 1
    assert back.mean_hold_steps == 2
    assert grab.press_events == 0
    assert grab.mean_hold_steps is None
    # Labels: 30 in total, 7 of them held, so "nothing pressed" gets 23 right; 1 of 6 steps is all zero.
    assert report.all_zero_binary_accuracy == pytest.approx(23 / 30)
    assert report.all_zero_exact_match == pytest.approx(1 / 6)
    # Co-occurrence: of the 4 forward steps, 1 also holds back and 1 guard.
    assert report.joint_steps[0][1] == 1
    assert report.cooccurrence[0][1] == pytest.approx(0.25)
    assert report.cooccurrence[1][0] == pytest.approx(0.5)
    assert report.cooccurrence[3][0] == 0.0


def test_report_warns_never_and_barely_pressed():
    actions = [np.array([[1, 0, 1, 0, 0]] * 50 + [[1, 1, 0, 0, 0]], dtype=np.uint8)]
    report = build_report(LAYOUT, [], actions, min_press_events=20)
    warnings = "\n".join(report.warnings)

    assert "button 'grab' is never pressed" in warnings
    assert "button 'special' is never pressed" in warnings
    # Held in 2% and 98% of steps: not rare, but one press event each is too few to learn from.
    assert "button 'back' has only 1 press events" in warnings
    assert "button 'guard' has only 1 press events" in warnings
    assert "'guard' is barely pressed" not in warnings
    assert "'forward'" in warnings  # one long hold is one press event, too few to learn from


def test_report_barely_pressed_by_share_of_steps():
    actions = [np.array([[1, 1, 0, 0, 0]] + [[1, 0, 0, 0, 0]] * 199, dtype=np.uint8)]
    report = build_report(LAYOUT, [], actions, min_press_events=1)
    warnings = "\n".join(report.warnings)
    assert "button 'back' is barely pressed (1 press events, 0.50% of steps)" in warnings
    assert "'forward'" not in warnings


def test_report_outputs(demo_set, tmp_path):
    report = report_store(demo_set.path)
    text = format_report(report)
    plot = tmp_path / "report.png"
    plot_report(report, plot)

    assert report.episodes == 20
    assert report.steps == demo_set.total_steps
    assert "special" in text
    assert "binary accuracy" in text
    assert json.loads(json.dumps(report.to_dict()))["buttons"][0]["name"] == "forward"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_empty_store(tmp_path):
    open_store(tmp_path / "store").close()
    with pytest.raises(EmptyStoreError, match="contains no episodes"):
        report_store(tmp_path / "store")
