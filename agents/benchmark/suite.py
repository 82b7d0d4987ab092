"""The benchmark suite behind ``scripts/benchmark.py``: settings, machine facts and the runner.

The timing sections run first, one after another in this process, because
anything running beside them distorts them. Each records the load average
before and after it. The quality sections follow; each spreads its work over
``workers`` processes with one torch thread each. Every section stores its
result together with the command line, the machine facts and the UTC time it
ran. So ``--only`` can rerun some sections and merge them into the previous
``results.json``, and the page still states where every table came from.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import logging
import os
import platform
import shlex
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from agents.benchmark.dagger_seeds import DaggerSeedsSettings, run_dagger_seeds
from agents.benchmark.recipe import RecipeSettings, run_recipe as run_recipe_seeds
from agents.benchmark.latency import LatencySettings, measure_latency

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
TIMING_SECTIONS = ("arena", "screen", "latency", "train", "demos")
QUALITY_SECTIONS = ("recipe", "dagger", "ablations")
SECTIONS = TIMING_SECTIONS + QUALITY_SECTIONS
RESULTS_FILE = "results.json"


class SuiteError(ValueError):
    """Invalid suite input (section names, output directory, results file); the message names the fix."""


@dataclass(frozen=True)
class ArenaSettings:
    """Sizes of the Arena speed and balance section (``scripts/bench_arena.py``)."""

    steps: int = 20_000
    """Env steps per speed run."""
    repeats: int = 5
    """Speed runs per env; the median is reported."""
    rounds: int = 200
    """Seeded rounds per pilot for the win rates."""


@dataclass(frozen=True)
class ScreenSettings:
    """Sizes of the screen-loop section (``fightenv/screen/bench.py``)."""

    steps: int = 400
    """Env steps timed per run."""
    repeats: int = 3
    """Runs, each on a fresh Xvfb and Arena window; the report gives the median of their p50 and p99."""


@dataclass(frozen=True)
class TrainSettings:
    """Sizes of the training-throughput section (``agents/bench_train.py``)."""

    demo_episodes: int = 90
    """Expert rounds recorded (reset seeds from 5000) as the training data of every trainer."""
    batches: int = 80
    """Timed optimizer steps per trainer run."""
    warmup_batches: int = 5
    """Optimizer steps before timing starts."""
    repeats: int = 3
    """Runs per trainer, interleaved; the median samples/s is reported."""
    trainers: str = "ours,ours_bf16,bc,bc_button_loss"
    """Comma-separated trainers of ``agents.bench_train.TRAINERS``."""


@dataclass(frozen=True)
class DemosSettings:
    """Sizes of the demonstration-loading section (``demos/bench.py``)."""

    episodes: int = 30
    """Expert rounds recorded and then loaded by both loaders."""
    repeats: int = 5
    """Fresh processes per loader; the fastest time is reported."""
    realtime_s: float = 60.0
    """Seconds of real-time recording at 60 decisions per second (0 skips it)."""


def _default_ablations() -> Any:
    from agents.benchmark.ablations import full_settings

    return full_settings()


@dataclass(frozen=True)
class SuiteSettings:
    """Every size of one suite run; ``quick_settings``, ``full_settings`` and ``tiny_settings`` fill it."""

    name: str = "full"
    """Preset the sizes come from: quick, full or tiny."""
    arena: ArenaSettings = field(default_factory=ArenaSettings)
    screen: ScreenSettings = field(default_factory=ScreenSettings)
    latency: LatencySettings = field(default_factory=LatencySettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    demos: DemosSettings = field(default_factory=DemosSettings)
    recipe: RecipeSettings = field(default_factory=RecipeSettings)
    dagger: DaggerSeedsSettings = field(default_factory=DaggerSeedsSettings)
    ablations: Any = field(default_factory=_default_ablations)
    """``agents.benchmark.ablations.AblationSettings``."""
    workers: int = 2
    """Processes of the quality sections, one torch thread each."""


def full_settings(workers: int = 2) -> SuiteSettings:
    """Sizes of the published page: about 90 minutes on a 2-core machine with 2 workers.

    Measured on the 2-core development VM on 2026-12-05, in several
    invocations: the timing sections took 6 min 27 s on the idle machine, the
    ablations 48 min, and the recipe section (5 seeds) and DAgger about
    36 min together beside other jobs.
    """
    from agents.benchmark import ablations

    return SuiteSettings(name="full", ablations=dataclasses.replace(ablations.full_settings(), workers=workers),
                         workers=workers)


def quick_settings(workers: int = 2) -> SuiteSettings:
    """Sizes meant to finish in about 10 minutes on a 2-core machine with 2 workers; 3 DAgger seeds still.

    On the idle 2-core development VM (2026-12-04) the whole run took 8 min 26 s, of which the ablations
    took 306 s, the recipe section 52 s and DAgger 50 s.
    """
    from agents.benchmark import ablations

    return SuiteSettings(
        name="quick",
        arena=ArenaSettings(steps=5_000, repeats=3, rounds=40),
        screen=ScreenSettings(steps=150, repeats=2),
        latency=LatencySettings(steps=1000, repeats=3, batches=10),
        train=TrainSettings(demo_episodes=30, batches=30, warmup_batches=3, repeats=2),
        demos=DemosSettings(episodes=10, repeats=3, realtime_s=10.0),
        recipe=RecipeSettings(seeds=(0, 1, 2), episodes=30, epochs=12, eval_episodes=20),
        dagger=DaggerSeedsSettings(demo_episodes=20, bc_epochs=10, rounds=2, episodes_per_round=4, epochs=2,
                                   eval_episodes=20),
        ablations=dataclasses.replace(ablations.quick_settings(), workers=workers),
        workers=workers,
    )


def tiny_settings(workers: int = 2) -> SuiteSettings:
    """Sizes for the end-to-end test: every section runs, the numbers mean nothing."""
    from agents.benchmark import ablations

    return SuiteSettings(
        name="tiny",
        arena=ArenaSettings(steps=500, repeats=2, rounds=2),
        screen=ScreenSettings(steps=20, repeats=1),
        latency=LatencySettings(steps=200, warmup_steps=5, repeats=2, batch_size=32, batches=2,
                                recorded_observations=50),
        train=TrainSettings(demo_episodes=3, batches=3, warmup_batches=1, repeats=1, trainers="ours,bc"),
        demos=DemosSettings(episodes=2, repeats=1, realtime_s=1.0),
        recipe=RecipeSettings(seeds=(0, 1), episodes=4, epochs=1, eval_episodes=2),
        dagger=DaggerSeedsSettings(seeds=(0, 1), demo_episodes=4, bc_epochs=1, rounds=1, episodes_per_round=1, epochs=1,
                                   eval_episodes=2),
        ablations=dataclasses.replace(ablations.tiny_settings(), workers=workers),
        workers=workers,
    )


PRESETS: dict[str, Callable[[int], SuiteSettings]] = {
    "quick": quick_settings, "full": full_settings, "tiny": tiny_settings,
}


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or platform's description where that file is missing."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict[str, str]:
    """Return the versions of Python and of the packages the benchmarks exercise."""
    import cv2
    import gymnasium
    import imitation
    import numpy
    import stable_baselines3
    import torch

    return {
        "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__, "imitation": imitation.__version__,
        "stable_baselines3": stable_baselines3.__version__, "opencv": cv2.__version__,
    }


def machine_facts() -> dict[str, Any]:
    """Describe the machine: CPU model, logical cores, cores this process may use, load average, versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "load_average_1_5_15_min": list(os.getloadavg()),
        "versions": package_versions(),
        "date_utc": utc_now(),
    }


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _load_script(name: str):
    """Import ``scripts/NAME.py`` as a module (scripts/ is not a package)."""
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_script_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}: file missing or not Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_arena(settings: SuiteSettings, work_dir: Path) -> dict[str, Any]:
    """Measure Arena and CartPole steps/s pinned to one core, and the expert's win rates."""
    bench_arena = _load_script("bench_arena")
    config = bench_arena.BenchArenaConfig(rounds=settings.arena.rounds, steps=settings.arena.steps,
                                          repeats=settings.arena.repeats)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        bench_arena.pin_to_one_core()
        speed = bench_arena.measure_speed(config)
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    balance = bench_arena.measure_balance(config)
    return {
        "config": asdict(config),
        "steps_per_s": speed,
        "expert": balance["expert"].to_dict(),
        "masked": balance["masked"].to_dict(),
        "masked_buttons": list(bench_arena.RARE_BUTTONS),
        "expert_win_rate_by_level": balance["expert_win_rate_by_level"],
    }


