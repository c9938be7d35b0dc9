"""web: the composition root (``app.create_app`` wires every part from one settings
object, typed in ``parts.py``), the HTTP routes, auth and tokens, the live websocket
endpoint and its uvicorn sink, migrations, the CLI and the three pages.

It holds no business rule: routes map HTTP to the domains. Must not import ``benches``
(``liveshop bench`` loads them by name; tests/test_layers.py).
"""
