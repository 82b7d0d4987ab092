"""scripts/evaluate.py end to end, and the expert pilot it plays with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import fightenv
from agents.evaluation import evaluate
from agents.pilots import ExpertPilot, MaskedPilot
from agents.session import run_episode

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )


def test_evaluate_writes_json_report(tmp_path):
    out = tmp_path / "eval.json"
    result = run_script("--pilot", "expert", "--episodes", "3", "--seed", "7", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "win rate" in result.stdout
    report = json.loads(out.read_text())
    assert report["episodes"] == 3
    assert 0.0 <= report["win_rate"] <= 1.0
    assert report["steps_per_s"] > 0
    assert set(report["buttons"]) == set(fightenv.arena.BUTTONS)
    for stats in report["buttons"].values():
        assert 0.0 <= stats["press_rate"] <= 1.0
        assert "mean_hold_steps" in stats


def test_evaluate_masked_buttons_never_pressed(tmp_path):
    out = tmp_path / "masked.json"
    result = run_script("--episodes", "2", "--mask-buttons", "guard,grab,special", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    for name in ("guard", "grab", "special"):
        assert report["buttons"][name]["press_rate"] == 0.0
        assert report["buttons"][name]["mean_hold_steps"] is None
    assert report["masked_buttons"] == ["guard", "grab", "special"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mask-buttons", "guard,blok"], "unknown button(s) ['blok']; the buttons are forward, back"),
        (["--difficulty", "insane"], "unknown difficulty 'insane'; choose one of easy, normal, hard"),
        (["--pilot", "robot"], 'unknown pilot \'robot\'; use "expert" or "policy:RUN_DIR"'),
        (["--episodes", "0"], "episodes must be at least 1, got 0"),
        (["--pilot", "policy:/nonexistent"], "policy config not found: /nonexistent/policy.json"),
    ],
)
def test_evaluate_bad_arguments(args, message):
    result = run_script("--episodes", "1", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_rejects_policy_of_other_layout(tmp_path):
    from agents.policy import make_policy, windowed_spaces
    from agents.policy_files import PolicyConfig, save_policy

    # A policy trained on an older Arena state vector, one feature short.
    states = list(fightenv.arena.STATE_FEATURES[:-1])
    observation_space, action_space = windowed_spaces((1, 84, 84), len(states), len(fightenv.arena.BUTTONS), 2, 4)
    config = PolicyConfig(button_names=list(fightenv.arena.BUTTONS), state_names=states, frame_shape=[1, 84, 84],
                          n_frames=2, state_window=4, features_extractor_kwargs={}, net_arch={"pi": [64], "vf": []})
    save_policy(tmp_path, make_policy(observation_space, action_space), config)

    result = run_script("--pilot", f"policy:{tmp_path}", "--episodes", "1")
    assert result.returncode == 2
    assert "state features differ" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_colour_policy(tmp_path):
    import numpy as np

    from agents.policy import make_policy, windowed_spaces
    from agents.policy_files import PolicyConfig, save_policy

    # A policy trained on 64x48 colour frames at 30 decisions/s.
    buttons, states = list(fightenv.arena.BUTTONS), list(fightenv.arena.STATE_FEATURES)
    observation_space, action_space = windowed_spaces((3, 64, 48), len(states), len(buttons), 2, 4)
    policy = make_policy(observation_space, action_space)
    policy.set_decision_rule(np.full(len(buttons), 0.5))
    config = PolicyConfig(button_names=buttons, state_names=states, frame_shape=[3, 64, 48], n_frames=2,
                          state_window=4, features_extractor_kwargs={}, net_arch={"pi": [128], "vf": []},
                          thresholds=[0.5] * len(buttons), game="arena", decision_hz=30.0)
    save_policy(tmp_path, policy, config)
    assert config.arena_options() == {"frame_size": (64, 48), "color": True, "frame_skip": 2}

    result = run_script("--pilot", f"policy:{tmp_path}", "--episodes", "1", "--round-time-s", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "win rate" in result.stdout


def test_expert_is_seeded():
    env = gym.make(fightenv.ARENA_ID)
    first = run_episode(env, ExpertPilot(seed=3), seed=10)
    second = run_episode(env, ExpertPilot(seed=3), seed=10)
    other = run_episode(env, ExpertPilot(seed=4), seed=10)
    np.testing.assert_array_equal(first.actions, second.actions)
    assert first.actions.shape != other.actions.shape or not np.array_equal(first.actions, other.actions)


def test_expert_beats_masked_expert():
    env = gym.make(fightenv.ARENA_ID)
    full = evaluate(env, ExpertPilot(seed=0), 20, seed=500, progress=False)
    masked = evaluate(
        env, MaskedPilot(ExpertPilot(seed=0), env.unwrapped.button_names, ("guard", "grab", "special")),
        20, seed=500, progress=False,
    )
    assert full.win_rate > masked.win_rate


def test_expert_reaction_delay_validated():
    with pytest.raises(ValueError, match="reaction_s must be at least 0 seconds, got -0.1"):
        ExpertPilot(reaction_s=-0.1)


def test_expert_rejects_other_games():
    env = gym.make("CartPole-v1")
    with pytest.raises(TypeError, match="the expert pilot plays only the built-in Arena, got CartPoleEnv"):
        ExpertPilot().reset(env, 0)