def run_screen(settings: SuiteSettings, work_dir: Path) -> dict[str, Any]:
    """Time the screen env loop on the Arena window under a private Xvfb, ``repeats`` times."""
    from fightenv.screen.bench import BenchScreenConfig, run_benchmark

    runs = []
    for repeat in range(settings.screen.repeats):
        config = BenchScreenConfig(steps=settings.screen.steps, seed=repeat,
                                   json=str(work_dir / f"run{repeat}.json"))
        result = run_benchmark(config)
        result.pop("table", None)
        runs.append(result)
    phases = runs[0]["timing"]["phases"].keys()
    median_phases = {
        phase: {stat: statistics.median(run["timing"]["phases"][phase][stat] for run in runs)
                for stat in ("p50_ms", "p99_ms", "max_ms")}
        for phase in phases
    }
    per_step = {stat: statistics.median(run["capture_preprocess_probes"][stat] for run in runs)
                for stat in ("p50_ms", "p99_ms", "max_ms")}
    return {
        "runs": runs,
        "phases": median_phases,
        "capture_preprocess_probes": per_step | {"budget_ms": runs[0]["capture_preprocess_probes"]["budget_ms"]},
        "achieved_hz": statistics.median(run["timing"]["achieved_hz"] for run in runs),
        "target_hz": runs[0]["timing"]["target_hz"],
        "steps": sum(run["timing"]["steps"] for run in runs),
        "overruns": sum(run["timing"]["overruns"] for run in runs),
        "observation": runs[0]["observation"],
        "window": runs[0]["window"],
        "probes": runs[0]["probes"],
    }


