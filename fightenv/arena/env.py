"""The Arena as a Gymnasium env: ``fightenv/Arena-v0``."""

from __future__ import annotations

import os
import sys
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from fightenv.arena.cpu import DIFFICULTIES, CpuOpponent
from fightenv.arena.render import Renderer
from fightenv.arena.rules import (
    BUTTONS, MAX_HEALTH, MAX_METER, RING_HALF_X_M, RING_HALF_Z_M, TICK_HZ, Game, Outcome, OUTCOME_NAMES, Phase,
)

STATE_FEATURES: tuple[str, ...] = (
    "own_health",
    "opponent_health",
    "own_meter",
    "opponent_meter",
    "distance",
    "time_left",
    "opponent_attacking",
    "opponent_special",
    "opponent_recovering",
    "opponent_guarding",
    "opponent_grabbing",
    "opponent_airborne",
    "opponent_stunned",
    "own_airborne",
    "own_stunned",
    "own_busy",
    "own_guarding",
    "own_depth",
    "in_range",
    "own_meter_full",
)
IN_RANGE_M = 1.3
"""Distance between body centres at which the kick connects; the ``in_range`` feature."""
MIN_FRAME_SIDE = 32
MAX_FRAME_SIDE = 1024
WINDOW_SIZE = (640, 480)
KO_REWARD = 1.0
WINDOW_TITLE = "fightenv Arena"

_STRIKES = frozenset({"jab", "lunge", "kick", "sweep", "special"})


