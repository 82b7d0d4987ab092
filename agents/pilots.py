"""Pilots that are not learned policies: the Arena's scripted expert, and a mask over any pilot."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from agents.session import Decision, Observation, Pilot
from fightenv.arena.env import ArenaEnv
from fightenv.arena.expert import ArenaExpert, ExpertStyle


class ExpertPilot:
    """The Arena's scripted expert as a pilot; it reads the true game state, not the observation.

    Each episode's expert randomness comes from ``seed`` and the episode's reset
    seed, so a seeded session is reproducible.
    """

    name = "expert"

    def __init__(self, seed: int | None = None, style: ExpertStyle | None = None, reaction_s: float | None = None):
        style = style or ExpertStyle()
        if reaction_s is not None:
            if reaction_s < 0:
                raise ValueError(f"reaction_s must be at least 0 seconds, got {reaction_s}")
            style = ExpertStyle(**{**style.__dict__, "reaction_s": reaction_s})
        self.style = style
        self.seed = seed
        self._env: ArenaEnv | None = None
        self._expert: ArenaExpert | None = None

    def reset(self, env: gym.Env, seed: int | None) -> None:
        arena = env.unwrapped
        if not isinstance(arena, ArenaEnv):
            raise TypeError(
                f"the expert pilot plays only the built-in Arena, got {type(arena).__name__}; "
                "use --pilot human for other games"
            )
        self._env = arena
        episode_seed = None if seed is None and self.seed is None else [self.seed or 0, seed or 0]
        self._expert = ArenaExpert(self.style, np.random.SeedSequence(episode_seed).generate_state(1)[0]
                                   if episode_seed is not None else None, arena.frame_skip)

    def act(self, obs: Observation) -> Decision:
        if self._expert is None or self._env is None:
            raise RuntimeError("call reset(env, seed) before act()")
        return Decision(action=self._expert.act(self._env.game), source=self.name)


class MaskedPilot:
    """Wraps a pilot and forces some buttons to released, to measure what those buttons are worth."""

    def __init__(self, pilot: Pilot, button_names: Sequence[str], masked: Sequence[str]) -> None:
        unknown = [name for name in masked if name not in button_names]
        if unknown:
            raise ValueError(
                f"unknown button(s) {unknown} to mask; the buttons are {list(button_names)}"
            )
        self.pilot = pilot
        self.name = f"{pilot.name}-masked"
        self.masked = tuple(masked)
        self._keep = np.array([name not in masked for name in button_names], dtype=np.uint8)

    def reset(self, env: gym.Env, seed: int | None) -> None:
        self.pilot.reset(env, seed)

    def act(self, obs: Observation) -> Decision:
        decision = self.pilot.act(obs)
        return Decision(
            action=decision.action * self._keep,
            source=decision.source,
            agent_action=decision.agent_action,
            corrector_action=decision.corrector_action,
            intervened=decision.intervened,
            probabilities=decision.probabilities,
        )
