"""Command-line errors a new user meets: one line, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("collect_demos.py", ["--pilot", "human", "--episodes", "1", "--out", "{tmp}/human"]),
        ("dagger.py", ["--policy", "{tmp}/none", "--out", "{tmp}/d", "--corrector", "human"]),
    ],
)
def test_human_without_display(script, args, tmp_path):
    environment = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = run(script, *[arg.format(tmp=tmp_path) for arg in args], env=environment)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    if script == "collect_demos.py":
        assert "needs an X display, but DISPLAY is not set" in result.stderr
        assert not (tmp_path / "human" / "episodes").exists() or not any((tmp_path / "human" / "episodes").iterdir())


def test_config_errors_skip_usage_dump(tmp_path):
    result = run("dagger.py", "--policy", str(tmp_path), "--rounds", "0")
    assert result.returncode == 2
    assert "rounds must be at least 1, got 0" in result.stderr
    assert "usage:" not in result.stderr


def test_train_bc_offers_skip_bad():
    result = run("train_bc.py", "--help")
    assert "--skip-bad" in result.stdout


@pytest.mark.screen
def test_profile_window_not_found(tmp_path, xvfb_display):
    profile = tmp_path / "nosuch.toml"
    text = (ROOT / "fightenv" / "profiles" / "arena.toml").read_text()
    profile.write_text(text.replace('title = "fightenv Arena"', 'title = "No Such Game"'))
    result = run("collect_demos.py", "--pilot", "human", "--profile", str(profile), "--episodes", "1",
                 "--out", str(tmp_path / "store"), env={**os.environ, "DISPLAY": xvfb_display})
    assert result.returncode == 2
    assert "no visible window title contains 'No Such Game'" in result.stderr
    assert "Traceback" not in result.stderr
