"""Run localstripe on 127.0.0.1 only, with its state in memory only.

``localstripe`` (1.15.10) as shipped binds ``::`` (every interface, IPv4 and IPv6) and
pickles its whole store to ``/tmp/localstripe.pickle`` after every write (one file for
every run on the machine). The tests run it through this module instead:
``python -m tests.localstripe_server --port N``, which serves the same aiohttp app on
127.0.0.1 and keeps the store in the process.

One compatibility fix, for an API parameter real Stripe takes and localstripe refuses:
``POST /v1/payment_intents/{id}/confirm`` with ``off_session`` (Stripe: "set to true to
indicate that the customer is not in your checkout flow"; localstripe answers 400
"Unexpected off_session"). The fix accepts and drops it; everything else is localstripe's.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from aiohttp import web
from localstripe import resources, server


def _patch() -> None:
    """Applied to the routes table the server module built at import (``api_extra``)."""
    resources.Store.dump_to_disk = lambda self: None
    confirm = resources.PaymentIntent._api_confirm

    async def confirm_route(request: web.Request) -> web.Response:
        data = await server.get_post_data(request) or {}
        data.pop("off_session", None)
        expand = data.pop("expand", None)
        obj = confirm(id=request.match_info["id"], **data)
        response: web.Response = server.json_response(obj._export(expand=expand))
        return response

    for route in server.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        if route.method == "POST" and info.get("formatter") == "/v1/payment_intents/{id}/confirm":
            route._handler = confirm_route  # (aiohttp keeps the handler there)
            return
    raise RuntimeError("localstripe has no PaymentIntent confirm route to fix")


def _exit_with_parent() -> None:
    """Stop when the test run that started this server is gone (killed with SIGKILL, its
    fixture never ran): the server then belongs to init, and would serve for ever."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _patch()
    _exit_with_parent()
    web.run_app(server.app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
