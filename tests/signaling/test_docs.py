"""Every setting and every error code of the relay is documented, and every code is used."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

from signaling import SignalingConfig
from signaling.error_codes import CODES

ROOT = Path(__file__).parents[2]
README = (ROOT / "signaling" / "README.md").read_text()
# Where SignalingErrors are raised: the relay, and the app's ShowAccess.
RAISERS = [*sorted((ROOT / "signaling").rglob("*.py")), ROOT / "web" / "video_access.py"]
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| (\d{3}) \|")


def raised_codes() -> dict[str, list[str]]:
    """code -> the places a ``SignalingError`` is built with it (both arms of an
    ``a if c else b`` assigned to the name passed as the code count too)."""
    found: dict[str, list[str]] = {}
    for path in RAISERS:
        tree = ast.parse(path.read_text())
        names: dict[str, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.IfExp):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        names[target.id] = [node.value.body, node.value.orelse]
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "SignalingError"
                and node.args
            ):
                continue
            first = node.args[0]
            options = names.get(first.id, []) if isinstance(first, ast.Name) else [first]
            for option in options:
                if isinstance(option, ast.Constant) and isinstance(option.value, str):
                    place = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.setdefault(option.value, []).append(place)
    return found


def documented_codes() -> dict[str, int]:
    """code -> status of each row of the README's "Video error codes" table."""
    assert "\n## Video error codes\n" in README
    section = re.split(r"\n#{1,2} ", README.split("\n## Video error codes\n", 1)[1])[0]
    rows = [ROW.match(line) for line in section.splitlines() if line.startswith("| `")]
    assert all(rows), "a row under 'Video error codes' is not '| `code` | status | when |'"
    return {m.group(1): int(m.group(2)) for m in rows if m}


def test_every_setting_has_a_heading() -> None:
    for field in dataclasses.fields(SignalingConfig):
        assert f"\n### {field.name}\n" in README, field.name


def test_every_code_in_the_table_is_raised() -> None:
    raised = raised_codes()
    assert len(raised) >= 10  # the scan reads the raises
    assert sorted(set(CODES) - set(raised)) == []


def test_every_raised_code_is_in_the_table() -> None:
    unknown = {code: places for code, places in raised_codes().items() if code not in CODES}
    assert unknown == {}


def test_every_code_is_documented_with_its_status() -> None:
    assert documented_codes() == CODES
