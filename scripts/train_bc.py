"""Train the multi-label behavioural-cloning policy on recorded demonstrations and report on test episodes.

    python scripts/train_bc.py --demos runs/demos --out runs/bc
    python scripts/train_bc.py --demos runs/demos --out runs/bc_baseline --preset seed-baseline
    python scripts/train_bc.py --demos runs/demos --out runs/bc --resume
    torchrun --nproc_per_node=2 scripts/train_bc.py --demos runs/demos --out runs/bc_ddp

Writes into --out: policy.safetensors and policy.json (load with
agents.load_policy or play with scripts/evaluate.py --pilot policy:RUN_DIR),
metrics.json, pr_curves.png, press_rates.png, calibration.png, config.json,
checkpoint/ and tensorboard/.

Exit status: 0 on success, 2 on invalid options, demos or run directory.
"""

from __future__ import annotations

import logging
import sys

from agents.cli import parse_config
from agents.checkpoint import CheckpointError
from agents.train import TrainConfig, TrainingError, run

logger = logging.getLogger("train_bc")


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    return parse_config(TrainConfig, __doc__, argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    try:
        run(config)
    except (TrainingError, CheckpointError) as error:
        logger.error("%s", error)
        return 2
    except Exception as error:
        # Store errors (missing, empty or mismatched demos) come from the demos package.
        from agents.policy_files import PolicyFileError
        from demos.errors import StoreError

        if isinstance(error, (StoreError, PolicyFileError)):
            logger.error("%s", error)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
