"""The tests' localstripe stops by itself when the run that started it is killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benches.processes import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_it_exits_when_its_parent_is_killed() -> None:
    # A parent (standing for pytest) starts the server and prints its pid; the parent is
    # then killed with SIGKILL, so no fixture can stop the server.
    port = free_port()
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-m', 'tests.localstripe_server',"
        f" '--port', '{port}'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    server = int(parent.stdout.readline())
    try:
        time.sleep(1.5)  # (it is up and watching)
        os.kill(server, 0)  # alive while its parent is
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(server, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("localstripe outlived the run that started it")
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(server, signal.SIGKILL)
