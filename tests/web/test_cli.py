"""The liveshop command, run as a user runs it (real processes, real servers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from benches.processes import free_port, spawn, stop, wait_http_ok

LIVESHOP = [sys.executable, "-m", "web.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LIVESHOP_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update({"LIVESHOP_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}, **extra)
    return env


@pytest.mark.parametrize("command", ["serve", "demo", "migrate", "token", "bench"])
def test_every_command_has_help(command: str) -> None:
    out = subprocess.run(
        [*LIVESHOP, command, "--help"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert out.startswith(f"usage: liveshop {command}")


def test_bad_setting_fails_at_start(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*LIVESHOP, "migrate"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(tmp_path, LIVESHOP_PORT="x"),
    )
    assert proc.returncode == 2
    assert "LIVESHOP_PORT: Input should be a valid integer" in proc.stderr


def test_token_command_signs_with_the_data_folder_key(tmp_path: Path) -> None:
    from config import load_settings
    from web.auth import TokenIssuer

    proc = subprocess.run(
        [*LIVESHOP, "token", "--role", "host", "--show", "shw_1", "--name", "Hana"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(tmp_path),
        check=True,
    )
    key = load_settings(data_dir=tmp_path / "data").signing_key()
    principal = TokenIssuer(key, 60).verify(proc.stdout.strip())
    assert (principal.role.value, principal.show_id, principal.name) == ("host", "shw_1", "Hana")
    proc = subprocess.run(
        [*LIVESHOP, "token", "--role", "host", "--name", "x"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(tmp_path),
    )
    assert proc.returncode == 2 and "--show is required" in proc.stderr
    # A name longer than the columns that keep it (users, questions) is refused here too.
    proc = subprocess.run(
        [*LIVESHOP, "token", "--role", "viewer", "--name", "n" * 81],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(tmp_path),
    )
    assert proc.returncode == 2 and "--name is 1 to 80 characters" in proc.stderr


def _valkey_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "valkey-server"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def test_demo_serves_with_embedded_defaults_and_cleans_up(tmp_path: Path) -> None:
    before = _valkey_pids()
    port = free_port()
    proc = spawn(
        [*LIVESHOP, "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(tmp_path),
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(7)]
        assert lines[0].strip() == "liveshop demo is ready:"
        printed = dict(line.strip().split(": ", 1) for line in lines[1:])
        assert set(printed) == {
            "viewer",
            "host studio",
            "moderator",
            "host token",
            "moderator token",
            "admin secret",
        }
        show_id = printed["viewer"].rsplit("/", 1)[-1]
        assert printed["host studio"].endswith(f"/studio/{show_id}#token={printed['host token']}")
        show_url = f"http://127.0.0.1:{port}/api/shows/{show_id}"
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", proc)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        assert _valkey_pids() - before, "the embedded Redis server should be running"
        show = httpx.get(show_url, timeout=5).json()
        assert show["status"] == "live"
        assert [p["name"] for p in show["products"]][:2] == [
            "Merino crew sweater",
            "Ceramic pour-over set",
        ]
        proc.send_signal(signal.SIGINT)  # the demo's own shutdown must stop its Valkey
        proc.wait(timeout=20)
        left_behind = _valkey_pids() - before
    finally:
        stop(proc)  # and if it did not, nothing outlives the test
    assert left_behind == set(), "the embedded Redis server was left behind"
