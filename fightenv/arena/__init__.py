"""The built-in Arena: a seeded 3D fighting game that runs headless and fast."""

from fightenv.arena.cpu import DIFFICULTIES, CpuLevel, CpuOpponent
from fightenv.arena.env import STATE_FEATURES, ArenaEnv, state_vector
from fightenv.arena.expert import ArenaExpert, ExpertStyle
from fightenv.arena.rules import BUTTONS, Game

__all__ = [
    "BUTTONS",
    "DIFFICULTIES",
    "STATE_FEATURES",
    "ArenaEnv",
    "ArenaExpert",
    "CpuLevel",
    "CpuOpponent",
    "ExpertStyle",
    "Game",
    "state_vector",
]
