"""live: the websocket channel of a show (rooms, the event log in Redis, fan-out, cards,
chat, Q&A, polls, moderation, rate limits).

Checkout is reached only through ``ports.CheckoutPort`` (the app wires
``checkout.service.CheckoutService``); live implements checkout's ``EventSink``
(``checkout_events.py``). Coded errors: ``protocol.ProtocolError`` with ``error_codes.py``.

Must not import ``signaling``, ``web`` or ``benches``, nor of ``checkout`` anything but
``events``, ``results`` and ``show_state``: what its port speaks (tests/test_layers.py).
"""
