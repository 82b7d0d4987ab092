"""Start a private Xvfb X server on a free display number, for tests and benchmarks."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Xvfb:
    """A running Xvfb process and its ``DISPLAY`` value (such as ":12")."""

    process: subprocess.Popen
    display: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> Xvfb:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_xvfb(width: int = 1280, height: int = 1024, timeout_s: float = 10.0) -> Xvfb:
    """Start Xvfb with a 24-bit screen; Xvfb itself picks a free display number (``-displayfd``)."""
    if shutil.which("Xvfb") is None:
        raise FileNotFoundError("Xvfb not found on PATH; install it (Debian/Ubuntu: apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    # -noreset: by default Xvfb resets when its last client disconnects, dropping clients that connect meanwhile.
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    os.close(write_fd)
    try:
        deadline = time.monotonic() + timeout_s
        output = b""
        while not output.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.poll() is not None else ""
                process.kill()
                raise RuntimeError(f"Xvfb did not report a display number within {timeout_s} s: {stderr.strip()}")
            ready, _, _ = select.select([read_fd], [], [], remaining)
            if ready:
                chunk = os.read(read_fd, 64)
                if not chunk:
                    continue
                output += chunk
    finally:
        os.close(read_fd)
    return Xvfb(process=process, display=f":{int(output.strip())}")


def launch_arena_window(
    display: str, *args: str, timeout_s: float = 15.0, python: str | None = None,
) -> subprocess.Popen:
    """Start ``python -m fightenv.arena --window ARGS`` on ``display`` and wait until its window is viewable."""
    import sys

    from Xlib import display as xdisplay

    from fightenv.arena.env import WINDOW_TITLE
    from fightenv.screen.capture import list_windows

    process = subprocess.Popen(
        [python or sys.executable, "-m", "fightenv.arena", "--window", *args],
        env={**os.environ, "DISPLAY": display}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    connection = xdisplay.Display(display)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the Arena window program exited with {process.returncode}: {process.stderr.read()}")
            if any(WINDOW_TITLE in title for _, title in list_windows(connection)):
                return process
            time.sleep(0.05)
    finally:
        connection.close()
    process.kill()
    raise TimeoutError(f"the Arena window did not appear on {display} within {timeout_s} s")


@contextmanager
def private_display(width: int = 1280, height: int = 1024):
    """Start Xvfb and point ``DISPLAY`` at it (clearing Wayland variables) until the block ends; yield ``DISPLAY``."""
    server = start_xvfb(width, height)
    names = ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")
    previous = {name: os.environ.get(name) for name in names}
    os.environ["DISPLAY"] = server.display
    os.environ.pop("WAYLAND_DISPLAY", None)
    os.environ.pop("XDG_SESSION_TYPE", None)
    try:
        yield server.display
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()
