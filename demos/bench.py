"""Benchmark of the demo store: expert recording rate, and loading time and memory against imitation's format.

The comparison with ``imitation.data.serialize`` (imitation 1.0.1) is on the same
episodes. ``serialize.save`` rejects ``DictObs`` observations, so the imitation
side stores what a user of imitation would keep: each trajectory with the frame
array alone as its observation, ``(T+1, C, H, W)`` uint8, and the float32
actions. Its state vectors are left out, which makes its files smaller and its
loading faster than a full copy would be, so the comparison favours imitation. Its loading time covers ``serialize.load`` and turning every
trajectory's observations and actions into numpy arrays, which training needs.

Each loader runs in a fresh Python process with its imports done. Peak memory
is the process's peak resident set size (``VmHWM``, reset through
``/proc/self/clear_refs`` just before loading) minus its resident set size at
that moment, so it needs Linux 4.0 or later.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from demos.collect import CollectConfig, run_collection
from demos.loader import load_demos

logger = logging.getLogger(__name__)

LOAD_SPEEDUP_TARGET = 50.0
MEMORY_RATIO_TARGET = 1.2
RECORDING_RATE_TARGET = 1000.0


@dataclass(frozen=True)
class BenchConfig:
    """Settings of ``scripts/bench_demos.py``."""

    episodes: int = 30
    """Expert episodes to record and load."""
    seed: int = 0
    """Reset seed of the first episode."""
    round_time_s: float = 40.0
    """Round length in seconds of game time."""
    workers: int = 1
    """Processes for the recording measurement (1 measures one process, the rate that matters per core)."""
    work_dir: str | None = None
    """Directory for the stores (default: a temporary directory, removed at the end)."""
    json_out: str = "runs/bench_demos.json"
    """Path of the JSON results."""
    skip_imitation: bool = False
    """Measure only this store, without the imitation comparison."""
    repeats: int = 5
    """Fresh processes per loader; the fastest time and the largest peak memory are reported."""
    realtime_s: float = 60.0
    """Seconds of the real-time recording check at 60 decisions per second (0 skips it)."""


_MEASURE_SCRIPT = r"""
import json, sys, time
import numpy as np

def status_bytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field + " missing from /proc/self/status")

kind, path = sys.argv[1], sys.argv[2]
if kind == "demos":
    from demos.loader import load_demos
    import imitation.data.types
else:
    from imitation.data import serialize
# Reset the peak resident set size (VmHWM) to the current one, so imports do not count.
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")
before = status_bytes("VmRSS")
start = time.perf_counter()
if kind == "demos":
    demo_set = load_demos(path)
    frames = [t.obs.get("frame") for t in demo_set.trajectories]
    acts = [t.acts for t in demo_set.trajectories]
else:
    trajectories = serialize.load(path)
    frames, acts = [], []
    for trajectory in trajectories:
        frames.append(np.asarray(trajectory.obs))
        acts.append(np.asarray(trajectory.acts))
seconds = time.perf_counter() - start
peak = status_bytes("VmHWM")
print(json.dumps({
    "seconds": seconds,
    "peak_extra_bytes": peak - before,
    "frame_bytes": int(sum(f.shape[0] * int(np.prod(f.shape[1:])) for f in frames)),
    "frame_dtype": str(frames[0].dtype),
    "steps": int(sum(len(a) for a in acts)),
}))
"""


def measure_load(kind: str, path: Path, repeats: int = 1) -> dict[str, Any]:
    """Load a store (``kind`` "demos") or an imitation dataset (``kind`` "imitation") in fresh processes.

    Returns the fastest of ``repeats`` times, because other load on the machine
    only ever slows a run down, and the largest peak memory.
    """
    repo = Path(__file__).resolve().parents[1]
    runs = []
    for _ in range(max(1, repeats)):
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE_SCRIPT, kind, str(path)],
            capture_output=True, text=True, cwd=repo, env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"loading {path} as {kind} failed:\n{done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = dict(runs[0])
    result["seconds"] = min(run["seconds"] for run in runs)
    result["all_seconds"] = [run["seconds"] for run in runs]
    result["peak_extra_bytes"] = max(run["peak_extra_bytes"] for run in runs)
    return result


def save_imitation_copy(store: Path, target: Path) -> float:
    """Save the store's episodes with ``imitation.data.serialize.save`` (frames as observations); return seconds."""
    from imitation.data import serialize
    from imitation.data.types import Trajectory

    demo_set = load_demos(store)
    trajectories = [
        Trajectory(obs=t.obs.get("frame"), acts=t.acts, infos=None, terminal=t.terminal)
        for t in demo_set.trajectories
    ]
    start = time.perf_counter()
    serialize.save(target, trajectories)
    return time.perf_counter() - start


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class _RenderingPilot:
    """The human pilot's real-time loop without a keyboard: holds no button, renders the 640x480 view each step.

    Rendering stands in for the window a person watches, so the check pays the
    same per-step cost except drawing on screen.
    """

    name = "human"

    def __init__(self, env, decision_hz: float) -> None:
        from agents.human import HumanPilot, KeyboardState

        self.env = env
        self.pilot = HumanPilot(KeyboardState(env.unwrapped.button_names), decision_hz)

    def reset(self, env, seed) -> None:
        self.pilot.reset(env, seed)

    def act(self, obs):
        self.env.render()
        return self.pilot.act(obs)


