"""Training samples from imitation trajectories: windowed observations gathered per batch without Python loops.

Each episode's observations are held in one uint8 frame tensor ``(M, C, H, W)``
and one float32 state tensor ``(M, k)``: the buffer that ``demos.load_demos``
already fills when the trajectories are views of it, else a concatenated copy. A sample stores only
row indices into them: ``frame_rows (N, S)`` and ``state_rows (N, W)``. A batch
gathers those rows, so stacked frames are never materialised for the whole
dataset, and converts frames to float only inside the network.

Windows match ``fightenv.wrappers.ObservationHistory``: step t of an episode
gets observations ``t - S + 1 .. t`` (oldest first), and indices before the
episode start repeat its first observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from imitation.data.types import DictObs, Trajectory

from fightenv.wrappers import FRAME_KEY, STATE_KEY


@dataclass(frozen=True)
class WindowSpec:
    """Number of stacked frames and of state vectors in each observation window."""

    n_frames: int = 2
    state_window: int = 8

    def __post_init__(self) -> None:
        if self.n_frames < 1 or self.state_window < 1:
            raise ValueError(f"n_frames and state_window must be at least 1, got {self.n_frames} and "
                             f"{self.state_window}")


def _window_rows(first_row: int, length: int, window: int) -> np.ndarray:
    """Return ``(length, window)`` rows: step t reads ``first_row + max(t - window + 1 + j, 0)`` for j < window."""
    steps = np.arange(length)[:, None] + np.arange(window)[None, :] - (window - 1)
    return first_row + np.maximum(steps, 0)


def _trajectory_arrays(trajectory: Trajectory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obs = trajectory.obs
    if not isinstance(obs, DictObs):
        raise TypeError(f"expected a trajectory with DictObs observations (keys '{FRAME_KEY}', '{STATE_KEY}'), "
                        f"got {type(obs).__name__}")
    frames = obs.get(FRAME_KEY)
    states = obs.get(STATE_KEY)
    acts = np.asarray(trajectory.acts)
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames (T + 1, C, H, W) uint8, got {frames.shape} {frames.dtype}")
    if states.ndim != 2:
        raise ValueError(f"expected states (T + 1, k), got shape {states.shape}")
    if acts.ndim != 2 or frames.shape[0] != acts.shape[0] + 1:
        raise ValueError(f"expected acts (T, n) with T + 1 = {frames.shape[0]} observations, got {acts.shape}")
    return frames, states, acts


def _root(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _shared_block_rows(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]] | None:
    """Return ``(buffer, first rows)`` when every array is a contiguous block of rows of one C-contiguous buffer.

    ``demos.load_demos`` returns trajectories whose frames are such views, so
    the dataset can index that buffer instead of copying every frame.
    """
    root = _root(arrays[0])
    if not root.flags.c_contiguous or root.ndim != arrays[0].ndim or root.shape[1:] != arrays[0].shape[1:]:
        return None
    row_bytes = root.strides[0]
    root_start = root.__array_interface__["data"][0]
    first_rows = []
    for array in arrays:
        if _root(array) is not root or not array.flags.c_contiguous:
            return None
        offset = array.__array_interface__["data"][0] - root_start
        if offset % row_bytes:
            return None
        first_rows.append(offset // row_bytes)
    return root, first_rows


class WindowedDataset:
    """Samples of one split: windowed observations and multi-hot actions, gathered per batch."""

    def __init__(
        self,
        frames: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor,
        frame_rows: torch.Tensor,
        state_rows: torch.Tensor,
        episode_lengths: list[int],
        spec: WindowSpec,
    ) -> None:
        self.frames = frames
        self.states = states
        self.actions = actions
        self.frame_rows = frame_rows
        self.state_rows = state_rows
        self.episode_lengths = episode_lengths
        self.spec = spec

    @classmethod
    def from_trajectories(cls, trajectories: Sequence[Trajectory], spec: WindowSpec) -> WindowedDataset:
        """Index the observations of ``trajectories``; sample t of an episode pairs obs t with action t."""
        if not trajectories:
            raise ValueError("cannot build a dataset from zero trajectories; the split is empty")
        arrays = [_trajectory_arrays(trajectory) for trajectory in trajectories]
        frame_blocks = [frames for frames, _, _ in arrays]
        state_blocks = [states.astype(np.float32, copy=False) for _, states, _ in arrays]
        shapes = {block.shape[1:] for block in frame_blocks}
        if len(shapes) != 1:
            raise ValueError(f"trajectories have different frame shapes {sorted(shapes)}; record with one frame size")
        lengths = [acts.shape[0] for _, _, acts in arrays]

        frames, frame_starts = cls._rows_source(frame_blocks)
        states, state_starts = cls._rows_source(state_blocks)
        return cls(
            frames=torch.from_numpy(frames),
            states=torch.from_numpy(states),
            actions=torch.from_numpy((np.concatenate([acts for _, _, acts in arrays]) != 0).astype(np.float32)),
            frame_rows=torch.from_numpy(np.concatenate([
                _window_rows(start, length, spec.n_frames) for start, length in zip(frame_starts, lengths)])),
            state_rows=torch.from_numpy(np.concatenate([
                _window_rows(start, length, spec.state_window) for start, length in zip(state_starts, lengths)])),
            episode_lengths=lengths,
            spec=spec,
        )

    @staticmethod
    def _rows_source(blocks: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
        """Return one array holding every block and each block's first row, copying only when the blocks are scattered."""
        shared = _shared_block_rows(blocks)
        if shared is not None and shared[0].flags.writeable:
            return shared
        starts = np.r_[0, np.cumsum([len(block) for block in blocks])[:-1]].tolist()
        return np.concatenate(blocks), starts

    def __len__(self) -> int:
        return self.actions.shape[0]

    @property
    def n_buttons(self) -> int:
        return self.actions.shape[1]

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return tuple(self.frames.shape[1:])  # type: ignore[return-value]

    def subset(self, sample_indices: np.ndarray | torch.Tensor) -> WindowedDataset:
        """Return the samples at ``sample_indices`` sharing this dataset's preloaded observations.

        The subset counts as one episode per sample for hold lengths, because
        a random-frame subset breaks episodes apart.
        """
        index = torch.as_tensor(np.asarray(sample_indices), dtype=torch.long)
        return WindowedDataset(self.frames, self.states, self.actions[index], self.frame_rows[index],
                               self.state_rows[index], [1] * len(index), self.spec)

    def batch(self, sample_indices: torch.Tensor, device: torch.device | str = "cpu") -> tuple[dict, torch.Tensor]:
        """Gather a batch: ``frame (B, S*C, H, W)`` uint8, ``state (B, W, k)`` float32, actions ``(B, n)`` float32."""
        frame_rows = self.frame_rows[sample_indices]
        batch_size = frame_rows.shape[0]
        channels, height, width = self.frame_shape
        frames = self.frames[frame_rows.reshape(-1)].reshape(batch_size, -1, height, width)
        states = self.states[self.state_rows[sample_indices]]
        obs = {FRAME_KEY: frames.to(device, non_blocking=True), STATE_KEY: states.to(device, non_blocking=True)}
        return obs, self.actions[sample_indices].to(device, non_blocking=True)

    def windowed_trajectories(self) -> list[Trajectory]:
        """Materialise every sample's window as imitation Trajectories (for ``bc.BC``, and for tests).

        Each returned Trajectory repeats its last windowed observation as the
        final one, since the dataset does not keep the observation after the last action.
        This copies every frame ``n_frames`` times.
        """
        trajectories = []
        start = 0
        for length in self.episode_lengths:
            rows = torch.arange(start, start + length)
            obs, acts = self.batch(rows)
            frames = np.concatenate([obs[FRAME_KEY].numpy(), obs[FRAME_KEY][-1:].numpy()])
            states = np.concatenate([obs[STATE_KEY].numpy(), obs[STATE_KEY][-1:].numpy()])
            trajectories.append(Trajectory(
                obs=DictObs({FRAME_KEY: frames, STATE_KEY: states}), acts=acts.numpy(), infos=None, terminal=True,
            ))
            start += length
        return trajectories
