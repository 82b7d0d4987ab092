"""Tables of the quality ablations: which runs each section compares, aggregation over seeds, markdown and PNGs."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.benchmark.ablation_jobs import REFERENCE, TWO_NETWORKS

logger = logging.getLogger(__name__)

METRICS = ("test_macro_f1", "test_macro_ap", "rare_recall", "win_rate", "val_macro_f1", "val_macro_ap")
METRIC_LABELS = {
    "test_macro_f1": "test macro F1", "test_macro_ap": "test macro AP", "rare_recall": "rare recall (mean)",
    "win_rate": "win rate", "val_macro_f1": "val macro F1 (claimed)", "val_macro_ap": "val macro AP (claimed)",
}


def _row(label: str, variant: str, rule: str | None = None) -> dict[str, str]:
    return {"label": label, "variant": variant, "rule": rule or ("max_f1" if variant == REFERENCE else "thresholds")}


def reference_description() -> dict[str, str]:
    """Describe the default recipe from TrainConfig's defaults, so the labels follow a change of defaults."""
    from agents.train import TrainConfig

    config = TrainConfig()
    return {
        "loss": f"{config.loss.value}, pos_weight {config.pos_weight.value}",
        "temporal": f"{config.n_frames} frames, {config.temporal} over {config.state_window} states",
        "decision": f"{config.threshold_mode.value} thresholds"
                    + (" on Platt-calibrated probabilities" if config.calibrate else ""),
    }


_REFERENCE = reference_description()

SECTIONS: dict[str, dict[str, Any]] = {
    "loss": {
        "title": "Loss",
        "question": "Which training loss gives the best policy when every variant gets calibrated, "
                    "tuned per-button thresholds?",
        "rows": [
            _row(f"{_REFERENCE['loss']} (reference)", REFERENCE),
            _row("bce, pos_weight none", "bce"),
            _row("bce, pos_weight neg/pos (capped at 20)", "bce_ratio"),
            _row("bce, pos_weight sqrt(neg/pos)", "bce_sqrt"),
            _row("focal (gamma 2)", "focal"),
            _row("asymmetric (gamma_neg 4, margin 0.05)", "asymmetric"),
            _row("logit-adjusted (tau 1)", "logit_adjusted"),
        ],
    },
    "decision": {
        "title": "Decision rule",
        "question": "How should one trained model (the reference) turn probabilities into presses? "
                    "Every row re-decides the same model's test probabilities and plays with that rule; "
                    "nothing is retrained.",
        "rows": [
            _row(f"{_REFERENCE['decision']} (reference)", REFERENCE, "max_f1"),
            _row("0.5 for every button", REFERENCE, "fixed_0.5"),
            _row("press-rate matching on validation", REFERENCE, "press_rate"),
            _row("sampling from the probabilities", REFERENCE, "sample"),
        ],
    },
    "split": {
        "title": "Split: random frames against episodes",
        "question": "How much does a random-frame validation split overstate the score on held-out episodes? "
                    "Both rows are tested on the same held-out episodes.",
        "rows": [
            _row("whole episodes (reference)", REFERENCE),
            _row("random frames of the non-test episodes", "frame_split"),
        ],
        "metrics": ("val_macro_f1", "test_macro_f1", "val_macro_ap", "test_macro_ap", "rare_recall", "win_rate"),
    },
    "temporal": {
        "title": "Temporal context",
        "question": "How much context does the policy need, and does it help to standardise the state features? "
                    "The recurrent row is a GRU over a window of past state vectors, fed anew every step (no "
                    "hidden state is carried between steps).",
        "rows": [
            _row("no context: 1 frame, state window 1", "no_context"),
            _row("4 stacked frames, state window 1", "stacked_frames"),
            _row("1 frame, conv over 16 states", "state_window_conv"),
            _row(f"recurrent: {_REFERENCE['temporal']}, raw state features", "raw_state"),
            _row(f"recurrent: {_REFERENCE['temporal']}, standardised state features (reference)", REFERENCE),
        ],
    },
    "offset": {
        "title": "Action offset",
        "question": "Does pairing observation t with the action of step t + k help? Test labels shift with k, "
                    "so the win rate is the comparable column.",
        "rows": [_row("0 steps (reference)", REFERENCE)]
                + [_row(f"{k} step{'s' if k > 1 else ''}", f"offset_{k}") for k in range(1, 5)],
        "offset_steps": [0, 1, 2, 3, 4],
    },
    "two_networks": {
        "title": "Two networks against one",
        "question": "Is one network with a per-button head worse than two networks, one trained only on the "
                    "frequent buttons and one only on the rare ones (held in at most 2% of training steps), "
                    "combined into one pilot?",
        "rows": [
            _row("one network, all buttons (reference)", REFERENCE),
            _row("two networks: frequent + rare", TWO_NETWORKS),
        ],
    },
}
FEW_PRESS_EVENTS = 20
"""Below this many test press events per seed, the markdown calls a button's recall noisy."""
DEFAULT_METRICS = ("test_macro_f1", "test_macro_ap", "rare_recall", "win_rate")