def measure_realtime(store: Path, seconds: float) -> dict[str, Any]:
    """Record ``seconds`` of rounds at 60 decisions per second (frame skip 1, 84x84 grey) in real time.

    The pilot holds no button, so the CPU may win a round early; rounds follow
    each other until ``seconds`` of decisions are recorded.
    """
    from agents.session import run_episode
    from demos.collect import make_env
    from demos.manifest import StoreLayout
    from demos.store import EpisodeStore

    config = CollectConfig(frame_skip=1, round_time_s=seconds + 10.0, out=str(store))
    env = make_env(config, render_mode="rgb_array")
    layout = StoreLayout.from_env(env)
    pilot = _RenderingPilot(env, layout.decision_hz)
    target_steps = int(seconds * layout.decision_hz)
    episodes = []
    with EpisodeStore.open(
        store, "create", game=layout.game, button_names=layout.button_names, state_names=layout.state_names,
        frame_shape=layout.frame_shape, decision_hz=layout.decision_hz, pilot="human",
    ) as writer:
        recorded = 0
        while recorded < target_steps:
            result = run_episode(env, pilot, seed=len(episodes), recorder=writer, max_steps=target_steps - recorded)
            recorded += result.steps
            episodes.append(pilot.pilot.pacer.stats())
    env.close()
    return {
        "decision_hz": layout.decision_hz,
        "frame_shape": list(layout.frame_shape),
        "episodes": len(episodes),
        "steps": sum(e.steps for e in episodes),
        "wall_time_s": sum(e.wall_time_s for e in episodes),
        "nominal_hz": layout.decision_hz,
        "achieved_hz": sum(e.steps - 1 for e in episodes) / sum(e.tick_span_s for e in episodes),
        "dropped_steps": sum(e.dropped_steps for e in episodes),
        "max_late_s": max(e.max_late_s for e in episodes),
    }


