"""The button policy: sizes from spaces, decision rules, imitation's bc.BC, policy files and the pilot."""

from __future__ import annotations

import json
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
from imitation.algorithms import bc

import fightenv  # noqa: F401  (registers fightenv/Arena-v0)
from agents import PolicyPilot, load_policy
from agents.bc_adapter import ButtonLossCalculator
from agents.dataset import WindowedDataset, WindowSpec
from agents.losses import LossConfig, WeightedBCELoss, build_loss
from agents.policy import make_policy, windowed_spaces
from agents.policy_files import PolicyConfig, PolicyFileError, save_policy
from agents.session import run_episode
from agents.synthetic import synthetic_trajectories
from agents.train import DataLayout, LogitsModel, TrainConfig, init_policy
from fightenv.arena import BUTTONS, STATE_FEATURES


def arena_policy(n_frames: int = 2, state_window: int = 4, **extractor):
    observation_space, action_space = windowed_spaces((1, 84, 84), len(STATE_FEATURES), len(BUTTONS), n_frames,
                                                      state_window)
    return make_policy(observation_space, action_space, extractor or None)


def random_batch(policy, batch_size: int = 5):
    space = policy.observation_space
    return {
        "frame": torch.randint(0, 256, (batch_size, *space["frame"].shape), dtype=torch.uint8),
        "state": torch.randn(batch_size, *space["state"].shape),
    }


def arena_config() -> PolicyConfig:
    return PolicyConfig(
        button_names=list(BUTTONS), state_names=list(STATE_FEATURES), frame_shape=[1, 84, 84], n_frames=2,
        state_window=4, features_extractor_kwargs={}, net_arch={"pi": [128], "vf": []},
    )


@pytest.mark.parametrize("frame_shape,n_frames,temporal", [((1, 84, 84), 2, "gru"), ((3, 64, 48), 1, "conv"),
                                                          ((1, 96, 96), 4, "conv"), ((1, 84, 84), 2, "lstm")])
def test_extractor_sizes_follow_spaces(frame_shape, n_frames, temporal):
    observation_space, action_space = windowed_spaces(frame_shape, 7, 5, n_frames, 3)
    policy = make_policy(observation_space, action_space, {"temporal": temporal})
    logits = policy.button_logits(random_batch(policy, 3))
    assert logits.shape == (3, 5)


@pytest.mark.parametrize("temporal", ["gru", "lstm", "conv"])
def test_training_forward_matches_policy_logits(temporal):
    """The training loop's in-place frame scaling computes the same logits as SB3's preprocessing path."""
    observation_space, action_space = windowed_spaces((1, 84, 84), 16, 10, 2, 4)
    policy = make_policy(observation_space, action_space, {"temporal": temporal})
    batch = random_batch(policy, batch_size=7)
    with torch.no_grad():
        expected = policy.button_logits(batch)
        fast = LogitsModel(policy)(batch)
        low_precision = LogitsModel(policy, frames_bf16=True)(batch)
    torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-5)
    assert low_precision.dtype == torch.float32
    torch.testing.assert_close(low_precision, expected, rtol=0.05, atol=0.05)


def test_extractor_rejects_unwindowed_space():
    observation_space = gym.spaces.Dict({
        "frame": gym.spaces.Box(0, 255, (1, 84, 84), np.uint8),
        "state": gym.spaces.Box(-1, 1, (16,), np.float32),
    })
    with pytest.raises(ValueError, match="wrap the env with ObservationHistoryWrapper"):
        make_policy(observation_space, gym.spaces.MultiBinary(10))


def test_output_bias_starts_at_prevalence_logit():
    prevalence = np.array([0.4, 0.1, 0.02, 0.005, 0.3, 0.2, 0.05, 0.08, 0.01, 0.015])
    loss = WeightedBCELoss(np.ones(10))
    layout = DataLayout(BUTTONS, STATE_FEATURES, (1, 84, 84))
    policy = init_policy(TrainConfig(n_frames=1, state_window=2), layout, loss, prevalence)
    np.testing.assert_allclose(policy.action_net.bias.detach().numpy(), np.log(prevalence / (1 - prevalence)),
                               rtol=1e-5)


