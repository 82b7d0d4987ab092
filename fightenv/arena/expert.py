"""The Arena's scripted expert: reads the true game state and plays like a skilled, human player.

It stands in for a person wherever one is not at hand: recording
demonstrations, tests, benchmarks and unattended correction rounds. Like a
person it sees the opponent late (``reaction_s``, about 150 ms by default, with
jitter), holds buttons for human-like spans, sometimes misreads a situation,
and mostly walks and strikes, while guard, grab and the special move are rare
but decide the round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fightenv.arena.rules import (
    BACK, BUTTONS, FORWARD, GRAB, GUARD, JUMP, KICK, MOVE_KICK, MOVE_LUNGE, MAX_METER, PUNCH, SIDESTEP_IN,
    SIDESTEP_OUT, SPECIAL, MOVE_SPECIAL, TICK_HZ, Game, Phase,
)

# Buttons that act on a fresh press (attacks and the jump): the expert taps them.
TAPPED_BITS = (1 << JUMP) | (1 << PUNCH) | (1 << KICK) | (1 << GRAB) | (1 << SPECIAL)
# Chances of holding a tap for 0, 1 or 2 steps beyond the first, so a tap lasts 67 to 200 ms at 15 decisions/s
# (an estimate of how long players hold a button they mean to tap).
TAP_EXTRA_STEPS_P = (0.15, 0.55, 0.30)
STRIKES = frozenset({"jab", "lunge", "kick", "sweep", "special"})
# Strikes narrow enough to step around; the sweep and the special move are too wide.
NARROW_STRIKES = frozenset({"jab", "lunge", "kick"})
# Distances in metres between body centres.
THREAT_DISTANCE_M = 1.9
ENGAGE_DISTANCE_M = 1.3
GRAB_DISTANCE_M = 0.85
JAB_DISTANCE_M = 0.95
KICK_STEP_IN_DISTANCE_M = 1.15


@dataclass(frozen=True)
class ExpertStyle:
    """How the expert plays; the defaults give a strong, human-paced player."""

    reaction_s: float = 0.15
    reaction_jitter_s: float = 0.03
    guard_chance: float = 0.95
    """Chance to guard a strike it sees coming."""
    grab_chance: float = 0.85
    """Chance to grab a guarding opponent within grab reach."""
    special_chance: float = 0.9
    punish_chance: float = 0.95
    attack_chance: float = 0.35
    """Chance per step to attack an idle opponent within reach."""
    sidestep_chance: float = 0.9
    """Chance to sidestep, instead of guarding, a narrow strike (jab, lunge, kick) seen from beyond
    ``sidestep_distance_m``."""
    sidestep_distance_m: float = 1.0
    jump_chance: float = 0.9
    """Chance to jump the opponent's special move, or out of a grab starting close by."""
    noise: float = 0.02
    """Chance per step of a stray forward press."""


