"""Every coded error the product raises is in its domain's table and documented.

Each domain's table (``<domain>/error_codes.py``: code -> HTTP status) has a README table
with one row per code and the same status: checkout's under "Checkout error codes", the
web layer's under "HTTP error codes", the live channel's under "Websocket error codes" and
signaling's in signaling/README.md under "Video error codes", webhooks' under "Webhook
error codes". A raise with a code that is
not in its class's table fails here, and so does a code in a table with no row, or a row
with no code behind it.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from checkout import error_codes as checkout_codes
from core.errors import CodedError
from live import error_codes as live_codes
from signaling import error_codes as signaling_codes
from web import error_codes as web_codes
from webhooks import error_codes as webhook_codes

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "checkout", "live", "signaling", "webhooks", "web")

DOCS: dict[str, tuple[Mapping[str, int], str, str]] = {
    "checkout": (checkout_codes.CODES, "README.md", "### Checkout error codes"),
    "web": (web_codes.CODES, "README.md", "### HTTP error codes"),
    "live": (live_codes.CODES, "README.md", "### Websocket error codes"),
    "signaling": (signaling_codes.CODES, "signaling/README.md", "## Video error codes"),
    "webhooks": (webhook_codes.CODES, "README.md", "### Webhook error codes"),
}
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| (\d{3}|-) \|")


def documented(path: str, heading: str) -> dict[str, str]:
    """code -> status column of the table under ``heading``."""
    text = (ROOT / path).read_text()
    assert f"\n{heading}\n" in text, f"{path} has no {heading!r}"
    section = text.split(f"\n{heading}\n", 1)[1]
    level = heading.split(" ")[0]
    section = re.split(rf"\n{level} |\n#{{1,{len(level) - 1}}} ", section)[0]
    rows = [ROW.match(line) for line in section.splitlines() if line.startswith("| `")]
    assert all(rows), f"a row under {heading!r} is not '| `code` | status |'"
    return {m.group(1): m.group(2) for m in rows if m}


def raised_codes() -> list[tuple[str, str, str, Mapping[str, int]]]:
    """(place, class, code, the class's table) for every coded error built with a literal."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # (alembic scripts run only under alembic, and raise no codes)
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            module = importlib.import_module(name.removesuffix(".__init__"))
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                    continue
                cls = getattr(module, node.func.id, None)
                if not (isinstance(cls, type) and issubclass(cls, CodedError)):
                    continue
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    place = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.append((place, cls.__name__, first.value, cls.codes))
    return found


def test_every_raised_code_is_in_its_table() -> None:
    raised = raised_codes()
    assert len(raised) > 100  # the scan reads the raises (there are many)
    missing = [(place, cls, code) for place, cls, code, table in raised if code not in table]
    assert missing == []


@pytest.mark.parametrize("domain", sorted(DOCS))
def test_every_code_is_documented_with_its_status(domain: str) -> None:
    codes, path, heading = DOCS[domain]
    rows = documented(path, heading)
    assert sorted(rows) == sorted(codes), f"{path} {heading!r} and {domain}/error_codes.py"
    wrong = {c: (rows[c], s) for c, s in codes.items() if rows[c] not in (str(s), "-")}
    assert wrong == {}


def test_a_domain_table_cannot_list_a_code_twice_with_two_statuses() -> None:
    seen: dict[str, int] = {}
    clashes = []
    for domain, (codes, _, _) in sorted(DOCS.items()):
        for code, status in codes.items():
            if seen.setdefault(code, status) != status:
                clashes.append((domain, code, seen[code], status))
    assert clashes == []