def run_benchmark(config: BenchConfig) -> dict[str, Any]:
    """Record, load and compare as ``config`` describes; return the results (also written as JSON)."""
    temporary = None
    if config.work_dir is None:
        temporary = tempfile.mkdtemp(prefix="bench_demos_")
        work = Path(temporary)
    else:
        work = Path(config.work_dir)
        work.mkdir(parents=True, exist_ok=True)
    store = work / "store"
    for old in (store, work / "realtime"):
        if old.exists():
            shutil.rmtree(old)
    try:
        # Recording: the expert through the session loop, with every write.
        collect = CollectConfig(
            pilot="expert", out=str(store), episodes=config.episodes, seed=config.seed,
            round_time_s=config.round_time_s, workers=config.workers,
        )
        recorded = run_collection(collect, out_stream=_NullStream())
        results: dict[str, Any] = {
            "config": asdict(config),
            "recording": recorded.summary(),
            "store_bytes": directory_bytes(store / "episodes"),
        }

        # Loading this store.
        results["demos_load"] = measure_load("demos", store, config.repeats)
        raw = results["demos_load"]["frame_bytes"]
        results["demos_load"]["memory_ratio"] = results["demos_load"]["peak_extra_bytes"] / raw

        # Loading the same episodes saved with imitation.
        if not config.skip_imitation:
            imitation_dir = work / "imitation"
            if imitation_dir.exists():
                shutil.rmtree(imitation_dir)
            results["imitation_save_s"] = save_imitation_copy(store, imitation_dir)
            results["imitation_bytes"] = directory_bytes(imitation_dir)
            results["imitation_load"] = measure_load("imitation", imitation_dir, config.repeats)
            results["imitation_load"]["memory_ratio"] = results["imitation_load"]["peak_extra_bytes"] / raw
            results["load_speedup"] = results["imitation_load"]["seconds"] / results["demos_load"]["seconds"]

        # Real-time recording at 60 decisions per second.
        if config.realtime_s > 0:
            logger.info("recording %.0f s in real time at 60 decisions per second", config.realtime_s)
            results["realtime"] = measure_realtime(work / "realtime", config.realtime_s)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)

    results["load_average_1_5_15_min"] = list(os.getloadavg())
    results["cpu_count"] = os.cpu_count()
    results["targets"] = {
        "load_speedup_min": LOAD_SPEEDUP_TARGET,
        "memory_ratio_max": MEMORY_RATIO_TARGET,
        "recording_steps_per_s_min": RECORDING_RATE_TARGET,
    }
    out = Path(config.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", out)
    return results


def format_results(results: dict[str, Any]) -> str:
    """Render the results as a table with each measurement next to its target."""
    recording = results["recording"]
    demos = results["demos_load"]
    mib = 1024 * 1024
    rows = [
        ("expert recording (steps/s, incl. writes)", f"{recording['steps_per_s']:.0f}", f">= {RECORDING_RATE_TARGET:.0f}"),
        ("episodes / steps", f"{recording['episodes']} / {recording['steps']}", ""),
        ("raw frame bytes (MiB)", f"{demos['frame_bytes'] / mib:.1f}", ""),
        ("store size on disk (MiB)", f"{results['store_bytes'] / mib:.2f}", ""),
        ("load_demos time (s)", f"{demos['seconds']:.3f}", ""),
        ("load_demos peak memory / raw frame bytes", f"{demos['memory_ratio']:.2f}", f"<= {MEMORY_RATIO_TARGET}"),
        ("load_demos frame dtype", demos["frame_dtype"], "uint8"),
    ]
    if "imitation_load" in results:
        imitation = results["imitation_load"]
        rows += [
            ("imitation size on disk (MiB)", f"{results['imitation_bytes'] / mib:.2f}", ""),
            ("imitation serialize.load + to numpy (s)", f"{imitation['seconds']:.3f}", ""),
            ("imitation peak memory / raw frame bytes", f"{imitation['memory_ratio']:.2f}", ""),
            ("imitation frame dtype after loading", imitation["frame_dtype"], ""),
            ("loading speed-up over imitation", f"{results['load_speedup']:.0f}x", f">= {LOAD_SPEEDUP_TARGET:.0f}x"),
        ]
    if "realtime" in results:
        realtime = results["realtime"]
        rows += [
            (f"real-time recording: seconds at {realtime['nominal_hz']:g} Hz", f"{realtime['wall_time_s']:.0f}", ""),
            ("real-time recording: rounds / steps", f"{realtime['episodes']} / {realtime['steps']}", ""),
            ("real-time recording: achieved decisions/s", f"{realtime['achieved_hz']:.2f}", f"{realtime['nominal_hz']:g}"),
            ("real-time recording: dropped steps", f"{realtime['dropped_steps']}", "0"),
            ("real-time recording: max lateness (ms)", f"{1000 * realtime['max_late_s']:.1f}", ""),
        ]
    load = results["load_average_1_5_15_min"]
    rows.append(("machine load average (1 min) / CPUs", f"{load[0]:.1f} / {results['cpu_count']}", ""))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measurement':<{width}}  {'value':>14}  target"]
    lines += [f"{name:<{width}}  {value:>14}  {target}" for name, value, target in rows]
    return "\n".join(lines)


class _NullStream:
    """Discards the store report that ``run_collection`` prints."""

    def write(self, text: str) -> int:
        return len(text)
