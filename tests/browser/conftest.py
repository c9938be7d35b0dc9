"""Browser tests: Debian's Chromium driven by Playwright against a real liveshop server.

The server is started exactly as a user starts it: ``liveshop demo`` with the embedded
defaults (SQLite file, embedded Valkey) in a temporary data folder. ``./dev test`` runs
this folder inside a network namespace of its own (loopback and a veth address that exists
only there), so neither the browser nor the relay can reach any other host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from benches.processes import free_port, spawn, stop, wait_http_ok

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
# ./dev test sets this inside its isolated network namespace (see ``isolated_network``).
ICE_ADDRESS = os.environ.get("LIVESHOP_TEST_ICE_ADDRESS", "127.0.0.1")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


SECRET_KEY = "browser-tests-token-signing-key-0123456789"  # tests issue tokens of their own


@dataclass(frozen=True)
class Demo:
    base_url: str
    show_id: str
    host_token: str
    moderator_token: str
    admin_secret: str

    def page(self, kind: str, token: str | None = None) -> str:
        url = f"{self.base_url}/{kind}/{self.show_id}"
        return f"{url}#token={token}" if token else url


@contextlib.contextmanager
def running_demo(
    data_dir: Path,
    *,
    ice_address: str = ICE_ADDRESS,
    host: str = "127.0.0.1",
    wrap: Sequence[str] = (),
    workers: int = 1,
    settings: dict[str, str] | None = None,
) -> Iterator[Demo]:
    """``liveshop demo`` in ``data_dir``, bound to ``host``, its relay's ICE candidates on
    ``ice_address``; ``wrap`` runs it inside another command (``ip netns exec NS``). Its
    pages are at ``http://host:port`` (127.0.0.1 when bound to every address). ``workers``
    worker processes; ``settings``: more LIVESHOP_ variables."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LIVESHOP_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "LIVESHOP_DATA_DIR": str(data_dir),
            "LIVESHOP_ICE_HOST_ADDRESSES": ice_address,
            "LIVESHOP_ADMIN_SECRET": "browser-admin-secret",
            "LIVESHOP_SECRET_KEY": SECRET_KEY,
            "LIVESHOP_LOG_LEVEL": "warning",
            **(settings or {}),
        }
    )
    command = [sys.executable, "-m", "web.cli", "demo", "--host", host, "--port", str(port)]
    proc = spawn(
        [*wrap, *command, "--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        assert proc.stdout.readline().strip() == "liveshop demo is ready:"
        for _ in range(6):
            label, _, value = proc.stdout.readline().partition(": ")
            printed[label.strip()] = value.strip()
        base = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"  # noqa: S104
        wait_http_ok(f"{base}/readyz", proc)
        show_id = printed["viewer"].rstrip("/").rsplit("/", 1)[-1]
        yield Demo(
            base, show_id, printed["host token"], printed["moderator token"], "browser-admin-secret"
        )
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("demo")) as running:
        yield running


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: ./dev test installs Debian's chromium package")
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


def screenshot(page: object, name: str) -> Path:
    """Save a screenshot for a person to look at (artifacts/screenshots/NAME.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)  # type: ignore[attr-defined]
    return path


# ---- pages for the tests (one helper for every test file) ----
PAGE_TIMEOUT_MS = 15_000  # what a page's actions and expectations wait for at most


def open_page(
    browser: Browser,
    contexts: list[BrowserContext],
    url: str | None,
    viewport: dict[str, int] = PHONE,
) -> Page:
    """A page in a context of its own (its own storage: its own viewer identity), at
    ``url`` (None: not opened yet). The context is closed by the ``contexts`` fixture."""
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    contexts.append(context)
    page = context.new_page()
    if url:
        page.goto(url)
    return page


def wait_until(page: Page, expression: str, timeout_s: float) -> None:
    """Poll a JavaScript expression (the pages' CSP forbids wait_for_function's eval)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)
