"""Every error code a viewer may receive has a human sentence in web/static/messages.js
(read from its source: the pages have no build step to import it through)."""

from __future__ import annotations

import re
from pathlib import Path

from checkout.error_codes import CODES as CHECKOUT
from live.error_codes import CODES as LIVE
from web.error_codes import CODES as WEB

SOURCE = Path(__file__).resolve().parents[2] / "web" / "static" / "messages.js"


def _entries() -> set[str]:
    text = SOURCE.read_text()
    table = text[text.index("export const MESSAGES = {") : text.index("\n};")]
    return set(re.findall(r"^  ([a-z][a-z0-9_]*):", table, flags=re.MULTILINE))


def test_every_code_has_a_human_message() -> None:
    codes = set(WEB) | set(CHECKOUT) | set(LIVE) | {"disconnected"}
    missing = sorted(codes - _entries())
    assert missing == [], f"web/static/messages.js has no message for {missing}"


def test_the_table_reads_what_it_should() -> None:
    entries = _entries()
    assert {"sold_out", "muted", "deal_limit_reached", "already_voted"} <= entries
    assert "raw" not in entries and len(entries) > 60
    text = SOURCE.read_text()
    assert "You already have the most this deal allows" in text
    assert "you can chat again in ${n(extra.seconds_left" in text
