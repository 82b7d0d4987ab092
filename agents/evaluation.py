"""Closed-loop evaluation: a pilot plays seeded Arena rounds against the CPU."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
from tqdm import tqdm

from agents.session import Pilot, run_episode
from fightenv.presses import ButtonPresses, press_statistics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationReport:
    """Outcome and press statistics of a pilot over seeded rounds."""

    pilot: str
    episodes: int
    wins: int
    losses: int
    draws: int
    steps: int
    steps_per_s: float
    """Env steps per wall-clock second, pilot decisions included."""
    mean_episode_steps: float
    mean_reward: float
    buttons: list[ButtonPresses]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @property
    def win_rate(self) -> float:
        return self.wins / self.episodes if self.episodes else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["win_rate"] = self.win_rate
        data["buttons"] = {b.name: b.to_dict() for b in self.buttons}
        return data

    def table(self) -> str:
        """Format the report as a text table for the terminal."""
        lines = [
            f"pilot {self.pilot}: {self.episodes} rounds, win rate {self.win_rate:.1%} "
            f"({self.wins} won, {self.losses} lost, {self.draws} drawn), "
            f"{self.mean_episode_steps:.0f} steps per round, {self.steps_per_s:,.0f} steps/s",
            f"{'button':<14}{'press rate':>12}{'press events':>14}{'mean hold (steps)':>19}",
        ]
        for b in self.buttons:
            hold = "never pressed" if b.press_events == 0 else f"{b.mean_hold_steps:.2f}"
            lines.append(f"{b.name:<14}{b.press_rate:>12.2%}{b.press_events:>14}{hold:>19}")
        return "\n".join(lines)


def evaluate(
    env: gym.Env,
    pilot: Pilot,
    episodes: int,
    seed: int = 0,
    progress: bool = True,
) -> EvaluationReport:
    """Play ``episodes`` rounds with seeds ``seed, seed + 1, ...`` and summarise them."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    button_names = tuple(env.unwrapped.button_names)
    outcomes = {"win": 0, "loss": 0, "draw": 0}
    all_actions = []
    steps = 0
    total_reward = 0.0
    start_s = time.perf_counter()
    for i in tqdm(range(episodes), desc=f"evaluate {pilot.name}", unit="round", disable=not progress):
        result = run_episode(env, pilot, seed=seed + i)
        if result.outcome in outcomes:
            outcomes[result.outcome] += 1
        all_actions.append(result.actions)
        steps += result.steps
        total_reward += result.total_reward
    elapsed_s = time.perf_counter() - start_s

    return EvaluationReport(
        pilot=pilot.name,
        episodes=episodes,
        wins=outcomes["win"],
        losses=outcomes["loss"],
        draws=outcomes["draw"],
        steps=steps,
        steps_per_s=steps / elapsed_s if elapsed_s > 0 else float("inf"),
        mean_episode_steps=steps / episodes,
        mean_reward=total_reward / episodes,
        buttons=press_statistics(all_actions, button_names),
        env_kwargs=dict(getattr(env.spec, "kwargs", None) or {}),
        seed=seed,
    )


def parse_button_list(text: str | None, button_names: Sequence[str]) -> tuple[str, ...]:
    """Parse a comma-separated list of button names, rejecting names the game does not have."""
    if not text:
        return ()
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in button_names]
    if unknown:
        raise ValueError(f"unknown button(s) {unknown}; the buttons are {', '.join(button_names)}")
    return names
