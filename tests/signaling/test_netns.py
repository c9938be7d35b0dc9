"""The impaired link itself (``benches/netns.py``): its loss hits RTP over UDP, nothing else.

A datagram whose payload starts like RTP (version 2) is dropped at the link's rate; one that
starts like DTLS is not; TCP (the page and its websocket, in the browser tests) is never
dropped, so a transfer that would crawl under 90% loss finishes at once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from benches import netns

DATAGRAMS = 400
CONNECTIONS = 20
RECEIVER = f"CONNECTIONS = {CONNECTIONS}\n" + textwrap.dedent(
    """
    import socket, sys, time
    kind, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        s.settimeout(1.5)
        got = 0
        print("ready", flush=True)
        try:
            while got < count:
                s.recv(2048)
                got += 1
        except TimeoutError:
            pass
        print(got, flush=True)
    else:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(1)
        print("ready", flush=True)
        got = 0
        start = time.monotonic()
        for _ in range(CONNECTIONS):
            c, _ = s.accept()
            while data := c.recv(65536):
                got += len(data)
            c.close()
        print(got, round(time.monotonic() - start, 3), flush=True)
    """
)


@pytest.fixture
def link() -> netns.ImpairedLink:
    reason = netns.available()
    assert reason is None, f"this test makes network namespaces: {reason}"
    return netns.ImpairedLink(loss_pct=90.0)


def _receiver(link: netns.ImpairedLink, kind: str, port: int, count: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        link.command("viewer", [sys.executable, "-c", RECEIVER, kind, str(port), str(count)]),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _in_server(link: netns.ImpairedLink, code: str) -> None:
    subprocess.run(link.command("server", [sys.executable, "-c", code]), check=True, timeout=30)


def _udp_received(link: netns.ImpairedLink, first_byte: int) -> int:
    proc = _receiver(link, "udp", 40_000, DATAGRAMS)
    try:
        _in_server(
            link,
            "import socket, time\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range({DATAGRAMS}):\n"
            f"    s.sendto(bytes([{first_byte}]) + bytes(99), ('{link.viewer_address}', 40000))\n"
            "    time.sleep(0.001)\n",
        )
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    return int(out.strip())


def test_rtp_datagrams_are_dropped_and_dtls_ones_are_not(link: netns.ImpairedLink) -> None:
    with link:
        rtp = _udp_received(link, 0x80)
        dtls = _udp_received(link, 0x16)
    assert rtp < DATAGRAMS * 0.25, rtp  # about 10% arrive
    assert dtls == DATAGRAMS


def test_tcp_is_never_dropped(link: netns.ImpairedLink) -> None:
    size = 256 * 1024
    with link:
        proc = _receiver(link, "tcp", 40_001, size)
        try:
            started = time.monotonic()
            _in_server(
                link,
                "import socket\n"
                f"for _ in range({CONNECTIONS}):\n"
                f"    c = socket.create_connection(('{link.viewer_address}', 40001))\n"
                f"    c.sendall(bytes({size}))\n"
                "    c.close()\n",
            )
            out, _ = proc.communicate(timeout=20)
        finally:
            proc.kill()
    got, seconds = out.split()
    assert int(got) == size * CONNECTIONS
    # (a TCP segment's bits 64-65 are its acknowledgment number's top two: about a quarter
    # of the connections have "@th,64,2 == 2" in every segment; were TCP subject to the 90%
    # loss, those would crawl for seconds)
    assert float(seconds) < 2.0 and time.monotonic() - started < 10, seconds


def test_nothing_is_left_behind() -> None:
    link = netns.ImpairedLink(loss_pct=1.0)
    with link:
        made = [link.server_ns, str(link.viewer_ns)]
        assert all(ns in _namespaces() for ns in made)
    assert not any(ns in _namespaces() for ns in made)


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
