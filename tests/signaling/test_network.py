"""Video behind an impaired link (issue 15): random loss toward the viewer, a narrow link.

Each case runs ``benches.relay_network.run``: the relay and a publisher (H.264, about
1.5 Mbit/s, keyframe requests ignored as OBS does) in one network namespace, two early
viewers and two late joiners (60% into the host's group of pictures) each behind a link of
its own, made by the test (``benches/netns.py``), and removed afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from benches import netns, relay_network

CONDITIONS = {
    "loss1": (1.0, None),
    "loss3": (3.0, None),
    "rate4": (0.0, 4.0),
    "rate2.5-loss1": (1.0, 2.5),
}
# the longest time between two pictures a viewer could show, after its first
STALL_LIMIT_MS = {"loss1": 500, "loss3": 500, "rate4": 500, "rate2.5-loss1": 1000}


def _run(condition: str, gop: int) -> dict[str, Any]:
    reason = netns.available()
    assert reason is None, f"this test makes network namespaces: {reason}"
    loss, rate = CONDITIONS[condition]
    result = relay_network.run(
        loss_pct=loss, rate_mbit=rate, gop=gop, late_at=gop / 30 * 0.6, watch_s=8.0
    )
    print(json.dumps({"condition": condition, **result}))
    return result


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_no_viewer_stalls_behind_a_lossy_or_narrow_link(condition: str) -> None:
    # A 10 s keyframe interval (OBS's "auto"): a late joiner 6 s in is sent a 6 s backlog.
    result = _run(condition, gop=300)
    assert result["viewers_without_picture"] == 0, result
    limit = STALL_LIMIT_MS[condition]
    for viewer in result["early"] + result["late"]:
        assert viewer["stall_max_ms"] is not None and viewer["stall_max_ms"] <= limit, viewer
        assert viewer["first_frame_ms"] < 2000, viewer
    assert result["server"]["nacks_unserved"] == 0, result["server"]


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_a_late_joiner_is_live_soon_with_a_short_keyframe_interval(condition: str) -> None:
    result = _run(condition, gop=60)
    for viewer in result["late"]:
        assert viewer["live_ms"] is not None and viewer["live_ms"] <= 1500, viewer
    for viewer in result["early"] + result["late"]:
        assert viewer["stall_max_ms"] <= STALL_LIMIT_MS[condition], viewer