def run_latency(settings: SuiteSettings, work_dir: Path) -> dict[str, Any]:
    return measure_latency(settings.latency)


def run_train(settings: SuiteSettings, work_dir: Path) -> dict[str, Any]:
    """Measure samples/s and peak memory of this package's loop against imitation's bc.BC on expert rounds."""
    from agents.bench_train import BenchTrainConfig, run_bench
    from demos.collect import CollectConfig, run_collection

    demos = work_dir / "demos"
    if not (demos / "manifest.json").exists():
        run_collection(CollectConfig(pilot="expert", out=str(demos), episodes=settings.train.demo_episodes,
                                     seed=5000), out_stream=io.StringIO())
    config = BenchTrainConfig(demos=str(demos), batches=settings.train.batches,
                              warmup_batches=settings.train.warmup_batches, repeats=settings.train.repeats,
                              num_threads=1, trainers=settings.train.trainers,
                              json_out=str(work_dir / "bench_train.json"))
    result = run_bench(config).to_dict()
    Path(config.json_out).write_text(json.dumps(result, indent=2))
    return result


def run_demos(settings: SuiteSettings, work_dir: Path) -> dict[str, Any]:
    """Measure the expert recording rate, and load time and memory of the demo store against imitation's."""
    from demos.bench import BenchConfig, run_benchmark

    return run_benchmark(BenchConfig(episodes=settings.demos.episodes, repeats=settings.demos.repeats,
                                     realtime_s=settings.demos.realtime_s,
                                     json_out=str(work_dir / "bench_demos.json"),
                                     work_dir=str(work_dir)))


def run_recipe(settings: SuiteSettings, work_dir: Path) -> dict[str, Any]:
    return run_recipe_seeds(settings.recipe, work_dir, settings.workers)


def run_dagger(settings: SuiteSettings, work_dir: Path) -> dict[str, Any]:
    return run_dagger_seeds(settings.dagger, work_dir, settings.workers)


def run_ablations(settings: SuiteSettings, work_dir: Path) -> dict[str, Any]:
    from agents.benchmark import ablations

    return ablations.run_ablations(settings.ablations, work_dir)


RUNNERS: dict[str, Callable[[SuiteSettings, Path], dict[str, Any]]] = {
    # Each runner gets its section's own work directory, OUT/SECTION.
    "arena": run_arena, "screen": run_screen, "latency": run_latency, "train": run_train, "demos": run_demos,
    "recipe": run_recipe, "dagger": run_dagger, "ablations": run_ablations,
}