def test_predict_without_thresholds_raises():
    policy = arena_policy()
    obs = {key: value[0].numpy() for key, value in random_batch(policy, 1).items()}
    with pytest.raises(RuntimeError, match="no per-button thresholds"):
        policy.predict(obs, deterministic=True)
    action, _ = policy.predict(obs, deterministic=False)
    assert action.shape == (10,)


def test_predict_uses_per_button_thresholds():
    policy = arena_policy()
    batch = random_batch(policy, 64)
    with torch.no_grad():
        probabilities = policy.button_probabilities(batch).numpy()
    thresholds = np.quantile(probabilities, 0.7, axis=0)
    policy.set_decision_rule(thresholds)
    actions, _ = policy.predict({k: v.numpy() for k, v in batch.items()}, deterministic=True)
    np.testing.assert_array_equal(actions, (probabilities >= thresholds.astype(np.float32)).astype(np.uint8))


def test_bc_trains_policy_with_both_losses():
    trajectories = synthetic_trajectories(3, 40, frame_shape=(1, 36, 36), n_state=4, seed=0)
    dataset = WindowedDataset.from_trajectories(trajectories, WindowSpec(2, 3))
    observation_space, action_space = windowed_spaces((1, 36, 36), 4, 8, 2, 3)
    policy = make_policy(observation_space, action_space)
    trainer = bc.BC(observation_space=observation_space, action_space=action_space, rng=np.random.default_rng(0),
                    policy=policy, demonstrations=dataset.windowed_trajectories(), batch_size=16)
    before = policy.action_net.weight.detach().clone()
    trainer.train(n_batches=3, progress_bar=False)
    assert not torch.equal(before, policy.action_net.weight)

    loss = build_loss(LossConfig(), dataset.actions.numpy(), [f"b{i}" for i in range(8)])
    trainer.loss_calculator = ButtonLossCalculator(loss)
    before = policy.action_net.weight.detach().clone()
    trainer.train(n_batches=3, progress_bar=False)
    assert not torch.equal(before, policy.action_net.weight)


def test_policy_files_round_trip(tmp_path):
    policy = arena_policy()
    policy.set_decision_rule(np.linspace(0.1, 0.9, 10), np.full(10, 1.5), np.full(10, -0.5))
    n_state = len(STATE_FEATURES)
    policy.features_extractor.set_state_normalization(np.linspace(0.0, 0.5, n_state), np.linspace(0.1, 2.0, n_state))
    save_policy(tmp_path, policy, arena_config())
    loaded = load_policy(tmp_path)
    batch = random_batch(policy, 4)
    policy.set_training_mode(False)
    with torch.no_grad():
        np.testing.assert_allclose(loaded.policy.button_probabilities(batch).numpy(),
                                   policy.button_probabilities(batch).numpy(), rtol=1e-6)
    np.testing.assert_allclose(loaded.policy.thresholds.numpy(), np.linspace(0.1, 0.9, 10), rtol=1e-6)
    stored = json.loads((tmp_path / "policy.json").read_text())
    assert stored["button_names"] == list(BUTTONS)
    assert stored["thresholds"] == pytest.approx(np.linspace(0.1, 0.9, 10).tolist())
    np.testing.assert_allclose(loaded.policy.features_extractor.state_std.numpy(), np.linspace(0.1, 2.0, n_state),
                               rtol=1e-6)


def test_state_normalization_applies():
    policy = arena_policy()
    batch = random_batch(policy, 3)
    extractor = policy.features_extractor
    before = extractor.state_features(batch["state"])
    n_state = len(STATE_FEATURES)
    mean, std = np.full(n_state, 0.25, dtype=np.float32), np.full(n_state, 0.5, dtype=np.float32)
    extractor.set_state_normalization(mean, std)
    torch.testing.assert_close(extractor.state_features(batch["state"] * 0.5 + 0.25), before)
    with pytest.raises(ValueError, match="std positive"):
        extractor.set_state_normalization(mean, np.zeros(n_state))


def test_old_policy_file_loads_identity_statistics(tmp_path):
    from safetensors.torch import load_file, save_file

    save_policy(tmp_path, arena_policy(), arena_config())
    weights = load_file(tmp_path / "policy.safetensors")
    old = {key: value for key, value in weights.items() if not key.endswith(("state_mean", "state_std"))}
    assert len(old) < len(weights)
    save_file(old, tmp_path / "policy.safetensors")
    extractor = load_policy(tmp_path).policy.features_extractor
    assert torch.equal(extractor.state_mean, torch.zeros(len(STATE_FEATURES)))
    assert torch.equal(extractor.state_std, torch.ones(len(STATE_FEATURES)))


