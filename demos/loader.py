"""Loading a store into ``imitation.data.types.Trajectory`` objects with ``DictObs`` observations.

Memory: the frames of all episodes are decompressed chunk by chunk into one
preallocated ``(N, C, H, W)`` uint8 array, and each trajectory's frames are a
view of it, so there is no second copy. With 84x84 grey frames, states, float32
actions and the per-step fields add about 2% to the raw frame bytes. While
loading, each thread also holds one episode file's compressed bytes.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from imitation.data.types import DictObs, Trajectory

from demos import records
from demos.errors import CorruptEpisodeError, EmptyStoreError
from demos.manifest import SOURCE_NAMES, StoreLayout, read_manifest
from demos.store import MISSING_ACTION, EpisodeInfo, IndexEntry, list_episode_files, read_index

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepFields:
    """Per-step fields of one stored episode beyond observation and executed action.

    Row ``t`` is stored step ``t``. With ``action_offset=k`` the trajectory's
    ``acts[t]`` is row ``t + k``.
    """

    timestamp_s: np.ndarray
    """``(T,)`` float64, monotonic clock seconds when the observation was seen."""
    source: np.ndarray
    """``(T,)`` uint8 index into ``source_names``: who chose the executed action."""
    source_names: tuple[str, ...]
    action: np.ndarray
    """``(T, n)`` uint8, the executed buttons."""
    agent_action: np.ndarray
    """``(T, n)`` uint8, the policy's own choice; every button is ``MISSING_ACTION`` (255) where absent."""
    corrector_action: np.ndarray
    """``(T, n)`` uint8, the corrector's choice; every button is ``MISSING_ACTION`` (255) where absent."""
    intervened: np.ndarray
    """``(T,)`` bool, True where the corrector overrode the policy."""
    reward: np.ndarray
    """``(T,)`` float32."""

    @property
    def has_agent_action(self) -> np.ndarray:
        return self.agent_action[:, 0] != MISSING_ACTION if self.agent_action.size else np.zeros(0, dtype=bool)

    @property
    def has_corrector_action(self) -> np.ndarray:
        if not self.corrector_action.size:
            return np.zeros(0, dtype=bool)
        return self.corrector_action[:, 0] != MISSING_ACTION

    def sources(self) -> list[str]:
        return [self.source_names[code] for code in self.source]


@dataclass
class DemoSet:
    """A loaded store: the store's layout, episode metadata and one trajectory per episode.

    ``trajectories[i]`` has ``obs`` = ``DictObs({"frame": (T+1, C, H, W) uint8,
    "state": (T+1, k) float32})``, ``acts`` = ``(T, n)`` float32 in {0, 1},
    ``infos=None`` and ``terminal`` True when the episode ended in the game.
    A partial episode has no final observation, so its trajectory ends one step
    before its last stored step.
    """

    path: str
    game: str
    button_names: tuple[str, ...]
    state_names: tuple[str, ...]
    frame_shape: tuple[int, ...]
    decision_hz: float
    action_offset: int
    episodes: list[EpisodeInfo]
    trajectories: list[Trajectory]
    manifest: dict[str, Any] = field(repr=False)
    _step_fields: list[StepFields] = field(repr=False, default_factory=list)
    _frame_buffer: np.ndarray | None = field(repr=False, default=None)
    """One array holding every episode's frames; each trajectory's frames are a view into it."""
    _state_buffer: np.ndarray | None = field(repr=False, default=None)

    def __len__(self) -> int:
        return len(self.trajectories)

    def step_fields(self, i: int) -> StepFields:
        """Return timestamps, sources, correction fields and rewards of episode ``i``."""
        return self._step_fields[i]

    def actions(self, i: int) -> np.ndarray:
        """Return the executed buttons of every stored step of episode ``i``, ``(T, n)`` uint8, without offset."""
        return self._step_fields[i].action

    @property
    def total_steps(self) -> int:
        return sum(len(t.acts) for t in self.trajectories)

    @property
    def frame_bytes(self) -> int:
        """Bytes of the frame buffer that the trajectories' frames are views of."""
        return self._frame_buffer.nbytes

    @property
    def nbytes(self) -> int:
        """Bytes of every array this set holds: frames, states, actions and step fields."""
        total = self._frame_buffer.nbytes + self._state_buffer.nbytes
        for trajectory, fields in zip(self.trajectories, self._step_fields):
            total += trajectory.acts.nbytes
            total += sum(getattr(fields, name).nbytes for name in _STEP_ARRAYS)
        return total


