"""The end of a show reaches every listener though one before it fails."""

from __future__ import annotations

import pytest

from checkout.show_state import ShowStatus
from web.event_bus import EventBus


async def test_every_status_listener_hears_it_and_the_first_failure_is_raised() -> None:
    bus = EventBus()
    heard: list[str] = []

    async def failing(show_id: str, status: ShowStatus) -> None:
        heard.append(f"carts {status.value}")
        raise ConnectionError("redis went away")

    async def live(show_id: str, status: ShowStatus) -> None:
        heard.append(f"live {status.value}")

    async def video(show_id: str, status: ShowStatus) -> None:
        heard.append(f"video {status.value}")
        raise RuntimeError("second failure")

    bus.status_listeners += [failing, live, video]
    with pytest.raises(ConnectionError):
        await bus.show_status_changed("s1", ShowStatus.ENDED)
    assert heard == ["carts ended", "live ended", "video ended"]
