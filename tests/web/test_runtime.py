"""A server process tunes the garbage collector once it has started; tests' apps do not."""

from __future__ import annotations

import gc

from config import Settings
from config.runtime import GC_THRESHOLDS
from web.app import create_app


async def test_a_server_process_tunes_the_collector_after_start(settings: Settings) -> None:
    before = gc.get_threshold()
    plain = create_app(settings)
    async with plain.router.lifespan_context(plain):
        assert gc.get_threshold() == before
    served = create_app(settings, server_process=True)
    try:
        async with served.router.lifespan_context(served):
            assert gc.get_threshold() == GC_THRESHOLDS
            assert gc.get_freeze_count() > 0
    finally:  # give this test process its collector back
        gc.unfreeze()
        gc.set_threshold(*before)
