"""checkout: shows and catalog, inventory holds, carts, one-tap buy, deals, orders, payments.

Redis is the gate (one Lua script a change, holds with an expiry), SQL the truth (an
order and its conditional stock decrement commit together). ``service.CheckoutService``
is the facade the app and the live channel use; its pieces are ``buy``, ``cart``,
``deals`` and ``recovery``. Coded errors: ``errors.py`` with ``error_codes.py``.

Must not import ``live``, ``signaling``, ``web`` or ``benches`` (tests/test_layers.py):
it knows nothing of websockets or WebRTC, and publishes through its ``EventSink`` port.
"""
