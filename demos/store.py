"""The episode store: a directory of demonstrations that survives crashes and grows across sessions.

Layout on disk::

    STORE/
      manifest.json            game, buttons, state features, frame shape, decision rate, sessions
      .lock                    flock target for manifest updates
      episodes/
        s0000-w000-e000000.ep  one file per episode: begin record, step chunks, end record
      index/
        s0000-w000.jsonl       one line per finished or discarded episode of one writer
      telemetry/
        s0000-w000.jsonl       real-time sessions: achieved rate and dropped steps per episode

An episode file is a sequence of checksummed records (see ``demos.records``).
Steps are buffered and written as one compressed chunk every ``chunk_s`` seconds
(of game time or of wall time, whichever comes first), so killing the recording
process loses at most the steps of the last ``chunk_s``. The writer holds an
exclusive ``flock`` on its episode file while the episode is open; the lock dies
with the process, which lets a later ``open(mode="append")`` tell crashed
episodes (unlocked, no end record) from those another worker is writing.

The index tells a finished episode that was later truncated or damaged (an
error naming the file) from one whose recording was cut by a crash (a partial
episode, kept and marked).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from demos import records
from demos.errors import CorruptEpisodeError, RecorderStateError, StoreError, StoreWriteError
from demos.manifest import (
    EPISODES_DIR,
    INDEX_DIR,
    SOURCE_NAMES,
    StoreLayout,
    check_store_dir,
    describe_os_error,
    locked,
    new_manifest,
    package_versions,
    read_manifest,
    utc_now,
    write_manifest,
)

logger = logging.getLogger(__name__)

EPISODE_SUFFIX = ".ep"
TELEMETRY_DIR = "telemetry"
MISSING_ACTION = 255
"""Value of every button of ``agent_action`` or ``corrector_action`` in a step where that action is absent."""

_EPISODE_NAME = re.compile(r"^s(\d{4,})-w(\d{3,})-e(\d{6,})\.ep$")
_INFO_TYPES = (bool, int, float, str, type(None))


def episode_id(session: int, worker: int, sequence: int) -> str:
    return f"s{session:04d}-w{worker:03d}-e{sequence:06d}"


def episode_sort_key(name: str) -> tuple[int, int, int]:
    """Sort key of an episode file name or id: session, worker, sequence number."""
    match = _EPISODE_NAME.match(name if name.endswith(EPISODE_SUFFIX) else name + EPISODE_SUFFIX)
    if match is None:
        raise ValueError(f"{name!r} is not an episode file name of the form s0000-w000-e000000.ep")
    return int(match[1]), int(match[2]), int(match[3])


@dataclass(frozen=True)
class EpisodeInfo:
    """Metadata of one stored episode."""

    episode_id: str
    path: str
    session: int
    worker: int
    seed: int | None
    round: int
    """DAgger round that produced the episode; 0 for demonstrations."""
    length: int
    """Steps stored (decisions with their observation and action)."""
    outcome: str | None
    partial: bool
    """True when recording stopped before the episode ended (crash, stop, full disk); no final observation."""
    has_final_obs: bool
    profile_name: str | None
    profile_hash: str | None
    pilot: str | None
    started_at: str | None
    partial_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _ChunkBuffer:
    """Preallocated arrays for the steps of the chunk being filled."""

    frame: np.ndarray
    state: np.ndarray
    action: np.ndarray
    timestamp_s: np.ndarray
    source: np.ndarray
    agent_action: np.ndarray
    corrector_action: np.ndarray
    intervened: np.ndarray
    reward: np.ndarray

    @classmethod
    def allocate(cls, layout: StoreLayout, steps: int) -> _ChunkBuffer:
        n = len(layout.button_names)
        return cls(
            frame=np.empty((steps, *layout.frame_shape), dtype=np.uint8),
            state=np.empty((steps, len(layout.state_names)), dtype=np.float32),
            action=np.empty((steps, n), dtype=np.uint8),
            timestamp_s=np.empty(steps, dtype=np.float64),
            source=np.empty(steps, dtype=np.uint8),
            agent_action=np.empty((steps, n), dtype=np.uint8),
            corrector_action=np.empty((steps, n), dtype=np.uint8),
            intervened=np.empty(steps, dtype=bool),
            reward=np.empty(steps, dtype=np.float32),
        )

    def arrays(self, count: int) -> dict[str, np.ndarray]:
        """Return the first ``count`` steps as frame, state, and one structured array of the small fields.

        Packing the small fields into one array compresses them as one stream,
        which makes loading several times cheaper than one stream per field.
        """
        steps = np.empty(count, dtype=np.dtype([(name, getattr(self, name).dtype, getattr(self, name).shape[1:])
                                                for name in SMALL_STEP_FIELDS]))
        for name in SMALL_STEP_FIELDS:
            steps[name] = getattr(self, name)[:count]
        return {"frame": self.frame[:count], "state": self.state[:count], "step": steps}


SMALL_STEP_FIELDS = ("action", "timestamp_s", "source", "agent_action", "corrector_action", "intervened", "reward")
"""Per-step fields stored together in a chunk's structured ``step`` array."""