_STEP_ARRAYS = ("timestamp_s", "source", "action", "agent_action", "corrector_action", "intervened", "reward")


def load_demos(
    path: str | os.PathLike,
    *,
    action_offset: int = 0,
    skip_bad: bool = False,
    episodes: Sequence[int | str] | None = None,
    include_partial: bool = True,
    button_names: Sequence[str] | None = None,
    game: str | None = None,
    progress: bool = False,
    threads: int = min(8, os.cpu_count() or 1),
) -> DemoSet:
    """Load the episodes of a store as imitation trajectories.

    ``action_offset=k`` pairs observation ``t`` with the action of step ``t + k``
    to model a human's reaction delay, and drops the last ``k`` observations of
    each episode. Episodes too short for the offset are left out with a warning.
    The files on disk never change.

    ``episodes`` selects episodes by position in the store's order or by id.
    ``threads`` episodes are decompressed at once; each holds one file's bytes
    in memory while it loads.
    ``button_names`` and ``game``, when given, must match the store's.
    A truncated or corrupt episode file raises ``CorruptEpisodeError`` naming
    it; with ``skip_bad=True`` it is left out with a warning instead.
    """
    if action_offset < 0:
        raise ValueError(f"action_offset must be >= 0 steps, got {action_offset}")
    store_path = Path(path)
    manifest = read_manifest(store_path)
    layout = StoreLayout.from_manifest(manifest)
    layout.check_matches(store_path, game=game, button_names=button_names)

    files = _select_files(store_path, list_episode_files(store_path), episodes)
    if not files:
        raise EmptyStoreError(
            f"demo store {store_path} contains no episodes. Record some with "
            f"`python scripts/collect_demos.py --resume --out {store_path}`."
        )
    index = read_index(store_path)
    source_names = tuple(manifest.get("source_names", SOURCE_NAMES))

    # Pass 1: count each episode's observations from its record headers, without reading payloads.
    plans: list[_EpisodePlan] = []
    for file_path in files:
        try:
            plan = _plan_episode(file_path, index.get(file_path.stem))
        except CorruptEpisodeError as error:
            if not skip_bad:
                raise
            logger.warning("skipping episode: %s", error.problem)
            continue
        if plan is not None and (include_partial or not plan.partial):
            plans.append(plan)

    # One buffer for all frames: a single large allocation is faster to fill than one per episode
    # (numpy requests transparent huge pages above 4 MiB), and it is the only copy of the frames.
    total_obs = sum(plan.n_obs for plan in plans)
    frame_buffer = np.empty((total_obs, *layout.frame_shape), dtype=np.uint8)
    state_buffer = np.empty((total_obs, len(layout.state_names)), dtype=np.float32)
    bounds = np.cumsum([0, *(plan.n_obs for plan in plans)])

    # Pass 2: check and decompress every episode into its rows; zlib and numpy copies release the GIL.
    def load_one(i: int):
        rows = slice(bounds[i], bounds[i + 1])
        try:
            return _load_episode(
                plans[i], frame_buffer[rows], state_buffer[rows], layout, index.get(plans[i].path.stem), source_names
            )
        except CorruptEpisodeError as error:
            return error

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(plans)))) as pool:
        results = pool.map(load_one, range(len(plans)))
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(plans), desc="loading episodes", unit="episode")
        loaded_episodes = list(results)

    infos: list[EpisodeInfo] = []
    trajectories: list[Trajectory] = []
    step_fields: list[StepFields] = []
    for i, loaded in enumerate(loaded_episodes):
        if isinstance(loaded, CorruptEpisodeError):
            if not skip_bad:
                raise loaded
            # NOTE: the skipped episode's rows stay allocated in the frame buffer, unused.
            logger.warning("skipping episode: %s", loaded.problem)
            continue
        info, fields, terminal = loaded
        frames = frame_buffer[bounds[i] : bounds[i + 1]]
        states = state_buffer[bounds[i] : bounds[i + 1]]
        trajectory = _make_trajectory(frames, states, fields.action, terminal, action_offset)
        if trajectory is None:
            logger.warning(
                "leaving out episode %s: its %d usable steps do not exceed action_offset=%d",
                info.episode_id, len(frames) - 1, action_offset,
            )
            continue
        infos.append(info)
        trajectories.append(trajectory)
        step_fields.append(fields)

    if not trajectories:
        raise EmptyStoreError(
            f"no episode of demo store {store_path} could be loaded (bad, partial or too short for "
            f"action_offset={action_offset}); see the warnings above."
        )
    return DemoSet(
        path=str(store_path),
        game=layout.game,
        button_names=layout.button_names,
        state_names=layout.state_names,
        frame_shape=layout.frame_shape,
        decision_hz=layout.decision_hz,
        action_offset=action_offset,
        episodes=infos,
        trajectories=trajectories,
        manifest=manifest,
        _step_fields=step_fields,
        _frame_buffer=frame_buffer,
        _state_buffer=state_buffer,
    )


