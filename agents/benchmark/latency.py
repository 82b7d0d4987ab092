"""Inference latency of the default ButtonPolicy, one observation at a time as ``PolicyPilot`` runs it.

Each timed call is ``PolicyPilot.act``: push the raw ``Dict(frame, state)``
observation into the pilot's history, run the network on a batch of one, apply
the thresholds. The network has the default architecture of
``agents.train.TrainConfig`` with freshly initialised weights (latency does not
depend on the weights), on the CPU with one torch thread. The observations are
real Arena observations recorded beforehand, so the env's cost is not in the
timing. Batch throughput runs ``button_probabilities`` on batches of windowed
observations under ``torch.inference_mode``.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatencySettings:
    """Sizes of the inference latency measurement."""

    steps: int = 2000
    """``PolicyPilot.act`` calls timed per repeat, after ``warmup_steps``."""
    warmup_steps: int = 50
    """Calls run before timing starts in each repeat."""
    repeats: int = 5
    """Timed repeats; the report gives the median of their p50 and p99."""
    batch_size: int = 256
    """Observations per forward pass of the batch throughput measurement (0 skips it)."""
    batches: int = 20
    """Forward passes timed per repeat of the batch throughput measurement."""
    recorded_observations: int = 300
    """Arena observations recorded (random buttons) and then replayed in order to the pilot."""
    seed: int = 0
    """Seed of the weights, the recorded Arena round and the random buttons."""

    def validate(self) -> None:
        for name in ("steps", "repeats", "recorded_observations"):
            if getattr(self, name) < 1:
                raise ValueError(f"latency setting {name} must be at least 1, got {getattr(self, name)}")
        if self.steps < 100:
            raise ValueError(f"latency setting steps must be at least 100 to give a p99, got {self.steps}")
        if self.batch_size < 0 or self.batches < 1:
            raise ValueError(f"latency settings need batch_size >= 0 and batches >= 1, got batch_size "
                             f"{self.batch_size} and batches {self.batches}")


def default_pilot(env: gym.Env, seed: int):
    """Build a ``PolicyPilot`` around a freshly initialised ButtonPolicy of the default training architecture."""
    from agents.policy import env_layout
    from agents.policy_files import LoadedPolicy, PolicyConfig
    from agents.policy_pilot import PolicyPilot
    from agents.train import TrainConfig

    button_names, state_names, frame_shape = env_layout(env)
    defaults = TrainConfig()
    torch.manual_seed(seed)
    config = PolicyConfig(
        button_names=list(button_names), state_names=list(state_names), frame_shape=list(frame_shape),
        n_frames=defaults.n_frames, state_window=defaults.state_window,
        features_extractor_kwargs=defaults.extractor_kwargs(), net_arch=defaults.net_arch(),
        thresholds=[0.5] * len(button_names),
    )
    policy = config.build_policy()
    policy.set_training_mode(False)
    loaded = LoadedPolicy(policy=policy, config=config, run_dir=Path("<untrained default network>"))
    return PolicyPilot(loaded, decision="thresholds", seed=seed, device="cpu")


def record_observations(env: gym.Env, count: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Step ``env`` with random buttons and return ``count`` raw observations (copies)."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    observations = []
    n_buttons = env.action_space.shape[0]
    while len(observations) < count:
        observations.append({key: np.array(value, copy=True) for key, value in obs.items()})
        obs, _, terminated, truncated, _ = env.step((rng.random(n_buttons) < 0.2).astype(np.int8))
        if terminated or truncated:
            obs, _ = env.reset()
    return observations


def measure_latency(settings: LatencySettings) -> dict[str, Any]:
    """Time ``PolicyPilot.act`` per observation and batched forward passes; return a JSON-ready dict."""
    import fightenv

    settings.validate()
    previous_threads = torch.get_num_threads()
    env = gym.make(fightenv.ARENA_ID)
    try:
        observations = record_observations(env, settings.recorded_observations, settings.seed)
        pilot = default_pilot(env, settings.seed)  # sets torch to one thread, as in a live session
        torch.set_num_threads(1)
        parameters = sum(p.numel() for p in pilot.policy.parameters())

        repeats = []
        for repeat in range(settings.repeats):
            pilot.reset(env, repeat)
            for index in range(settings.warmup_steps):
                pilot.act(observations[index % len(observations)])
            durations_ms = np.empty(settings.steps)
            for index in range(settings.steps):
                obs = observations[(settings.warmup_steps + index) % len(observations)]
                start_ns = time.perf_counter_ns()
                pilot.act(obs)
                durations_ms[index] = (time.perf_counter_ns() - start_ns) / 1e6
            repeats.append({
                "p50_ms": float(np.percentile(durations_ms, 50)),
                "p99_ms": float(np.percentile(durations_ms, 99)),
                "max_ms": float(durations_ms.max()),
                "mean_ms": float(durations_ms.mean()),
            })
            logger.info("latency repeat %d: p50 %.3f ms, p99 %.3f ms", repeat, repeats[-1]["p50_ms"],
                        repeats[-1]["p99_ms"])

        result: dict[str, Any] = {
            "settings": asdict(settings),
            "network": {
                "architecture": pilot.loaded.config.features_extractor_kwargs | {
                    "net_arch": pilot.loaded.config.net_arch, "n_frames": pilot.loaded.config.n_frames,
                    "state_window": pilot.loaded.config.state_window,
                },
                "parameters": int(parameters),
                "frame_shape": pilot.loaded.config.frame_shape,
                "buttons": len(pilot.loaded.config.button_names),
            },
            "torch_threads": torch.get_num_threads(),
            "per_step": {key: statistics.median(r[key] for r in repeats) for key in repeats[0]},
            "per_step_repeats": repeats,
        }
        if settings.batch_size > 0:
            result["batch"] = _batch_throughput(pilot, observations, settings)
        return result
    finally:
        env.close()
        torch.set_num_threads(previous_threads)


def _batch_throughput(pilot, observations: list[dict[str, np.ndarray]], settings: LatencySettings) -> dict[str, Any]:
    """Median samples/s of ``button_probabilities`` on batches of windowed observations, one thread."""
    from fightenv.wrappers import FRAME_KEY, STATE_KEY

    pilot.reset(None, 0)
    windowed = [pilot.history.push(obs) for obs in observations]
    index = np.arange(settings.batch_size) % len(windowed)
    batch = {
        FRAME_KEY: torch.from_numpy(np.stack([windowed[i][FRAME_KEY] for i in index])),
        STATE_KEY: torch.from_numpy(np.stack([windowed[i][STATE_KEY] for i in index])),
    }
    rates = []
    with torch.inference_mode():
        pilot.policy.button_probabilities(batch)
        for _ in range(settings.repeats):
            start_s = time.perf_counter()
            for _ in range(settings.batches):
                pilot.policy.button_probabilities(batch)
            rates.append(settings.batches * settings.batch_size / (time.perf_counter() - start_s))
    return {"batch_size": settings.batch_size, "samples_per_s": statistics.median(rates), "samples_per_s_runs": rates}
