"""The episode store on real files: round trips, offsets, memory, bad input, crashes and a full disk."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from imitation.data.types import DictObs, Trajectory

from agents.session import Decision
from demos import (
    MISSING_ACTION,
    CorruptEpisodeError,
    EmptyStoreError,
    EpisodeStore,
    RecorderStateError,
    StoreError,
    StoreMismatchError,
    StoreNotFoundError,
    StoreWriteError,
    list_episodes,
    load_demos,
)
from test_demos_synthetic import BUTTONS, FRAME_SHAPE, STATE_NAMES, make_episode, open_store, record_episode

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store_with_episodes(tmp_path):
    """A store with three finished episodes of 40, 55 and 30 steps; returns (path, recorded arrays)."""
    rng = np.random.default_rng(1)
    path = tmp_path / "store"
    recorded = []
    with open_store(path, session_config={"note": "fixture"}) as store:
        for seed, steps in enumerate((40, 55, 30)):
            recorded.append(record_episode(store, rng, steps, seed=seed, outcome="win" if seed % 2 == 0 else "loss"))
    return path, recorded


def test_round_trip_exact(store_with_episodes):
    path, recorded = store_with_episodes
    demo_set = load_demos(path)

    assert demo_set.button_names == BUTTONS
    assert demo_set.state_names == STATE_NAMES
    assert demo_set.frame_shape == FRAME_SHAPE
    assert demo_set.decision_hz == 15.0
    assert len(demo_set.trajectories) == 3
    for trajectory, (frames, states, actions, _) in zip(demo_set.trajectories, recorded):
        assert isinstance(trajectory, Trajectory)
        assert isinstance(trajectory.obs, DictObs)
        assert trajectory.obs.get("frame").dtype == np.uint8
        assert trajectory.obs.get("state").dtype == np.float32
        assert trajectory.acts.dtype == np.float32
        assert trajectory.infos is None
        assert trajectory.terminal
        np.testing.assert_array_equal(trajectory.obs.get("frame"), frames)
        np.testing.assert_array_equal(trajectory.obs.get("state"), states)
        np.testing.assert_array_equal(trajectory.acts, actions.astype(np.float32))
    assert [e.seed for e in demo_set.episodes] == [0, 1, 2]
    assert [e.outcome for e in demo_set.episodes] == ["win", "loss", "win"]
    assert [e.length for e in demo_set.episodes] == [40, 55, 30]
    assert not any(e.partial for e in demo_set.episodes)


def test_manifest_contents(store_with_episodes):
    path, _ = store_with_episodes
    manifest = json.loads((path / "manifest.json").read_text())

    assert manifest["game"] == "synthetic"
    assert manifest["button_names"] == list(BUTTONS)
    assert manifest["state_names"] == list(STATE_NAMES)
    assert manifest["frame_shape"] == list(FRAME_SHAPE)
    assert manifest["frame_dtype"] == "uint8"
    assert manifest["decision_hz"] == 15.0
    assert manifest["format_version"] == 1
    assert manifest["sessions"][0]["config"] == {"note": "fixture"}
    assert "numpy" in manifest["sessions"][0]["versions"]


def test_files_hold_no_pickle(store_with_episodes):
    path, _ = store_with_episodes
    for file in (path / "episodes").iterdir():
        data = file.read_bytes()
        assert data.startswith(b"FDR1")
        # Pickle protocol 2+ streams start with 0x80 followed by the protocol number.
        assert b"\x80\x04\x95" not in data
        assert b"\x80\x05\x95" not in data


def test_action_offset_shifts_labels(store_with_episodes):
    path, recorded = store_with_episodes
    offset = 3
    shifted = load_demos(path, action_offset=offset)

    for trajectory, (frames, states, actions, _) in zip(shifted.trajectories, recorded):
        steps = len(actions) - offset
        assert len(trajectory.acts) == steps
        assert len(trajectory.obs) == steps + 1
        np.testing.assert_array_equal(trajectory.obs.get("frame"), frames[: steps + 1])
        np.testing.assert_array_equal(trajectory.acts[0], actions[offset])
        np.testing.assert_array_equal(trajectory.acts, actions[offset:].astype(np.float32))
    # The raw data on disk did not change.
    plain = load_demos(path)
    np.testing.assert_array_equal(plain.trajectories[0].acts, recorded[0][2].astype(np.float32))


def test_action_offset_drops_short_episodes(store_with_episodes, caplog):
    path, _ = store_with_episodes
    with caplog.at_level(logging.WARNING):
        demo_set = load_demos(path, action_offset=35)
    assert [e.length for e in demo_set.episodes] == [40, 55]
    assert "action_offset=35" in caplog.text


def test_negative_action_offset_rejected(store_with_episodes):
    path, _ = store_with_episodes
    with pytest.raises(ValueError, match="action_offset must be >= 0"):
        load_demos(path, action_offset=-1)


def test_memory_within_frame_budget(store_with_episodes):
    path, _ = store_with_episodes
    demo_set = load_demos(path)

    raw_frame_bytes = sum((e.length + 1) * np.prod(FRAME_SHAPE) for e in demo_set.episodes)
    assert demo_set.frame_bytes == raw_frame_bytes
    # Tiny synthetic frames make the per-step fields weigh more than with real 84x84 frames.
    per_step_overhead = demo_set.nbytes - demo_set.frame_bytes
    steps = sum(e.length + 1 for e in demo_set.episodes)
    assert per_step_overhead / steps < 8 * len(STATE_NAMES) + 12 * len(BUTTONS) + 32


def test_trajectory_frames_are_not_copies(store_with_episodes):
    path, _ = store_with_episodes
    demo_set = load_demos(path, action_offset=2)
    frame_bytes_per_obs = int(np.prod(FRAME_SHAPE))
    addresses = [t.obs.get("frame").__array_interface__["data"][0] for t in demo_set.trajectories]

    for trajectory in demo_set.trajectories:
        assert not trajectory.obs.get("frame").flags.owndata
    # Each episode's frames start where the previous episode's stored observations end: one buffer.
    for i, episode in enumerate(demo_set.episodes[:-1]):
        assert addresses[i + 1] - addresses[i] == (episode.length + 1) * frame_bytes_per_obs


def test_step_fields_store_corrections(tmp_path):
    rng = np.random.default_rng(2)

    def correction(t, action):
        if t % 3 == 0:
            corrector = 1 - action
            return Decision(action=corrector, source="corrector", agent_action=action,
                            corrector_action=corrector, intervened=True)
        return Decision(action=action, source="policy", agent_action=action)

    with open_store(tmp_path / "store", episode_round=2) as store:
        _, _, actions, _ = record_episode(store, rng, 12, decision_for=correction)
    demo_set = load_demos(tmp_path / "store")
    fields = demo_set.step_fields(0)

    assert demo_set.episodes[0].round == 2
    assert fields.intervened.tolist() == [t % 3 == 0 for t in range(12)]
    assert fields.sources() == ["corrector" if t % 3 == 0 else "policy" for t in range(12)]
    np.testing.assert_array_equal(fields.agent_action, actions)
    np.testing.assert_array_equal(fields.corrector_action[0], 1 - actions[0])
    assert (fields.corrector_action[1] == MISSING_ACTION).all()
    assert fields.has_corrector_action.tolist() == [t % 3 == 0 for t in range(12)]
    np.testing.assert_array_equal(fields.action[0], 1 - actions[0])
    assert fields.reward.tolist() == [float(t) for t in range(12)]
    assert (np.diff(fields.timestamp_s) >= 0).all()


def test_load_selected_episodes(store_with_episodes):
    path, recorded = store_with_episodes
    ids = [e.episode_id for e in list_episodes(path)]

    by_index = load_demos(path, episodes=[2, 0])
    by_id = load_demos(path, episodes=[ids[1]])

    assert [e.seed for e in by_index.episodes] == [2, 0]
    np.testing.assert_array_equal(by_id.trajectories[0].acts, recorded[1][2].astype(np.float32))
    with pytest.raises(KeyError, match="s9999"):
        load_demos(path, episodes=["s9999-w000-e000000"])
    with pytest.raises(IndexError, match="has 3 episodes"):
        load_demos(path, episodes=[3])


# -- bad input ---------------------------------------------------------------------------


def test_missing_store_path(tmp_path):
    with pytest.raises(StoreNotFoundError, match="does not exist") as error:
        load_demos(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(error.value)


def test_directory_without_manifest(tmp_path):
    (tmp_path / "other").mkdir()
    with pytest.raises(StoreNotFoundError, match="contains no manifest.json"):
        load_demos(tmp_path / "other")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_store(store_with_episodes):
    path, _ = store_with_episodes
    path.chmod(0)
    try:
        with pytest.raises(StoreNotFoundError, match="not readable"):
            load_demos(path)
    finally:
        path.chmod(0o755)


def test_manifest_not_json(store_with_episodes):
    path, _ = store_with_episodes
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="manifest.json is not valid JSON"):
        load_demos(path)


def test_empty_store(tmp_path):
    open_store(tmp_path / "store").close()
    with pytest.raises(EmptyStoreError, match="contains no episodes"):
        load_demos(tmp_path / "store")


def test_store_of_other_game_or_buttons(store_with_episodes):
    path, _ = store_with_episodes
    with pytest.raises(StoreMismatchError, match="game 'synthetic'.*game 'arena'"):
        load_demos(path, game="arena")
    with pytest.raises(StoreMismatchError) as error:
        load_demos(path, button_names=("forward", "back"))
    assert str(list(BUTTONS)) in str(error.value)
    assert "['forward', 'back']" in str(error.value)


def test_resume_with_other_buttons_rejected(store_with_episodes):
    path, _ = store_with_episodes
    other_buttons = ("left", "right", "a", "b", "c")
    with pytest.raises(StoreMismatchError) as error:
        EpisodeStore.open(path, "append", button_names=other_buttons, frame_shape=FRAME_SHAPE)
    assert str(list(BUTTONS)) in str(error.value)
    assert str(list(other_buttons)) in str(error.value)


def test_resume_with_other_frame_shape_rejected(store_with_episodes):
    path, _ = store_with_episodes
    with pytest.raises(StoreMismatchError) as error:
        EpisodeStore.open(path, "append", button_names=BUTTONS, frame_shape=(3, 16, 16))
    assert "[1, 16, 16]" in str(error.value)
    assert "[3, 16, 16]" in str(error.value)


def test_resume_appends_new_session(store_with_episodes):
    path, _ = store_with_episodes
    rng = np.random.default_rng(3)
    with EpisodeStore.open(path, "append", button_names=BUTTONS, frame_shape=FRAME_SHAPE,
                           session_config={"note": "second"}) as store:
        record_episode(store, rng, 20, seed=10)
    demo_set = load_demos(path)
    manifest = json.loads((path / "manifest.json").read_text())

    assert [e.seed for e in demo_set.episodes] == [0, 1, 2, 10]
    assert demo_set.episodes[-1].session == 1
    assert [s["config"] for s in manifest["sessions"]] == [{"note": "fixture"}, {"note": "second"}]


def test_create_rejects_existing_store(store_with_episodes):
    path, _ = store_with_episodes
    with pytest.raises(StoreError, match="not empty.*--resume"):
        open_store(path)


def test_resume_of_missing_store(tmp_path):
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        EpisodeStore.open(tmp_path / "none", "append", button_names=BUTTONS)


def test_wrong_observation_shape_rejected(tmp_path):
    store = open_store(tmp_path / "store")
    with pytest.raises(ValueError, match=r"shape \(1, 16, 16\)"):
        store.begin_episode(0, {"frame": np.zeros((1, 8, 8), np.uint8), "state": np.zeros(6, np.float32)})


def test_add_step_before_begin(tmp_path):
    store = open_store(tmp_path / "store")
    frames, states, actions = make_episode(np.random.default_rng(0), 2)
    with pytest.raises(RecorderStateError, match="call begin_episode first"):
        store.add_step({"frame": frames[0], "state": states[0]}, Decision(actions[0], "expert"), 0.0, 0.0)


def test_unknown_source_rejected(tmp_path):
    store = open_store(tmp_path / "store")
    frames, states, actions = make_episode(np.random.default_rng(0), 2)
    store.begin_episode(0, {"frame": frames[0], "state": states[0]})
    with pytest.raises(ValueError, match="'robot'; expected one of"):
        store.add_step({"frame": frames[0], "state": states[0]}, Decision(actions[0], "robot"), 0.0, 0.0)


def test_corrupt_chunk_names_file(store_with_episodes, caplog):
    path, recorded = store_with_episodes
    victim = sorted((path / "episodes").iterdir())[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))

    with pytest.raises(CorruptEpisodeError, match="fails its CRC32 checksum") as error:
        load_demos(path)
    assert str(victim) in str(error.value)

    with caplog.at_level(logging.WARNING):
        demo_set = load_demos(path, skip_bad=True)
    assert [e.seed for e in demo_set.episodes] == [0, 2]
    assert str(victim) in caplog.text
    assert "Pass --skip-bad" not in caplog.text
    np.testing.assert_array_equal(demo_set.trajectories[1].obs.get("frame"), recorded[2][0])


def test_truncated_episode_names_file(store_with_episodes):
    path, _ = store_with_episodes
    victim = sorted((path / "episodes").iterdir())[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 100])

    with pytest.raises(CorruptEpisodeError, match="is truncated") as error:
        load_demos(path)
    assert str(victim) in str(error.value)
    assert len(load_demos(path, skip_bad=True).episodes) == 2


def test_discard_episodes(tmp_path):
    rng = np.random.default_rng(4)
    with open_store(tmp_path / "store") as store:
        record_episode(store, rng, 10, seed=0)
        record_episode(store, rng, 10, seed=1)
        assert store.discard_last_episode() == "s0000-w000-e000001"
        frames, states, _ = make_episode(rng, 3)
        store.begin_episode(2, {"frame": frames[0], "state": states[0]})
        store.add_step({"frame": frames[0], "state": states[0]}, Decision(np.zeros(5, np.uint8), "human"), 0.0, 0.0)
        assert store.discard_episode() == "s0000-w000-e000002"
        record_episode(store, rng, 10, seed=3)
    assert [e.seed for e in load_demos(tmp_path / "store").episodes] == [0, 3]


def test_close_keeps_open_episode_as_partial(tmp_path):
    rng = np.random.default_rng(5)
    store = open_store(tmp_path / "store")
    frames, states, actions = make_episode(rng, 20)
    store.begin_episode(7, {"frame": frames[0], "state": states[0]})
    for t in range(20):
        store.add_step({"frame": frames[t], "state": states[t]}, Decision(actions[t], "human"), float(t), 0.0)
    store.close()

    demo_set = load_demos(tmp_path / "store")
    episode = demo_set.episodes[0]
    assert episode.partial
    assert episode.length == 20
    assert "closed during the episode" in episode.partial_reason
    # Without a final observation, the last stored step has no next observation to pair with.
    assert len(demo_set.trajectories[0].acts) == 19
    assert not demo_set.trajectories[0].terminal
    assert len(load_demos(tmp_path / "store", include_partial=True).trajectories) == 1
    with pytest.raises(EmptyStoreError):
        load_demos(tmp_path / "store", include_partial=False)


# -- crashes and a full disk -----------------------------------------------------------------

_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    sys.path[:0] = [{tests!r}, {repo!r}]
    from agents.session import Decision
    from test_demos_synthetic import open_store, make_episode, record_episode

    rng = np.random.default_rng(0)
    store = open_store({path!r}, chunk_s={chunk_s})
    record_episode(store, rng, 30, seed=0)
    frames, states, actions = make_episode(rng, 100000)
    store.begin_episode(1, {{"frame": frames[0], "state": states[0]}})
    for t in range(100000):
        store.add_step({{"frame": frames[t], "state": states[t]}}, Decision(actions[t], "expert"), time.monotonic(), 0.0)
        print(t + 1, flush=True)
        time.sleep(0.004)
    """
)


