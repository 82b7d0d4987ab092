"""Recording sessions: play Arena rounds with a pilot and write every step into an episode store.

``run_collection`` is what ``scripts/collect_demos.py`` calls. The expert pilot
records headless, optionally in several worker processes that share one
session of the store and number their episodes per worker. The human pilot
plays the Arena in a window with the keyboard (``agents.human``). Every session
ends with the imbalance report of the whole store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import queue
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from demos.errors import StoreError, StoreWriteError
from demos.manifest import StoreLayout
from demos.report import ImbalanceReport, format_report, plot_report, report_store, write_report_json
from demos.store import EpisodeStore

logger = logging.getLogger(__name__)

PILOTS = ("expert", "human")


@dataclass(frozen=True)
class CollectConfig:
    """Settings of one recording session (``scripts/collect_demos.py``)."""

    pilot: str = "expert"
    """Pilot: "expert" (the Arena's scripted expert, headless) or "human" (keyboard, in a window)."""
    out: str = "runs/demos"
    """Store directory to create, or to add to with --resume."""
    episodes: int = 10
    """Episodes to record in this session."""
    seed: int = 0
    """Reset seed of the first episode; episode i of the session uses seed + i."""
    difficulty: str = "normal"
    """CPU opponent level of the Arena."""
    workers: int = 1
    """Expert only: processes recording in parallel, each writing its own episodes."""
    resume: bool = False
    """Add episodes to the existing store at --out; it must have the same buttons and frame shape."""
    report: str | None = None
    """Print the imbalance report of the store in this directory and exit, recording nothing."""
    json: bool = False
    """Print the report as JSON instead of a table."""
    frame_size: int = 84
    """Side of the square observation frame in pixels."""
    color: bool = False
    """Store RGB frames (3 channels) instead of grey."""
    frame_skip: int = 4
    """Game ticks (60 per second) per decision; 4 gives 15 decisions per second."""
    round_time_s: float = 40.0
    """Round length in seconds of game time."""
    max_steps: int | None = None
    """Cut episodes after this many steps (None: play each round to its end)."""
    reaction_s: float = 0.15
    """Expert only: reaction delay of the scripted expert in seconds."""
    chunk_s: float = 1.0
    """Seconds of steps buffered before a chunk is written; a crash loses at most this much."""
    countdown_s: float = 3.0
    """Human only: countdown in seconds before each episode starts recording."""
    profile: str | None = None
    """Human only: game profile (TOML) of a real game window to record instead of the Arena."""
    skip_bad: bool = False
    """Report: leave out corrupt episode files with a warning instead of stopping."""
    plot: str | None = None
    """PNG path of the report plot (default: report.png in the store directory)."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the option and the accepted values for an invalid setting."""
        if self.report is not None:
            return
        if self.pilot not in PILOTS:
            raise ValueError(f"--pilot must be one of {list(PILOTS)}, got {self.pilot!r}")
        if self.episodes < 1:
            raise ValueError(f"--episodes must be at least 1, got {self.episodes}")
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.workers > 1 and self.pilot != "expert":
            raise ValueError(f"--workers {self.workers} needs --pilot expert; a human plays in one process")
        if self.profile is not None and self.pilot != "human":
            raise ValueError(f"--profile {self.profile} needs --pilot human; the scripted expert plays only the Arena")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"--max-steps must be at least 1 or unset, got {self.max_steps}")
        if not self.chunk_s > 0:
            raise ValueError(f"--chunk-s must be positive, got {self.chunk_s}")


@dataclass
class CollectResult:
    """Episodes and steps that a recording session wrote, and its rate."""

    episodes: int = 0
    steps: int = 0
    wall_time_s: float = 0.0
    stopped: str | None = None
    """Reason recording stopped before all requested episodes, or None."""
    worker_steps_per_s: list[float] = field(default_factory=list)
    report: ImbalanceReport | None = None

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_time_s if self.wall_time_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "steps": self.steps,
            "wall_time_s": self.wall_time_s,
            "steps_per_s": self.steps_per_s,
            "worker_steps_per_s": self.worker_steps_per_s,
            "stopped": self.stopped,
        }


def make_env(config: CollectConfig, render_mode: str | None = None):
    """Make the Arena, or with ``config.profile`` the screen env of that game, observing only."""
    import gymnasium as gym

    import fightenv

    if config.profile is not None:
        # The person presses the game's keys; the env only captures, and the recorder reads the hotkeys.
        return gym.make(fightenv.SCREEN_ID, profile=config.profile, send_keys=False, listen_hotkeys=False)
    return gym.make(
        fightenv.ARENA_ID,
        difficulty=config.difficulty,
        frame_size=config.frame_size,
        color=config.color,
        frame_skip=config.frame_skip,
        round_time_s=config.round_time_s,
        render_mode=render_mode,
    )