def _select_files(store_path: Path, files: list[Path], selection: Sequence[int | str] | None) -> list[Path]:
    if selection is None:
        return files
    by_id = {p.stem: p for p in files}
    chosen = []
    for item in selection:
        if isinstance(item, (int, np.integer)):
            if not 0 <= item < len(files):
                raise IndexError(f"episode index {item} is out of range; store {store_path} has {len(files)} episodes")
            chosen.append(files[item])
        elif item in by_id:
            chosen.append(by_id[item])
        else:
            raise KeyError(f"episode {item!r} is not in store {store_path}; list_episodes() gives the ids")
    return chosen


def _make_trajectory(
    frames: np.ndarray, states: np.ndarray, actions: np.ndarray, terminal: bool, offset: int
) -> Trajectory | None:
    """Build one trajectory from ``n_obs`` observations and at least ``n_obs - 1`` actions, sharing memory."""
    steps = len(frames) - 1 - offset
    if steps < 1:
        return None
    # Observation t is paired with the action of step t + offset; slices are views, not copies.
    acts = actions[offset : offset + steps].astype(np.float32)
    obs = DictObs({"frame": frames[: steps + 1], "state": states[: steps + 1]})
    return Trajectory(obs=obs, acts=acts, infos=None, terminal=terminal and offset == 0)


@dataclass
class _EpisodeRecords:
    """The checked records of one episode file."""

    info: EpisodeInfo
    chunks: list[records.Record]
    end: records.Record | None
    path_text: str


def _read_episode(
    file_path: Path, indexed: IndexEntry | None, size_bytes: int | None = None
) -> _EpisodeRecords | None:
    """Read and check one episode file; return None for a file with no begin record that was never finished.

    ``size_bytes`` limits the read to the records counted earlier, so an
    episode that another process is still writing loads as it was then.
    Raises ``CorruptEpisodeError`` when a finished episode (one listed in the
    index) is shorter than written or lacks its end record, or when any record
    fails its checksum.
    """
    path_text = str(file_path)
    try:
        with open(file_path, "rb") as file:
            data = file.read() if size_bytes is None else file.read(size_bytes)
    except OSError as error:
        raise CorruptEpisodeError(path_text, f"cannot read episode file {path_text}: {error}") from error
    if indexed is not None and len(data) < indexed.bytes:
        raise _truncated(path_text, f"only {len(data)} of the {indexed.bytes} bytes written remain readable")
    parsed = records.parse_records(data, path_text)
    if not parsed.records or parsed.records[0].kind != records.KIND_BEGIN:
        if indexed is not None:
            raise CorruptEpisodeError(path_text, f"episode file {path_text} has no begin record; it is damaged.")
        logger.warning("skipping %s: recording stopped before its first record", path_text)
        return None
    chunks = [r for r in parsed.records if r.kind == records.KIND_STEPS]
    end = parsed.records[-1] if parsed.records[-1].kind == records.KIND_END else None
    if indexed is not None and (end is None or parsed.torn_tail):
        raise _truncated(path_text, "its end record is missing although the episode was finished")
    stored_steps = sum(r.header["steps"] for r in chunks)
    if end is None:
        logger.warning(
            "episode %s has no end record (recording was interrupted or is still running); "
            "loading its %d complete steps as a partial episode", path_text, stored_steps,
        )
    info = _episode_info(file_path, parsed.records[0].header, None if end is None else end.header, stored_steps)
    return _EpisodeRecords(info, chunks, end, path_text)


def _truncated(path_text: str, detail: str) -> CorruptEpisodeError:
    """Return the error for a finished episode whose file lost data, with the ways out."""
    return CorruptEpisodeError(
        path_text,
        f"episode file {path_text} is truncated: {detail}. Pass --skip-bad to the script (skip_bad=True to "
        "load_demos) to leave this episode out, or delete the file.",
    )