def _run_until_killed(path: Path, chunk_s: float, min_steps: int) -> int:
    """Record in a child process, SIGKILL it after ``min_steps`` steps, return the steps it had added."""
    script = _KILLED_WRITER.format(tests=str(REPO / "tests"), repo=str(REPO), path=str(path), chunk_s=chunk_s)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    added = 0
    try:
        for line in child.stdout:
            added = int(line)
            if added >= min_steps:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return added


def test_sigkill_loses_at_most_one_chunk(tmp_path):
    path = tmp_path / "store"
    chunk_s = 1.0
    added = _run_until_killed(path, chunk_s, min_steps=50)
    chunk_steps = int(np.ceil(15.0 * chunk_s))

    # Without recovery the loader marks the cut episode partial and loads the rest.
    demo_set = load_demos(path)
    assert [e.partial for e in demo_set.episodes] == [False, True]
    stored = demo_set.episodes[1].length
    # The child may have added one step after its last report, and a chunk contains at most chunk_steps.
    assert added - stored <= chunk_steps
    assert stored >= added - chunk_steps
    assert stored > 0

    # Reopening to append closes the episode with an end record that gives the reason.
    store = EpisodeStore.open(path, "append", button_names=BUTTONS, frame_shape=FRAME_SHAPE)
    store.close()
    recovered = load_demos(path)
    assert recovered.episodes[1].partial
    assert "stopped unexpectedly" in recovered.episodes[1].partial_reason
    assert recovered.episodes[1].length == stored
    assert len(recovered.trajectories[0].acts) == 30


