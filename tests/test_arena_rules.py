"""Arena rules: frame data, guard, grab, sidestep, jump, special meter, stun."""

from __future__ import annotations

import pytest

from fightenv.arena.rules import (
    BACK, FORWARD, GRAB, GUARD, JUMP, KICK, MAX_HEALTH, MAX_METER, MOVE_GRAB, MOVE_KICK, MOVE_LUNGE, MOVE_SPECIAL, PUNCH,
    SIDESTEP_IN, SPECIAL, Game, Phase,
)


def bit(*buttons: int) -> int:
    mask = 0
    for b in buttons:
        mask |= 1 << b
    return mask


def duel(distance_m: float) -> Game:
    game = Game(round_ticks=60 * 60)
    player, cpu = game.fighters
    player.x, cpu.x = -distance_m / 2, distance_m / 2
    return game


def press(game: Game, player_buttons: int, cpu_buttons: int = 0, hold_ticks: int = 1, then_ticks: int = 0,
          cpu_after: int | None = None) -> None:
    """Hold the given buttons for ``hold_ticks``, then release the player's for ``then_ticks``."""
    for _ in range(hold_ticks):
        game.tick(player_buttons, cpu_buttons)
    for _ in range(then_ticks):
        game.tick(0, cpu_buttons if cpu_after is None else cpu_after)


def test_kick_has_startup_active_recovery():
    game = duel(1.2)
    player = game.fighters[0]
    phases = []
    game.tick(bit(KICK), 0)
    for _ in range(MOVE_KICK.total_ticks + 2):
        phases.append(player.phase)
        game.tick(0, 0)
    assert phases.count(Phase.STARTUP) == MOVE_KICK.startup_ticks - 1
    assert Phase.ACTIVE in phases and Phase.RECOVERY in phases
    assert phases[-1] is Phase.FREE


def test_kick_hits_and_causes_hitstun():
    game = duel(1.2)
    press(game, bit(KICK), then_ticks=MOVE_KICK.startup_ticks + 1)
    cpu = game.fighters[1]
    assert cpu.health == pytest.approx(MAX_HEALTH - MOVE_KICK.damage)
    assert cpu.phase is Phase.HITSTUN


def test_guard_blocks_strike_with_blockstun():
    game = duel(1.2)
    press(game, bit(KICK), cpu_buttons=bit(GUARD), then_ticks=MOVE_KICK.startup_ticks + 1)
    cpu = game.fighters[1]
    assert cpu.health == MAX_HEALTH
    assert cpu.phase is Phase.BLOCKSTUN


def test_grab_beats_guard():
    game = duel(0.7)
    press(game, bit(GRAB), cpu_buttons=bit(GUARD), then_ticks=MOVE_GRAB.startup_ticks + 1)
    cpu = game.fighters[1]
    assert cpu.health == pytest.approx(MAX_HEALTH - MOVE_GRAB.damage)
    assert cpu.phase is Phase.DOWN


def test_grab_misses_airborne_target():
    game = duel(0.7)
    game.tick(0, bit(JUMP))
    press(game, bit(GRAB), cpu_buttons=0, then_ticks=MOVE_GRAB.startup_ticks + 1)
    assert game.fighters[1].health == MAX_HEALTH


def test_sidestep_dodges_lunge():
    hit_game, dodge_game = duel(1.6), duel(1.6)
    for game, cpu_buttons in ((hit_game, 0), (dodge_game, bit(SIDESTEP_IN))):
        press(game, bit(FORWARD, PUNCH), cpu_buttons=cpu_buttons, then_ticks=MOVE_LUNGE.total_ticks)
    assert hit_game.fighters[1].health == pytest.approx(MAX_HEALTH - MOVE_LUNGE.damage)
    assert dodge_game.fighters[1].health == MAX_HEALTH


def test_jump_avoids_sweep_but_standing_is_knocked_down():
    stand_game, jump_game = duel(1.1), duel(1.1)
    press(stand_game, bit(BACK, KICK), then_ticks=20)
    assert stand_game.fighters[1].phase is Phase.DOWN
    # Jump a few ticks after the sweep starts, as a reaction would.
    jump_game.tick(bit(BACK, KICK), 0)
    for t in range(20):
        jump_game.tick(0, bit(JUMP) if t == 4 else 0)
    assert jump_game.fighters[1].health == MAX_HEALTH


def test_reaction_jump_avoids_special():
    stand_game, jump_game = duel(1.2), duel(1.2)
    for game in (stand_game, jump_game):
        game.fighters[1].meter = MAX_METER
        game.tick(0, bit(SPECIAL))
    for _ in range(30):
        stand_game.tick(0, 0)
    assert stand_game.fighters[0].health == pytest.approx(MAX_HEALTH - MOVE_SPECIAL.damage)
    # A jump 150 ms (9 ticks) after the special move starts, a human reaction, clears it.
    for t in range(30):
        jump_game.tick(bit(JUMP) if t == 8 else 0, 0)
    assert jump_game.fighters[0].health == MAX_HEALTH


def test_special_needs_full_meter_and_spends_it():
    game = duel(1.5)
    press(game, bit(SPECIAL), then_ticks=30)
    assert game.fighters[1].health == MAX_HEALTH, "special must not fire with an empty meter"
    game.fighters[0].meter = MAX_METER
    press(game, bit(SPECIAL), then_ticks=MOVE_SPECIAL.startup_ticks + 2)
    assert game.fighters[1].health == pytest.approx(MAX_HEALTH - MOVE_SPECIAL.damage)
    assert game.fighters[0].meter < MAX_METER


def test_special_is_invulnerable_while_active():
    game = duel(1.0)
    game.fighters[1].meter = MAX_METER
    # The CPU kicks first; the player answers with nothing, the CPU special goes through the kick window.
    game.tick(bit(KICK), bit(SPECIAL))
    for _ in range(20):
        game.tick(0, 0)
    assert game.fighters[1].health == MAX_HEALTH
    assert game.fighters[0].health < MAX_HEALTH


def test_meter_fills_with_damage_dealt_and_taken():
    game = duel(1.2)
    press(game, bit(KICK), then_ticks=MOVE_KICK.startup_ticks + 1)
    player, cpu = game.fighters
    assert player.meter == pytest.approx(MOVE_KICK.damage)
    assert 0 < cpu.meter < player.meter


def test_attack_needs_fresh_press():
    game = duel(1.2)
    # Holding kick for two full moves lands one kick only.
    press(game, bit(KICK), hold_ticks=2 * MOVE_KICK.total_ticks)
    assert game.fighters[1].health == pytest.approx(MAX_HEALTH - MOVE_KICK.damage)


def test_round_ends_at_ko_and_at_time():
    game = duel(1.2)
    game.fighters[1].health = 1.0
    game.tick(bit(KICK), 0)
    for _ in range(MOVE_KICK.total_ticks):
        if game.done:
            break
        game.tick(0, 0)
    assert game.done and game.outcome.name == "WIN"
    assert game.fighters[1].health == 0

    short = Game(round_ticks=5)
    for _ in range(5):
        short.tick(0, 0)
    assert short.done and short.outcome.name == "DRAW"
    with pytest.raises(RuntimeError, match="the round is over"):
        short.tick(0, 0)


def test_walk_forward_closes_distance():
    game = duel(3.0)
    press(game, bit(FORWARD), hold_ticks=30)
    assert game.distance() < 3.0 - 1.0