class ArenaEnv(gym.Env):
    """A seeded 3D fighting game between the pilot and a CPU opponent, rendered in software.

    Two fighters stand on a square ring seen in perspective. Each env step holds
    the pilot's buttons for ``frame_skip`` ticks of the 60 Hz game (15 decisions
    per second by default). Attacks have startup, active and recovery ticks;
    guard stops strikes but not grabs, a grab beats guard, a sidestep dodges
    straight attacks, a jump clears the sweep, grabs and the special move, hits
    cause hitstun and guarded hits blockstun. The special move needs a full
    meter, which fills with damage dealt and taken, and winds up slowly enough
    (233 ms) to be seen and jumped. A fighter has 200 health, 20 kicks' worth,
    so a round between the expert and the normal CPU lasts about 30 s.

    ## Buttons (action space)

    ``MultiBinary(10)``; 1 means held during the step, in this order:

    | index | button | effect |
    |---|---|---|
    | 0 | forward | walk towards the opponent; with punch, a lunge |
    | 1 | back | walk away; with kick, a low sweep that knocks down |
    | 2 | sidestep_in | step across the line of attack, away from the camera |
    | 3 | sidestep_out | step across the line of attack, towards the camera |
    | 4 | jump | jump (press); airborne fighters avoid sweeps, grabs and the special move |
    | 5 | punch | jab (press) |
    | 6 | kick | kick (press) |
    | 7 | guard | guard while held; stops strikes, not grabs |
    | 8 | grab | grab (press); beats guard, loses to strikes |
    | 9 | special | special move (press) when the meter is full |

    Attacks start when their button goes from released to held.

    ## Observation space

    ``Dict(frame, state)``:

    | key | dtype | shape | range | meaning |
    |---|---|---|---|---|
    | frame | uint8 | (C, H, W) | [0, 255] | the rendered view, C = 1 (grey) or 3 (RGB) |
    | state | float32 | (20,) | [0, 1] | facts a player reads off the screen, below |

    State features, in order (``env.unwrapped.state_names``); bits are 0 or 1:

    | name | meaning |
    |---|---|
    | own_health, opponent_health | health as a fraction of full |
    | own_meter, opponent_meter | meter as a fraction of full |
    | distance | distance between the fighters, in units of the ring's length (8 m) |
    | time_left | round time left as a fraction of the round |
    | opponent_attacking | bit: the opponent's strike is winding up or active |
    | opponent_special | bit: the opponent's special move is winding up or active (jump it) |
    | opponent_recovering | bit: the opponent is recovering from a move (open to punishment) |
    | opponent_guarding | bit: the opponent guards |
    | opponent_grabbing | bit: the opponent's grab is winding up or active |
    | opponent_airborne, own_airborne | bit: in the air |
    | opponent_stunned, own_stunned | bit: in hitstun, blockstun or knocked down |
    | own_busy | bit: the player's own move (strike, grab or special) is under way, so no new one starts |
    | own_guarding | bit: the player guards |
    | own_depth | the player's depth in the ring: 0 at the near rope, 1 at the far one (sidestep in goes deeper) |
    | in_range | bit: within kick reach (1.3 m between centres) |
    | own_meter_full | bit: the special move is available |

    ## Reward

    Per step, damage dealt minus damage taken as a fraction of full health;
    plus 1 for a KO win and minus 1 for a KO loss.

    ## Episode start

    A new round: full health, empty meters, fighters 3.2 m apart on the centre
    line. The CPU's randomness comes from the reset seed.

    ## Termination and truncation

    Terminated when a fighter's health reaches zero (KO). Truncated when the
    round time runs out; the fighter with more health wins. ``info["outcome"]``
    is "win", "loss" or "draw" at the end and None before. ``info`` also
    carries ``player_health``, ``opponent_health``, ``player_meter``,
    ``opponent_meter`` and ``tick``.

    ## Arguments

    - ``difficulty``: CPU level, one of "easy", "normal", "hard".
    - ``frame_size``: side of the square observation frame in pixels, or
      ``(height, width)``; 32 to 1024 per side. Default 84.
    - ``color``: RGB frames (C = 3) instead of grey (C = 1).
    - ``frame_skip``: game ticks per env step, at least 1. Default 4.
    - ``round_time_s``: round length in seconds of game time. Default 40.
    - ``seed``: seed used by the first ``reset`` that is not given one.
    - ``render_mode``: "rgb_array" returns a 640x480 RGB frame with the HUD;
      "human" shows it in a window.

    ## Version history

    - v0: first release. On 2026-12-05 fighters went from 100 to 200 health and the special move became
      jumpable (14 wind-up ticks, was 8). NOTE: the ID stayed v0, so nothing warns when a demo store or a
      policy from before that change is mixed with new rounds.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": TICK_HZ // 4}
    game_name = "arena"
    button_names: tuple[str, ...] = BUTTONS
    state_names: tuple[str, ...] = STATE_FEATURES

    def __init__(
        self,
        difficulty: str = "normal",
        frame_size: int | tuple[int, int] = 84,
        color: bool = False,
        frame_skip: int = 4,
        round_time_s: float = 40.0,
        seed: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if difficulty not in DIFFICULTIES:
            raise ValueError(
                f"unknown difficulty {difficulty!r}; choose one of {', '.join(DIFFICULTIES)}"
            )
        height, width = (frame_size, frame_size) if isinstance(frame_size, int) else tuple(frame_size)
        for side_name, side in (("height", height), ("width", width)):
            if not isinstance(side, (int, np.integer)) or not MIN_FRAME_SIDE <= side <= MAX_FRAME_SIDE:
                raise ValueError(
                    f"frame_size {side_name} must be an integer from {MIN_FRAME_SIDE} to {MAX_FRAME_SIDE} "
                    f"pixels (smaller frames cannot show the fighters), got {side!r}"
                )
        if not isinstance(frame_skip, (int, np.integer)) or frame_skip < 1:
            raise ValueError(f"frame_skip must be an integer of at least 1 tick, got {frame_skip!r}")
        if not round_time_s > 0:
            raise ValueError(f"round_time_s must be positive, got {round_time_s!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"unknown render_mode {render_mode!r}; choose one of {self.metadata['render_modes']} or None"
            )

        if render_mode == "human":
            require_display()

        self.difficulty = difficulty
        self.frame_shape = (3 if color else 1, int(height), int(width))
        self.color = color
        self.frame_skip = int(frame_skip)
        self.round_ticks = max(1, round(round_time_s * TICK_HZ))
        self.decision_hz = TICK_HZ / self.frame_skip
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.decision_hz}
        self._initial_seed = seed

        self.action_space = spaces.MultiBinary(len(BUTTONS))
        self.observation_space = spaces.Dict(
            {
                "frame": spaces.Box(0, 255, self.frame_shape, dtype=np.uint8),
                "state": spaces.Box(0.0, 1.0, (len(STATE_FEATURES),), dtype=np.float32),
            }
        )
        self._frame_renderer = Renderer(int(width), int(height))
        self._window_renderer: Renderer | None = None
        self._window_open = False
        self.game = Game(self.round_ticks)
        self.cpu: CpuOpponent | None = None

    # -- Gymnasium API -------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._initial_seed is not None:
            seed, self._initial_seed = self._initial_seed, None
        super().reset(seed=seed)
        self.game = Game(self.round_ticks)
        cpu_seed = int(self.np_random.integers(0, 2**63 - 1))
        self.cpu = CpuOpponent(DIFFICULTIES[self.difficulty], np.random.default_rng(cpu_seed))
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action):
        if self.cpu is None:
            raise RuntimeError("call reset() before step()")
        if self.game.done:
            raise RuntimeError("the round is over; call reset() to start a new one")
        held = np.asarray(action).reshape(-1)
        if held.shape != (len(BUTTONS),):
            raise ValueError(
                f"action must have one value per button {list(BUTTONS)}, got shape {np.shape(action)}"
            )
        buttons = 0
        for i, value in enumerate(held):
            if value:
                buttons |= 1 << i

        game = self.game
        dealt_before, taken_before = game.damage_dealt
        for _ in range(self.frame_skip):
            game.tick(buttons, self.cpu.buttons(game))
            if game.done:
                break

        dealt = game.damage_dealt[0] - dealt_before
        taken = game.damage_dealt[1] - taken_before
        reward = (dealt - taken) / MAX_HEALTH
        player, cpu = game.fighters
        knocked_out = player.health <= 0.0 or cpu.health <= 0.0
        if knocked_out and game.outcome is Outcome.WIN:
            reward += KO_REWARD
        elif knocked_out and game.outcome is Outcome.LOSS:
            reward -= KO_REWARD
        terminated = knocked_out
        truncated = game.done and not knocked_out

        if self.render_mode == "human":
            self.render()
        return self._observation(), float(reward), terminated, truncated, self._info()

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self._window_renderer is None:
            self._window_renderer = Renderer(*WINDOW_SIZE)
        frame = self._window_renderer.render(self.game)
        if self.render_mode == "rgb_array":
            return frame
        cv2.imshow(WINDOW_TITLE, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)
        self._window_open = True
        return None

    def close(self) -> None:
        if self._window_open:
            cv2.destroyWindow(WINDOW_TITLE)
            self._window_open = False

    # -- observation -----------------------------------------------------------------

    def _observation(self) -> dict[str, np.ndarray]:
        image = self._frame_renderer.render(self.game)
        if self.color:
            frame = np.ascontiguousarray(image.transpose(2, 0, 1))
        else:
            frame = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[np.newaxis]
        return {"frame": frame, "state": state_vector(self.game)}

    def _info(self) -> dict[str, Any]:
        player, cpu = self.game.fighters
        return {
            "outcome": OUTCOME_NAMES[self.game.outcome],
            "player_health": player.health,
            "opponent_health": cpu.health,
            "player_meter": player.meter,
            "opponent_meter": cpu.meter,
            "tick": self.game.tick_count,
        }


class DisplayError(RuntimeError):
    """Error raised when a window or the keyboard is needed but no X display is available."""


def require_display() -> None:
    """Raise a clear error where a window cannot open; OpenCV would abort the whole process instead."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise DisplayError(
            "showing the game needs an X display, but DISPLAY is not set. Run on a desktop session or start a "
            "virtual one (Xvfb :99 & export DISPLAY=:99). Headless work needs none: --pilot expert, "
            "--corrector expert, or render_mode='rgb_array' in Python"
        )


