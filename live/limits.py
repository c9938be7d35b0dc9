"""Per-viewer rate limits in one process: the rules (``RateLimits``) and their token buckets.

Each viewer gets one ``Bucket`` per limited request type, per show and process, shared by
their sockets there (``live.rooms.Room.buckets_of``). What every viewer sees is limited
across processes as well (``live/shared_limits.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimits:
    """Per-viewer token buckets (per show, per process): (refill per second, burst)."""

    rules: dict[str, tuple[float, int]] = field(
        default_factory=lambda: {
            "chat": (1.0, 5),
            "ask": (0.2, 3),
            "react": (10.0, 30),
            "tap": (5.0, 10),
            "upvote": (2.0, 10),
        }
    )


class Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def until_full_s(self) -> float:
        """Seconds until the bucket is full again (0: it is)."""
        missing = self.burst - self.tokens - (time.monotonic() - self.at) * self.rate
        return max(0.0, missing / self.rate) if self.rate > 0 else 0.0
