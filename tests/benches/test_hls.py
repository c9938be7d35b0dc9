"""``liveshop bench hls``: its nginx config, its reading of nginx's log, and a short run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benches.hls import parse_playlist
from benches.hls_nginx import NGINX, nginx_config, origin_requests

ROOT = Path(__file__).resolve().parents[2]
needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path(NGINX).exists(), reason="nginx not installed"
)


@needs_nginx
def test_nginx_accepts_the_generated_config(tmp_path: Path) -> None:
    conf = nginx_config(tmp_path, 18080, 18081, workers=1, static=tmp_path / "www")
    (tmp_path / "nginx.conf").write_text(conf)
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert checked.returncode == 0, checked.stderr
    assert "proxy_cache_lock on;" in conf
    assert "proxy_cache_use_stale updating" in conf
    assert "proxy_ignore_headers" not in conf  # the origin's Cache-Control is honoured
    # every path nginx writes is inside its folder
    for path in re.findall(r"(?:pid|error_log|access_log|_temp_path|proxy_cache_path) (\S+)", conf):
        assert path.startswith(str(tmp_path)), path


def test_origin_requests_per_segment_from_the_log() -> None:
    lines = [
        "100.0 200 /hls/s/index.m3u8 MISS 127.0.0.1:9 400 0.001",
        "100.1 200 /hls/s/index.m3u8 HIT - 400 0.000",
        "100.2 200 /hls/s/init-0.mp4 MISS 127.0.0.1:9 800 0.001",
        "99.0 200 /hls/s/1.m4s MISS 127.0.0.1:9 1000 0.002",  # fetched before the window
        "100.3 200 /hls/s/1.m4s HIT - 1000 0.000",
        "100.4 200 /hls/s/2.m4s MISS 127.0.0.1:9 1000 0.002",
        "100.4 200 /hls/s/2.m4s MISS 127.0.0.1:9 1000 0.002",  # the lock timed out: twice
        "100.5 200 /hls/s/2.m4s HIT - 1000 0.000",
        "100.6 404 /hls/s/3.m4s MISS 127.0.0.1:9 10 0.001",
        "101.0 200 /hls/s/4.m4s HIT - 1000 0.000",  # after the window
        "garbage",
    ]
    summary = origin_requests(lines, 100.0, 101.0)
    assert summary.segments == {"/hls/s/1.m4s", "/hls/s/2.m4s"}
    assert summary.origin_requests_per_segment == 1.5
    assert summary.requests == {"playlist": 2, "init": 1, "segment": 5}
    assert summary.origin == {"playlist": 1, "init": 1, "segment": 3}
    assert summary.errors == 1
    assert summary.bytes_sent == 400 * 2 + 800 + 4000 + 10


def test_playlist_parsing() -> None:
    text = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:41\n"
        '#EXT-X-MAP:URI="init-0.mp4"\n#EXTINF:1.0,\n'
        "#EXT-X-PROGRAM-DATE-TIME:2026-12-03T15:11:58.568+0000\n41.m4s\n#EXTINF:1.0,\n42.m4s\n"
    )
    assert parse_playlist(text) == (1.0, 41, "init-0.mp4", [(41, "41.m4s"), (42, "42.m4s")])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@needs_nginx
@pytest.mark.timeout(150)
@pytest.mark.parametrize("origin", ["standin", "app"])
def test_a_short_run_serves_every_viewer_from_the_cache(origin: str) -> None:
    """20 viewers for 5 s (no Chromium), from the stand-in origin and from the app's
    packager fed over WHIP: every request answered, at most two origin requests per
    segment, and nginx stopped afterwards."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "benches.hls",
            "--origin",
            origin,
            "--viewers",
            "20",
            "--window",
            "5",
            "--ramp",
            "1",
            "--no-chromium",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["failed_requests"] == 0, result
    assert result["failed_requests_whole_run"] == 0, result
    assert result["behind_viewers"] == 0, result
    assert result["distinct_segments"] >= 3, result
    assert result["segments_fetched"] >= 20 * 3, result
    assert 1 <= result["origin_requests_per_segment"] <= 2, result
    assert result["origin_requests"]["playlist"] <= 2 * 5 + 2, result
    nginx_pid = int(re.search(r"nginx on \d+ \(pid (\d+)\)", run.stdout).group(1))  # type: ignore[union-attr]
    assert not _pid_alive(nginx_pid)
