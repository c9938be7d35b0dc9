"""``liveshop serve`` as an operator runs it: a real process on 127.0.0.1, its log kept.

The server runs on the test's database and Redis with the test's secrets; everything it
writes (stdout and stderr: the JSON log lines) goes to one file the test reads after the
process has stopped. Every process it starts is stopped on exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benches.processes import free_port, spawn, stop, wait_http_ok
from config import Settings
from tests.conftest import ADMIN_SECRET

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    port: int
    log_path: Path
    pid: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def serve_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LIVESHOP_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "DATABASE_URL": str(settings.database_url),
            "REDIS_URL": str(settings.redis_url),
            "LIVESHOP_SECRET_KEY": str(settings.secret_key),
            "LIVESHOP_ADMIN_SECRET": ADMIN_SECRET,
            "LIVESHOP_DATA_DIR": str(tmp_path / "data"),
            "LIVESHOP_ICE_HOST_ADDRESSES": "127.0.0.1",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def liveshop_serve(settings: Settings, tmp_path: Path, **extra: str) -> Iterator[Served]:
    """``liveshop serve --no-migrate`` (the database is migrated already) on a free port."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("wb") as log:
        proc = spawn(
            [sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--no-migrate"],
            env=serve_env(settings, tmp_path, **extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http_ok(f"http://127.0.0.1:{port}/healthz", proc)
            yield Served(port, log_path, proc.pid)
        finally:
            stop(proc, signal.SIGINT, timeout_s=15)
