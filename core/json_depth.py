"""How deep a client's JSON text nests, found before it is parsed.

``json.loads`` recurses once per array or object: a few thousand brackets (a 4 KiB
websocket frame, a small HTTP body) exhaust the interpreter's stack (``RecursionError``).
HTTP bodies (``web/http.py``) and websocket frames (``live/protocol.py``) are refused past
``MAX_DEPTH`` with the coded error ``json_too_deep`` before they are parsed.

``has_nul`` finds the NUL character (``\u0000``) in a parsed value's strings or keys: valid
JSON, but PostgreSQL's text columns cannot hold it, so both parsers refuse it (400
``invalid_input``) rather than fail when it reaches the database.
"""

from __future__ import annotations

import re
from itertools import accumulate

MAX_DEPTH = 32
"""The deepest nesting of arrays and objects a client may send (the API's deepest body,
a product with variants and their attributes, nests 3 deep)."""

# A JSON string, escapes included, or an unterminated one to the end of the text: every
# quote the scan meets outside a string starts a match that succeeds, so it stays linear
# (a match failing at each of many quotes would rescan the rest each time: quadratic).
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether ``text`` opens more than ``limit`` arrays or objects inside each other.

    Brackets inside strings do not count. A text with no more than ``limit`` opening
    brackets at all (every tap, chat, buy and cart request) costs two ``str.count``; the
    others are cut to their brackets and the deepest prefix found: exact on valid JSON, and
    on any other text the depth of its longest valid prefix or more (all a parser reads).
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if re.search("[\\[{]{" + str(limit + 1) + "}", brackets):  # (a run that deep: at once)
        return True
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def has_nul(value: object) -> bool:
    """Whether a string (or key) anywhere in the parsed JSON ``value`` holds U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return False
