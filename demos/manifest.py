"""The store's manifest: what every episode in the store has in common, and one entry per recording session.

``manifest.json`` stores the game, the button and state feature names, the frame
shape and dtype, the decision rate, the format version, and per session the full
configuration and package versions. It is rewritten atomically (write, fsync,
rename) under an exclusive ``flock`` on the store's lock file, so several worker
processes can open one store at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import importlib.metadata
import json
import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demos.errors import StoreError, StoreMismatchError, StoreNotFoundError, StoreWriteError

FORMAT_NAME = "fightenv-demos"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
EPISODES_DIR = "episodes"
INDEX_DIR = "index"

SOURCE_NAMES: tuple[str, ...] = ("expert", "human", "policy", "corrector")
"""Sources of a step's executed action; a step stores an index into this tuple."""

_VERSIONED_PACKAGES = ("fightenv", "numpy", "gymnasium", "imitation", "stable-baselines3", "torch", "pynput")


@dataclass(frozen=True)
class StoreLayout:
    """Layout that every episode of one store shares: the game and the shapes and names of its arrays."""

    game: str
    button_names: tuple[str, ...]
    state_names: tuple[str, ...]
    frame_shape: tuple[int, ...]
    """``(C, H, W)`` of a uint8 frame."""
    decision_hz: float
    """Decisions (recorded steps) per second of game time."""

    def __post_init__(self) -> None:
        if len(self.frame_shape) != 3:
            raise ValueError(f"frame_shape must be (C, H, W), got {self.frame_shape}")
        if not self.button_names:
            raise ValueError("button_names is empty; a store needs at least one button")
        if len(set(self.button_names)) != len(self.button_names):
            raise ValueError(f"button_names contains duplicates: {list(self.button_names)}")
        if not self.decision_hz > 0:
            raise ValueError(f"decision_hz must be positive, got {self.decision_hz}")

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> StoreLayout:
        return cls(
            game=manifest["game"],
            button_names=tuple(manifest["button_names"]),
            state_names=tuple(manifest["state_names"]),
            frame_shape=tuple(manifest["frame_shape"]),
            decision_hz=float(manifest["decision_hz"]),
        )

    @classmethod
    def from_env(cls, env) -> StoreLayout:
        """Read the layout off a fightenv env (``game_name``, ``button_names``, ``state_names``, ``decision_hz``)."""
        base = env.unwrapped
        frame_space = env.observation_space["frame"]
        return cls(
            game=str(base.game_name),
            button_names=tuple(base.button_names),
            state_names=tuple(base.state_names),
            frame_shape=tuple(int(d) for d in frame_space.shape),
            decision_hz=float(base.decision_hz),
        )

    def check_matches(
        self,
        path: str | os.PathLike,
        *,
        game: str | None = None,
        button_names: Sequence[str] | None = None,
        state_names: Sequence[str] | None = None,
        frame_shape: Sequence[int] | None = None,
    ) -> None:
        """Raise ``StoreMismatchError`` naming both values when a given one differs from the store's."""
        if game is not None and game != self.game:
            raise StoreMismatchError(
                f"store {path} contains episodes of game {self.game!r}, but the request is for game {game!r}. "
                f"Record into another directory (--out) or load a store of {game!r}."
            )
        if button_names is not None and tuple(button_names) != self.button_names:
            raise StoreMismatchError(
                f"store {path} was recorded with buttons {list(self.button_names)}, "
                f"but the request has buttons {list(button_names)}. Record into another directory (--out), "
                f"or use the game or profile whose buttons match the store."
            )
        if state_names is not None and tuple(state_names) != self.state_names:
            raise StoreMismatchError(
                f"store {path} was recorded with state features {list(self.state_names)}, "
                f"but the request has state features {list(state_names)}. Record into another directory (--out)."
            )
        if frame_shape is not None and tuple(int(d) for d in frame_shape) != self.frame_shape:
            raise StoreMismatchError(
                f"store {path} was recorded with frame shape {list(self.frame_shape)} (C, H, W), "
                f"but the request has frame shape {list(frame_shape)}. Record into another directory (--out), "
                f"or set the env's frame_size and color to match the store."
            )


def new_manifest(layout: StoreLayout) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "game": layout.game,
        "button_names": list(layout.button_names),
        "state_names": list(layout.state_names),
        "frame_shape": list(layout.frame_shape),
        "frame_dtype": "uint8",
        "state_dtype": "float32",
        "action_dtype": "uint8",
        "decision_hz": layout.decision_hz,
        "source_names": list(SOURCE_NAMES),
        "created_at": utc_now(),
        "sessions": [],
    }


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape recorded data, for the session entry."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def check_store_dir(path: Path) -> None:
    """Raise ``StoreNotFoundError`` unless ``path`` is a readable directory with a manifest."""
    if not path.exists():
        raise StoreNotFoundError(
            f"demo store {path} does not exist. Check the path, or record demonstrations into it with "
            f"`python scripts/collect_demos.py --out {path}`."
        )
    if not path.is_dir():
        raise StoreNotFoundError(f"demo store {path} is not a directory; pass the directory that contains {MANIFEST_FILE}.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise StoreNotFoundError(
            f"demo store {path} is not readable by this user (permission denied); fix its permissions "
            f"(for example `chmod -R u+rX {path}`)."
        )
    if not (path / MANIFEST_FILE).exists():
        raise StoreNotFoundError(
            f"directory {path} contains no {MANIFEST_FILE}, so it is not a demo store. Pass a directory written "
            f"by `python scripts/collect_demos.py --out DIR`."
        )


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and validate ``path/manifest.json``; raise a ``StoreError`` naming the file on any problem."""
    check_store_dir(path)
    manifest_path = path / MANIFEST_FILE
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except PermissionError as error:
        raise StoreNotFoundError(
            f"cannot read {manifest_path}: permission denied. Fix its permissions (chmod u+r)."
        ) from error
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        raise StoreError(f"{manifest_path} is not valid JSON ({error}); the store's manifest is damaged.") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise StoreError(
            f"{manifest_path} is not a fightenv demo store manifest (expected \"format\": \"{FORMAT_NAME}\")."
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreError(
            f"{manifest_path} has format version {version}, but this fightenv reads version {FORMAT_VERSION}. "
            f"Use the fightenv release that wrote the store."
        )
    return manifest


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Replace ``path/manifest.json`` atomically, so a crash leaves the old or the new manifest whole."""
    target = path / MANIFEST_FILE
    temporary = path / f".{MANIFEST_FILE}.{os.getpid()}.tmp"
    data = (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode("utf-8")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise StoreWriteError(f"writing {target} failed: {describe_os_error(error)}") from error


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the store for a read-modify-write of its manifest."""
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StoreWriteError(f"cannot open the lock file in {path}: {describe_os_error(error)}") from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def describe_os_error(error: OSError) -> str:
    """Describe an OS error and the usual fix, for messages about the store."""
    if error.errno == errno.ENOSPC:
        return f"the disk is full ({error}). Free space, then add episodes with --resume"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied or read-only file system ({error}). Record into a writable directory"
    return str(error)