def spread(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Return mean, sample standard deviation (ddof 1; 0 for one value), min, max and count, skipping None."""
    present = np.asarray([value for value in values if value is not None], dtype=np.float64)
    if present.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {
        "mean": float(present.mean()), "std": float(present.std(ddof=1)) if present.size > 1 else 0.0,
        "min": float(present.min()), "max": float(present.max()), "n": int(present.size),
    }


def seed_metrics(job_result: dict[str, Any], rule: str, rare_buttons: Sequence[str]) -> dict[str, Any]:
    """Return one seed's numbers for one table row from a job's result: the METRICS and per-button rare recall."""
    row = job_result["rows"][rule]
    recalls = {name: row["test"]["recall"].get(name) for name in rare_buttons}
    present = [value for value in recalls.values() if value is not None]
    return {
        "test_macro_f1": row["test"]["macro_f1"], "test_macro_ap": row["test"]["macro_ap"],
        "rare_recall": float(np.mean(present)) if present else None, "win_rate": row["win_rate"],
        "val_macro_f1": row["val"]["macro_f1"], "val_macro_ap": row["val"]["macro_ap"],
        "rare_recall_per_button": recalls,
    }


def aggregate_sections(sections: Sequence[str], seeds: Sequence[int],
                       results: dict[tuple[int, str], dict[str, Any]]) -> dict[str, Any]:
    """Aggregate job results over seeds into one JSON-ready table per section.

    Rare buttons are those of each seed's reference job (held in at most 2% of
    its training split). A row's statistics cover the seeds whose job finished.
    """
    rare_by_seed = {seed: results[(seed, REFERENCE)]["rare_buttons"] for seed in seeds
                    if (seed, REFERENCE) in results}
    rare_all = sorted({name for names in rare_by_seed.values() for name in names},
                      key=lambda name: _button_order(results).index(name))
    press_events = {name: spread([results[(seed, REFERENCE)]["test_press_events"][name]
                                  for seed in rare_by_seed]) for name in rare_all}
    decision_hz = next((results[(seed, REFERENCE)]["decision_hz"] for seed in rare_by_seed), None)

    tables = {}
    for section in sections:
        spec = SECTIONS[section]
        rows = []
        for row in spec["rows"]:
            per_seed = {seed: seed_metrics(results[(seed, row["variant"])], row["rule"], rare_by_seed.get(seed, []))
                        for seed in seeds if (seed, row["variant"]) in results}
            label = row["label"]
            if section == "offset" and decision_hz:
                steps = spec["offset_steps"][len(rows)]
                label = f"{label}, {steps * 1000 / decision_hz:.0f} ms"
            rows.append({
                **row, "label": label, "seeds": sorted(per_seed),
                "metrics": {metric: spread([values[metric] for values in per_seed.values()]) for metric in METRICS},
                "rare_recall_per_button": {name: spread([values["rare_recall_per_button"].get(name)
                                                         for values in per_seed.values()]) for name in rare_all},
                "per_seed": {str(seed): {metric: values[metric] for metric in METRICS}
                             for seed, values in per_seed.items()},
            })
        table = {"title": spec["title"], "question": spec["question"], "rows": rows,
                 "metrics": list(spec.get("metrics", DEFAULT_METRICS)), "rare_buttons": rare_all,
                 "test_press_events": press_events, "decision_hz": decision_hz, "seeds": list(seeds)}
        if section == "offset":
            table["offset_steps"] = spec["offset_steps"]
        table["summary"] = summarize(section, table)
        tables[section] = table
    return tables


def _button_order(results: dict[tuple[int, str], dict[str, Any]]) -> list[str]:
    for result in results.values():
        return list(result["button_names"])
    return []


def _mean(row: dict[str, Any], metric: str) -> float | None:
    return row["metrics"][metric]["mean"]


def _compare(rows: list[dict[str, Any]], metric: str, reference: dict[str, Any]) -> str | None:
    """Say which row has the highest mean of ``metric`` and by how much it beats the reference row."""
    scored = [row for row in rows if _mean(row, metric) is not None]
    if not scored:
        return None
    best = max(scored, key=lambda row: _mean(row, metric))
    stats = best["metrics"][metric]
    percent = metric == "win_rate"
    text = f"highest {METRIC_LABELS[metric]}: {best['label']} ({_cell(stats, percent)})"
    if best is reference or _mean(reference, metric) is None:
        return text
    difference = stats["mean"] - _mean(reference, metric)
    text += (f", {difference * 100:+.0f} points against the reference" if percent
             else f", {difference:+.3f} against the reference")
    if stats["n"] < 2:
        return text + " (one seed, no spread)"
    if abs(difference) <= max(stats["std"], reference["metrics"][metric]["std"]):
        return text + ", within one standard deviation of the seeds"
    return text


def summarize(section: str, table: dict[str, Any]) -> str:
    """Write one or two sentences on what won the section, computed from its rows."""
    rows = table["rows"]
    reference = next((row for row in rows if row["variant"] == REFERENCE and row["rule"] == "max_f1"), rows[0])
    if section == "split":
        parts = []
        for row in rows:
            claimed, tested = _mean(row, "val_macro_f1"), _mean(row, "test_macro_f1")
            if claimed is not None and tested is not None:
                parts.append(f"{row['label']} claims validation macro F1 {claimed:.3f} and scores {tested:.3f} on "
                             f"held-out episodes (gap {claimed - tested:+.3f})")
        if not parts:
            return "No finished runs."
        text = "; ".join(parts) + "."
        return text[0].upper() + text[1:]
    clauses = [_compare(rows, metric, reference) for metric in ("test_macro_f1", "rare_recall", "win_rate")]
    clauses = [clause for clause in clauses if clause]
    if not clauses:
        return "No finished runs."
    return "; ".join(clause[0].upper() + clause[1:] if i == 0 else clause for i, clause in enumerate(clauses)) + "."


def _cell(stats: dict[str, Any], percent: bool = False) -> str:
    if stats["mean"] is None:
        return "n/a"
    text = f"{stats['mean']:.0%} ± {stats['std']:.0%}" if percent else f"{stats['mean']:.3f} ± {stats['std']:.3f}"
    if stats["n"] == 1:
        # A button rare in only one seed's training split has a single value and no spread.
        return text.split(" ± ")[0] + " (1 seed)"
    return text


def write_section_figure(section: str, table: dict[str, Any], path: Path) -> None:
    """Plot the section's main metrics with one-standard-deviation error bars into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if section == "split":
        metrics = ["val_macro_f1", "test_macro_f1", "win_rate"]
    else:
        metrics = [metric for metric in table["metrics"] if metric != "test_macro_ap"]
    rows = table["rows"]
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 0.5 * len(rows) + 1.6), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        means = [_mean(row, metric) if _mean(row, metric) is not None else np.nan for row in rows]
        errors = [row["metrics"][metric]["std"] or 0.0 for row in rows]
        if section == "offset" and table.get("decision_hz"):
            milliseconds = [steps * 1000 / table["decision_hz"] for steps in table["offset_steps"]]
            axis.errorbar(milliseconds, means, yerr=errors, marker="o", capsize=3)
            axis.set_xlabel("action offset (ms)")
            axis.set_title(METRIC_LABELS[metric])
        else:
            positions = np.arange(len(rows))
            axis.barh(positions, means, xerr=errors, capsize=3, color="tab:blue")
            axis.set_yticks(positions, [row["label"] for row in rows] if axis is axes[0][0] else [""] * len(rows),
                            fontsize=8)
            axis.invert_yaxis()
            axis.set_xlim(0, 1)
            axis.set_title(METRIC_LABELS[metric], fontsize=9)
    figure.suptitle(f"{table['title']}: mean ± std over {len(table['seeds'])} seed(s)", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def section_markdown(section: str, table: dict[str, Any], settings: dict[str, Any], figure_link: str | None) -> str:
    """Render one section as a markdown '## ' block: context, press-event line, table, summary and figure."""
    seeds = table["seeds"]
    lines = [f"## Ablation: {table['title']}", "", table["question"], ""]
    lines.append(f"Mean ± sample standard deviation over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); "
                 f"each seed records {settings['episodes']} expert rounds, trains at most {settings['epochs']} "
                 f"epochs and plays {settings['eval_episodes']} rounds against the {settings['difficulty']} CPU. "
                 "Rare buttons are held in at most 2% of the training steps; rare recall is the mean of their "
                 "test recalls.")
    if section == "offset" and table.get("decision_hz"):
        lines.append(f"The env decides {table['decision_hz']:.0f} times per second, so one step is "
                     f"{1000 / table['decision_hz']:.0f} ms.")
    lines.append("")
    if table["rare_buttons"]:
        events = ", ".join(f"{name} {table['test_press_events'][name]['mean']:.1f}" for name in table["rare_buttons"])
        lines.append(f"Press events of each rare button in the test split (mean per seed): {events}.")
        few = [name for name in table["rare_buttons"] if table["test_press_events"][name]["mean"] < FEW_PRESS_EVENTS]
        if few:
            lines[-1] += (f" Recall of {', '.join(few)} rests on fewer than {FEW_PRESS_EVENTS} press events per seed "
                          "and is noisy.")
    else:
        lines.append("No button is held in 2% of the training steps or fewer, so there is no rare-button column.")
    lines.append("")

    rare_columns = list(table["rare_buttons"])
    header = ["variant"] + [METRIC_LABELS[metric] for metric in table["metrics"]] + [f"recall {name}"
                                                                                    for name in rare_columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for row in table["rows"]:
        cells = [row["label"]] + [_cell(row["metrics"][metric], percent=metric == "win_rate")
                                  for metric in table["metrics"]]
        cells += [_cell(row["rare_recall_per_button"][name]) for name in rare_columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", summarize(section, table), ""]
    if figure_link:
        lines += [f"![{table['title']}]({figure_link})", ""]
    return "\n".join(lines)


def ablation_markdown(result: dict, figure_dir: Path, page_dir: Path) -> str:
    """Render every section of an ``run_ablations`` result as markdown and write one PNG per section.

    Figures go to ``figure_dir``; the markdown links them relative to
    ``page_dir``, the directory of the page that will contain the text.
    """
    figure_dir, page_dir = Path(figure_dir), Path(page_dir)
    blocks = []
    for section, table in result["sections"].items():
        figure_path = figure_dir / f"ablation_{section}.png"
        link = None
        if any(row["seeds"] for row in table["rows"]):
            write_section_figure(section, table, figure_path)
            link = Path(os.path.relpath(figure_path, page_dir)).as_posix()
        blocks.append(section_markdown(section, table, result["settings"], link))
    if result.get("failed_jobs"):
        failures = "\n".join(f"- {name}: {error}" for name, error in sorted(result["failed_jobs"].items()))
        blocks.append(f"## Ablation: failed jobs\n\nThese jobs failed and are missing from the tables above:\n\n"
                      f"{failures}\n")
    return "\n".join(blocks)
