"""The session loop shared by recording, evaluation and correction rounds.

A session is an env, a pilot that decides which buttons are held each step,
and an optional recorder. Collecting demonstrations runs it with a human or
expert pilot and a recorder; evaluation with a policy pilot and no recorder;
DAgger with a policy pilot that a corrector may override, and a recorder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

logger = logging.getLogger(__name__)

Observation = dict[str, np.ndarray]


@dataclass(frozen=True)
class Decision:
    """The buttons held for one step, and who chose them.

    ``action`` is what the env executes: ``(n_buttons,)`` uint8 in {0, 1}. A
    correction round fills in the agent's and the corrector's own choices.
    """

    action: np.ndarray
    source: str
    """Source of ``action``: "expert", "human", "policy" or "corrector"."""
    agent_action: np.ndarray | None = None
    corrector_action: np.ndarray | None = None
    intervened: bool = False
    probabilities: np.ndarray | None = None
    """The policy's per-button probabilities, ``(n_buttons,)`` float32, when a policy decided."""


class Pilot(Protocol):
    """Chooses the buttons to hold each step."""

    name: str

    def reset(self, env: gym.Env, seed: int | None) -> None:
        """Prepare for a new episode of ``env`` (after ``env.reset``)."""

    def act(self, obs: Observation) -> Decision:
        """Return the buttons to hold for the step that follows ``obs``."""


class Recorder(Protocol):
    """Stores a session's steps; see ``demos`` for the episode store that implements it."""

    def begin_episode(self, seed: int | None, first_obs: Observation) -> None: ...

    def add_step(self, obs: Observation, decision: Decision, timestamp_s: float, reward: float) -> None: ...

    def end_episode(self, final_obs: Observation, outcome: str | None, info: dict[str, Any]) -> None:
        """Close the episode; ``final_obs`` is the observation after the last step."""


@dataclass
class EpisodeResult:
    """Result of one episode of a session."""

    seed: int | None
    steps: int
    total_reward: float
    outcome: str | None
    """"win", "loss" or "draw" on the Arena; None when the game reports no outcome."""
    terminated: bool
    actions: np.ndarray
    """``(steps, n_buttons)`` uint8: the executed buttons."""
    wall_time_s: float
    final_info: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_time_s if self.wall_time_s > 0 else float("inf")


def run_episode(
    env: gym.Env,
    pilot: Pilot,
    *,
    seed: int | None = None,
    recorder: Recorder | None = None,
    max_steps: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    reset_options: dict[str, Any] | None = None,
    stop_reason: str | None = None,
) -> EpisodeResult:
    """Play one episode of ``env`` with ``pilot``, recording each step when a recorder is given.

    The episode ends when the env terminates or truncates, after ``max_steps``
    steps, or when ``should_stop()`` returns True (checked before each step).
    With ``stop_reason``, an episode that ``should_stop`` cut short is kept as
    partial (the recorder's ``abort_episode(stop_reason)``) instead of ended.
    ``reset_options`` go to ``env.reset``.
    Each recorded step carries a monotonic timestamp taken just before the
    pilot decides, so the recorder stores when the observation was seen.
    """
    obs, info = env.reset(seed=seed, options=reset_options)
    pilot.reset(env, seed)
    if recorder is not None:
        recorder.begin_episode(seed, obs)

    actions: list[np.ndarray] = []
    total_reward = 0.0
    terminated = truncated = False
    start_s = time.perf_counter()
    stopped = False
    while not (terminated or truncated):
        if max_steps is not None and len(actions) >= max_steps:
            break
        if should_stop is not None and should_stop():
            stopped = True
            break

        # Decide on the current observation, then act.
        timestamp_s = time.monotonic()
        decision = pilot.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(decision.action)

        # Record the observation together with the decision taken on it.
        if recorder is not None:
            recorder.add_step(obs, decision, timestamp_s, float(reward))
        actions.append(decision.action)
        total_reward += float(reward)
        obs = next_obs

    wall_time_s = time.perf_counter() - start_s
    outcome = info.get("outcome")
    abort = getattr(recorder, "abort_episode", None)
    if stopped and stop_reason is not None and abort is not None:
        abort(stop_reason)
    elif recorder is not None:
        recorder.end_episode(obs, outcome, {**info, "terminated": terminated, "truncated": truncated})
    n_buttons = env.action_space.shape[0]
    stacked = np.asarray(actions, dtype=np.uint8).reshape(-1, n_buttons)
    return EpisodeResult(
        seed=seed,
        steps=len(actions),
        total_reward=total_reward,
        outcome=outcome,
        terminated=terminated,
        actions=stacked,
        wall_time_s=wall_time_s,
        final_info=dict(info),
    )