def test_sigkill_mid_record_keeps_whole_chunks(tmp_path):
    path = tmp_path / "store"
    _run_until_killed(path, chunk_s=0.05, min_steps=40)
    victim = sorted((path / "episodes").iterdir())[1]
    # Simulate the kill landing inside a write: cut the last record in half.
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 7])

    demo_set = load_demos(path)
    assert demo_set.episodes[1].partial
    EpisodeStore.open(path, "append", button_names=BUTTONS, frame_shape=FRAME_SHAPE).close()
    assert load_demos(path).episodes[1].length == demo_set.episodes[1].length


def _mount_tmpfs(target: Path, size: str, read_only: bool = False) -> bool:
    target.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KiB tmpfs; skips the test where this user may not mount file systems."""
    target = tmp_path / "disk"
    if not _mount_tmpfs(target, "400k"):
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN); see test_read_only_directory")
    yield target
    subprocess.run(["umount", str(target)], check=True)


def test_full_disk_stops_cleanly(small_disk):
    path = small_disk / "store"
    rng = np.random.default_rng(6)
    store = open_store(path)
    finished = []
    with pytest.raises(StoreWriteError, match="disk is full") as error:
        for seed in range(1000):
            # Random frames do not compress, so the disk fills within a few episodes.
            finished.append(record_episode(store, rng, 60, seed=seed))
    assert str(path / "episodes") in str(error.value)
    store.close()

    demo_set = load_demos(path)
    complete = [e for e in demo_set.episodes if not e.partial]
    assert len(complete) == len(finished) >= 1
    for trajectory, (frames, _, actions, _) in zip(demo_set.trajectories, finished):
        np.testing.assert_array_equal(trajectory.obs.get("frame"), frames)
        np.testing.assert_array_equal(trajectory.acts, actions.astype(np.float32))


def test_read_only_directory(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "store"
    with open_store(path) as store:
        record_episode(store, rng, 10)
    if os.geteuid() == 0:
        mount_point = tmp_path / "ro"
        if not _mount_tmpfs(mount_point, "64k", read_only=True):
            pytest.skip("root without CAP_SYS_ADMIN cannot make a read-only directory")
        target = mount_point
        expected = StoreError
    else:
        (path / "episodes").chmod(0o555)
        target = path
        expected = StoreWriteError
    try:
        with pytest.raises(expected, match="not writable|read-only|permission denied"):
            if target == path:
                EpisodeStore.open(path, "append", button_names=BUTTONS, frame_shape=FRAME_SHAPE)
            else:
                open_store(target / "store")
    finally:
        if target == path:
            (path / "episodes").chmod(0o755)
        else:
            subprocess.run(["umount", str(target)], check=True)
    assert len(load_demos(path).episodes) == 1


def test_package_exports_contract_names():
    import demos

    for name in ("EpisodeStore", "load_demos", "split_episodes", "split_frames", "DemoSet", "EpisodeSplit"):
        assert hasattr(demos, name), name
    assert callable(demos.report.report_store)


def test_empty_unfinished_file_skipped(store_with_episodes, caplog):
    path, _ = store_with_episodes
    (path / "episodes" / "s0005-w000-e000000.ep").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        demo_set = load_demos(path)
    assert len(demo_set.episodes) == 3
    assert "stopped before its first record" in caplog.text


def test_episode_growing_during_load(tmp_path):
    rng = np.random.default_rng(8)
    store = open_store(tmp_path / "store", chunk_s=0.01)
    record_episode(store, rng, 10)
    frames, states, actions = make_episode(rng, 40)
    store.begin_episode(1, {"frame": frames[0], "state": states[0]})
    for t in range(20):
        store.add_step({"frame": frames[t], "state": states[t]}, Decision(actions[t], "expert"), float(t), 0.0)
    # The writer still holds the episode open; the loader takes the chunks written so far.
    first = load_demos(tmp_path / "store")
    for t in range(20, 40):
        store.add_step({"frame": frames[t], "state": states[t]}, Decision(actions[t], "expert"), float(t), 0.0)
    second = load_demos(tmp_path / "store")
    store.close()

    assert first.episodes[1].partial
    assert first.episodes[1].length == 20
    assert second.episodes[1].length == 40
    np.testing.assert_array_equal(second.trajectories[1].obs.get("frame"), frames[:40])


def test_time_out_is_not_terminal_but_ko_is(tmp_path):
    import gymnasium as gym

    import fightenv
    from agents.pilots import ExpertPilot
    from agents.session import run_episode

    short = gym.make(fightenv.ARENA_ID, round_time_s=2.0)
    full = gym.make(fightenv.ARENA_ID)
    store = EpisodeStore.open(
        tmp_path / "store", "create", game="arena", button_names=short.unwrapped.button_names,
        state_names=short.unwrapped.state_names, frame_shape=(1, 84, 84), decision_hz=15.0,
    )
    timed_out = run_episode(short, ExpertPilot(seed=0), seed=0, recorder=store)
    knocked_out = run_episode(full, ExpertPilot(seed=0), seed=0, recorder=store)
    store.close()
    assert not timed_out.terminated
    assert knocked_out.terminated

    loaded = load_demos(tmp_path / "store")
    assert [t.terminal for t in loaded.trajectories] == [False, True]
