"""Command line of the Arena: ``python -m fightenv.arena --window`` opens the game in an X window.

Play with the keys of ``fightenv/profiles/arena.toml``: Right forward, Left back,
Up/Down sidestep in/out, space jump, a punch, s kick, d guard, f grab, g special.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from fightenv.arena.cpu import DIFFICULTIES
from fightenv.arena.window import WindowConfig, run_window


def _keys_help() -> str:
    """List the default profile's key per button, so the help shows the keys the game reads."""
    from fightenv.screen.profile import ARENA_PROFILE, load_profile

    profile = load_profile(ARENA_PROFILE)
    keys = ", ".join(f"{key} {button}" for button, key in profile.key_for_button.items())
    return f"keys (from {ARENA_PROFILE.name}, unless --profile names another): {keys}"


def parse_args(argv: list[str] | None = None) -> tuple[bool, WindowConfig]:
    defaults = WindowConfig()
    parser = argparse.ArgumentParser(
        prog="python -m fightenv.arena", description=__doc__.splitlines()[0], epilog=_keys_help(),
    )
    parser.add_argument("--window", action="store_true", help="open the game in an X window and play in real time")
    parser.add_argument("--difficulty", choices=DIFFICULTIES, default=defaults.difficulty, help="CPU level")
    parser.add_argument("--seed", type=int, default=None, help="seed of the CPU's randomness (default: random)")
    parser.add_argument("--size", default=f"{defaults.width}x{defaults.height}",
                        help="window client size as WIDTHxHEIGHT in pixels (default: %(default)s)")
    parser.add_argument("--fps", type=float, default=defaults.fps,
                        help="frames drawn per second, 1 to 60; the game runs at 60 ticks/s (default: %(default)s)")
    parser.add_argument("--round-time", type=float, default=defaults.round_time_s,
                        help="round length in seconds (default: %(default)s)")
    parser.add_argument("--restart-delay", type=float, default=defaults.restart_delay_s,
                        help="seconds the result stays up before the next round (default: %(default)s)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="game profile whose [buttons] keys drive the player (default: fightenv/profiles/arena.toml)")
    parser.add_argument("--position", default="0,0", help="top-left corner of the window as X,Y pixels")
    parser.add_argument("--rounds", type=int, default=None, help="quit after this many rounds (default: play on)")
    parser.add_argument("--focus-only", action="store_true",
                        help="take keys only while the game window has the input focus (default: whatever has it)")
    args = parser.parse_args(argv)

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must look like 640x480, got {args.size!r}")
    try:
        x, y = (int(v) for v in args.position.split(","))
    except ValueError:
        parser.error(f"--position must look like 0,0, got {args.position!r}")
    config = dataclasses.replace(
        defaults, difficulty=args.difficulty, seed=args.seed, width=width, height=height, fps=args.fps,
        round_time_s=args.round_time, restart_delay_s=args.restart_delay, profile=args.profile,
        position=(x, y), max_rounds=args.rounds, focus_only=args.focus_only,
    )
    try:
        config.validate()
    except ValueError as error:
        parser.error(str(error))
    return args.window, config


def main(argv: list[str] | None = None) -> int:
    window, config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not window:
        print("nothing to do: pass --window to play the Arena in an X window "
              "(the Gymnasium env is fightenv/Arena-v0)", file=sys.stderr)
        return 2
    from fightenv.screen.checks import CapabilityError, check_display

    try:
        check_display()
    except CapabilityError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    run_window(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
