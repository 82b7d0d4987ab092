"""Exceptions of the episode store; every message names the path or value, what was expected and the fix."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the episode store raises."""


class StoreNotFoundError(StoreError):
    """The store directory or its manifest does not exist or cannot be read."""


class StoreMismatchError(StoreError):
    """The store was recorded with other buttons, state features, frame shape or game than expected."""


class EmptyStoreError(StoreError):
    """The store contains no episodes."""


SKIP_BAD_HINT = ("Pass --skip-bad to the script (skip_bad=True to load_demos) to leave this episode out, "
                 "or delete the file.")
"""The fix that most corrupt-episode messages end with."""


class CorruptEpisodeError(StoreError):
    """An episode file is truncated or fails its checksum; ``path`` names the file.

    ``problem`` is the message without ``SKIP_BAD_HINT``, for the warning
    logged when the episode is skipped because --skip-bad was given.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.problem = message.replace(SKIP_BAD_HINT, "").strip()


class StoreWriteError(StoreError):
    """Writing to the store failed (disk full, read-only, removed); what was written before stays on disk."""


class RecorderStateError(StoreError):
    """A recorder method was called out of order, for example ``add_step`` before ``begin_episode``."""
