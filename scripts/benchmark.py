"""Run the benchmark suite and regenerate BENCHMARKS.md.

    python scripts/benchmark.py --quick                 # every section, small sizes (sized for 10 min on 2 cores)
    python scripts/benchmark.py --full                  # the published sizes (about 90 min on 2 cores)
    python scripts/benchmark.py --full --only train,demos   # rerun two sections, keep the rest
    python scripts/benchmark.py --render-only           # rewrite the page from out/benchmark/results.json
    python scripts/benchmark.py --full --resume         # continue an interrupted run

Timing sections (arena, screen, latency, train, demos) run first, one after
another; the quality sections (recipe, dagger, ablations) then run in --workers
processes with one torch thread each. Raw results go to OUT/results.json and
each section's own JSON into OUT. With the default --out the page is the
repository's BENCHMARKS.md and the figures go to agents/benchmark/figures; with
another --out both go into OUT, so that a trial run leaves the published page alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.benchmark.page import headline_sentences, render_page  # noqa: E402
from agents.benchmark.suite import (  # noqa: E402
    PRESETS, RESULTS_FILE, SuiteError, load_results, parse_sections, run_suite,
)

logger = logging.getLogger("benchmark")

PUBLISHED_PAGE = "BENCHMARKS.md"
PUBLISHED_FIGURES = "agents/benchmark/figures"


@dataclass(frozen=True)
class BenchmarkConfig:
    preset: str = "quick"
    """Sizes: quick, full or tiny (tiny is for the test only)."""
    out: str = "out/benchmark"
    """Directory for results.json, each section's JSON and the runs it records."""
    page: str = ""
    """Path of the generated page. Empty picks BENCHMARKS.md for the default ``out`` and OUT/BENCHMARKS.md otherwise."""
    figures: str = ""
    """Directory of the PNG figures the page links. Empty picks agents/benchmark/figures or OUT/figures likewise."""
    only: str = ""
    """Comma-separated sections to run, merged into the previous results.json; empty runs all."""
    workers: int = 2
    """Processes of the quality sections, one torch thread each."""
    render_only: bool = False
    """Rewrite the page from results.json without running anything."""
    resume: bool = False
    """Keep finished DAgger runs, ablation jobs and recorded demonstrations in OUT instead of starting afresh."""


def output_paths(config: BenchmarkConfig) -> tuple[Path, Path]:
    """Return the page and the figure directory, filling in the defaults that depend on ``config.out``."""
    published = Path(config.out) == Path(BenchmarkConfig.out)
    page = config.page or (PUBLISHED_PAGE if published else str(Path(config.out) / PUBLISHED_PAGE))
    figures = config.figures or (PUBLISHED_FIGURES if published else str(Path(config.out) / "figures"))
    return Path(page), Path(figures)


def parse_args(argv: list[str] | None = None) -> BenchmarkConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", dest="preset", action="store_const", const="quick",
                       help="small sizes, every section (default)")
    sizes.add_argument("--full", dest="preset", action="store_const", const="full", help="the published sizes")
    sizes.add_argument("--tiny", dest="preset", action="store_const", const="tiny", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=BenchmarkConfig.out, help="directory of the raw results (default: %(default)s)")
    parser.add_argument("--page", default="",
                        help=f"generated page (default: {PUBLISHED_PAGE} with the default --out, else OUT/{PUBLISHED_PAGE})")
    parser.add_argument("--figures", default="",
                        help=f"directory of the PNG figures (default: {PUBLISHED_FIGURES} with the default --out, "
                             "else OUT/figures)")
    parser.add_argument("--only", default="", metavar="SECTION[,SECTION]",
                        help="run only these sections (arena, screen, latency, train, demos, recipe, dagger, ablations) "
                             "and keep the others from the previous results.json")
    parser.add_argument("--workers", type=int, default=BenchmarkConfig.workers,
                        help="processes of the quality sections, one torch thread each (default: %(default)s)")
    parser.add_argument("--render-only", action="store_true", help="rewrite the page from results.json only")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run: keep the finished DAgger runs, ablation jobs and recorded "
                             "demonstrations in --out (default: every section starts afresh)")
    args = parser.parse_args(argv)
    return BenchmarkConfig(preset=args.preset or "quick", out=args.out, page=args.page, figures=args.figures,
                           only=args.only, workers=args.workers, render_only=args.render_only,
                           resume=args.resume)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raw_argv = sys.argv[1:] if argv is None else argv
    config = parse_args(argv)
    logger.info("config: %s", json.dumps(config.__dict__))
    out = Path(config.out)
    try:
        sections = parse_sections(config.only)
        if config.workers < 1:
            raise SuiteError(f"--workers must be at least 1, got {config.workers}")
        if config.render_only:
            results = load_results(out)
            if not results["sections"]:
                raise SuiteError(f"{out / RESULTS_FILE} is missing or empty; run the suite first without "
                                 "--render-only")
        else:
            settings = PRESETS[config.preset](config.workers)
            command = "python scripts/benchmark.py " + " ".join(shlex.quote(arg) for arg in raw_argv)
            results = run_suite(settings, out, sections, command=command.strip(), merge=bool(config.only),
                                resume=config.resume)
    except SuiteError as error:
        print(f"benchmark: {error}", file=sys.stderr)
        return 2
    page, figures = output_paths(config)
    render_page(results, page, figures, out / RESULTS_FILE)
    print(f"wrote {page}")
    for sentence in headline_sentences(results):
        print(f"headline: {sentence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
