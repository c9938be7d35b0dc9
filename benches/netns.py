"""An impaired network link made of Linux network namespaces, for video tests and benches.

``ImpairedLink`` makes a *server* namespace and (by default) ``viewers`` *viewer*
namespaces, each joined to the server's by a veth pair of its own (a phone's link is its
own): ``10.79.N.4k+1`` (server) <-> ``10.79.N.4k+2`` (viewer k), and nothing else: no route
leads out of any, so nothing sent inside can reach another host. Both directions are clean
but for server -> viewer:

- ``rate_mbit``: a ``tc tbf`` bottleneck on the server's end of the veth (its queue holds
  ``TBF_LATENCY_MS`` of traffic; past that, packets are dropped, as a real narrow link
  does);
- ``loss_pct``: the viewer's input drops that share of the SRTP/SRTCP datagrams it gets
  from the server (nftables ``numgen random``; UDP whose payload starts with RTP version
  2). STUN, DTLS and TCP (the page, its websocket) are left alone, so every run connects in
  the same number of round trips.

``viewer_ns=False`` leaves the (one) viewer side in the caller's own namespace (Chromium,
which a test launches from its own process); the veth end and the nft table made there are
removed again on exit. Needs root (``ip netns``), iproute2 and nftables.

Run a command on a side with ``link.command("server", [...])`` or
``link.command("viewer", [...], k)``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
from types import TracebackType

TBF_LATENCY_MS = 100
TBF_BURST_BYTES = 15_000
NFT_TABLE = "liveshop_loss"

_instances = itertools.count()


def available() -> str | None:
    """None when links can be made here, else why not."""
    for tool in ("ip", "tc", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def _run(*args: str, stdin: str | None = None) -> None:
    subprocess.run(args, check=True, input=stdin, text=True, capture_output=True)  # noqa: S603


class ImpairedLink:
    def __init__(
        self,
        *,
        loss_pct: float = 0.0,
        rate_mbit: float | None = None,
        viewer_ns: bool = True,
        viewers: int = 1,
    ) -> None:
        if not 1 <= viewers <= 60 or (viewers > 1 and not viewer_ns):
            raise ValueError("1-60 viewer namespaces, or one viewer in the caller's namespace")
        if not 0 <= loss_pct < 100:
            raise ValueError("loss_pct must be in [0, 100)")
        if rate_mbit is not None and rate_mbit <= 0:
            raise ValueError("rate_mbit must be positive")
        self.loss_pct = loss_pct
        self.rate_mbit = rate_mbit
        n = next(_instances)
        tag = f"{os.getpid() % 100_000}x{n}"
        subnet = (os.getpid() * 7 + n) % 250 + 1
        self.server_addresses = [f"10.79.{subnet}.{4 * k + 1}" for k in range(viewers)]
        self.viewer_addresses = [f"10.79.{subnet}.{4 * k + 2}" for k in range(viewers)]
        self.server_ns = f"lss{tag}"
        self.viewer_namespaces: list[str | None] = (
            [f"lsv{tag}v{k}" for k in range(viewers)] if viewer_ns else [None]
        )
        self._server_ifs = [f"lss{tag}v{k}" for k in range(viewers)]
        self._viewer_ifs = [f"lsv{tag}v{k}" for k in range(viewers)]
        self._made: list[str] = []

    @property
    def server_address(self) -> str:
        """The server's address on the first viewer's link."""
        return self.server_addresses[0]

    @property
    def viewer_address(self) -> str:
        return self.viewer_addresses[0]

    @property
    def viewer_ns(self) -> str | None:
        return self.viewer_namespaces[0]

    # -- using it ---------------------------------------------------------------------------

    def command(self, side: str, args: list[str], viewer: int = 0) -> list[str]:
        """``args`` run inside ``side`` ("server", or "viewer" number ``viewer``)."""
        if side not in ("server", "viewer"):
            raise ValueError(side)
        ns = self.server_ns if side == "server" else self.viewer_namespaces[viewer]
        return args if ns is None else ["ip", "netns", "exec", ns, *args]

    def describe(self) -> dict[str, object]:
        return {
            "loss_pct": self.loss_pct,
            "rate_mbit": self.rate_mbit,
            "tbf_latency_ms": TBF_LATENCY_MS if self.rate_mbit else None,
            "tbf_burst_bytes": TBF_BURST_BYTES if self.rate_mbit else None,
        }

    # -- making and removing it ----------------------------------------------------------

    def __enter__(self) -> ImpairedLink:
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _in(self, ns: str | None, *args: str, stdin: str | None = None) -> None:
        _run(*(args if ns is None else ("ip", "netns", "exec", ns, *args)), stdin=stdin)

    def _make(self) -> None:
        reason = available()
        if reason is not None:
            raise RuntimeError(f"cannot make an impaired link: {reason}")
        for ns in (self.server_ns, *self.viewer_namespaces):
            if ns is not None:
                _run("ip", "netns", "add", ns)
                self._made.append(ns)
                self._in(ns, "ip", "link", "set", "lo", "up")
        for k, ns in enumerate(self.viewer_namespaces):
            self._pair(k, ns)

    def _pair(self, k: int, ns: str | None) -> None:
        server_if, viewer_if = self._server_ifs[k], self._viewer_ifs[k]
        _run("ip", "link", "add", viewer_if, "type", "veth", "peer", "name", server_if)
        self._made.append(f"veth{k}")
        _run("ip", "link", "set", server_if, "netns", self.server_ns)
        if ns is not None:
            _run("ip", "link", "set", viewer_if, "netns", ns)
        server_address, viewer_address = self.server_addresses[k], self.viewer_addresses[k]
        self._in(self.server_ns, "ip", "addr", "add", f"{server_address}/30", "dev", server_if)
        self._in(ns, "ip", "addr", "add", f"{viewer_address}/30", "dev", viewer_if)
        self._in(self.server_ns, "ip", "link", "set", server_if, "up")
        self._in(ns, "ip", "link", "set", viewer_if, "up")
        if self.rate_mbit is not None:
            self._in(
                self.server_ns,
                *("tc", "qdisc", "add", "dev", server_if, "root", "tbf"),
                *("rate", f"{int(self.rate_mbit * 1000)}kbit", "burst", str(TBF_BURST_BYTES)),
                *("latency", f"{TBF_LATENCY_MS}ms"),
            )
        if self.loss_pct > 0:
            basis_points = round(self.loss_pct * 100)
            rules = (
                f"table inet {NFT_TABLE}_{viewer_if} {{\n"
                "  chain input {\n"
                "    type filter hook input priority 0; policy accept;\n"
                f"    ip saddr {server_address} meta l4proto udp @th,64,2 == 2 "
                f"numgen random mod 10000 < {basis_points} drop\n"
                "  }\n"
                "}\n"
            )
            self._in(ns, "nft", "-f", "-", stdin=rules)
            self._made.append(f"nft{k}")

    def close(self) -> None:
        """Remove what was made (idempotent; a namespace takes its veth ends with it)."""
        if self.viewer_namespaces == [None]:
            if "nft0" in self._made:
                with contextlib.suppress(subprocess.CalledProcessError):
                    _run("nft", "delete", "table", "inet", f"{NFT_TABLE}_{self._viewer_ifs[0]}")
            if "veth0" in self._made:
                with contextlib.suppress(subprocess.CalledProcessError):
                    _run("ip", "link", "del", self._viewer_ifs[0])
        for ns in (self.server_ns, *self.viewer_namespaces):
            if ns is not None and ns in self._made:
                with contextlib.suppress(subprocess.CalledProcessError):
                    _run("ip", "netns", "del", ns)
        self._made.clear()
