"""Debian's nginx as the bench's caching reverse proxy (a CDN edge on loopback).

``nginx_config`` writes a config whose every path (pid, temp, cache, logs) is inside one
folder; ``running_nginx`` starts ``nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'`` and
stops it (and its workers) on exit. ``origin_requests`` reads its access log: a request the
cache answered has no upstream address, one that went to the origin has it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benches.processes import spawn, stop

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# One access log line: wall time, status, URI, cache status, upstream, bytes, request time.
LOG_FORMAT = (
    "$msec $status $request_uri $upstream_cache_status $upstream_addr "
    "$body_bytes_sent $request_time"
)


ORIGIN_CONF = """proxy_pass http://origin;
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_set_header Host $host;
proxy_cache hls;
# The origin's Cache-Control says how long (playlist 1 s, segments a year); nothing else is
# cached (errors included). Concurrent misses wait for one origin request.
proxy_cache_lock on;
proxy_cache_lock_timeout 10s;
proxy_cache_lock_age 10s;
proxy_cache_use_stale updating error timeout;
proxy_cache_revalidate on;
add_header X-Cache $upstream_cache_status;
"""


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.strip().splitlines())


def nginx_config(
    root: Path, listen_port: int, origin_port: int, workers: int = 1, static: Path | None = None
) -> str:
    """nginx.conf for a caching proxy on 127.0.0.1:``listen_port`` in front of the origin on
    127.0.0.1:``origin_port``; ``static`` (a folder) is served under ``/bench/``."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    static_block = (
        f"""
        location /bench/ {{
            alias {static}/;
            add_header Cache-Control no-store;
        }}"""
        if static is not None
        else ""
    )
    return f"""{user}worker_processes {workers};
worker_rlimit_nofile 65536;
pid {root}/nginx.pid;
error_log {root}/error.log warn;

events {{
    worker_connections 16384;
    multi_accept on;
}}

http {{
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp4 mp4;
        video/iso.segment m4s;
        text/html html;
        text/javascript js mjs;
    }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_temp_path {root}/client_temp;
    proxy_temp_path {root}/proxy_temp;
    fastcgi_temp_path {root}/fastcgi_temp;
    uwsgi_temp_path {root}/uwsgi_temp;
    scgi_temp_path {root}/scgi_temp;
    log_format hls '{LOG_FORMAT}';
    access_log {root}/access.log hls buffer=256k flush=1s;
    log_subrequest on;

    proxy_cache_path {root}/cache levels=1:2 keys_zone=hls:16m max_size=2g inactive=10m
                     use_temp_path=off;

    map $msec $playlist_slice {{
        "~^(?<second>\\d+)\\.[0-4]" "$second.0";
        "~^(?<second>\\d+)\\." "$second.5";
    }}

    upstream origin {{
        server 127.0.0.1:{origin_port};
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{listen_port} backlog=4096;
        server_name localhost;

        location /hls/ {{
            proxy_cache_key $uri;
{_indent(ORIGIN_CONF, 12)}

            location ~ \\.m3u8$ {{
                # nginx keeps a response for whole seconds (max-age=1: up to 2 s), so the
                # playlist's key changes every half second: a viewer's playlist is at most
                # about 0.5 s old, and the origin gets at most two playlist requests a second
                # whatever the viewer count.
                proxy_cache_key $uri|$playlist_slice;
{_indent(ORIGIN_CONF, 16)}
            }}
        }}{static_block}
    }}
}}
"""


@dataclass
class Nginx:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"

    def pids(self) -> list[int]:
        """The master and its workers."""
        pids = [self.process.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(stat[1]) == self.process.pid:
                        pids.append(int(entry.name))
        return pids


@contextlib.contextmanager
def running_nginx(
    root: Path, port: int, origin_port: int, workers: int = 1, static: Path | None = None
) -> Iterator[Nginx]:
    """nginx started in the foreground (its own process group), stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(nginx_config(root, port, origin_port, workers, static))
    log = (root / "nginx.out").open("wb")
    proc = spawn(
        [NGINX, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                detail = (root / "nginx.out").read_text() + (
                    (root / "error.log").read_text() if (root / "error.log").exists() else ""
                )
                raise RuntimeError(f"nginx exited with {proc.returncode}: {detail}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not listen within 10 s")
            time.sleep(0.05)
        yield Nginx(root, port, proc)
    finally:
        stop(proc, signal.SIGQUIT, timeout_s=5)  # graceful: flushes the access log
        log.close()


@dataclass
class LogSummary:
    requests: dict[str, int] = field(default_factory=dict)  # kind -> requests served
    origin: dict[str, int] = field(default_factory=dict)  # kind -> requests that hit the origin
    errors: int = 0
    bytes_sent: int = 0
    segments: set[str] = field(default_factory=set)  # distinct segment URIs served (200)
    origin_segment_uris: dict[str, int] = field(default_factory=dict)
    request_times: dict[str, list[float]] = field(default_factory=dict)

    @property
    def origin_requests_per_segment(self) -> float:
        if not self.segments:
            return float("nan")
        return sum(self.origin_segment_uris.get(uri, 0) for uri in self.segments) / len(
            self.segments
        )


def request_kind(uri: str) -> str:
    path = uri.split("?", 1)[0]
    if path.endswith(".m3u8"):
        return "playlist"
    if path.endswith(".m4s"):
        return "segment"
    if path.endswith(".mp4"):
        return "init"
    return "other"


def origin_requests(lines: Iterable[str], since: float, until: float) -> LogSummary:
    """What nginx served in [since, until) (wall time) and how much of it hit the origin."""
    summary = LogSummary()
    for line in lines:
        parts = line.split()
        if len(parts) < 7:
            continue
        try:
            at = float(parts[0])
        except ValueError:
            continue
        status, uri, cache, upstream, sent = parts[1], parts[2], parts[3], parts[4], parts[5]
        kind = request_kind(uri)
        went_to_origin = upstream != "-" and cache not in ("HIT", "STALE")
        if kind == "segment" and went_to_origin:
            # (whenever it happened: a segment served in the window may have been fetched
            # from the origin just before it)
            summary.origin_segment_uris[uri] = summary.origin_segment_uris.get(uri, 0) + 1
        if kind == "other" or not since <= at < until:
            continue
        summary.requests[kind] = summary.requests.get(kind, 0) + 1
        summary.request_times.setdefault(kind, []).append(float(parts[6]))
        summary.bytes_sent += int(sent)
        if went_to_origin:
            summary.origin[kind] = summary.origin.get(kind, 0) + 1
        if not status.startswith("2"):
            summary.errors += 1
        elif kind == "segment":
            summary.segments.add(uri)
    return summary
