"""A trained policy as a pilot of the session loop (``agents.session.run_episode``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.policy_files import LoadedPolicy, load_policy
from agents.session import Decision, Observation
from fightenv.wrappers import FRAME_KEY, STATE_KEY, ObservationHistory

logger = logging.getLogger(__name__)

DECISIONS = ("thresholds", "sample")


class PolicyPilot:
    """Presses the buttons a trained ButtonPolicy chooses, from raw ``Dict(frame, state)`` observations.

    The pilot keeps its own frame stack and state window, built exactly as in
    training, and clears it on ``reset``. With ``decision="thresholds"`` it
    presses a button when its calibrated probability reaches the threshold
    stored in the policy file. With ``decision="sample"`` it draws each button
    from its probability with the pilot's seeded generator.
    """

    name = "policy"

    def __init__(self, loaded: LoadedPolicy, decision: str = "thresholds", seed: int | None = None,
                 device: str | torch.device = "cpu") -> None:
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        if decision == "thresholds" and not loaded.policy.has_thresholds:
            raise ValueError(f"the policy in {loaded.run_dir} has no thresholds; use decision='sample' or retrain")
        self.loaded = loaded
        self.policy = loaded.policy
        self.decision = decision
        self.device = torch.device(device)
        if self.device.type == "cpu":
            # One observation per step is too small to split across threads: with two threads on a
            # busy 2-core machine a step took 30 ms instead of 0.6 ms. Training sets its own count.
            torch.set_num_threads(1)
        self.history = ObservationHistory(loaded.config.n_frames, loaded.config.state_window)
        self._seed = seed
        self._generator = torch.Generator().manual_seed(0 if seed is None else seed)

    @classmethod
    def from_run(cls, run_dir: str | Path, env: gym.Env | None = None, decision: str | None = None,
                 seed: int | None = None, device: str | torch.device = "cpu") -> PolicyPilot:
        """Load ``run_dir``'s policy, checked against ``env`` when given; ``decision`` None uses the file's rule."""
        loaded = load_policy(run_dir, device=device, env=env)
        return cls(loaded, decision=decision or loaded.config.decision, seed=seed, device=device)

    @property
    def button_names(self) -> list[str]:
        return list(self.loaded.config.button_names)

    def reset(self, env: gym.Env | None, seed: int | None) -> None:
        """Clear the observation history; a new episode seed also reseeds sampling when the pilot has no seed."""
        self.history.clear()
        if self._seed is None and seed is not None:
            self._generator.manual_seed(seed)

    @torch.no_grad()
    def act(self, obs: Observation) -> Decision:
        windowed = self.history.push(obs)
        batch: dict[str, Any] = {
            FRAME_KEY: torch.from_numpy(windowed[FRAME_KEY]).unsqueeze(0).to(self.device),
            STATE_KEY: torch.from_numpy(windowed[STATE_KEY]).unsqueeze(0).to(self.device),
        }
        probabilities = self.policy.button_probabilities(batch)
        action = self.policy.decide(probabilities.cpu(), sample=self.decision == "sample", generator=self._generator)
        return Decision(
            action=action[0].numpy().astype(np.uint8),
            source="policy",
            probabilities=probabilities[0].cpu().numpy().astype(np.float32),
        )
