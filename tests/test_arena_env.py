"""The Arena env: spaces, determinism, API checkers, argument errors and the documented contract."""

from __future__ import annotations

import os
import re
import subprocess

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.utils.passive_env_checker import env_render_passive_checker
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import fightenv
from fightenv.arena import BUTTONS, STATE_FEATURES, ArenaEnv
from fightenv.arena.rules import MAX_HEALTH


def play(env: gym.Env, seed: int, steps: int, action_seed: int = 0):
    """Play ``steps`` random steps (restarting after each round) and return everything observed."""
    rng = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=seed)
    trace = [(obs, 0.0, False, False, info)]
    for _ in range(steps):
        action = (rng.random(len(BUTTONS)) < 0.3).astype(np.int8)
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
    return trace


def test_make_registers_arena():
    env = gym.make(fightenv.ARENA_ID)
    assert isinstance(env.unwrapped, ArenaEnv)
    assert env.unwrapped.button_names == BUTTONS
    assert env.unwrapped.state_names == STATE_FEATURES
    assert env.unwrapped.decision_hz == 15.0


def test_default_spaces():
    env = gym.make(fightenv.ARENA_ID)
    assert env.action_space == gym.spaces.MultiBinary(10)
    assert env.observation_space["frame"].shape == (1, 84, 84)
    assert env.observation_space["frame"].dtype == np.uint8
    assert env.observation_space["state"].shape == (len(STATE_FEATURES),)
    assert len(STATE_FEATURES) >= 8
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)


def test_colour_and_frame_size_options():
    env = gym.make(fightenv.ARENA_ID, color=True, frame_size=(60, 80))
    obs, _ = env.reset(seed=0)
    assert obs["frame"].shape == (3, 60, 80)
    assert env.observation_space.contains(obs)


def test_gymnasium_check_env():
    # The render check would also open a "human" window; that mode is tested under Xvfb below.
    gym_check_env(gym.make(fightenv.ARENA_ID).unwrapped, skip_render_check=True)
    env_render_passive_checker(gym.make(fightenv.ARENA_ID, render_mode="rgb_array").unwrapped)


@pytest.mark.screen
def test_human_render_opens_window(xvfb_display, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb_display)
    env = gym.make(fightenv.ARENA_ID, render_mode="human")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    titles = subprocess.run(
        ["xdotool", "search", "--name", "fightenv Arena"], capture_output=True, text=True,
        env={**os.environ, "DISPLAY": xvfb_display},
    )
    env.close()
    assert titles.stdout.strip(), f"no Arena window on {xvfb_display}: {titles.stderr}"


def test_human_render_without_display_raises(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="showing the game needs an X display, but DISPLAY is not set"):
        gym.make(fightenv.ARENA_ID, render_mode="human")


def test_sb3_check_env():
    sb3_check_env(gym.make(fightenv.ARENA_ID).unwrapped, warn=True)


def test_same_seed_same_trajectory():
    first = play(gym.make(fightenv.ARENA_ID), seed=11, steps=400)
    second = play(gym.make(fightenv.ARENA_ID), seed=11, steps=400)
    for (obs_a, rew_a, term_a, trunc_a, info_a), (obs_b, rew_b, term_b, trunc_b, info_b) in zip(first, second):
        np.testing.assert_array_equal(obs_a["frame"], obs_b["frame"])
        np.testing.assert_array_equal(obs_a["state"], obs_b["state"])
        assert (rew_a, term_a, trunc_a) == (rew_b, term_b, trunc_b)
        assert info_a == info_b


def test_other_seed_other_trajectory():
    first = play(gym.make(fightenv.ARENA_ID), seed=1, steps=300)
    second = play(gym.make(fightenv.ARENA_ID), seed=2, steps=300)
    differs = any(
        not np.array_equal(a[0]["state"], b[0]["state"]) for a, b in zip(first, second)
    )
    assert differs


def test_constructor_seed_used_by_first_reset():
    env_a = gym.make(fightenv.ARENA_ID, seed=5)
    env_b = gym.make(fightenv.ARENA_ID)
    obs_a, _ = env_a.reset()
    obs_b, _ = env_b.reset(seed=5)
    for _ in range(200):
        action = env_a.action_space.sample() * 0
        action[6] = 1
        obs_a, *_ = env_a.step(action)
        obs_b, *_ = env_b.step(action)
    np.testing.assert_array_equal(obs_a["state"], obs_b["state"])