def test_load_policy_never_unpickles(tmp_path, monkeypatch):
    save_policy(tmp_path, arena_policy(), arena_config())

    def reject(*args, **kwargs):
        raise AssertionError("load_policy tried to unpickle")

    monkeypatch.setattr(pickle, "load", reject)
    monkeypatch.setattr(pickle, "loads", reject)
    monkeypatch.setattr(torch, "load", reject)
    assert load_policy(tmp_path).config.button_names == list(BUTTONS)


def test_load_policy_rejects_other_buttons_naming_both(tmp_path):
    observation_space, action_space = windowed_spaces((1, 84, 84), len(STATE_FEATURES), 3, 2, 4)
    config = arena_config()
    config.button_names = ["left", "right", "fire"]
    save_policy(tmp_path, make_policy(observation_space, action_space), config)
    env = gym.make("fightenv/Arena-v0")
    with pytest.raises(PolicyFileError) as error:
        load_policy(tmp_path, env=env)
    assert "['left', 'right', 'fire']" in str(error.value)
    assert str(list(BUTTONS)) in str(error.value)
    assert str(tmp_path / "policy.json") in str(error.value)


def test_load_policy_rejects_other_game(tmp_path):
    config = arena_config()
    config.game = "tekken"
    save_policy(tmp_path, arena_policy(), config)
    with pytest.raises(PolicyFileError, match="games differ: policy 'tekken', env 'arena'"):
        load_policy(tmp_path, env=gym.make("fightenv/Arena-v0"))


def test_load_policy_inconsistent_config_names_file(tmp_path):
    save_policy(tmp_path, arena_policy(), arena_config())
    raw = json.loads((tmp_path / "policy.json").read_text())
    raw["thresholds"] = raw["thresholds"][:9] if raw["thresholds"] else [0.5] * 9
    (tmp_path / "policy.json").write_text(json.dumps(raw))
    with pytest.raises(PolicyFileError) as error:
        load_policy(tmp_path)
    assert str(tmp_path / "policy.json") in str(error.value)
    assert "train the policy again" in str(error.value)


def test_load_policy_missing_and_bad_files(tmp_path):
    with pytest.raises(PolicyFileError, match="policy config not found"):
        load_policy(tmp_path / "nothing")
    save_policy(tmp_path, arena_policy(), arena_config())
    raw = json.loads((tmp_path / "policy.json").read_text())
    raw["format_version"] = 99
    (tmp_path / "policy.json").write_text(json.dumps(raw))
    with pytest.raises(PolicyFileError, match="format_version 99"):
        load_policy(tmp_path)


def test_policy_pilot_plays_arena(tmp_path):
    policy = arena_policy()
    policy.set_decision_rule(np.full(10, 0.3))
    save_policy(tmp_path, policy, arena_config())
    env = gym.make("fightenv/Arena-v0", round_time_s=3.0)
    pilot = PolicyPilot.from_run(tmp_path, env=env, seed=0)
    result = run_episode(env, pilot, seed=3, max_steps=30)
    assert result.steps == 30
    decision = pilot.act(env.reset(seed=1)[0])
    assert decision.source == "policy"
    assert decision.probabilities.shape == (10,)
    np.testing.assert_array_equal(decision.action, (decision.probabilities >= np.float32(0.3)).astype(np.uint8))


def test_policy_pilot_sampling_is_seeded(tmp_path):
    save_policy(tmp_path, arena_policy(), arena_config())
    env = gym.make("fightenv/Arena-v0", round_time_s=3.0)
    runs = []
    for _ in range(2):
        pilot = PolicyPilot.from_run(tmp_path, env=env, decision="sample", seed=5)
        runs.append(run_episode(env, pilot, seed=3, max_steps=20).actions)
    np.testing.assert_array_equal(runs[0], runs[1])
    with pytest.raises(ValueError, match="has no thresholds"):
        PolicyPilot.from_run(tmp_path, env=env, decision="thresholds")
