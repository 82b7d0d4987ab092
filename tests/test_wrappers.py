"""Observation windows: the live wrapper and the training dataset must give identical arrays."""

from __future__ import annotations

from dataclasses import asdict

import gymnasium as gym
import numpy as np
import pytest
import torch

import fightenv  # noqa: F401  (registers fightenv/Arena-v0)
from agents.dataset import WindowedDataset, WindowSpec
from agents.pilots import ExpertPilot
from agents.session import run_episode
from demos.loader import load_demos
from demos.store import EpisodeStore
from demos.manifest import StoreLayout
from fightenv.wrappers import ObservationHistory, ObservationHistoryWrapper

ARENA_KWARGS = {"round_time_s": 8.0}


def test_history_pads_with_first_observation():
    history = ObservationHistory(n_frames=3, state_window=2)
    first = {"frame": np.full((1, 2, 2), 1, np.uint8), "state": np.array([1.0, 2.0], np.float32)}
    second = {"frame": np.full((1, 2, 2), 2, np.uint8), "state": np.array([3.0, 4.0], np.float32)}
    window = history.reset(first)
    assert window["frame"].shape == (3, 2, 2)
    assert window["frame"][:, 0, 0].tolist() == [1, 1, 1]
    assert window["state"].tolist() == [[1.0, 2.0], [1.0, 2.0]]
    window = history.push(second)
    assert window["frame"][:, 0, 0].tolist() == [1, 1, 2]
    assert window["state"].tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_history_rejects_windowed_observation():
    history = ObservationHistory(n_frames=2, state_window=2)
    with pytest.raises(ValueError, match="already be windowed"):
        history.reset({"frame": np.zeros((1, 2, 2), np.uint8), "state": np.zeros((2, 3), np.float32)})


def test_wrapper_space_matches_observations():
    env = ObservationHistoryWrapper(gym.make("fightenv/Arena-v0", **ARENA_KWARGS), n_frames=3, state_window=5)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(env.action_space.sample())
    assert obs["frame"].shape == (3, 84, 84)
    assert obs["state"].shape == (5, len(env.unwrapped.state_names))
    assert env.observation_space.contains(obs)


def test_wrapper_and_dataset_agree_on_recorded_arena_episode(tmp_path):
    """Record an expert episode into the demo store, then replay its actions through the wrapper."""
    spec = WindowSpec(n_frames=3, state_window=6)
    env = gym.make("fightenv/Arena-v0", **ARENA_KWARGS)
    store_path = tmp_path / "demos"
    with EpisodeStore.open(store_path, "create", **asdict(StoreLayout.from_env(env))) as store:
        result = run_episode(env, ExpertPilot(seed=1), seed=7, recorder=store)
    assert result.steps > 20

    demo_set = load_demos(store_path)
    dataset = WindowedDataset.from_trajectories(demo_set.trajectories, spec)
    assert len(dataset) == result.steps
    # The dataset indexes the loader's frame buffer instead of copying it.
    assert np.shares_memory(dataset.frames.numpy(), demo_set.trajectories[0].obs.get("frame"))

    wrapped = ObservationHistoryWrapper(gym.make("fightenv/Arena-v0", **ARENA_KWARGS), spec.n_frames,
                                        spec.state_window)
    obs, _ = wrapped.reset(seed=7)
    actions = demo_set.trajectories[0].acts.astype(np.int8)
    for t in range(result.steps):
        batch, labels = dataset.batch(torch.tensor([t]))
        np.testing.assert_array_equal(batch["frame"][0].numpy(), obs["frame"], err_msg=f"frame window at step {t}")
        np.testing.assert_array_equal(batch["state"][0].numpy(), obs["state"], err_msg=f"state window at step {t}")
        np.testing.assert_array_equal(labels[0].numpy(), actions[t])
        obs, *_ = wrapped.step(actions[t])