class ArenaExpert:
    """Chooses fighter 0's buttons once per decision step from the true game state."""

    def __init__(self, style: ExpertStyle, seed: int | None, decision_ticks: int) -> None:
        self.style = style
        self.rng = np.random.default_rng(seed)
        self.decision_ticks = decision_ticks
        self._guard_steps = 0
        self._forward_steps = 0
        self._side_steps = 0
        self._side_button = SIDESTEP_IN
        self._previous = 0
        self._tap_bits = 0
        self._tap_steps = 0

    def act(self, game: Game) -> np.ndarray:
        """Return the buttons to hold for the next decision step, ``(len(BUTTONS),)`` uint8."""
        if self._tap_steps > 0:
            # Finish a tap.
            self._tap_steps -= 1
            buttons = self._decide(game) | self._tap_bits
        else:
            buttons = self._decide(game)
            # A move only starts on a fresh press, so a button held in the last step is released first.
            buttons &= ~(self._previous & TAPPED_BITS)
            self._tap_bits = buttons & TAPPED_BITS
            if self._tap_bits:
                self._tap_steps = int(self.rng.choice(len(TAP_EXTRA_STEPS_P), p=TAP_EXTRA_STEPS_P))
        if self.rng.random() < self.style.noise:
            # A stray nudge of the stick, the commonest slip of a real player.
            buttons |= 1 << FORWARD
        self._previous = buttons
        return np.array([(buttons >> i) & 1 for i in range(len(BUTTONS))], dtype=np.uint8)

    def _decide(self, game: Game) -> int:
        style, rng = self.style, self.rng
        jitter = rng.normal(0.0, style.reaction_jitter_s)
        delay_ticks = max(1, round((style.reaction_s + jitter) * TICK_HZ))
        me = game.fighters[0]
        seen = game.snapshot(delay_ticks)[1]
        distance = ((seen.x - me.x) ** 2 + (seen.z - me.z) ** 2) ** 0.5

        threatened = (
            seen.phase in (Phase.STARTUP, Phase.ACTIVE) and seen.move_name in STRIKES
            and distance < THREAT_DISTANCE_M
        )

        # Keep a guard up through the threat and a moment after it.
        if self._guard_steps > 0:
            self._guard_steps -= 1
            if threatened:
                self._guard_steps = max(self._guard_steps, 1)
            return 1 << GUARD
        if self._side_steps > 0:
            self._side_steps -= 1
            return 1 << self._side_button

        if not me.can_act:
            if me.phase is Phase.BLOCKSTUN and threatened:
                return 1 << GUARD
            # People keep leaning on the stick while their own move plays out.
            if distance > 0.9 and rng.random() < 0.6:
                return 1 << FORWARD
            return 0

        # React to what the opponent started.
        if threatened:
            # The special move is too wide to step around, so jump it.
            if seen.move_name == "special" and rng.random() < style.jump_chance:
                return 1 << JUMP
            straight = seen.move_name in NARROW_STRIKES
            if straight and distance > style.sidestep_distance_m and rng.random() < style.sidestep_chance:
                self._side_button = self._side_toward_centre(me.z)
                self._side_steps = int(rng.integers(1, 3))
                return 1 << self._side_button
            if rng.random() < style.guard_chance:
                self._guard_steps = int(rng.integers(1, 4))
                return 1 << GUARD
        if seen.move_name == "grab" and seen.phase is Phase.STARTUP and distance < 1.1:
            if rng.random() < style.jump_chance:
                return 1 << JUMP

        # Punish an opponent stuck in recovery.
        if seen.phase in (Phase.RECOVERY, Phase.DOWN) and rng.random() < style.punish_chance:
            if seen.phase is Phase.RECOVERY and distance <= MOVE_KICK.reach_m + 0.5:
                return 1 << KICK
            if seen.phase is Phase.RECOVERY and distance <= MOVE_LUNGE.reach_m + 1.0:
                return (1 << FORWARD) | (1 << PUNCH)

        # Spend a full meter on the special move within its reach.
        if me.meter >= MAX_METER and distance <= MOVE_SPECIAL.reach_m + 0.25 and seen.phase is not Phase.DOWN:
            if rng.random() < style.special_chance:
                return 1 << SPECIAL

        # Open up a guarding opponent with a grab.
        if seen.guarding:
            if distance <= GRAB_DISTANCE_M and rng.random() < style.grab_chance:
                return 1 << GRAB
            if distance <= ENGAGE_DISTANCE_M + 0.3:
                return 1 << FORWARD

        # Back off while the opponent's full meter puts its special move within reach.
        opponent = game.fighters[1]
        if opponent.meter >= MAX_METER and distance <= MOVE_SPECIAL.reach_m + 0.3:
            return 1 << BACK

        # Close the distance, holding forward for a human-like span.
        if self._forward_steps > 0 or distance > ENGAGE_DISTANCE_M:
            if self._forward_steps == 0:
                self._forward_steps = int(rng.integers(2, 6))
            self._forward_steps -= 1
            if distance > 0.75:
                return 1 << FORWARD

        # Within reach of an idle opponent: strike, or wait for an opening. The distance picks the strike:
        # a jab up close, a kick further out, stepping in with it at the edge of its reach.
        if seen.phase is Phase.FREE and rng.random() < style.attack_chance:
            if distance <= JAB_DISTANCE_M:
                return 1 << PUNCH
            if distance > KICK_STEP_IN_DISTANCE_M:
                return (1 << KICK) | (1 << FORWARD)
            return 1 << KICK

        # Wait for an opening, pressing in while not yet at jab range.
        if distance > JAB_DISTANCE_M and rng.random() < 0.5:
            return 1 << FORWARD
        return 0

    @staticmethod
    def _side_toward_centre(z: float) -> int:
        """Return the sidestep button that moves a fighter at depth ``z`` towards the middle of the ring."""
        # "In" steps away from the camera, towards +z.
        return SIDESTEP_IN if z <= 0.0 else SIDESTEP_OUT
