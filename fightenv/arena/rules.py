"""Rules of the Arena: two fighters on a square ring, simulated at 60 ticks per second.

The simulation is plain Python on floats because a tick touches a few dozen
scalars; numpy calls on arrays this small cost more than they save.

Coordinates are metres on the ground plane: ``x`` runs left to right as the
camera sees the ring, ``z`` runs away from the camera (depth), and ``y`` is
height above the floor. Fighter 0 is the player (the pilot), fighter 1 the CPU.

Buttons are relative to the fighter: ``forward`` and ``back`` move along the
line to the opponent, ``sidestep_in`` and ``sidestep_out`` move across it (in
is away from the camera). Attacks start on the tick their button goes down,
guard acts while held, and a press that arrives while the fighter is busy is
kept for ``INPUT_BUFFER_TICKS``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import IntEnum

TICK_HZ = 60
TICK_S = 1.0 / TICK_HZ

BUTTONS: tuple[str, ...] = (
    "forward",
    "back",
    "sidestep_in",
    "sidestep_out",
    "jump",
    "punch",
    "kick",
    "guard",
    "grab",
    "special",
)
FORWARD, BACK, SIDESTEP_IN, SIDESTEP_OUT, JUMP, PUNCH, KICK, GUARD, GRAB, SPECIAL = range(len(BUTTONS))

# Ring and bodies, in metres.
RING_HALF_X_M = 4.0
RING_HALF_Z_M = 2.5
BODY_RADIUS_M = 0.3
MIN_SEPARATION_M = 2 * BODY_RADIUS_M

# Movement, in metres per second.
WALK_FORWARD_MPS = 2.6
WALK_BACK_MPS = 2.0
SIDESTEP_MPS = 3.0
JUMP_SPEED_MPS = 5.0
GRAVITY_MPS2 = 20.0
PUSHBACK_M = 0.35

# 20 kicks' worth: a round between the expert and the normal CPU lasts about 30 s (measured over 200 rounds).
MAX_HEALTH = 200.0
MAX_METER = 100.0
METER_PER_DAMAGE_DEALT = 1.0
METER_PER_DAMAGE_TAKEN = 0.6

INPUT_BUFFER_TICKS = 6
KNOCKDOWN_TICKS = 40
HISTORY_TICKS = 64


@dataclass(frozen=True)
class Move:
    """One attack: frame data in ticks, reach and width in metres.

    A target is hit while the move is active if it stands within ``reach_m``
    along the attack direction (fixed when the move starts) and within
    ``width_m / 2`` across it, both measured to the edge of its body. Narrow
    moves can therefore be sidestepped during their startup.
    """

    name: str
    startup_ticks: int
    active_ticks: int
    recovery_ticks: int
    damage: float
    reach_m: float
    width_m: float
    hitstun_ticks: int
    blockstun_ticks: int
    advance_mps: float = 0.0
    jumpable: bool = False
    """Misses an airborne target."""
    grab: bool = False
    """Ignores guard, misses an airborne target, causes a knockdown."""
    knockdown: bool = False
    invulnerable: bool = False
    """Cannot be hit during startup and active ticks."""
    chip_damage: float = 0.0
    """Damage dealt through guard."""
    meter_cost: float = 0.0

    @property
    def total_ticks(self) -> int:
        return self.startup_ticks + self.active_ticks + self.recovery_ticks


MOVE_JAB = Move("jab", 7, 3, 10, damage=4, reach_m=0.75, width_m=0.3, hitstun_ticks=14, blockstun_ticks=8)
MOVE_LUNGE = Move(
    "lunge", 16, 5, 20, damage=12, reach_m=0.9, width_m=0.3, hitstun_ticks=22, blockstun_ticks=12,
    advance_mps=3.0,
)
MOVE_KICK = Move("kick", 14, 4, 16, damage=10, reach_m=1.0, width_m=0.35, hitstun_ticks=20, blockstun_ticks=12)
MOVE_SWEEP = Move(
    "sweep", 15, 4, 22, damage=9, reach_m=0.9, width_m=1.4, hitstun_ticks=0, blockstun_ticks=12,
    jumpable=True, knockdown=True,
)
MOVE_GRAB = Move(
    "grab", 8, 3, 30, damage=13, reach_m=0.45, width_m=0.6, hitstun_ticks=0, blockstun_ticks=0,
    grab=True, knockdown=True,
)
# The special move winds up for 233 ms, long enough to see coming and jump it.
MOVE_SPECIAL = Move(
    "special", 14, 6, 24, damage=26, reach_m=1.5, width_m=1.0, hitstun_ticks=30, blockstun_ticks=16,
    jumpable=True, invulnerable=True, chip_damage=6, meter_cost=MAX_METER,
)
MOVES: tuple[Move, ...] = (MOVE_JAB, MOVE_LUNGE, MOVE_KICK, MOVE_SWEEP, MOVE_GRAB, MOVE_SPECIAL)


class Phase(IntEnum):
    """What a fighter is doing this tick, as a player would read it off the screen."""

    FREE = 0
    STARTUP = 1
    ACTIVE = 2
    RECOVERY = 3
    HITSTUN = 4
    BLOCKSTUN = 5
    DOWN = 6


class Outcome(IntEnum):
    NONE = 0
    WIN = 1
    LOSS = 2
    DRAW = 3


OUTCOME_NAMES = {Outcome.NONE: None, Outcome.WIN: "win", Outcome.LOSS: "loss", Outcome.DRAW: "draw"}


class Fighter:
    """Mutable state of one fighter."""

    __slots__ = (
        "x", "z", "y", "vy", "air_vx", "air_vz", "face_x", "face_z",
        "health", "meter", "move", "move_tick", "move_dir_x", "move_dir_z", "move_hit",
        "stun_ticks", "stun_phase", "guarding", "prev_buttons", "buffered", "buffer_ticks",
    )

    def __init__(self, x: float, z: float, face_x: float) -> None:
        self.x = x
        self.z = z
        self.y = 0.0
        self.vy = 0.0
        self.air_vx = 0.0
        self.air_vz = 0.0
        self.face_x = face_x
        self.face_z = 0.0
        self.health = MAX_HEALTH
        self.meter = 0.0
        self.move: Move | None = None
        self.move_tick = 0
        self.move_dir_x = face_x
        self.move_dir_z = 0.0
        self.move_hit = False
        self.stun_ticks = 0
        self.stun_phase = Phase.FREE
        self.guarding = False
        self.prev_buttons = 0
        self.buffered: Move | None = None
        self.buffer_ticks = 0

    @property
    def airborne(self) -> bool:
        return self.y > 0.0

    @property
    def phase(self) -> Phase:
        if self.stun_ticks > 0:
            return self.stun_phase
        move = self.move
        if move is None:
            return Phase.FREE
        if self.move_tick < move.startup_ticks:
            return Phase.STARTUP
        if self.move_tick < move.startup_ticks + move.active_ticks:
            return Phase.ACTIVE
        return Phase.RECOVERY

    @property
    def can_act(self) -> bool:
        return self.stun_ticks == 0 and self.move is None and self.y == 0.0


@dataclass(frozen=True)
class Snapshot:
    """What one fighter showed on screen at one tick; pilots read these with a delay."""

    x: float
    z: float
    y: float
    phase: Phase
    move_name: str | None
    guarding: bool
    health: float
    meter: float


def _bits(buttons: int, index: int) -> bool:
    return bool(buttons >> index & 1)


def buttons_to_mask(pressed) -> int:
    """Pack a sequence of 0/1 button values, in ``BUTTONS`` order, into an int bit mask."""
    mask = 0
    for i, value in enumerate(pressed):
        if value:
            mask |= 1 << i
    return mask


class Game:
    """One round between fighter 0 (the pilot) and fighter 1 (the CPU).

    ``tick(buttons_0, buttons_1)`` advances one 60 Hz tick; both arguments are
    bit masks over ``BUTTONS``. The round ends at a KO or when
    ``round_ticks`` have passed.
    """

    def __init__(self, round_ticks: int) -> None:
        if round_ticks <= 0:
            raise ValueError(f"round_ticks must be positive, got {round_ticks}")
        self.round_ticks = round_ticks
        self.fighters = (Fighter(-1.6, 0.0, 1.0), Fighter(1.6, 0.0, -1.0))
        self.tick_count = 0
        self.outcome = Outcome.NONE
        self.damage_dealt = [0.0, 0.0]
        # Per tick, one snapshot pair; index -1 is the current tick.
        self.history: deque[tuple[Snapshot, Snapshot]] = deque(maxlen=HISTORY_TICKS)
        self._record_history()

    @property
    def done(self) -> bool:
        return self.outcome is not Outcome.NONE

    @property
    def ticks_left(self) -> int:
        return self.round_ticks - self.tick_count

    def distance(self) -> float:
        a, b = self.fighters
        return math.hypot(b.x - a.x, b.z - a.z)

    def snapshot(self, ticks_ago: int) -> tuple[Snapshot, Snapshot]:
        """Return what was on screen ``ticks_ago`` ticks back (clamped to the stored history)."""
        history = self.history
        index = max(0, len(history) - 1 - ticks_ago)
        return history[index]

    def tick(self, buttons_0: int, buttons_1: int) -> None:
        if self.done:
            raise RuntimeError("the round is over; start a new Game")
        fighters = self.fighters
        buttons = (buttons_0, buttons_1)

        # Read inputs: start moves and jumps, set guard, walk.
        for i in (0, 1):
            self._apply_input(fighters[i], fighters[1 - i], buttons[i])

        # Move bodies, then keep them apart and inside the ring.
        for f in fighters:
            self._integrate(f)
        self._separate()

        # Turn free fighters towards each other.
        for i in (0, 1):
            self._face(fighters[i], fighters[1 - i])

        # Resolve hits from both sides before either takes effect, so trades happen.
        landed = [fighters[i].move if self._check_hit(fighters[i], fighters[1 - i]) else None for i in (0, 1)]
        for i in (0, 1):
            move = landed[i]
            if move is not None:
                self._land(i, move, fighters[i], fighters[1 - i])

        # Advance frame counters.
        for f in fighters:
            self._advance(f)

        self.tick_count += 1
        self._judge()
        self._record_history()

    # -- input ---------------------------------------------------------------

    def _apply_input(self, f: Fighter, opponent: Fighter, buttons: int) -> None:
        pressed = buttons & ~f.prev_buttons
        f.prev_buttons = buttons

        requested = None
        if pressed & (1 << SPECIAL) and f.meter >= MOVE_SPECIAL.meter_cost:
            requested = MOVE_SPECIAL
        elif pressed & (1 << GRAB):
            requested = MOVE_GRAB
        elif pressed & (1 << KICK):
            requested = MOVE_SWEEP if buttons & (1 << BACK) else MOVE_KICK
        elif pressed & (1 << PUNCH):
            requested = MOVE_LUNGE if buttons & (1 << FORWARD) else MOVE_JAB
        if requested is not None:
            f.buffered = requested
            f.buffer_ticks = INPUT_BUFFER_TICKS

        f.guarding = False
        if not f.can_act:
            if f.phase is Phase.BLOCKSTUN:
                f.guarding = bool(buttons & (1 << GUARD))
            return

        if f.buffered is not None:
            self._start_move(f, f.buffered)
            f.buffered = None
            f.buffer_ticks = 0
            return
        if buttons & (1 << GUARD):
            f.guarding = True
            return

        along = 0.0
        if buttons & (1 << FORWARD):
            along += WALK_FORWARD_MPS
        if buttons & (1 << BACK):
            along -= WALK_BACK_MPS
        across = 0.0
        if buttons & (1 << SIDESTEP_IN):
            across += SIDESTEP_MPS
        if buttons & (1 << SIDESTEP_OUT):
            across -= SIDESTEP_MPS
        # "In" is the perpendicular of the facing direction that points away from the camera.
        side_x, side_z = -f.face_z, f.face_x
        if side_z < 0 or (side_z == 0 and side_x < 0):
            side_x, side_z = -side_x, -side_z
        vx = along * f.face_x + across * side_x
        vz = along * f.face_z + across * side_z

        if pressed & (1 << JUMP):
            f.vy = JUMP_SPEED_MPS
            f.y = 1e-6
            f.air_vx, f.air_vz = vx, vz
            return
        f.x += vx * TICK_S
        f.z += vz * TICK_S

    def _start_move(self, f: Fighter, move: Move) -> None:
        f.move = move
        f.move_tick = 0
        f.move_hit = False
        f.move_dir_x, f.move_dir_z = f.face_x, f.face_z
        f.meter -= move.meter_cost

    # -- physics ---------------------------------------------------------------

    def _integrate(self, f: Fighter) -> None:
        if f.y > 0.0:
            f.x += f.air_vx * TICK_S
            f.z += f.air_vz * TICK_S
            f.vy -= GRAVITY_MPS2 * TICK_S
            f.y += f.vy * TICK_S
            if f.y <= 0.0:
                f.y = 0.0
                f.vy = 0.0
        move = f.move
        if move is not None and move.advance_mps and f.move_tick < move.startup_ticks + move.active_ticks:
            step = move.advance_mps * TICK_S
            f.x += f.move_dir_x * step
            f.z += f.move_dir_z * step

    def _separate(self) -> None:
        a, b = self.fighters
        dx, dz = b.x - a.x, b.z - a.z
        dist = math.hypot(dx, dz)
        if dist < MIN_SEPARATION_M:
            if dist < 1e-9:
                dx, dz, dist = 1.0, 0.0, 1.0
            push = 0.5 * (MIN_SEPARATION_M - dist) / dist
            a.x -= dx * push
            a.z -= dz * push
            b.x += dx * push
            b.z += dz * push
        for f in self.fighters:
            f.x = min(max(f.x, -RING_HALF_X_M + BODY_RADIUS_M), RING_HALF_X_M - BODY_RADIUS_M)
            f.z = min(max(f.z, -RING_HALF_Z_M + BODY_RADIUS_M), RING_HALF_Z_M - BODY_RADIUS_M)

    def _face(self, f: Fighter, opponent: Fighter) -> None:
        if f.move is not None or f.stun_ticks > 0:
            return
        dx, dz = opponent.x - f.x, opponent.z - f.z
        dist = math.hypot(dx, dz)
        if dist > 1e-9:
            f.face_x, f.face_z = dx / dist, dz / dist

    # -- hits ------------------------------------------------------------------

    def _check_hit(self, f: Fighter, target: Fighter) -> bool:
        move = f.move
        if move is None or f.move_hit or f.stun_ticks > 0:
            return False
        if not move.startup_ticks <= f.move_tick < move.startup_ticks + move.active_ticks:
            return False
        target_move = target.move
        if target_move is not None and target_move.invulnerable and target.move_tick < (
            target_move.startup_ticks + target_move.active_ticks
        ):
            return False
        if target.phase is Phase.DOWN:
            return False
        if target.y > 0.0 and (move.jumpable or move.grab):
            return False
        rx, rz = target.x - f.x, target.z - f.z
        along = rx * f.move_dir_x + rz * f.move_dir_z
        across = abs(rx * f.move_dir_z - rz * f.move_dir_x)
        return 0.0 < along <= move.reach_m + BODY_RADIUS_M and across <= move.width_m / 2 + BODY_RADIUS_M

    def _land(self, attacker_index: int, move: Move, f: Fighter, target: Fighter) -> None:
        f.move_hit = True
        blocked = target.guarding and not move.grab
        damage = move.chip_damage if blocked else move.damage
        damage = min(damage, target.health)
        target.health -= damage
        self.damage_dealt[attacker_index] += damage
        f.meter = min(MAX_METER, f.meter + damage * METER_PER_DAMAGE_DEALT)
        target.meter = min(MAX_METER, target.meter + damage * METER_PER_DAMAGE_TAKEN)

        # A hit interrupts whatever the target was doing; a blocked hit only pushes it back.
        if blocked:
            target.stun_phase = Phase.BLOCKSTUN
            target.stun_ticks = move.blockstun_ticks
        else:
            target.move = None
            target.buffered = None
            target.guarding = False
            if move.knockdown:
                target.stun_phase = Phase.DOWN
                target.stun_ticks = KNOCKDOWN_TICKS
            else:
                target.stun_phase = Phase.HITSTUN
                target.stun_ticks = move.hitstun_ticks
        if target.y == 0.0:
            target.x += f.move_dir_x * PUSHBACK_M
            target.z += f.move_dir_z * PUSHBACK_M

    def _advance(self, f: Fighter) -> None:
        if f.stun_ticks > 0:
            f.stun_ticks -= 1
            if f.stun_ticks == 0:
                f.stun_phase = Phase.FREE
        if f.move is not None and f.stun_ticks == 0:
            f.move_tick += 1
            if f.move_tick >= f.move.total_ticks:
                f.move = None
        if f.buffer_ticks > 0:
            f.buffer_ticks -= 1
            if f.buffer_ticks == 0:
                f.buffered = None

    # -- round -----------------------------------------------------------------

    def _judge(self) -> None:
        player, cpu = self.fighters
        if player.health <= 0.0 or cpu.health <= 0.0 or self.tick_count >= self.round_ticks:
            if player.health > cpu.health:
                self.outcome = Outcome.WIN
            elif player.health < cpu.health:
                self.outcome = Outcome.LOSS
            else:
                self.outcome = Outcome.DRAW

    def _record_history(self) -> None:
        self.history.append(tuple(_snap(f) for f in self.fighters))  # type: ignore[arg-type]


def _snap(f: Fighter) -> Snapshot:
    move = f.move
    return Snapshot(
        x=f.x, z=f.z, y=f.y, phase=f.phase, move_name=move.name if move is not None else None,
        guarding=f.guarding, health=f.health, meter=f.meter,
    )
