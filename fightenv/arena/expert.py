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
    BACK, BUTTONS, FORWARD, GRAB, GUARD, MOVE_JAB, JUMP, KICK, MOVE_KICK, MOVE_LUNGE, MAX_METER, PUNCH, SIDESTEP_IN,
    SIDESTEP_OUT, SPECIAL, MOVE_SPECIAL, MOVE_SWEEP, TICK_HZ, Game, Phase,
)

ATTACK_BITS = (1 << PUNCH) | (1 << KICK) | (1 << GRAB) | (1 << SPECIAL)
STRIKES = frozenset({"jab", "lunge", "kick", "sweep", "special"})
# Distances in metres between body centres.
THREAT_DISTANCE_M = 1.9
ENGAGE_DISTANCE_M = 1.3
GRAB_DISTANCE_M = 0.85


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
    sidestep_chance: float = 0.3
    """Chance to sidestep instead of guarding a straight attack (lunge, kick) seen from beyond 1 m."""
    jump_chance: float = 0.5
    """Chance to jump over a sweep instead of guarding it."""
    circle_chance: float = 0.04
    """Chance per waiting step to sidestep around the opponent."""
    noise: float = 0.02
    """Chance per step of a stray forward or back press."""


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
            # Finish a tap: people hold an attack button for one to three steps.
            self._tap_steps -= 1
            buttons = self._decide(game) | self._tap_bits
        else:
            buttons = self._decide(game)
            # An attack only starts on a fresh press, so a button held in the last step is released first.
            buttons &= ~(self._previous & ATTACK_BITS)
            self._tap_bits = buttons & ATTACK_BITS
            if self._tap_bits:
                self._tap_steps = int(self.rng.choice(3, p=(0.7, 0.25, 0.05)))
        if self.rng.random() < self.style.noise:
            # A stray nudge of the stick, the commonest slip of a real player.
            buttons |= 1 << (FORWARD if self.rng.random() < 0.5 else BACK)
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
            if seen.move_name == "sweep" and rng.random() < style.jump_chance:
                return 1 << JUMP
            if seen.move_name in ("lunge", "kick") and distance > 1.0 and rng.random() < style.sidestep_chance:
                self._side_button = SIDESTEP_IN if rng.random() < 0.5 else SIDESTEP_OUT
                self._side_steps = int(rng.integers(1, 3))
                return 1 << self._side_button
            if rng.random() < style.guard_chance:
                self._guard_steps = int(rng.integers(1, 4))
                return 1 << GUARD
        if seen.move_name == "grab" and seen.phase is Phase.STARTUP and distance < 1.1:
            if rng.random() < 0.5:
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

        # Close the distance, holding forward for a human-like span.
        if self._forward_steps > 0 or distance > ENGAGE_DISTANCE_M:
            if self._forward_steps == 0:
                self._forward_steps = int(rng.integers(2, 6))
            self._forward_steps -= 1
            if distance > 0.75:
                return 1 << FORWARD

        # Within reach of an idle opponent: strike, or wait for an opening.
        if seen.phase is Phase.FREE and rng.random() < style.attack_chance:
            roll = rng.random()
            if distance <= MOVE_JAB.reach_m + 0.45 and roll < 0.45:
                return 1 << PUNCH
            if roll < 0.85:
                # Forward with kick is still a plain kick; players often hold both.
                return (1 << KICK) | (1 << FORWARD) if rng.random() < 0.5 else 1 << KICK
            return (1 << BACK) | (1 << KICK) if distance <= MOVE_SWEEP.reach_m + 0.5 else 1 << KICK

        # Wait for an opening: mostly keep pressing in, sometimes give ground or circle.
        if rng.random() < style.circle_chance:
            self._side_button = SIDESTEP_IN if rng.random() < 0.5 else SIDESTEP_OUT
            self._side_steps = int(rng.integers(1, 3))
            return 1 << self._side_button
        roll = rng.random()
        if roll < 0.15:
            return 1 << BACK
        if roll < 0.55 and distance > 0.9:
            return 1 << FORWARD
        return 0
