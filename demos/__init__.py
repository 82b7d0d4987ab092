"""Recorded demonstrations: the crash-safe episode store, loading as imitation trajectories, splits and reports.

    store = EpisodeStore.open("runs/demos", mode="create", game=..., button_names=..., ...)
    run_episode(env, pilot, seed=0, recorder=store)       # from agents.session
    demo_set = load_demos("runs/demos", action_offset=0)
    split = split_episodes(demo_set)                      # EpisodeSplit(train, val, test)
"""

from demos.errors import (
    CorruptEpisodeError,
    EmptyStoreError,
    RecorderStateError,
    StoreError,
    StoreMismatchError,
    StoreNotFoundError,
    StoreWriteError,
)
from demos.loader import DemoSet, StepFields, list_episodes, load_actions, load_demos
from demos.manifest import SOURCE_NAMES, StoreLayout, read_manifest
from demos.store import MISSING_ACTION, EpisodeInfo, EpisodeStore
from demos.splits import EpisodeSplit, FrameSplit, split_episodes, split_frames
from demos import report

__all__ = [
    "CorruptEpisodeError",
    "DemoSet",
    "EmptyStoreError",
    "EpisodeInfo",
    "EpisodeSplit",
    "EpisodeStore",
    "FrameSplit",
    "MISSING_ACTION",
    "RecorderStateError",
    "SOURCE_NAMES",
    "StepFields",
    "StoreError",
    "StoreLayout",
    "StoreMismatchError",
    "StoreNotFoundError",
    "StoreWriteError",
    "list_episodes",
    "load_actions",
    "load_demos",
    "read_manifest",
    "report",
    "split_episodes",
    "split_frames",
]
