"""Measure correction rounds on the Arena: human-gated DAgger (expert corrector) against plain DAgger.

    python scripts/bench_dagger.py --out out/bench_dagger
    python scripts/bench_dagger.py --policy runs/bc --out out/bench_dagger --rounds 3

Starting from one BC policy of the default recipe (trained here on
``--demo-episodes`` expert rounds unless ``--policy`` is given), it runs
``--rounds`` rounds twice with the same correction budget (a share of the
demonstration steps): once with the expert corrector taking over where the
agent misplays guard, grab or special, and once as plain DAgger, where the
expert labels every visited step until the budget is spent. Every policy is
scored on the same held-out demonstration episodes and on the same seeded
rounds against the CPU.

The checks printed at the end: win rate and mean rare-button recall of the
last round above the starting policy's, corrections within the budget, and
the intervention rate falling from round to round.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from agents.dagger import DaggerConfig, run_dagger
from agents.correction import CorrectionMode

logger = logging.getLogger("bench_dagger")
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchDaggerConfig:
    out: str = "out/bench_dagger"
    """Directory for the demos, the starting policy, both DAgger runs and the results."""
    policy: str = ""
    """Starting policy run directory; empty to record demos and train one here."""
    demo_episodes: int = 50
    """Expert rounds to record when no --policy is given."""
    rounds: int = 3
    episodes_per_round: int = 10
    eval_episodes: int = 100
    """Seeded rounds against the CPU per policy."""
    budget_fraction: float = 0.25
    epochs: int = 4
    seed: int = 0
    json: str | None = None


def prepare_policy(config: BenchDaggerConfig, out: Path) -> Path:
    """Record demonstrations and train the default recipe, unless a policy was given."""
    if config.policy:
        return Path(config.policy)
    demos, run = out / "demos", out / "bc"
    if not (demos / "manifest.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "collect_demos.py"), "--pilot", "expert",
                        "--episodes", str(config.demo_episodes), "--seed", str(config.seed), "--out", str(demos)],
                       check=True)
    if not (run / "policy.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "train_bc.py"), "--demos", str(demos), "--out",
                        str(run), "--seed", str(config.seed), "--no-progress"], check=True)
    return run


def run_mode(config: BenchDaggerConfig, policy: Path, out: Path, mode: CorrectionMode) -> list[dict]:
    dagger_config = DaggerConfig(
        policy=str(policy), out=str(out / f"dagger_{mode.value}"), rounds=config.rounds,
        episodes_per_round=config.episodes_per_round, mode=mode, budget_fraction=config.budget_fraction,
        epochs=config.epochs, eval_episodes=config.eval_episodes, seed=config.seed, progress=False,
        resume=(out / f"dagger_{mode.value}" / "rounds.json").exists(),
    )
    return run_dagger(dagger_config)


def checks_for(rows: list[dict], budget_steps: int, gated: bool) -> dict[str, bool]:
    start, last = rows[0], rows[-1]
    corrected = sum(row["corrected_steps"] for row in rows[1:])
    result = {
        "win rate above the starting policy": last["win_rate"] > start["win_rate"],
        "mean rare-button recall (closed loop) above the start": (last["rare_closed_loop_recall_mean"] or 0)
        > (start["rare_closed_loop_recall_mean"] or 0),
        f"corrected steps {corrected} within the budget of {budget_steps}": corrected <= budget_steps,
    }
    if gated:
        rates = [row["intervention_rate"] for row in rows[1:]]
        result["intervention rate falls every round"] = all(b < a for a, b in zip(rates, rates[1:]))
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, field in BenchDaggerConfig.__dataclass_fields__.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=type(field.default) if field.default is not None else str, default=field.default)
    config = BenchDaggerConfig(**vars(parser.parse_args(argv)))
    logger.info("config: %s", asdict(config))
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    policy = prepare_policy(config, out)
    gated = run_mode(config, policy, out, CorrectionMode.TAKEOVER)
    plain = run_mode(config, policy, out, CorrectionMode.LABEL_ALL)
    demo_steps = json.loads((out / "dagger_takeover" / "rounds.json").read_text())["rounds"][0]["training_steps"]
    budget_steps = int(config.budget_fraction * demo_steps)

    print(f"\n| run | round | win rate | closed-loop recall guard / grab / special | test recall guard / grab / "
          f"special | intervention rate | corrected steps |")
    print("|---|---|---|---|---|---|---|")
    for label, rows in (("human-gated (expert takeover)", gated), ("plain DAgger (label every step)", plain)):
        for row in rows:
            closed = " / ".join(_fmt(row["closed_loop_recall"].get(n)) for n in ("guard", "grab", "special"))
            test = " / ".join(_fmt(row["test_recall"].get(n)) for n in ("guard", "grab", "special"))
            print(f"| {label} | {row['round']} | {row['win_rate']:.1%} | {closed} | {test} | "
                  f"{row['intervention_rate']:.1%} | {row['corrected_steps']} |")
    checks = {f"gated: {k}": v for k, v in checks_for(gated, budget_steps, gated=True).items()}
    checks.update({f"plain: {k}": v for k, v in checks_for(plain, budget_steps, gated=False).items()})
    print()
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")

    result = {"config": asdict(config), "budget_steps": budget_steps, "gated": gated, "plain": plain,
              "checks": checks}
    path = Path(config.json) if config.json else out / "bench_dagger.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    logger.info("wrote %s", path)
    return 0 if all(v for k, v in checks.items() if k.startswith("gated")) else 1


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
