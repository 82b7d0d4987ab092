"""Shared fixtures: a private Xvfb server for tests that need an X display."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

# A runner that starts the suite in the background (`cmd &` in a non-interactive shell) leaves SIGINT
# ignored, and every child process inherits that, so tests that stop a child with Ctrl+C would hang.
# A handler, unlike SIG_IGN, is reset to the default in children.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def xvfb_display():
    """Start Xvfb on a free display number and return its name, e.g. ":12"; stop it after the session."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed; install the Debian package xvfb (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        pytest.fail("Xvfb did not report a display number")
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)