def state_vector(game: Game) -> np.ndarray:
    """Return the player's view of ``game`` as the ``STATE_FEATURES`` vector, ``(20,)`` float32 in [0, 1]."""
    me, opponent = game.fighters
    opponent_phase = opponent.phase
    opponent_move = opponent.move.name if opponent.move is not None else None
    winding_or_active = opponent_phase in (Phase.STARTUP, Phase.ACTIVE)
    distance = game.distance()
    return np.array(
        [
            me.health / MAX_HEALTH,
            opponent.health / MAX_HEALTH,
            me.meter / MAX_METER,
            opponent.meter / MAX_METER,
            min(distance / (2 * RING_HALF_X_M), 1.0),
            game.ticks_left / game.round_ticks,
            winding_or_active and opponent_move in _STRIKES,
            winding_or_active and opponent_move == "special",
            opponent_phase is Phase.RECOVERY,
            opponent.guarding or opponent_phase is Phase.BLOCKSTUN,
            winding_or_active and opponent_move == "grab",
            opponent.y > 0.0,
            opponent_phase in (Phase.HITSTUN, Phase.BLOCKSTUN, Phase.DOWN),
            me.y > 0.0,
            me.phase in (Phase.HITSTUN, Phase.BLOCKSTUN, Phase.DOWN),
            me.move is not None and me.stun_ticks == 0,
            me.guarding or me.phase is Phase.BLOCKSTUN,
            (me.z + RING_HALF_Z_M) / (2 * RING_HALF_Z_M),
            distance <= IN_RANGE_M,
            me.meter >= MAX_METER,
        ],
        dtype=np.float32,
    )