@dataclass(frozen=True)
class _EpisodePlan:
    """Sizes of one episode read from its record headers, before its payloads are read."""

    path: Path
    stored_steps: int
    has_final_obs: bool
    partial: bool
    size_bytes: int
    """Bytes up to the end of the last complete record when the headers were read."""

    @property
    def n_obs(self) -> int:
        return self.stored_steps + 1 if self.has_final_obs else self.stored_steps


def _plan_episode(file_path: Path, indexed: IndexEntry | None) -> _EpisodePlan | None:
    """Count an episode's steps from its record headers; None for an unfinished file without steps."""
    try:
        headers = list(records.iter_headers(str(file_path)))
    except OSError as error:
        raise CorruptEpisodeError(str(file_path), f"cannot read episode file {file_path}: {error}") from error
    size_bytes = headers[-1][2] if headers else 0
    if indexed is not None and size_bytes < indexed.bytes:
        raise _truncated(str(file_path), f"only {size_bytes} of the {indexed.bytes} bytes written remain readable")
    if not headers or headers[0][0].get("kind") != records.KIND_BEGIN:
        if indexed is not None:
            raise CorruptEpisodeError(str(file_path), f"episode file {file_path} has no begin record; it is damaged.")
        logger.warning("skipping %s: recording stopped before its first record", file_path)
        return None
    headers = [header for header, _, _ in headers]
    end = headers[-1] if headers[-1].get("kind") == records.KIND_END else None
    steps = sum(h["steps"] for h in headers if h.get("kind") == records.KIND_STEPS)
    info = _episode_info(file_path, headers[0], end, steps)
    plan = _EpisodePlan(file_path, steps, info.has_final_obs, info.partial, size_bytes)
    if plan.n_obs < 1:
        logger.warning("skipping %s: it contains no steps", file_path)
        return None
    return plan


def _load_episode(
    plan: _EpisodePlan,
    frames: np.ndarray,
    states: np.ndarray,
    layout: StoreLayout,
    indexed: IndexEntry | None,
    source_names: tuple[str, ...],
) -> tuple[EpisodeInfo, StepFields, bool]:
    """Check one episode file and decompress it into ``frames`` and ``states`` (rows planned in pass 1)."""
    read = _read_episode(plan.path, indexed, plan.size_bytes)
    if read is None or (read.info.length, read.info.has_final_obs) != (plan.stored_steps, plan.has_final_obs):
        raise CorruptEpisodeError(
            str(plan.path),
            f"episode file {plan.path} changed while it was loaded, or its records fail their checks; "
            f"load again, or pass --skip-bad (skip_bad=True to load_demos) to leave it out.",
        )
    info, chunks, end, path_text = read.info, read.chunks, read.end, read.path_text
    stored_steps = info.length
    n_buttons = len(layout.button_names)
    fields = {
        "timestamp_s": np.empty(stored_steps, dtype=np.float64),
        "source": np.empty(stored_steps, dtype=np.uint8),
        "action": np.empty((stored_steps, n_buttons), dtype=np.uint8),
        "agent_action": np.empty((stored_steps, n_buttons), dtype=np.uint8),
        "corrector_action": np.empty((stored_steps, n_buttons), dtype=np.uint8),
        "intervened": np.empty(stored_steps, dtype=bool),
        "reward": np.empty(stored_steps, dtype=np.float32),
    }
    targets = {"frame": frames, "state": states, **fields}

    for chunk, position in _chunk_positions(chunks, path_text):
        _copy_into(chunk, targets, position, chunk.header["steps"], path_text)
    if info.has_final_obs:
        _copy_into(end, {"frame": frames, "state": states}, stored_steps, 1, path_text)

    step_fields = StepFields(source_names=source_names, **fields)
    # The session loop records whether the env terminated; a time-out (truncation), a step limit or a
    # stop is not terminal. Stores written before it did fall back to "ended with an outcome".
    end_info = (end.header.get("info") or {}) if end is not None else {}
    if "terminated" in end_info:
        terminal = info.has_final_obs and bool(end_info["terminated"])
    else:
        terminal = info.has_final_obs and info.outcome is not None
    return info, step_fields, terminal


def _chunk_positions(chunks: list[records.Record], path_text: str) -> list[tuple[records.Record, int]]:
    """Pair each chunk with its first step, checking that the chunks follow each other without gaps."""
    positions = []
    position = 0
    for chunk in chunks:
        if chunk.header.get("first_step") != position:
            raise CorruptEpisodeError(
                path_text, f"episode file {path_text} is damaged: a chunk starts at step "
                f"{chunk.header.get('first_step')}, expected step {position}."
            )
        positions.append((chunk, position))
        position += chunk.header["steps"]
    return positions


