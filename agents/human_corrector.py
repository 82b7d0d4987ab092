"""The person at the keyboard as a corrector, and the overlay window that shows what the agent is about to do.

The player watches the game and the overlay: one bar per button with the
agent's probability against its threshold, who is in control, and a yellow
frame with the button names when the agent asks for help (a rare button's
probability is close to its threshold). Holding any mapped key takes over;
letting go hands control back after the hold-off.

Keys are read with ``agents.human.KeyboardState``, which records only the
keys mapped to buttons and the hotkeys.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import gymnasium as gym
import numpy as np

from agents.human import KeyboardState, RealTimePacer
from agents.session import Decision, Observation
from fightenv.arena.env import require_display

logger = logging.getLogger(__name__)

OVERLAY_TITLE = "fightenv correction"
ROW_HEIGHT = 26
WIDTH = 420
AGENT_COLOUR = (90, 200, 90)
IDLE_COLOUR = (110, 110, 110)
PLAYER_COLOUR = (40, 150, 255)
HELP_COLOUR = (0, 230, 255)
BUDGET_SPENT_TEXT = "budget spent"


class CorrectionOverlay:
    """A small window: per-button probability bars with thresholds, the controller, help requests."""

    def __init__(self, button_names: Sequence[str], thresholds: np.ndarray | None, show: bool = True) -> None:
        if show:
            require_display()
        self.button_names = tuple(button_names)
        self.thresholds = thresholds
        self.show = show
        self.height = ROW_HEIGHT * (len(self.button_names) + 1) + 8
        self.last_image: np.ndarray | None = None

    def draw(self, agent: Decision, held: np.ndarray, help_buttons: np.ndarray, budget_spent: bool = False) -> np.ndarray:
        """Return the overlay as a ``(height, WIDTH, 3)`` BGR image; ``budget_spent`` adds a notice to the header."""
        image = np.full((self.height, WIDTH, 3), 30, dtype=np.uint8)
        in_control = bool(held.any())
        header = "YOU are in control" if in_control else "agent in control"
        cv2.putText(image, header, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    PLAYER_COLOUR if in_control else AGENT_COLOUR, 1, cv2.LINE_AA)
        if budget_spent:
            cv2.putText(image, BUDGET_SPENT_TEXT, (WIDTH - 130, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, HELP_COLOUR, 1,
                        cv2.LINE_AA)
        probabilities = agent.probabilities
        bar_left, bar_right = 120, WIDTH - 50
        for i, name in enumerate(self.button_names):
            top = ROW_HEIGHT * (i + 1) + 4
            if held[i]:
                colour = PLAYER_COLOUR
            elif agent.action[i]:
                colour = AGENT_COLOUR
            else:
                colour = IDLE_COLOUR
            cv2.putText(image, name, (8, top + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
            cv2.rectangle(image, (bar_left, top + 4), (bar_right, top + 20), (60, 60, 60), -1)
            if probabilities is not None:
                right = bar_left + int(round(float(probabilities[i]) * (bar_right - bar_left)))
                cv2.rectangle(image, (bar_left, top + 4), (right, top + 20), colour, -1)
                cv2.putText(image, f"{probabilities[i]:.2f}", (bar_right + 6, top + 16), cv2.FONT_HERSHEY_SIMPLEX,
                            0.4, (200, 200, 200), 1, cv2.LINE_AA)
            if self.thresholds is not None:
                x = bar_left + int(round(float(self.thresholds[i]) * (bar_right - bar_left)))
                cv2.line(image, (x, top + 1), (x, top + 23), (255, 255, 255), 1)
            if help_buttons[i]:
                cv2.rectangle(image, (2, top), (WIDTH - 3, top + 24), HELP_COLOUR, 2)
        if help_buttons.any():
            cv2.rectangle(image, (0, 0), (WIDTH - 1, self.height - 1), HELP_COLOUR, 3)
        return image

    def update(self, agent: Decision, held: np.ndarray, help_buttons: np.ndarray, budget_spent: bool = False) -> None:
        self.last_image = self.draw(agent, held, help_buttons, budget_spent)
        if self.show:
            cv2.imshow(OVERLAY_TITLE, self.last_image)
            cv2.waitKey(1)

    def place_beside(self, box: tuple[int, int, int, int], gap: int = 10) -> None:
        """Open the window to the right of a screen area ``(left, top, width, height)``, such as the game's capture.

        The overlay must not cover the game window: the screen env reads the game from those pixels.
        """
        if not self.show:
            return
        left, top, width, _ = box
        cv2.namedWindow(OVERLAY_TITLE, cv2.WINDOW_AUTOSIZE)
        cv2.moveWindow(OVERLAY_TITLE, left + width + gap, top)

    def close(self) -> None:
        if self.show:
            cv2.destroyWindow(OVERLAY_TITLE)


class HumanCorrector:
    """The player as corrector: holding mapped keys takes over; paced in real time at the decision rate."""

    name = "human"
    budget_limits_takeover = False
    """A person's keys reach a real game whatever the pilot executes, so every step they hold keys is recorded."""

    def __init__(self, keyboard: KeyboardState, decision_hz: float, overlay: CorrectionOverlay | None = None,
                 pace: bool = True) -> None:
        self.keyboard = keyboard
        self.overlay = overlay
        self.budget_spent = False
        """Set by ``CorrectedPilot`` once the round's correction budget is spent; the overlay then shows a notice."""
        self.pacer = RealTimePacer(decision_hz)
        self.pace = pace

    def reset(self, env: gym.Env, seed: int | None) -> None:
        self.pacer.reset()
        self.keyboard.release_all()

    def _wait_for_step(self) -> None:
        if self.keyboard.take_event("pause"):
            paused_at = self.pacer.pause()
            logger.info("paused; press %s to resume", self.keyboard.hotkeys["pause"])
            while self.keyboard.wait_for_event(["pause"], timeout_s=0.1) is None:
                if self.keyboard.has_event("stop"):
                    break
            self.keyboard.release_all()
            self.pacer.resume(paused_at)
        if self.pace:
            self.pacer.wait()

    def propose(self, obs: Observation, agent: Decision, help_buttons: np.ndarray) -> np.ndarray | None:
        self._wait_for_step()
        held = self.keyboard.sample()
        if self.overlay is not None:
            self.overlay.update(agent, held, help_buttons, budget_spent=self.budget_spent)
        return held if held.any() else None

    def label(self, obs: Observation) -> np.ndarray:
        self._wait_for_step()
        return self.keyboard.sample()

    def should_stop(self) -> bool:
        return self.keyboard.has_event("stop")
