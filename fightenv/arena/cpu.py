"""The Arena's CPU opponent: a seeded rule-based fighter with three difficulty levels.

The CPU decides every ``DECISION_TICKS`` ticks, independent of the env's frame
skip, and sees the player as the player was ``reaction_ticks`` ago. Harder
levels react sooner, guard and punish more often, and mix in grabs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fightenv.arena.rules import (
    BACK, FORWARD, GRAB, GUARD, MOVE_JAB, KICK, MOVE_KICK, MAX_METER, PUNCH, SIDESTEP_IN, SIDESTEP_OUT, SPECIAL,
    MOVE_SPECIAL, Game, Phase,
)

DECISION_TICKS = 4
ATTACK_BITS = (1 << PUNCH) | (1 << KICK) | (1 << GRAB) | (1 << SPECIAL)
STRIKE_NAMES = frozenset({"jab", "lunge", "kick", "sweep", "special"})


@dataclass(frozen=True)
class CpuLevel:
    """Tuning of one difficulty level; chances are per decision unless stated."""

    reaction_ticks: int
    guard_chance: float
    """Chance to guard a strike it sees starting within reach."""
    punish_chance: float
    """Chance to strike back at a player it sees recovering within reach."""
    aggression: float
    """Chance to attack when within reach and nothing else applies."""
    turtle_chance: float
    """Chance to start a spell of guarding when the player is close."""
    turtle_ticks: tuple[int, int]
    grab_share: float
    """Share of its attacks that are grabs when it sees the player guarding."""
    special_chance: float
    """Chance to use the special move when the meter is full and the player is within its reach."""
    noise: float
    """Chance of a random button flip per decision."""


DIFFICULTIES: dict[str, CpuLevel] = {
    "easy": CpuLevel(
        reaction_ticks=22, guard_chance=0.35, punish_chance=0.2, aggression=0.25,
        turtle_chance=0.15, turtle_ticks=(20, 50), grab_share=0.1, special_chance=0.2, noise=0.05,
    ),
    "normal": CpuLevel(
        reaction_ticks=14, guard_chance=0.55, punish_chance=0.45, aggression=0.4,
        turtle_chance=0.3, turtle_ticks=(30, 80), grab_share=0.3, special_chance=0.5, noise=0.03,
    ),
    "hard": CpuLevel(
        reaction_ticks=9, guard_chance=0.75, punish_chance=0.7, aggression=0.5,
        turtle_chance=0.35, turtle_ticks=(30, 90), grab_share=0.45, special_chance=0.8, noise=0.02,
    ),
}

ENGAGE_DISTANCE_M = 1.45
GRAB_DISTANCE_M = 0.95


class CpuOpponent:
    """Chooses fighter 1's buttons each tick from what it sees of fighter 0."""

    def __init__(self, level: CpuLevel, rng: np.random.Generator) -> None:
        self.level = level
        self.rng = rng
        self._buttons = 0
        self._guard_ticks = 0
        self._turtle_ticks = 0

    def buttons(self, game: Game) -> int:
        """Return fighter 1's button mask for the coming tick."""
        if game.tick_count % DECISION_TICKS == 0:
            self._buttons = self._decide(game)
        return self._buttons

    def _decide(self, game: Game) -> int:
        level, rng = self.level, self.rng
        me = game.fighters[1]
        seen = game.snapshot(level.reaction_ticks)[0]
        distance = ((seen.x - me.x) ** 2 + (seen.z - me.z) ** 2) ** 0.5
        previous_attacks = self._buttons & ATTACK_BITS
        buttons = self._choose(game, seen, distance)

        # An attack needs a fresh press: drop attack bits held in the last decision.
        buttons &= ~previous_attacks
        if rng.random() < level.noise:
            buttons ^= 1 << int(rng.integers(0, 10))
        return buttons

    def _choose(self, game: Game, seen, distance: float) -> int:
        level, rng = self.level, self.rng
        me = game.fighters[1]
        self._guard_ticks = max(0, self._guard_ticks - DECISION_TICKS)
        self._turtle_ticks = max(0, self._turtle_ticks - DECISION_TICKS)
        if me.stun_ticks > 0 or me.move is not None:
            return 1 << GUARD if me.phase is Phase.BLOCKSTUN else 0

        threatened = seen.phase in (Phase.STARTUP, Phase.ACTIVE) and seen.move_name in STRIKE_NAMES
        if threatened and distance < ENGAGE_DISTANCE_M + 0.6 and self._guard_ticks == 0:
            if rng.random() < level.guard_chance:
                self._guard_ticks = 24
        if self._guard_ticks > 0 or self._turtle_ticks > 0:
            return 1 << GUARD

        if seen.phase is Phase.RECOVERY and distance < ENGAGE_DISTANCE_M and rng.random() < level.punish_chance:
            return 1 << KICK if distance > MOVE_JAB.reach_m + 0.4 else 1 << PUNCH

        if me.meter >= MAX_METER and distance < MOVE_SPECIAL.reach_m + 0.2 and rng.random() < level.special_chance:
            return 1 << SPECIAL

        if distance > ENGAGE_DISTANCE_M:
            buttons = 1 << FORWARD
            if rng.random() < 0.1:
                buttons |= 1 << (SIDESTEP_IN if rng.random() < 0.5 else SIDESTEP_OUT)
            return buttons

        if rng.random() < level.turtle_chance * 0.25:
            low, high = level.turtle_ticks
            self._turtle_ticks = int(rng.integers(low, high + 1))
            return 1 << GUARD

        if rng.random() < level.aggression:
            if seen.guarding and distance < GRAB_DISTANCE_M and rng.random() < level.grab_share:
                return 1 << GRAB
            roll = rng.random()
            if roll < 0.35:
                return 1 << PUNCH
            if roll < 0.7:
                return 1 << KICK
            if roll < 0.85:
                return (1 << FORWARD) | (1 << PUNCH)
            return (1 << BACK) | (1 << KICK)

        roll = rng.random()
        if roll < 0.3:
            return 1 << BACK
        if roll < 0.45:
            return 1 << (SIDESTEP_IN if rng.random() < 0.5 else SIDESTEP_OUT)
        return 0
