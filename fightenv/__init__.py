"""fightenv: games as Gymnasium envs with one bit per held button.

Importing the package registers ``fightenv/Arena-v0``, the built-in Arena.
"""

from gymnasium.envs.registration import register, registry

ARENA_ID = "fightenv/Arena-v0"

if ARENA_ID not in registry:
    register(id=ARENA_ID, entry_point="fightenv.arena.env:ArenaEnv")

SCREEN_ID = "fightenv/Screen-v0"
"""Any game window through screen capture and key presses: ``gym.make(SCREEN_ID, profile=PATH)``."""

if SCREEN_ID not in registry:
    register(id=SCREEN_ID, entry_point="fightenv.screen.env:ScreenEnv")