def run_collection(config: CollectConfig, *, out_stream=None) -> CollectResult | ImbalanceReport:
    """Record the session that ``config`` describes and print the store's report, or only print the report of ``config.report``."""
    config.validate()
    out_stream = out_stream or sys.stdout
    if config.report is not None:
        return print_report(config.report, config, out_stream)

    profile_name = profile_hash = None
    if config.profile is not None:
        # Check the profile against the store before touching the screen.
        layout, profile_name, profile_hash = _profile_layout(config.profile)
        if config.resume:
            _check_profile_matches(config.out, layout, profile_name, profile_hash)
        env = make_env(config)
    else:
        env = make_env(config, render_mode="human" if config.pilot == "human" else None)
        layout = StoreLayout.from_env(env)
    store = EpisodeStore.open(
        config.out,
        "append" if config.resume else "create",
        game=layout.game,
        button_names=layout.button_names,
        state_names=layout.state_names,
        frame_shape=layout.frame_shape,
        decision_hz=layout.decision_hz,
        session_config=asdict(config),
        pilot=config.pilot,
        chunk_s=config.chunk_s,
        profile_name=profile_name,
        profile_hash=profile_hash,
    )
    if config.resume:
        _warn_repeated_seeds(config)

    if config.pilot == "human":
        from agents.human import record_human_session

        result = record_human_session(env, store, config)
    elif config.workers == 1:
        result = _record_expert(env, store, config, range(config.episodes))
    else:
        env.close()
        result = _record_expert_workers(store, config)
    env.close()
    logger.info(
        "recorded %d episodes, %d steps in %.1f s: %.0f steps/s including writes%s",
        result.episodes, result.steps, result.wall_time_s, result.steps_per_s,
        f"; stopped early: {result.stopped}" if result.stopped else "",
    )
    result.report = print_report(config.out, config, out_stream)
    return result


def _profile_layout(path: str) -> tuple[StoreLayout, str, str]:
    """Read the store layout a game profile produces, and the profile's name and content hash."""
    from fightenv.screen.profile import load_profile

    profile = load_profile(path)
    channels = 3 if profile.frame.color else 1
    layout = StoreLayout(
        game=profile.name,
        button_names=tuple(profile.buttons),
        state_names=tuple(profile.state_names),
        frame_shape=(channels, *profile.frame.size),
        decision_hz=float(profile.decision_hz),
    )
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return layout, profile.name, digest


def _check_profile_matches(store_path: str, layout: StoreLayout, profile_name: str, profile_hash: str) -> None:
    """Raise ``StoreMismatchError`` when the profile's game, buttons or frame differ from the store's."""
    from demos.manifest import read_manifest

    manifest = read_manifest(Path(store_path))
    StoreLayout.from_manifest(manifest).check_matches(
        store_path, game=layout.game, button_names=layout.button_names,
        state_names=layout.state_names, frame_shape=layout.frame_shape,
    )
    hashes = {s.get("profile_hash") for s in manifest["sessions"] if s.get("profile_name") == profile_name}
    hashes.discard(None)
    if hashes and profile_hash not in hashes:
        logger.warning(
            "profile %s changed since earlier sessions of store %s (hash %s, before %s); "
            "its probes may read the state differently",
            profile_name, store_path, profile_hash, sorted(hashes),
        )


def print_report(path: str, config: CollectConfig, out_stream) -> ImbalanceReport:
    """Print the imbalance report of the store at ``path`` and write its PNG (and JSON) next to it."""
    report = report_store(path, skip_bad=config.skip_bad)
    if config.json:
        out_stream.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        out_stream.write(format_report(report) + "\n")
    plot_path = Path(config.plot) if config.plot else Path(path) / "report.png"
    try:
        plot_report(report, plot_path)
        write_report_json(report, plot_path.with_suffix(".json"))
        logger.info("wrote the report plot %s and %s", plot_path, plot_path.with_suffix(".json"))
    except OSError as error:
        logger.warning("could not write the report plot %s: %s; pass --plot PATH to write it elsewhere", plot_path, error)
    return report


def _record_expert(env, store: EpisodeStore, config: CollectConfig, episode_numbers, progress=None) -> CollectResult:
    """Record the given episode numbers with the scripted expert into an open store."""
    from agents.pilots import ExpertPilot
    from agents.session import run_episode

    pilot = ExpertPilot(seed=config.seed, reaction_s=config.reaction_s)
    result = CollectResult()
    bar = None
    if progress is None:
        from tqdm import tqdm

        bar = tqdm(total=len(episode_numbers), desc="recording (expert)", unit="episode")
    start_s = time.perf_counter()
    try:
        with stop_on_failure(result):
            for number in episode_numbers:
                episode = run_episode(
                    env, pilot, seed=config.seed + number, recorder=store, max_steps=config.max_steps
                )
                result.episodes += 1
                result.steps += episode.steps
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(steps_per_s=f"{result.steps / (time.perf_counter() - start_s):.0f}")
                if progress is not None:
                    progress(episode.steps)
    finally:
        store.close(result.stopped)
        if bar is not None:
            bar.close()
    result.wall_time_s = time.perf_counter() - start_s
    result.worker_steps_per_s = [result.steps_per_s]
    return result