def test_round_timeout_truncates_with_draw():
    env = gym.make(fightenv.ARENA_ID, round_time_s=0.5, difficulty="easy")
    env.reset(seed=0)
    terminated = truncated = False
    info = {}
    steps = 0
    # Walking away and guarding keeps both fighters at full health for half a second.
    while not (terminated or truncated):
        action = np.zeros(10, dtype=np.int8)
        action[7] = 1
        _, _, terminated, truncated, info = env.step(action)
        steps += 1
    assert truncated and not terminated
    assert steps == 8  # 30 ticks at 4 ticks per step
    assert info["outcome"] in ("draw", "win", "loss")
    assert info["tick"] == 30


def test_ko_terminates_and_reward_adds_up():
    env = gym.make(fightenv.ARENA_ID, round_time_s=120.0, difficulty="easy")
    env.reset(seed=4)
    total_reward = 0.0
    terminated = truncated = False
    info = {}
    rng = np.random.default_rng(0)
    while not (terminated or truncated):
        action = np.zeros(10, dtype=np.int8)
        action[0] = 1
        action[5] = rng.random() < 0.5  # mash jab
        _, reward, terminated, truncated, info = env.step(action)
        total_reward += reward
    assert terminated, "a two-minute round should end in a KO"
    assert min(info["player_health"], info["opponent_health"]) == 0.0
    damage_reward = (MAX_HEALTH - info["opponent_health"] - (MAX_HEALTH - info["player_health"])) / MAX_HEALTH
    ko_reward = 1.0 if info["outcome"] == "win" else -1.0
    assert total_reward == pytest.approx(damage_reward + ko_reward)


def test_info_keys():
    env = gym.make(fightenv.ARENA_ID)
    _, info = env.reset(seed=0)
    assert set(info) >= {"outcome", "player_health", "opponent_health", "player_meter", "opponent_meter", "tick"}
    assert info["outcome"] is None


def test_rgb_array_render_has_hud():
    env = gym.make(fightenv.ARENA_ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    # The player's full health bar is drawn in its fixed box.
    from fightenv.arena.render import HEALTH_FILL, HUD_BOXES

    left, top, right, bottom = HUD_BOXES["player_health"]
    box = frame[int(top * 480) + 1:int(bottom * 480) - 1, int(left * 640) + 1:int(right * 640) - 1]
    assert np.all(box == HEALTH_FILL)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulty": "insane"}, "unknown difficulty 'insane'; choose one of easy, normal, hard"),
        ({"frame_size": 16}, "frame_size height must be an integer from 32 to 1024"),
        ({"frame_size": (84, 8)}, "frame_size width must be an integer from 32 to 1024"),
        ({"frame_skip": -1}, "frame_skip must be an integer of at least 1 tick, got -1"),
        ({"frame_skip": 0}, "frame_skip must be an integer of at least 1 tick, got 0"),
        ({"round_time_s": 0}, "round_time_s must be positive, got 0"),
        ({"render_mode": "ansi"}, "unknown render_mode 'ansi'"),
    ],
)
def test_bad_arguments_name_value_and_range(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        gym.make(fightenv.ARENA_ID, **kwargs)


def test_wrong_action_shape_rejected():
    env = gym.make(fightenv.ARENA_ID).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="one value per button"):
        env.step(np.zeros(3, dtype=np.int8))


def test_docstring_tables_match_spaces():
    doc = ArenaEnv.__doc__
    documented_buttons = re.findall(r"^\s*\| (\d+) \| (\w+) \|", doc, flags=re.MULTILINE)
    assert [name for _, name in documented_buttons] == list(BUTTONS)
    assert [int(i) for i, _ in documented_buttons] == list(range(len(BUTTONS)))
    state_rows = re.findall(r"^\s*\| ([a-z_, ]+) \| (?!dtype)", doc, flags=re.MULTILINE)
    documented_features = [name.strip() for row in state_rows for name in row.split(",")]
    documented_features = [name for name in documented_features if name in STATE_FEATURES or "_" in name]
    assert sorted(documented_features) == sorted(STATE_FEATURES)
    assert f"MultiBinary({len(BUTTONS)})" in doc
    assert f"({len(STATE_FEATURES)},)" in doc


@pytest.mark.slow
def test_sb3_ppo_runs():
    from stable_baselines3 import PPO

    env = gym.make(fightenv.ARENA_ID, frame_size=48)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action.astype(np.int8))
