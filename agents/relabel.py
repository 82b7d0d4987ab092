"""Relabelling: replay a recorded agent episode slowly and let the player press what the agent should have pressed.

Real-time takeover suffers from the player's reaction lag; a slowed replay
does not. The replay walks through the stored observations whatever buttons
are pressed, and each step is stored with the agent's recorded buttons as
``agent_action`` and the player's as ``corrector_action`` (and as the
action), so the next training round learns from every replayed step.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.session import Decision, Observation
from fightenv.arena.env import require_display

logger = logging.getLogger(__name__)

REPLAY_TITLE = "fightenv replay"
RELABEL_PILOT = "relabel"


class ReplayEnv(gym.Env):
    """Plays back one stored episode: step ``t`` returns stored observation ``t + 1`` whatever the action.

    Shows each frame, enlarged, in a window when ``render_mode="human"``.
    """

    metadata = {"render_modes": ["human", "rgb_array"]}

    def __init__(self, demo_set, episode: int, render_mode: str | None = None, scale: int = 6) -> None:
        if render_mode == "human":
            require_display()
        trajectory = demo_set.trajectories[episode]
        self._frames = trajectory.obs.get("frame")
        self._states = trajectory.obs.get("state")
        self.recorded_actions = np.asarray(demo_set.step_fields(episode).action[: len(trajectory.acts)])
        self.button_names = tuple(demo_set.button_names)
        self.state_names = tuple(demo_set.state_names)
        self.decision_hz = demo_set.decision_hz
        self.game_name = demo_set.game
        self.render_mode = render_mode
        self.scale = scale
        self.action_space = spaces.MultiBinary(len(self.button_names))
        self.observation_space = spaces.Dict({
            "frame": spaces.Box(0, 255, self._frames.shape[1:], dtype=np.uint8),
            "state": spaces.Box(-np.inf, np.inf, self._states.shape[1:], dtype=np.float32),
        })
        self.t = 0

    @property
    def steps(self) -> int:
        return len(self.recorded_actions)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"frame": self._frames[self.t], "state": self._states[self.t]}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        if self.render_mode == "human":
            self.render()
        return self._obs(), {"step": 0}

    def step(self, action):
        self.t += 1
        done = self.t >= self.steps
        if self.render_mode == "human":
            self.render()
        return self._obs(), 0.0, False, done, {"step": self.t, "outcome": None}

    def render(self):
        frame = self._frames[self.t]
        image = frame[0] if frame.shape[0] == 1 else frame.transpose(1, 2, 0)
        image = cv2.resize(image, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_NEAREST)
        if self.render_mode == "rgb_array":
            return image
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        cv2.imshow(REPLAY_TITLE, image)
        cv2.waitKey(1)
        return None

    def close(self) -> None:
        if self.render_mode == "human":
            cv2.destroyWindow(REPLAY_TITLE)


class RelabelPilot:
    """The player's keys as labels for a replayed episode, next to what the agent did."""

    name = RELABEL_PILOT

    def __init__(self, human) -> None:
        self.human = human
        """A paced ``agents.human.HumanPilot``."""
        self._env: ReplayEnv | None = None

    def reset(self, env: gym.Env, seed: int | None) -> None:
        self._env = env.unwrapped
        self.human.reset(env, seed)

    def act(self, obs: Observation) -> Decision:
        label = self.human.act(obs).action
        recorded = self._env.recorded_actions[self._env.t]
        return Decision(
            action=label, source="human", agent_action=recorded, corrector_action=label,
            intervened=bool(np.any(label != recorded)),
        )