@contextlib.contextmanager
def stop_on_failure(result: CollectResult) -> Iterator[None]:
    """End recording on a failed write or Ctrl+C by setting ``result.stopped``, so the session still reports."""
    try:
        yield
    except StoreWriteError as error:
        result.stopped = str(error)
        logger.error("recording stopped: %s", error)
    except KeyboardInterrupt:
        result.stopped = "interrupted (Ctrl+C)"
        logger.warning("recording interrupted; the open episode is kept as a partial episode")


def _worker_main(config_dict: dict, session: int, worker: int, messages) -> None:
    """Entry point of one expert worker process: record episodes worker, worker + W, ... of the session."""
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s %(levelname)s worker {worker} %(name)s: %(message)s")
    config = CollectConfig(**config_dict)
    try:
        env = make_env(config)
        layout = StoreLayout.from_env(env)
        store = EpisodeStore.open(
            config.out, "append", button_names=layout.button_names, frame_shape=layout.frame_shape,
            state_names=layout.state_names, session=session, worker=worker, pilot=config.pilot, chunk_s=config.chunk_s,
        )
        numbers = range(worker, config.episodes, config.workers)
        result = _record_expert(env, store, config, numbers, progress=lambda steps: messages.put(("episode", worker, steps)))
        env.close()
        messages.put(("done", worker, result.summary()))
    except (StoreError, OSError, ValueError) as error:
        messages.put(("failed", worker, f"{type(error).__name__}: {error}"))


def _record_expert_workers(store: EpisodeStore, config: CollectConfig) -> CollectResult:
    """Record with ``config.workers`` processes that share the session ``store`` opened."""
    from tqdm import tqdm

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    processes = [
        context.Process(target=_worker_main, args=(asdict(config), store.session, worker, messages), daemon=True)
        for worker in range(config.workers)
    ]
    result = CollectResult()
    start_s = time.perf_counter()
    for process in processes:
        process.start()
    pending = set(range(config.workers))
    failures = []
    try:
        with tqdm(total=config.episodes, desc=f"recording (expert, {config.workers} workers)", unit="episode") as bar:
            while pending:
                try:
                    kind, worker, payload = messages.get(timeout=1.0)
                except queue.Empty:
                    # A worker killed or crashed without reporting never sends "done".
                    for worker in sorted(pending):
                        code = processes[worker].exitcode
                        if code is not None and code != 0:
                            pending.discard(worker)
                            failures.append(f"worker {worker} exited with code {code}")
                            logger.error("worker %d exited with code %d; its finished episodes are kept", worker, code)
                    continue
                if kind == "episode":
                    result.episodes += 1
                    result.steps += payload
                    bar.update(1)
                    bar.set_postfix(steps_per_s=f"{result.steps / (time.perf_counter() - start_s):.0f}")
                elif kind == "done":
                    pending.discard(worker)
                    result.worker_steps_per_s.append(payload["steps_per_s"])
                    if payload["stopped"]:
                        failures.append(f"worker {worker}: {payload['stopped']}")
                else:
                    pending.discard(worker)
                    failures.append(f"worker {worker}: {payload}")
                    logger.error("worker %d failed: %s", worker, payload)
    except KeyboardInterrupt:
        # Ctrl+C reaches the workers too; each keeps its open episode as partial and exits.
        failures.append("interrupted (Ctrl+C)")
        logger.warning("recording interrupted; waiting for the workers to close their episodes")
    for process in processes:
        process.join(timeout=10)
    result.wall_time_s = time.perf_counter() - start_s
    result.stopped = "; ".join(failures) or None
    return result


def _warn_repeated_seeds(config: CollectConfig) -> None:
    from demos.loader import list_episodes

    recorded = {info.seed for info in list_episodes(config.out) if info.seed is not None}
    repeated = sorted(recorded & {config.seed + i for i in range(config.episodes)})
    if repeated:
        logger.warning(
            "seeds %s are already in store %s; with the same pilot they replay the same rounds. "
            "Pass a --seed above %d for new rounds.",
            repeated[:10] if len(repeated) <= 10 else f"{repeated[:10]} and {len(repeated) - 10} more",
            config.out, max(recorded),
        )


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