def load_actions(
    path: str | os.PathLike, *, skip_bad: bool = False
) -> tuple[StoreLayout, list[EpisodeInfo], list[np.ndarray]]:
    """Load only the executed buttons of every episode, ``(T, n)`` uint8 each, without decompressing frames.

    Checks files like ``load_demos`` does; an empty store raises ``EmptyStoreError``.
    """
    store_path = Path(path)
    layout = StoreLayout.from_manifest(read_manifest(store_path))
    files = list_episode_files(store_path)
    if not files:
        raise EmptyStoreError(
            f"demo store {store_path} contains no episodes. Record some with "
            f"`python scripts/collect_demos.py --resume --out {store_path}`."
        )
    index = read_index(store_path)
    infos, actions = [], []
    n_buttons = len(layout.button_names)
    for file_path in files:
        try:
            read = _read_episode(file_path, index.get(file_path.stem))
            if read is None:
                continue
            episode_actions = np.empty((read.info.length, n_buttons), dtype=np.uint8)
            for chunk, position in _chunk_positions(read.chunks, read.path_text):
                _copy_into(chunk, {"action": episode_actions}, position, chunk.header["steps"], read.path_text)
        except CorruptEpisodeError as error:
            if not skip_bad:
                raise
            logger.warning("skipping episode: %s", error.problem)
            continue
        infos.append(read.info)
        actions.append(episode_actions)
    return layout, infos, actions


def _copy_into(
    record: records.Record, targets: dict[str, np.ndarray], start: int, count: int, path_text: str
) -> None:
    """Decompress one record and copy each of its arrays into rows ``start:start+count`` of its target."""
    try:
        arrays = records.decode_arrays(record, targets.keys() | {"step"})
    except (ValueError, TypeError, zlib.error) as error:
        raise CorruptEpisodeError(path_text, f"episode file {path_text} has a chunk that cannot be decoded: {error}")
    # The small per-step fields arrive as the fields of one structured array.
    packed = arrays.pop("step", None)
    if packed is not None and packed.dtype.names:
        for name in packed.dtype.names:
            arrays[name] = packed[name]
    for name, target in targets.items():
        if name not in arrays:
            raise CorruptEpisodeError(path_text, f"episode file {path_text} has a chunk without field {name!r}.")
        source = arrays[name]
        if source.shape[1:] != target.shape[1:] or len(source) != count:
            raise CorruptEpisodeError(
                path_text,
                f"episode file {path_text} has field {name!r} of shape {source.shape} in a chunk of {count} steps, "
                f"but the store expects rows of shape {target.shape[1:]}.",
            )
        target[start : start + count] = source


def list_episodes(path: str | os.PathLike) -> list[EpisodeInfo]:
    """Read the metadata of every episode of a store without decompressing any frames.

    Corrupt files raise ``CorruptEpisodeError``; partial ones are listed with ``partial=True``.
    """
    store_path = Path(path)
    read_manifest(store_path)
    result = []
    for file_path in list_episode_files(store_path):
        headers = [header for header, _, _ in records.iter_headers(str(file_path))]
        if not headers or headers[0].get("kind") != records.KIND_BEGIN:
            continue
        end = headers[-1] if headers[-1].get("kind") == records.KIND_END else None
        steps = sum(h["steps"] for h in headers if h.get("kind") == records.KIND_STEPS)
        result.append(_episode_info(file_path, headers[0], end, steps))
    return result


def _episode_info(file_path: Path, begin: dict[str, Any], end: dict[str, Any] | None, steps: int) -> EpisodeInfo:
    partial = end is None or bool(end.get("partial"))
    return EpisodeInfo(
        episode_id=file_path.stem,
        path=str(file_path),
        session=int(begin.get("session", 0)),
        worker=int(begin.get("worker", 0)),
        seed=begin.get("seed"),
        round=int(begin.get("round", 0)),
        length=steps,
        outcome=None if end is None else end.get("outcome"),
        partial=partial,
        has_final_obs=not partial and bool(end.get("fields")),
        profile_name=begin.get("profile_name"),
        profile_hash=begin.get("profile_hash"),
        pilot=begin.get("pilot"),
        started_at=begin.get("started_at"),
        partial_reason=None if end is None else end.get("reason"),
    )


__all__ = ["DemoSet", "StepFields", "list_episodes", "load_actions", "load_demos"]
