"""Every setting and every error code of the relay is documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from signaling import SignalingConfig
from signaling.error_codes import CODES

README = (Path(__file__).parents[2] / "signaling" / "README.md").read_text()


def test_every_setting_has_a_heading() -> None:
    for field in dataclasses.fields(SignalingConfig):
        assert f"\n### {field.name}\n" in README, field.name


def test_error_codes_are_http_errors() -> None:
    assert all(400 <= status < 600 for status in CODES.values())
