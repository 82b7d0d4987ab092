"""The benchmark suite end to end on tiny sizes: every section runs and the page states its provenance."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agents.benchmark.suite import SECTIONS, parse_sections

ROOT = Path(__file__).resolve().parents[1]
SECTION_HEADINGS = {
    "arena": "## Arena: env speed and balance",
    "screen": "## Screen backend: the real-time loop on an Xvfb window",
    "latency": "## Policy inference latency",
    "train": "## Training throughput against imitation's bc.BC",
    "demos": "## Demonstrations: recording and loading against imitation.data.serialize",
    "recipe": "## Training: the default recipe against the seed baseline",
    "dagger": "## Correction rounds: human-gated against plain DAgger",
    "ablations": "## Training ablations: how the pieces of the default recipe matter",
}
NUMERIC_ROW = re.compile(r"^\|[^|\n]+\|[^\n]*\d[^\n]*\|$", re.MULTILINE)


def _run_cli(*args: str, timeout_s: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s)


def _section_block(page: str, heading: str) -> str:
    start = page.index(heading)
    end = page.find("\n## ", start + len(heading))
    return page[start:] if end < 0 else page[start:end]


def test_parse_sections_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"unknown benchmark sections \['arnea'\]; choose from arena"):
        parse_sections("arena,arnea")


def test_parse_sections_keeps_suite_order():
    assert parse_sections("dagger, arena") == ("arena", "dagger")
    assert parse_sections("") == SECTIONS


def test_render_only_without_results_fails(tmp_path):
    completed = _run_cli("--render-only", "--out", str(tmp_path / "out"), "--page", str(tmp_path / "B.md"),
                         timeout_s=60)
    assert completed.returncode == 2
    assert "run the suite first without --render-only" in completed.stderr
    assert not (tmp_path / "B.md").exists()


def test_foreign_work_dir_left_alone(tmp_path):
    foreign = tmp_path / "out" / "arena"
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("not the suite's")
    completed = _run_cli("--tiny", "--only", "arena", "--out", str(tmp_path / "out"), "--page",
                         str(tmp_path / "B.md"), timeout_s=60)
    assert completed.returncode == 2
    assert "was not created by the benchmark suite" in completed.stderr
    assert (foreign / "keep.txt").read_text() == "not the suite's"


@pytest.mark.slow
def test_suite_tiny_writes_every_section(tmp_path):
    out, page_path, figures = tmp_path / "out", tmp_path / "BENCHMARKS.md", tmp_path / "figures"
    common = ["--out", str(out), "--page", str(page_path), "--figures", str(figures)]
    completed = _run_cli("--tiny", *common)
    assert completed.returncode == 0, completed.stderr[-3000:]

    page = page_path.read_text()
    for name, heading in SECTION_HEADINGS.items():
        assert heading in page, f"section {name} missing from the page"
        block = _section_block(page, heading)
        assert "Command: `python scripts/benchmark.py --tiny" in block, name
        assert re.search(r"Machine: .+, \d+ cores", block), name
        assert re.search(r"torch \d", block), name
        assert re.search(r"Date: \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", block), name
        if name != "ablations":  # the ablation tables follow under their own headings
            assert NUMERIC_ROW.search(block), f"section {name} has no table row with a number"
    assert "## Not measured" not in page
    assert NUMERIC_ROW.search(page[page.index(SECTION_HEADINGS["ablations"]):])

    for link in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", page):
        assert (page_path.parent / link).is_file(), f"figure {link} linked but missing"
    assert (figures / "dagger_rounds.png").stat().st_size > 1000
    assert (figures / "train_throughput.png").stat().st_size > 1000
    assert "headline: The Arena steps at" in completed.stdout

    results = json.loads((out / "results.json").read_text())
    assert set(results["sections"]) == set(SECTIONS)
    dagger = results["sections"]["dagger"]["result"]
    assert len(dagger["per_seed"]) == len(dagger["settings"]["seeds"])

    # Rerunning one section keeps the others and rewrites the page.
    arena_date = results["sections"]["arena"]["machine"]["date_utc"]
    page_path.unlink()
    rerun = _run_cli("--tiny", "--only", "latency", *common, timeout_s=120)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    merged = json.loads((out / "results.json").read_text())
    assert set(merged["sections"]) == set(SECTIONS)
    assert merged["sections"]["arena"]["machine"]["date_utc"] == arena_date
    assert "--only latency" in merged["sections"]["latency"]["command"]
    assert SECTION_HEADINGS["dagger"] in page_path.read_text()

    # Without --page and --figures, a run outside the default --out writes both into it, not over the published page.
    published = (ROOT / "BENCHMARKS.md").read_bytes()
    rendered = _run_cli("--render-only", "--out", str(out), timeout_s=120)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert SECTION_HEADINGS["arena"] in (out / "BENCHMARKS.md").read_text()
    assert (out / "figures" / "dagger_rounds.png").is_file()
    assert (ROOT / "BENCHMARKS.md").read_bytes() == published
