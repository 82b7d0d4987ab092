"""Pilots for correction rounds: a policy that a corrector may override, and the correctors.

The corrector watches the agent and takes over by holding buttons. Two modes:

- takeover: while the corrector holds any button, and for ``holdoff_steps``
  after it lets go, the corrector's buttons are executed instead of the agent's;
- override: the corrector's buttons are added to the agent's, so a player can
  supply just the guard the agent missed.

A third mode, ``label_all``, is plain DAgger: the agent always acts and the
corrector labels every visited step without taking over. It is the baseline
that human-gated correction is measured against.

Every step carries the agent's action, the corrector's action, the executed
action and an intervention flag, so the episode store keeps who pressed what.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import gymnasium as gym
import numpy as np

from agents.session import Decision, Observation, Pilot
from fightenv.arena.env import ArenaEnv
from fightenv.arena.expert import ArenaExpert, ExpertStyle

logger = logging.getLogger(__name__)

class CorrectionMode(str, Enum):
    TAKEOVER = "takeover"
    OVERRIDE = "override"
    LABEL_ALL = "label_all"


class Corrector(Protocol):
    """Whoever may correct the agent: a person at the keyboard or the scripted expert."""

    name: str
    budget_limits_takeover: bool
    """True when a spent budget keeps the corrector hands-off. A person's keys reach a real game whatever the
    pilot decides, so a human corrector sets it False: every step they hold keys is recorded, and the
    budget limits only the help requests."""

    def reset(self, env: gym.Env, seed: int | None) -> None: ...

    def propose(self, obs: Observation, agent: Decision, help_buttons: np.ndarray) -> np.ndarray | None:
        """Return the buttons the corrector holds now, ``(n,)`` uint8, or None while it stays hands-off.

        ``help_buttons`` marks the rare buttons the agent is unsure about this step (its help request).
        """

    def label(self, obs: Observation) -> np.ndarray:
        """Return the buttons the corrector would press in this state (plain DAgger labels every step)."""


@dataclass
class CorrectionBudget:
    """Corrected steps still allowed; the corrector stays hands-off once it is spent."""

    steps_left: int

    @property
    def spent(self) -> bool:
        return self.steps_left <= 0

    def use(self, steps: int = 1) -> None:
        self.steps_left -= steps


class ExpertCorrector:
    """The Arena's scripted expert as a corrector: takes over when the agent misses a rare button.

    The expert plays along in its head every step. When it starts pressing a
    rare button that the agent does not press, for ``takeover_delay_steps + 1``
    steps in a row (the expert's own reaction delay comes on top), it takes over and keeps
    control while it holds any rare button, for at least ``min_takeover_steps``.
    With ``rare_only`` it holds only the rare buttons of its choice, as a
    player who supplies just the missed guard in override mode.
    """

    name = "expert"
    budget_limits_takeover = True

    def __init__(
        self,
        button_names: Sequence[str],
        rare_buttons: Sequence[str],
        seed: int | None = None,
        takeover_delay_steps: int = 0,
        min_takeover_steps: int = 2,
        style: ExpertStyle | None = None,
        rare_only: bool = False,
    ) -> None:
        unknown = [name for name in rare_buttons if name not in button_names]
        if unknown:
            raise ValueError(f"unknown rare button(s) {unknown}; the buttons are {list(button_names)}")
        if takeover_delay_steps < 0 or min_takeover_steps < 1:
            raise ValueError(
                f"takeover_delay_steps must be >= 0 and min_takeover_steps >= 1, got {takeover_delay_steps} "
                f"and {min_takeover_steps}"
            )
        self.rare = np.array([name in rare_buttons for name in button_names], dtype=bool)
        self.seed = seed
        self.takeover_delay_steps = takeover_delay_steps
        self.min_takeover_steps = min_takeover_steps
        self.style = style or ExpertStyle()
        self.rare_only = rare_only
        self._env: ArenaEnv | None = None
        self._expert: ArenaExpert | None = None
        self._current = np.zeros(len(button_names), dtype=np.uint8)
        self._disagreeing_steps = 0
        self._control_steps = 0
        self._held_steps = np.zeros(len(button_names), dtype=np.int64)
        """Per button, how many steps in a row the expert has held it."""

    def reset(self, env: gym.Env, seed: int | None) -> None:
        arena = env.unwrapped
        if not isinstance(arena, ArenaEnv):
            raise TypeError(
                f"the expert corrector works only on the built-in Arena, got {type(arena).__name__}; "
                "use --corrector human for other games"
            )
        self._env = arena
        expert_seed = np.random.SeedSequence([self.seed or 0, seed or 0]).generate_state(1)[0]
        self._expert = ArenaExpert(self.style, expert_seed, arena.frame_skip)
        self._disagreeing_steps = 0
        self._control_steps = 0
        self._held_steps[:] = 0

    def _think(self) -> np.ndarray:
        if self._expert is None or self._env is None:
            raise RuntimeError("call reset(env, seed) before asking the corrector")
        self._current = self._expert.act(self._env.game)
        self._held_steps = np.where(self._current != 0, self._held_steps + 1, 0)
        return self._current

    def label(self, obs: Observation) -> np.ndarray:
        return self._think()

    def propose(self, obs: Observation, agent: Decision, help_buttons: np.ndarray) -> np.ndarray | None:
        expert_action = self._think()
        held = expert_action * self.rare if self.rare_only else expert_action
        if self._control_steps > 0:
            self._control_steps -= 1
            if np.any(expert_action[self.rare]):
                self._control_steps = max(self._control_steps, 1)
            return held

        # Take over where the agent misses the start of a rare press. Extra presses are left alone
        # (relabelling early guards as releases taught the agent to guard less), and so are the tails of
        # long holds: the expert sees the opponent late, so the end of its guard often comes after the
        # attack is over, and labels there taught the agent to guard through punish windows.
        fresh = self._held_steps <= 1 + self.takeover_delay_steps
        misses = bool(np.any(expert_action.astype(bool) & ~agent.action.astype(bool) & self.rare & fresh))
        self._disagreeing_steps = self._disagreeing_steps + 1 if misses else 0
        if self._disagreeing_steps > self.takeover_delay_steps:
            self._disagreeing_steps = 0
            self._control_steps = self.min_takeover_steps - 1
            return held
        return None


def uncertain_buttons(
    probabilities: np.ndarray | None, thresholds: np.ndarray | None, rare: np.ndarray, margin: float
) -> np.ndarray:
    """Return a mask of rare buttons whose probability is within ``margin`` of its threshold."""
    if probabilities is None or thresholds is None:
        return np.zeros_like(rare, dtype=bool)
    return rare & (np.abs(probabilities - thresholds) < margin)


class CorrectedPilot:
    """The agent flies; the corrector may take over, add buttons, or only label (plain DAgger)."""

    def __init__(
        self,
        agent: Pilot,
        corrector: Corrector,
        mode: CorrectionMode,
        budget: CorrectionBudget,
        holdoff_steps: int = 2,
        thresholds: np.ndarray | None = None,
        help_margin: float = 0.0,
        rare: np.ndarray | None = None,
        help_budget: int = 2**62,
    ) -> None:
        if holdoff_steps < 0:
            raise ValueError(f"holdoff_steps must be >= 0, got {holdoff_steps}")
        self.agent = agent
        self.corrector = corrector
        self.mode = CorrectionMode(mode)
        self.budget = budget
        self.holdoff_steps = holdoff_steps
        self.thresholds = thresholds
        self.help_margin = help_margin
        self.help_budget = help_budget
        self.rare = rare
        self.name = f"{agent.name}+{corrector.name}"
        self._holdoff_left = 0
        self._in_control = False
        self.interventions = 0
        """Times the corrector took control (a run of intervened steps counts once)."""
        self.help_requests = 0
        self.budget_warned = False
        """True once a corrector that the budget does not limit has gone past it (warned once per pilot)."""

    def reset(self, env: gym.Env, seed: int | None) -> None:
        self.agent.reset(env, seed)
        self.corrector.reset(env, seed)
        self._holdoff_left = 0
        self._in_control = False

    def act(self, obs: Observation) -> Decision:
        agent_decision = self.agent.act(obs)
        agent_action = agent_decision.action
        help_buttons = np.zeros(len(agent_action), dtype=bool)
        # A spent budget stops the help requests of a corrector it cannot keep hands-off.
        may_ask = self.corrector_bound_by_budget or not self.budget.spent
        if self.rare is not None and self.help_margin > 0 and self.help_requests < self.help_budget and may_ask:
            help_buttons = uncertain_buttons(agent_decision.probabilities, self.thresholds, self.rare,
                                             self.help_margin)
            if help_buttons.any():
                self.help_requests += 1

        if self.mode is CorrectionMode.LABEL_ALL:
            if self.budget.spent:
                return self._decision(agent_decision, agent_action, None, intervened=False)
            self.budget.use()
            return self._decision(agent_decision, agent_action, self.corrector.label(obs), intervened=False)

        # The corrector is in control while it holds buttons (None means hands-off), and in takeover mode
        # for a short hold-off after it lets go, so control does not flap between the two every step.
        held = self.corrector.propose(obs, agent_decision, help_buttons)
        if self.budget.spent and self.corrector_bound_by_budget:
            held, self._holdoff_left = None, 0
        if held is None and self._holdoff_left > 0:
            # The corrector has let go but keeps control: nothing is pressed, and since the corrector
            # chose nothing for this step, the step carries no corrector label to train on.
            self._holdoff_left -= 1
            return self._decision(agent_decision, np.zeros_like(agent_action), None, intervened=True)
        if held is None:
            self._in_control = False
            return self._decision(agent_decision, agent_action, None, intervened=False)

        if not self._in_control:
            self.interventions += 1
        self._in_control = True
        self._holdoff_left = self.holdoff_steps if self.mode is CorrectionMode.TAKEOVER else 0
        self.budget.use()
        if self.budget.spent and not self.corrector_bound_by_budget:
            self._note_budget_spent()
        held = np.asarray(held, dtype=np.uint8)
        executed = held if self.mode is CorrectionMode.TAKEOVER else agent_action | held
        return self._decision(agent_decision, executed.astype(np.uint8), held, intervened=True)

    @property
    def corrector_bound_by_budget(self) -> bool:
        return getattr(self.corrector, "budget_limits_takeover", True)

    def _note_budget_spent(self) -> None:
        """Warn once, and tell the corrector (its overlay shows it), that the round's correction budget is spent."""
        if self.budget_warned:
            return
        self.budget_warned = True
        self.corrector.budget_spent = True
        logger.warning("the round's correction budget is spent: your corrections are still recorded and trained "
                       "on, but the agent asks for no more help this round")

    def _decision(self, agent_decision: Decision, executed: np.ndarray, corrector_action, intervened: bool) -> Decision:
        return Decision(
            action=executed,
            source="corrector" if intervened else "policy",
            agent_action=agent_decision.action,
            corrector_action=corrector_action,
            intervened=intervened,
            probabilities=agent_decision.probabilities,
        )


class AgreementTally:
    """Wraps a labelling pilot (mode ``label_all``) and counts, per button, how often the agent agrees.

    Playing is unchanged, because a labelling pilot always executes the
    agent's buttons. The counts give the closed-loop recall of each button:
    of the steps where the corrector would press it, the share where the
    agent pressed it, in the states the agent itself reaches.
    """

    def __init__(self, pilot: CorrectedPilot) -> None:
        if pilot.mode is not CorrectionMode.LABEL_ALL:
            raise ValueError(f"AgreementTally needs a pilot in mode 'label_all', got {pilot.mode.value!r}")
        self.pilot = pilot
        self.name = pilot.agent.name
        self.true_positives: np.ndarray | None = None
        self.label_positives: np.ndarray | None = None
        self.agent_positives: np.ndarray | None = None

    def reset(self, env: gym.Env, seed: int | None) -> None:
        self.pilot.reset(env, seed)

    def act(self, obs: Observation) -> Decision:
        decision = self.pilot.act(obs)
        if decision.corrector_action is not None and decision.agent_action is not None:
            label = decision.corrector_action.astype(bool)
            agent = decision.agent_action.astype(bool)
            if self.true_positives is None:
                self.true_positives = np.zeros(len(label), dtype=np.int64)
                self.label_positives = np.zeros(len(label), dtype=np.int64)
                self.agent_positives = np.zeros(len(label), dtype=np.int64)
            self.true_positives += label & agent
            self.label_positives += label
            self.agent_positives += agent
        return decision

    def recall(self, button_names: Sequence[str]) -> dict[str, float | None]:
        """Return per button the closed-loop recall, None where the corrector never pressed it."""
        if self.true_positives is None:
            return {name: None for name in button_names}
        return {
            name: (float(tp / positives) if positives else None)
            for name, tp, positives in zip(button_names, self.true_positives, self.label_positives)
        }