def parse_sections(text: str | None) -> tuple[str, ...]:
    """Parse ``--only``'s comma-separated section names; None or empty means every section, in suite order."""
    if not text:
        return SECTIONS
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise SuiteError(f"unknown benchmark sections {unknown}; choose from {', '.join(SECTIONS)}")
    return tuple(name for name in SECTIONS if name in names)


def load_results(out_dir: Path) -> dict[str, Any]:
    """Read ``out_dir/results.json``; an absent file gives an empty result set."""
    path = Path(out_dir) / RESULTS_FILE
    if not path.exists():
        return {"sections": {}}
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SuiteError(f"{path} is not valid JSON ({error}); rerun the suite without --only to rewrite it") from None
    if not isinstance(results, dict) or not isinstance(results.get("sections"), dict):
        raise SuiteError(f"{path} has no 'sections' object; rerun the suite without --only to rewrite it")
    return results


def save_results(results: dict[str, Any], out_dir: Path) -> Path:
    """Write ``results`` to ``out_dir/results.json`` through a temporary file, so a crash keeps the old one."""
    path = Path(out_dir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2, default=str) + "\n")
    temporary.replace(path)
    return path


WORK_DIR_MARKER = ".benchmark-section"
"""File that marks a directory as a section's work directory, which the suite may empty."""


def prepare_work_dir(work_dir: Path, resume: bool) -> Path:
    """Create ``work_dir``; empty it first unless ``resume``, but only if the suite created it."""
    if work_dir.exists() and not resume:
        if not (work_dir / WORK_DIR_MARKER).exists():
            raise SuiteError(f"{work_dir} exists but was not created by the benchmark suite, so it is left alone; "
                             "choose another --out")
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / WORK_DIR_MARKER).touch()
    return work_dir


def run_suite(settings: SuiteSettings, out_dir: Path, sections: tuple[str, ...] = SECTIONS,
              command: str | None = None, merge: bool = False, resume: bool = False) -> dict[str, Any]:
    """Run ``sections`` (timing sections first, then quality) and save ``out_dir/results.json`` after each.

    With ``merge`` the sections not run keep their entries from the previous
    results file; otherwise the file holds only this run's sections. Each
    section works in ``out_dir/SECTION``, which is emptied first unless
    ``resume``: then the DAgger runs and ablation jobs finished there are kept,
    and so are recorded demonstrations.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = command or "python " + " ".join(shlex.quote(arg) for arg in sys.argv)
    results = load_results(out_dir) if merge else {"sections": {}}
    results["last_run"] = {"command": command, "settings": _jsonable(asdict(settings)), "sections": list(sections),
                           "started_utc": utc_now()}
    logger.info("benchmark suite %s, sections %s, results in %s", settings.name, ", ".join(sections), out_dir)
    logger.info("settings: %s", json.dumps(_jsonable(asdict(settings))))

    for name in sections:
        before = os.getloadavg()
        if name in TIMING_SECTIONS and before[0] > 0.5 * (os.cpu_count() or 1):
            logger.warning("load average %.2f before the %s timing section: other processes are running, so the "
                           "times will be slower than on an idle machine", before[0], name)
        logger.info("section %s: start", name)
        work_dir = prepare_work_dir(out_dir / name, resume)
        started_utc = utc_now()
        start_s = time.perf_counter()
        result = RUNNERS[name](settings, work_dir)
        wall_s = time.perf_counter() - start_s
        machine = machine_facts()
        machine["date_utc"] = started_utc
        results["sections"][name] = {
            "command": command,
            "preset": settings.name,
            "settings": _jsonable(asdict(getattr(settings, name))),
            "machine": machine,
            "load_average_before": list(before),
            "load_average_after": list(os.getloadavg()),
            "wall_s": wall_s,
            "result": _jsonable(result),
        }
        if name in QUALITY_SECTIONS:
            results["sections"][name]["workers"] = settings.workers
        save_results(results, out_dir)
        (work_dir / f"{name}.json").write_text(json.dumps(results["sections"][name], indent=2) + "\n")
        logger.info("section %s: done in %.1f s", name, wall_s)
    results["last_run"]["finished_utc"] = utc_now()
    save_results(results, out_dir)
    return results


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so enums, paths and tuples become plain JSON values."""
    return json.loads(json.dumps(value, default=lambda item: getattr(item, "value", str(item))))
