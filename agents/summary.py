"""The main job's closing report: the expert, the BC policy and the corrected policy side by side.

It reads only the JSON files the scripts wrote: ``demos/report.json``
(collect_demos.py), ``bc/metrics.json`` (train_bc.py), ``dagger/rounds.json``
(dagger.py) and ``expert.json`` (evaluate.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RARE_BUTTONS = ("guard", "grab", "special")


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run scripts/main_job.sh to produce every part of the report")
    return json.loads(path.read_text())


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def pipeline_report(out: str | Path, rare: Sequence[str] = RARE_BUTTONS) -> str:
    """Format the main job's results in ``out`` as a text report."""
    out = Path(out)
    demos = _read(out / "demos" / "report.json")
    metrics = _read(out / "bc" / "metrics.json")
    rounds = _read(out / "dagger" / "rounds.json")["rounds"]
    expert = _read(out / "expert.json")
    start, last = rounds[0], rounds[-1]
    test = metrics["test"]
    demo_buttons = demos["buttons"]

    lines = [
        f"fightenv main job: {out}",
        "",
        f"Demonstrations: {demos['episodes']} expert rounds, {demos['steps']} steps. Predicting 'nothing pressed' "
        f"scores {demos['all_zero_binary_accuracy']:.1%} binary accuracy, so accuracy says little; "
        "look at the rare buttons.",
        "",
        f"{'':<34}{'expert':>10}{'BC policy':>12}{'after DAgger':>14}",
        f"{'win rate against the CPU':<34}{_percent(expert['win_rate']):>10}{_percent(start['win_rate']):>12}"
        f"{_percent(last['win_rate']):>14}",
        f"{'test macro F1':<34}{'':>10}{_number(start['test_macro_f1']):>12}{_number(last['test_macro_f1']):>14}",
        f"{'test macro AP':<34}{'':>10}{_number(start['test_macro_ap']):>12}{_number(last['test_macro_ap']):>14}",
    ]
    for name in rare:
        lines.append(
            f"{'test recall ' + name:<34}{'':>10}{_number(start['test_recall'].get(name)):>12}"
            f"{_number(last['test_recall'].get(name)):>14}"
        )
    for name in rare:
        lines.append(
            f"{'press rate ' + name:<34}{_percent(expert['buttons'][name]['press_rate']):>10}"
            f"{_percent(start['press_rate'].get(name)):>12}{_percent(last['press_rate'].get(name)):>14}"
        )
    lines += [
        f"{'binary accuracy (test)':<34}{'':>10}{_percent(test['binary_accuracy']):>12}",
        f"{'  all-zero baseline':<34}{'':>10}{_percent(test['all_zero_binary_accuracy']):>12}",
        "",
        f"Corrections: {sum(row['corrected_steps'] for row in rounds[1:])} corrected steps in "
        f"{len(rounds) - 1} round(s), intervention rate "
        + ", ".join(_percent(row["intervention_rate"]) for row in rounds[1:]) + ".",
        f"Win rates over {expert['episodes']} seeded rounds (expert) and {start['eval_episodes']} (policies); "
        "with this few rounds a difference under about 15 points is noise.",
        "",
        "Files: demos/ (store, report.png), bc/ (policy, metrics.json, pr_curves.png, press_rates.png, "
        "calibration.png, tensorboard/), dagger/ (corrections/, round_N/, rounds.json), expert.json.",
    ]
    names = demo_buttons if isinstance(demo_buttons, dict) else [b["name"] for b in demo_buttons]
    missing = [name for name in rare if name not in names]
    if missing:
        lines.append(f"note: buttons {missing} are not in this game's button list")
    return "\n".join(lines)
