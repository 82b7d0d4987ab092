"""Measure how soon the X server's key state shows a key event sent through XTest, under a private Xvfb.

    python -m fightenv.screen.keymap_latency                  # 200 presses and 200 releases
    python -m fightenv.screen.keymap_latency --events 500 --json out/keymap_latency.json

A ``KeySender`` presses and releases one key; a second X connection polls
``XQueryKeymap`` until the key's state matches. The printed p50, p99 and max
delays (ms, from the return of ``send`` to the first matching poll) size
``agents.human.KEYMAP_SETTLE_S``, the time after the agent's last event on a
key before that key counts as the person's. Needs Xvfb on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

POLL_TIMEOUT_S = 1.0


def measure(events: int, key: str = "d") -> dict:
    """Return p50, p99 and max delays in ms of ``events`` presses and as many releases of ``key``."""
    from fightenv.screen.keys import KeySender, XKeyboardState
    from fightenv.screen.xvfb import private_display

    delays: dict[str, list[float]] = {"press": [], "release": []}
    with private_display() as name:
        os.environ["DISPLAY"] = name
        sender = KeySender([key], watchdog_s=None, handle_signals=False)
        keymap = XKeyboardState([key])
        try:
            for _ in range(events):
                for kind, down in (("press", True), ("release", False)):
                    sent_s = time.monotonic()
                    sender.send([int(down)])
                    while bool(keymap.held()[0]) != down:
                        if time.monotonic() - sent_s > POLL_TIMEOUT_S:
                            raise TimeoutError(f"the keymap did not show the {kind} of {key!r} within {POLL_TIMEOUT_S} s")
                    delays[kind].append((time.monotonic() - sent_s) * 1000)
                    time.sleep(0.005)
        finally:
            sender.close()
            keymap.close()
            # pynput's controller closes its X connection when collected; that must happen before Xvfb stops.
            del sender
    results: dict = {"events": events, "key": key, "machine": platform.platform(), "load_average": os.getloadavg()}
    for kind, values in delays.items():
        array = np.asarray(values)
        results[kind] = {"p50_ms": float(np.percentile(array, 50)), "p99_ms": float(np.percentile(array, 99)),
                         "max_ms": float(array.max())}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="presses to time, and as many releases (default: 200)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON path")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error(f"--events must be at least 1, got {args.events}")
    results = measure(args.events)
    for kind in ("press", "release"):
        row = results[kind]
        print(f"{kind:>7}: p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms, max {row['max_ms']:.3f} ms")
    print(f"load average {results['load_average'][0]:.2f} on {os.cpu_count()} cores")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
