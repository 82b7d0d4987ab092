"""Run correction rounds (human-gated DAgger): the policy plays, a corrector takes over, the policy retrains.

    python scripts/dagger.py --policy runs/bc --out runs/dagger
    python scripts/dagger.py --policy runs/bc --out runs/dagger --rounds 3 --episodes-per-round 10
    python scripts/dagger.py --policy runs/bc --out runs/dagger_plain --mode label_all
    python scripts/dagger.py --policy runs/bc --out runs/dagger --resume
    python scripts/dagger.py --relabel runs/dagger --replay-speed 0.5     # replay the last round slowly
    python scripts/dagger.py --policy runs/bc --out runs/dagger --corrector human --mode override
    # play a game window, correcting with its keys:
    python scripts/dagger.py --policy runs/bc --out runs/dagger_game --corrector human --profile P.toml

Writes into --out: corrections/ (an episode store of every step played, with
the agent's, the corrector's and the executed buttons), round_N/ (the policy
of each round, as scripts/train_bc.py writes it) and rounds.json (one row per
round: interventions, corrections per button, validation macro F1 and AP,
rare-button recall on test episodes, win rate against the CPU). With
--profile there is no CPU to play against: the win rate comes from the
outcomes the profile's end probes read in the round's corrected episodes, or
is null when the profile reads none.

Exit status: 0 on success; 1 when the stop hotkey or Ctrl+C ended the run, or a
game window's round never started in time (the stored corrections are kept;
continue with --resume); 2 on invalid options, policy, demos or run directory.
"""

from __future__ import annotations

import logging
import sys

from agents.cli import parse_config
from agents.dagger import DaggerConfig, DaggerError, DaggerStopped, run_dagger, run_relabel

logger = logging.getLogger("dagger")


def parse_args(argv: list[str] | None = None) -> DaggerConfig:
    return parse_config(DaggerConfig, __doc__, argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    from agents.policy_files import PolicyFileError
    from demos.errors import StoreError
    from fightenv.arena.env import DisplayError
    from fightenv.screen.capture import CaptureError
    from fightenv.screen.checks import CapabilityError
    from fightenv.screen.profile import ProfileError

    try:
        if config.relabel:
            run_relabel(config)
        else:
            run_dagger(config)
    except (DaggerError, PolicyFileError, StoreError, DisplayError, CapabilityError, CaptureError,
            ProfileError) as error:
        logger.error("%s", error)
        return 2
    except DaggerStopped as stop:
        logger.warning("%s", stop)
        return 1
    except TimeoutError as error:
        # A game window whose round never started (start probes or hotkey) within the profile's timeout.
        logger.error("%s; what was stored so far is kept; start a round in the game and continue with --resume",
                     error)
        return 1
    except KeyboardInterrupt:
        # Ctrl+C outside the correction rounds: while loading the demos or the policy, or in --relabel.
        logger.warning("stopped by Ctrl+C; what was stored so far is kept; continue with --resume")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
