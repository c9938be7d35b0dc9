"""The handlers of the live protocol's requests, one module per role that sends them.

``HANDLERS`` maps each request type of ``live.protocol.REQUESTS`` to its handler
(``tests/live/test_protocol_conformance.py`` fails when a type has none, a handler has no
type, or a handler's parameters differ from the type's fields).
"""

from __future__ import annotations

from live.handlers import everyone, host, moderator, viewer
from live.session import Handler

HANDLERS: dict[str, Handler] = {
    **everyone.HANDLERS,
    **viewer.HANDLERS,
    **host.HANDLERS,
    **moderator.HANDLERS,
}
