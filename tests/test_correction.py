"""Correction pilots: takeover with hold-off, override, plain-DAgger labelling, budget and the expert corrector."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import fightenv
from agents.correction import (
    AgreementTally, CorrectedPilot, CorrectionBudget, CorrectionMode, ExpertCorrector,
)
from agents.pilots import ExpertPilot
from agents.session import Decision, run_episode
from fightenv.arena import BUTTONS

N = len(BUTTONS)
GUARD = BUTTONS.index("guard")
FORWARD = BUTTONS.index("forward")


def buttons(*names: str) -> np.ndarray:
    action = np.zeros(N, dtype=np.uint8)
    for name in names:
        action[BUTTONS.index(name)] = 1
    return action


class ScriptedAgent:
    """An agent that always holds forward."""

    name = "scripted"

    def reset(self, env, seed) -> None:
        pass

    def act(self, obs) -> Decision:
        return Decision(action=buttons("forward"), source="policy", probabilities=np.full(N, 0.5, np.float32))


class ScriptedCorrector:
    """Holds the given buttons at the listed steps and stays hands-off otherwise."""

    name = "scripted-corrector"

    def __init__(self, schedule: dict[int, np.ndarray]) -> None:
        self.schedule = schedule
        self.step = 0

    def reset(self, env, seed) -> None:
        self.step = 0

    def propose(self, obs, agent, help_buttons):
        held = self.schedule.get(self.step)
        self.step += 1
        return held

    def label(self, obs):
        self.step += 1
        return buttons("guard")


def drive(pilot, steps: int) -> list[Decision]:
    pilot.reset(None, 0)
    return [pilot.act({}) for _ in range(steps)]


def test_takeover_replaces_agent_then_holds_off():
    corrector = ScriptedCorrector({1: buttons("guard"), 2: buttons("guard")})
    pilot = CorrectedPilot(ScriptedAgent(), corrector, CorrectionMode.TAKEOVER, CorrectionBudget(100), holdoff_steps=2)
    decisions = drive(pilot, 7)
    intervened = [d.intervened for d in decisions]
    assert intervened == [False, True, True, True, True, False, False]
    np.testing.assert_array_equal(decisions[1].action, buttons("guard"))
    # During the hold-off the corrector holds nothing, so nothing is pressed and nothing is labelled.
    np.testing.assert_array_equal(decisions[3].action, buttons())
    assert decisions[3].corrector_action is None
    np.testing.assert_array_equal(decisions[2].corrector_action, buttons("guard"))
    np.testing.assert_array_equal(decisions[5].action, buttons("forward"))
    for d in decisions:
        np.testing.assert_array_equal(d.agent_action, buttons("forward"))
    assert pilot.interventions == 1
    assert decisions[1].source == "corrector"
    assert decisions[0].source == "policy"


def test_override_adds_corrector_buttons():
    corrector = ScriptedCorrector({0: buttons("guard")})
    pilot = CorrectedPilot(ScriptedAgent(), corrector, CorrectionMode.OVERRIDE, CorrectionBudget(100), holdoff_steps=2)
    decisions = drive(pilot, 2)
    np.testing.assert_array_equal(decisions[0].action, buttons("forward", "guard"))
    np.testing.assert_array_equal(decisions[0].corrector_action, buttons("guard"))
    assert decisions[0].intervened
    # No hold-off in override mode.
    assert not decisions[1].intervened


def test_budget_stops_corrections():
    corrector = ScriptedCorrector({step: buttons("guard") for step in range(10)})
    budget = CorrectionBudget(3)
    pilot = CorrectedPilot(ScriptedAgent(), corrector, CorrectionMode.TAKEOVER, budget, holdoff_steps=2)
    decisions = drive(pilot, 10)
    assert sum(d.intervened for d in decisions) == 3
    assert budget.spent
    np.testing.assert_array_equal(decisions[-1].action, buttons("forward"))


def test_label_all_executes_agent_and_labels_every_step():
    budget = CorrectionBudget(4)
    pilot = CorrectedPilot(ScriptedAgent(), ScriptedCorrector({}), CorrectionMode.LABEL_ALL, budget)
    decisions = drive(pilot, 6)
    for d in decisions:
        np.testing.assert_array_equal(d.action, buttons("forward"))
        assert not d.intervened
    assert [d.corrector_action is not None for d in decisions] == [True] * 4 + [False] * 2


def test_help_requests_count_uncertain_rare_buttons():
    rare = np.array([name == "guard" for name in BUTTONS])
    thresholds = np.full(N, 0.45)
    pilot = CorrectedPilot(ScriptedAgent(), ScriptedCorrector({}), CorrectionMode.TAKEOVER, CorrectionBudget(10),
                           thresholds=thresholds, help_margin=0.1, rare=rare)
    drive(pilot, 3)
    assert pilot.help_requests == 3


def test_help_requests_stop_at_budget():
    rare = np.array([name == "guard" for name in BUTTONS])
    pilot = CorrectedPilot(ScriptedAgent(), ScriptedCorrector({}), CorrectionMode.TAKEOVER, CorrectionBudget(10),
                           thresholds=np.full(N, 0.45), help_margin=0.1, rare=rare, help_budget=2)
    drive(pilot, 5)
    assert pilot.help_requests == 2


def test_negative_holdoff_rejected():
    with pytest.raises(ValueError, match="holdoff_steps must be >= 0, got -1"):
        CorrectedPilot(ScriptedAgent(), ScriptedCorrector({}), CorrectionMode.TAKEOVER, CorrectionBudget(1),
                       holdoff_steps=-1)


def test_expert_corrector_rejects_unknown_rare_button():
    with pytest.raises(ValueError, match=r"unknown rare button\(s\) \['block'\]"):
        ExpertCorrector(BUTTONS, ("guard", "block"))


def test_expert_corrector_takes_over_passive_agent():
    env = gym.make(fightenv.ARENA_ID)
    corrector = ExpertCorrector(BUTTONS, ("guard", "grab", "special"), seed=0)
    pilot = CorrectedPilot(ScriptedAgent(), corrector, CorrectionMode.TAKEOVER, CorrectionBudget(10_000))
    result = run_episode(env, pilot, seed=3)
    assert pilot.interventions > 0
    # The agent never guards, so every guard in the episode came from the corrector.
    assert result.actions[:, GUARD].sum() > 0


def test_expert_corrector_agrees_with_itself():
    env = gym.make(fightenv.ARENA_ID)
    names = BUTTONS

    class ExpertAgent(ExpertPilot):
        name = "expert-agent"

    agent = ExpertAgent(seed=5)
    corrector = ExpertCorrector(names, ("guard",), seed=9)
    tally = AgreementTally(CorrectedPilot(agent, corrector, CorrectionMode.LABEL_ALL, CorrectionBudget(10**9)))
    run_episode(env, tally, seed=1)
    recall = tally.recall(names)
    # Two experts with different seeds guard in mostly the same situations.
    assert recall["guard"] is not None and recall["guard"] > 0.5
    assert recall["forward"] > 0.5