@dataclass
class _OpenEpisode:
    episode_id: str
    path: Path
    fd: int
    seed: int | None
    started_at: str
    steps_written: int = 0
    bytes_written: int = 0
    buffered: int = 0
    chunk_started_s: float = 0.0


class EpisodeStore:
    """A directory of recorded episodes; in a write mode it is also the session's ``Recorder``.

    Open it with ``EpisodeStore.open``. As a recorder it receives
    ``begin_episode``, ``add_step`` per step and ``end_episode`` from
    ``agents.session.run_episode``; ``abort_episode`` keeps an interrupted
    episode as a partial one and ``discard_episode`` / ``discard_last_episode``
    delete one. Call ``close`` (or use the store as a context manager) at the end.
    """

    def __init__(
        self,
        path: Path,
        layout: StoreLayout,
        mode: str,
        *,
        session: int | None,
        worker: int,
        episode_round: int,
        profile_name: str | None,
        profile_hash: str | None,
        pilot: str | None,
        chunk_s: float,
    ) -> None:
        self.path = path
        self.layout = layout
        self.mode = mode
        self.session = session
        self.worker = worker
        self.episode_round = episode_round
        self.profile_name = profile_name
        self.profile_hash = profile_hash
        self.pilot = pilot
        self.chunk_s = chunk_s
        self.chunk_steps = max(1, math.ceil(layout.decision_hz * chunk_s))
        self._buffer: _ChunkBuffer | None = None
        self._episode: _OpenEpisode | None = None
        self._last_finished: EpisodeInfo | None = None
        self._next_sequence = 0
        self._failed: StoreWriteError | None = None
        self.episodes_written: list[EpisodeInfo] = []

    # -- opening -----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        mode: str = "read",
        *,
        game: str | None = None,
        button_names: Sequence[str] | None = None,
        state_names: Sequence[str] | None = None,
        frame_shape: Sequence[int] | None = None,
        decision_hz: float | None = None,
        session_config: Mapping[str, Any] | None = None,
        session: int | None = None,
        worker: int = 0,
        episode_round: int = 0,
        profile_name: str | None = None,
        profile_hash: str | None = None,
        pilot: str | None = None,
        chunk_s: float = 1.0,
    ) -> EpisodeStore:
        """Open a store to read (``"read"``), to start (``"create"``) or to add episodes to (``"append"``).

        ``"create"`` needs ``game``, ``button_names``, ``state_names``,
        ``frame_shape`` and ``decision_hz`` and rejects a directory that already
        contains files. ``"append"`` rejects a store whose game, buttons, state
        features or frame shape differ from the given ones, with an error naming
        both lists. Both write modes start a new session entry in the manifest
        (with ``session_config`` and package versions) unless ``session`` names
        an existing one to join, which is how worker processes share a session;
        each writer of a session needs its own ``worker`` number.

        Opening in ``"create"`` or ``"append"`` mode without ``session`` also
        closes crashed episodes: their torn last record is cut off and an end
        record marking them partial is appended.
        """
        path = Path(path)
        if mode not in ("read", "create", "append"):
            raise ValueError(f"mode must be 'read', 'create' or 'append', got {mode!r}")
        if not chunk_s > 0:
            raise ValueError(f"chunk_s must be positive, got {chunk_s}")
        if worker < 0:
            raise ValueError(f"worker must be >= 0, got {worker}")

        if mode == "create":
            layout = _create_store(path, game, button_names, state_names, frame_shape, decision_hz)
        else:
            layout = StoreLayout.from_manifest(read_manifest(path))
            layout.check_matches(
                path, game=game, button_names=button_names, state_names=state_names, frame_shape=frame_shape
            )
            if mode == "append" and decision_hz is not None and not math.isclose(decision_hz, layout.decision_hz):
                logger.warning(
                    "store %s was recorded at %.3f decisions per second; the new session records at %.3f",
                    path, layout.decision_hz, decision_hz,
                )
        store = cls(
            path, layout, mode, session=session, worker=worker, episode_round=episode_round,
            profile_name=profile_name, profile_hash=profile_hash, pilot=pilot, chunk_s=chunk_s,
        )
        if mode == "read":
            return store

        _check_writable(path)
        if session is None:
            store.recover_partial_episodes()
            store.session = store._add_session(session_config or {})
        else:
            store._check_session(session)
        store._next_sequence = store._find_next_sequence()
        return store

    def _add_session(self, config: Mapping[str, Any]) -> int:
        with locked(self.path):
            manifest = read_manifest(self.path)
            index = len(manifest["sessions"])
            manifest["sessions"].append(
                {
                    "session": index,
                    "started_at": utc_now(),
                    "pilot": self.pilot,
                    "profile_name": self.profile_name,
                    "profile_hash": self.profile_hash,
                    "config": _json_safe(dict(config)),
                    "versions": package_versions(),
                }
            )
            write_manifest(self.path, manifest)
        logger.info("store %s: started session %d", self.path, index)
        return index

    def _check_session(self, session: int) -> None:
        sessions = read_manifest(self.path)["sessions"]
        if not 0 <= session < len(sessions):
            raise StoreError(
                f"store {self.path} has sessions 0..{len(sessions) - 1}, so session {session} cannot be joined; "
                f"open the store without session= to start a new one."
            )

    def _find_next_sequence(self) -> int:
        prefix = f"s{self.session:04d}-w{self.worker:03d}-"
        sequences = [episode_sort_key(p.name)[2] for p in _episode_files(self.path) if p.name.startswith(prefix)]
        return max(sequences, default=-1) + 1

    # -- recovery ----------------------------------------------------------------

    def recover_partial_episodes(self) -> list[str]:
        """Close every crashed episode of the store and return their ids.

        An episode is crashed when its file has no end record and no process
        holds its lock. Its torn last record, if any, is cut off, and an end
        record with ``partial: true`` is appended, so every complete chunk loads.
        """
        recovered = []
        finished = read_index(self.path)
        for file_path in _episode_files(self.path):
            if file_path.stem in finished:
                continue
            try:
                fd = os.open(file_path, os.O_RDWR)
            except OSError as error:
                logger.warning("cannot open %s to check it for recovery: %s", file_path, error)
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another process is still recording this episode
                if _recover_file(file_path, fd):
                    recovered.append(file_path.stem)
            finally:
                os.close(fd)
        return recovered

    # -- recorder ------------------------------------------------------------------

    def begin_episode(self, seed: int | None, first_obs: Mapping[str, np.ndarray]) -> None:
        """Start a new episode file; ``first_obs`` is checked against the store's shapes."""
        self._require_writer("begin_episode")
        if self._episode is not None:
            raise RecorderStateError(
                f"begin_episode called while episode {self._episode.episode_id} is open; "
                f"call end_episode, abort_episode or discard_episode first."
            )
        self._check_obs(first_obs)
        if self._buffer is None:
            self._buffer = _ChunkBuffer.allocate(self.layout, self.chunk_steps)

        name = episode_id(self.session, self.worker, self._next_sequence)
        file_path = self.path / EPISODES_DIR / (name + EPISODE_SUFFIX)
        try:
            fd = os.open(file_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except FileExistsError as error:
            raise StoreError(
                f"episode file {file_path} already exists; two writers share session {self.session} and "
                f"worker {self.worker}. Give each writer its own worker number."
            ) from error
        except OSError as error:
            raise self._fail(f"creating {file_path} failed: {describe_os_error(error)}", error) from error
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._next_sequence += 1
        self._episode = _OpenEpisode(name, file_path, fd, seed, utc_now(), chunk_started_s=time.monotonic())
        header = {
            "episode_id": name,
            "session": self.session,
            "worker": self.worker,
            "seed": seed,
            "round": self.episode_round,
            "pilot": self.pilot,
            "profile_name": self.profile_name,
            "profile_hash": self.profile_hash,
            "started_at": self._episode.started_at,
        }
        self._write(records.encode_record(records.KIND_BEGIN, header))

    def add_step(self, obs: Mapping[str, np.ndarray], decision, timestamp_s: float, reward: float) -> None:
        """Buffer one step; a chunk is written when it spans ``chunk_s`` of game or wall time."""
        episode = self._require_episode("add_step")
        buffer = self._buffer
        row = episode.buffered
        if row == 0:
            episode.chunk_started_s = time.monotonic()

        frame = obs["frame"]
        state = obs["state"]
        if frame.shape != self.layout.frame_shape or frame.dtype != np.uint8 or state.shape != buffer.state.shape[1:]:
            self._check_obs(obs)
        action = np.asarray(decision.action)
        if action.shape != buffer.action.shape[1:]:
            raise ValueError(
                f"decision.action has shape {action.shape}, expected ({len(self.layout.button_names)},) "
                f"for buttons {list(self.layout.button_names)}"
            )
        buffer.frame[row] = frame
        buffer.state[row] = state
        buffer.action[row] = action
        buffer.timestamp_s[row] = timestamp_s
        buffer.source[row] = _source_code(decision.source)
        buffer.agent_action[row] = MISSING_ACTION if decision.agent_action is None else decision.agent_action
        buffer.corrector_action[row] = (
            MISSING_ACTION if decision.corrector_action is None else decision.corrector_action
        )
        buffer.intervened[row] = bool(decision.intervened)
        buffer.reward[row] = reward
        episode.buffered = row + 1

        if episode.buffered >= self.chunk_steps or time.monotonic() - episode.chunk_started_s >= self.chunk_s:
            self.flush()

    def flush(self) -> None:
        """Write the buffered steps of the open episode as one chunk."""
        episode = self._episode
        if episode is None or episode.buffered == 0:
            return
        count = episode.buffered
        header = {"first_step": episode.steps_written, "steps": count}
        data = records.encode_record(records.KIND_STEPS, header, self._buffer.arrays(count))
        # The steps leave the buffer even if the write fails: they are reported lost, not written twice.
        episode.buffered = 0
        self._write(data)
        episode.steps_written += count

    def end_episode(self, final_obs: Mapping[str, np.ndarray], outcome: str | None, info: Mapping[str, Any]) -> EpisodeInfo:
        """Write the last chunk and the end record (outcome, length, final observation), then close the file."""
        episode = self._require_episode("end_episode")
        self._check_obs(final_obs)
        self.flush()
        header = {
            "steps": episode.steps_written,
            "outcome": outcome,
            "partial": False,
            "info": _json_safe_info(info),
        }
        arrays = {
            "frame": np.asarray(final_obs["frame"])[None],
            "state": np.asarray(final_obs["state"], dtype=np.float32)[None],
        }
        self._write(records.encode_record(records.KIND_END, header, arrays))
        return self._finish(outcome, partial=False, reason=None, has_final_obs=True)

    def abort_episode(self, reason: str) -> EpisodeInfo | None:
        """Keep the open episode as a partial one: write what is buffered and an end record with ``reason``."""
        episode = self._episode
        if episode is None:
            return None
        try:
            self.flush()
            header = {"steps": episode.steps_written, "outcome": None, "partial": True, "reason": reason}
            self._write(records.encode_record(records.KIND_END, header))
        except StoreWriteError:
            logger.error(
                "episode %s: could not write its end record; it stays on disk with %d steps and loads as partial",
                episode.episode_id, episode.steps_written,
            )
            self._close_episode_file()
            return None
        return self._finish(None, partial=True, reason=reason, has_final_obs=False)

    def discard_episode(self) -> str | None:
        """Delete the open episode's file; return its id, or None when no episode is open."""
        episode = self._episode
        if episode is None:
            return None
        self._close_episode_file()
        with contextlib.suppress(FileNotFoundError):
            episode.path.unlink()
        logger.info("discarded episode %s (%d steps)", episode.episode_id, episode.steps_written)
        return episode.episode_id

    def discard_last_episode(self) -> str | None:
        """Delete the episode this writer finished last; return its id, or None when there is none."""
        last = self._last_finished
        if last is None:
            return None
        with contextlib.suppress(FileNotFoundError):
            Path(last.path).unlink()
        self._append_index({"episode_id": last.episode_id, "discarded": True})
        self.episodes_written = [e for e in self.episodes_written if e.episode_id != last.episode_id]
        self._last_finished = None
        logger.info("discarded episode %s (%d steps)", last.episode_id, last.length)
        return last.episode_id

    def append_telemetry(self, entry: Mapping[str, Any]) -> None:
        """Append one JSON line of timing telemetry (rate, dropped steps) for this writer's session."""
        self._require_writer("append_telemetry")
        directory = self.path / TELEMETRY_DIR
        telemetry_path = directory / f"s{self.session:04d}-w{self.worker:03d}.jsonl"
        line = (json.dumps(_json_safe(dict(entry)), separators=(",", ":")) + "\n").encode("utf-8")
        try:
            directory.mkdir(exist_ok=True)
            with open(telemetry_path, "ab") as file:
                file.write(line)
        except OSError as error:
            logger.error("writing telemetry to %s failed: %s", telemetry_path, describe_os_error(error))

    def close(self, reason: str | None = None) -> None:
        """Keep an episode still open as partial, noting ``reason``, and release the store."""
        if self._episode is not None:
            self.abort_episode(reason or "the store was closed during the episode")

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._episode is not None:
            reason = "the store was closed during the episode"
            if exc_type is not None:
                reason = f"recording stopped by {exc_type.__name__}: {exc}"
            self.abort_episode(reason)

    @property
    def episode_open(self) -> bool:
        return self._episode is not None

    @property
    def steps_in_open_episode(self) -> int:
        episode = self._episode
        return 0 if episode is None else episode.steps_written + episode.buffered

    # -- internals -------------------------------------------------------------------

    def _finish(self, outcome: str | None, *, partial: bool, reason: str | None, has_final_obs: bool) -> EpisodeInfo:
        episode = self._episode
        self._close_episode_file()
        info = EpisodeInfo(
            episode_id=episode.episode_id,
            path=str(episode.path),
            session=self.session,
            worker=self.worker,
            seed=episode.seed,
            round=self.episode_round,
            length=episode.steps_written,
            outcome=outcome,
            partial=partial,
            has_final_obs=has_final_obs,
            profile_name=self.profile_name,
            profile_hash=self.profile_hash,
            pilot=self.pilot,
            started_at=episode.started_at,
            partial_reason=reason,
        )
        try:
            self._append_index(
                {"episode_id": info.episode_id, "bytes": episode.bytes_written, "steps": info.length, "partial": partial}
            )
        except StoreWriteError as error:
            # The episode file is whole; only the truncation check of later loads is lost for it.
            logger.error("episode %s is saved but its index line was not: %s", info.episode_id, error)
        self.episodes_written.append(info)
        self._last_finished = info
        return info

    def _close_episode_file(self) -> None:
        episode = self._episode
        self._episode = None
        if episode is not None:
            with contextlib.suppress(OSError):
                os.close(episode.fd)

    def _write(self, data: bytes) -> None:
        episode = self._episode
        if self._failed is not None:
            raise self._failed
        view = memoryview(data)
        try:
            while view:
                written = os.write(episode.fd, view)
                view = view[written:]
        except OSError as error:
            # Cut the half-written record off so the file ends at its last whole record.
            with contextlib.suppress(OSError):
                os.ftruncate(episode.fd, episode.bytes_written)
            raise self._fail(
                f"writing episode file {episode.path} failed: {describe_os_error(error)}. "
                f"The {episode.steps_written} steps written before are kept and load as a partial episode.",
                error,
            ) from error
        episode.bytes_written += len(data)

    def _fail(self, message: str, error: OSError) -> StoreWriteError:
        failure = StoreWriteError(message)
        failure.__cause__ = error
        self._failed = failure
        logger.error("%s", message)
        return failure

    def _append_index(self, entry: Mapping[str, Any]) -> None:
        index_path = self.path / INDEX_DIR / f"s{self.session:04d}-w{self.worker:03d}.jsonl"
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            fd = os.open(index_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as error:
            raise StoreWriteError(f"writing {index_path} failed: {describe_os_error(error)}") from error

    def _require_writer(self, call: str) -> None:
        if self.mode == "read":
            raise RecorderStateError(
                f"{call} needs a store opened with mode='create' or mode='append'; {self.path} was opened to read."
            )
        if self._failed is not None:
            raise self._failed

    def _require_episode(self, call: str) -> _OpenEpisode:
        if self._episode is None:
            raise RecorderStateError(f"{call} called with no open episode; call begin_episode first.")
        return self._episode

    def _check_obs(self, obs: Mapping[str, np.ndarray]) -> None:
        frame = np.asarray(obs["frame"])
        state = np.asarray(obs["state"])
        if frame.shape != self.layout.frame_shape or frame.dtype != np.uint8:
            raise ValueError(
                f"observation frame has shape {frame.shape} and dtype {frame.dtype}, but store {self.path} "
                f"holds uint8 frames of shape {self.layout.frame_shape} (C, H, W)"
            )
        if state.shape != (len(self.layout.state_names),):
            raise ValueError(
                f"observation state has shape {state.shape}, but store {self.path} stores state vectors of "
                f"shape ({len(self.layout.state_names)},) with features {list(self.layout.state_names)}"
            )


# -- store files ----------------------------------------------------------------------


def _create_store(path, game, button_names, state_names, frame_shape, decision_hz) -> StoreLayout:
    missing = [
        name for name, value in (
            ("game", game), ("button_names", button_names), ("state_names", state_names),
            ("frame_shape", frame_shape), ("decision_hz", decision_hz),
        ) if value is None
    ]
    if missing:
        raise ValueError(f"EpisodeStore.open(mode='create') needs {', '.join(missing)}")
    layout = StoreLayout(
        game=str(game),
        button_names=tuple(button_names),
        state_names=tuple(state_names),
        frame_shape=tuple(int(d) for d in frame_shape),
        decision_hz=float(decision_hz),
    )
    if path.exists() and not path.is_dir():
        raise StoreError(f"cannot create a demo store at {path}: it is a file, not a directory; choose another --out.")
    if path.is_dir() and any(path.iterdir()):
        raise StoreError(
            f"cannot create a demo store in {path}: the directory is not empty. To add episodes to an existing "
            f"store pass --resume (mode='append'); otherwise choose an empty or new --out directory."
        )
    try:
        (path / EPISODES_DIR).mkdir(parents=True, exist_ok=True)
        (path / INDEX_DIR).mkdir(exist_ok=True)
    except OSError as error:
        raise StoreWriteError(f"creating demo store {path} failed: {describe_os_error(error)}") from error
    write_manifest(path, new_manifest(layout))
    logger.info("created demo store %s for game %s with buttons %s", path, layout.game, list(layout.button_names))
    return layout


def _check_writable(path: Path) -> None:
    for directory in (path, path / EPISODES_DIR, path / INDEX_DIR):
        if not os.access(directory, os.W_OK | os.X_OK):
            raise StoreWriteError(
                f"demo store directory {directory} is not writable (permission denied or read-only file system); "
                f"fix its permissions or record into another --out directory."
            )


def _episode_files(path: Path) -> list[Path]:
    directory = path / EPISODES_DIR
    if not directory.is_dir():
        return []
    files = [p for p in directory.iterdir() if _EPISODE_NAME.match(p.name)]
    return sorted(files, key=lambda p: episode_sort_key(p.name))


def list_episode_files(path: str | os.PathLike) -> list[Path]:
    """Episode files of a store, ordered by session, worker and sequence number."""
    path = Path(path)
    check_store_dir(path)
    return _episode_files(path)


@dataclass(frozen=True)
class IndexEntry:
    """Index entry that a writer appended when it finished an episode."""

    bytes: int
    steps: int
    partial: bool


def read_index(path: Path) -> dict[str, IndexEntry]:
    """Finished episodes of every writer, by id; discarded episodes are left out.

    A torn last line (a crash while appending it) is skipped.
    """
    entries: dict[str, IndexEntry] = {}
    directory = path / INDEX_DIR
    if not directory.is_dir():
        return entries
    for index_path in sorted(directory.glob("*.jsonl")):
        for line in index_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("skipping an incomplete line of %s", index_path)
                continue
            if entry.get("discarded"):
                entries.pop(entry["episode_id"], None)
            else:
                entries[entry["episode_id"]] = IndexEntry(
                    int(entry["bytes"]), int(entry["steps"]), bool(entry.get("partial", False))
                )
    return entries


def _recover_file(file_path: Path, fd: int) -> bool:
    """Close one crashed episode file; return True when it needed it."""
    with open(file_path, "rb") as file:
        data = file.read()
    parsed = records.parse_records(data, str(file_path))
    if parsed.records and parsed.records[-1].kind == records.KIND_END:
        return False
    steps = sum(r.header["steps"] for r in parsed.records if r.kind == records.KIND_STEPS)
    if not parsed.records:
        logger.warning("removing %s: recording stopped before its first record was written", file_path)
        file_path.unlink()
        return True
    os.ftruncate(fd, parsed.valid_bytes)
    header = {
        "steps": steps,
        "outcome": None,
        "partial": True,
        "reason": "recording stopped unexpectedly (crash or kill); the episode was closed when the store was reopened",
    }
    os.lseek(fd, 0, os.SEEK_END)
    os.write(fd, records.encode_record(records.KIND_END, header))
    logger.warning(
        "recovered %s as a partial episode with %d steps%s",
        file_path, steps, " (cut off an incomplete last chunk)" if parsed.torn_tail else "",
    )
    return True


def _source_code(source: str) -> int:
    try:
        return SOURCE_NAMES.index(source)
    except ValueError:
        raise ValueError(f"decision.source is {source!r}; expected one of {list(SOURCE_NAMES)}") from None


def _json_safe_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the scalar entries of an env's info dict (numpy scalars become Python numbers)."""
    kept = {}
    for key, value in info.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if isinstance(value, _INFO_TYPES):
            kept[str(key)] = value
    return kept


def _json_safe(value: Any) -> Any:
    """Convert a config value to JSON: dataclasses and paths become dicts and strings."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, _INFO_TYPES):
        return value
    return str(value)
