"""The ``liveshop`` command: serve, demo, migrate, token, bench."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from config import Settings, SettingsError, load_settings
from core.db import make_engine
from core.roles import Role
from web.auth import TokenIssuer
from web.embedded_redis import EmbeddedRedis
from web.migrate import upgrade
from web.schemas import NAME_MAX_CHARS

BENCHES = {
    "drop": ("benches.drop", "one-tap buy drop: 100 units, 10,000 viewers plus double taps"),
    "fanout": ("benches.fanout", "live channel fan-out to N websocket viewers"),
    "relay": ("benches.relay", "WHIP to WHEP pass-through video relay to N viewers"),
    "hls": ("benches.hls", "N HLS viewers of one show through a caching nginx, and Chromium's"),
    "answers": ("benches.answers", "shoppers' questions answered automatically: FILE of questions"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liveshop",
        description="Live shopping backend: video relay, live channel and one-tap checkout.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the server (uvicorn)",
        description="Run the server. Migrations are applied first.",
    )
    serve.add_argument("--host", help="bind address (default: LIVESHOP_HOST)")
    serve.add_argument("--port", type=int, help="port (default: LIVESHOP_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations")
    _tls_arguments(serve)

    demo = sub.add_parser(
        "demo",
        help="seed a live demo show and serve it",
        description="Run with embedded defaults, seed a demo show with a few "
        "products and print the host, moderator and viewer links.",
    )
    demo.add_argument("--host", help="bind address (default: LIVESHOP_HOST)")
    demo.add_argument("--port", type=int, help="port (default: LIVESHOP_PORT)")
    demo.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    demo.add_argument("--no-serve", action="store_true", help="seed and print the links, then exit")
    _tls_arguments(demo)

    sub.add_parser(
        "migrate",
        help="apply database migrations",
        description="Apply the Alembic migrations to DATABASE_URL.",
    )

    token = sub.add_parser(
        "token",
        help="issue a signed role token",
        description="Issue a signed, expiring token for a role.",
    )
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--show", help="show id (required for host and moderator)")
    token.add_argument("--name", required=True, help="display name")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (default LIVESHOP_TOKEN_TTL_S)")

    bench = sub.add_parser(
        "bench",
        help="run a benchmark",
        description="Benchmarks; each prints its figures as a JSON last line.",
    )
    bench.add_argument(
        "name",
        choices=sorted(BENCHES),
        help="; ".join(f"{k}: {v[1]}" for k, v in sorted(BENCHES.items())),
    )
    bench.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options")
    return parser


def _tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ssl-keyfile", help="serve HTTPS: the private key (PEM), with --ssl-certfile"
    )
    parser.add_argument(
        "--ssl-certfile", help="serve HTTPS: the certificate chain (PEM), with --ssl-keyfile"
    )


def _tls_options(args: argparse.Namespace) -> dict[str, Any]:
    """uvicorn's TLS options from ``--ssl-keyfile``/``--ssl-certfile`` (none: plain HTTP)."""
    keyfile = getattr(args, "ssl_keyfile", None)
    certfile = getattr(args, "ssl_certfile", None)
    return {"ssl_keyfile": keyfile, "ssl_certfile": certfile} if keyfile else {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("serve", "demo") and bool(args.ssl_keyfile) != bool(args.ssl_certfile):
        parser.error("--ssl-keyfile and --ssl-certfile go together")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"liveshop: {exc}", file=sys.stderr)
        return 2
    command: str = args.command
    if command == "migrate":
        asyncio.run(_migrate(settings))
        print("migrations applied")
        return 0
    if command == "token":
        return _token(settings, args)
    if command == "bench":
        module = importlib.import_module(BENCHES[args.name][0])
        result: int = module.main(list(args.args))
        return result
    if command == "demo":
        return _demo(settings, args)
    return _serve(settings, args)


async def _migrate(settings: Settings) -> None:
    engine = make_engine(settings.effective_database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _token(settings: Settings, args: argparse.Namespace) -> int:
    role = Role(args.role)
    if role is not Role.VIEWER and not args.show:
        print("liveshop token: --show is required for hosts and moderators", file=sys.stderr)
        return 2
    if not 1 <= len(args.name.strip()) <= NAME_MAX_CHARS:
        print(f"liveshop token: --name is 1 to {NAME_MAX_CHARS} characters", file=sys.stderr)
        return 2
    issuer = TokenIssuer(settings.signing_key(), settings.token_ttl_s)
    print(issuer.issue(role, name=args.name.strip(), show_id=args.show, ttl_s=args.ttl))
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    if not args.no_migrate:
        asyncio.run(_migrate(settings))
    settings.signing_key()  # made once here, before the workers race to make it
    embedded: EmbeddedRedis | None = None
    if settings.redis_url is None and args.workers > 1:
        # Several workers must share one Redis: start it here and hand it to them.
        embedded = EmbeddedRedis(settings.data_dir)
        os.environ["REDIS_URL"] = embedded.start()
    try:
        uvicorn.run(
            "web.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            **uvicorn_options(settings),
            **_tls_options(args),
        )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the app, but where to bind (``liveshop serve`` and the tests)."""
    return {
        "log_config": None,
        "ws_per_message_deflate": settings.ws_compression,
        "timeout_graceful_shutdown": 10,  # then open sockets are closed; clients resume
        # web/edge.py: a read deadline and a head cap (the app factory sets them from
        # the settings, in each worker); idle keep-alive connections close after 5 s
        "http": "web.edge:EdgeHttpProtocol",
        "timeout_keep_alive": 5,
    }


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from web import demo

    if settings.admin_secret is None:
        os.environ["LIVESHOP_ADMIN_SECRET"] = secrets.token_urlsafe(18)
        settings = load_settings()
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    settings = settings.model_copy(update={"host": host, "port": port})
    asyncio.run(_migrate(settings))

    async def _seed() -> demo.DemoShow:
        from core.db import make_sessionmaker

        engine = make_engine(settings.effective_database_url)
        try:
            issuer = TokenIssuer(settings.signing_key(), settings.token_ttl_s)
            return await demo.seed(make_sessionmaker(engine), issuer)
        finally:
            await engine.dispose()

    shown = asyncio.run(_seed())
    base = settings.effective_public_url
    if args.ssl_certfile and not settings.public_url:
        base = "https://" + base.removeprefix("http://")
    print("liveshop demo is ready:")
    for label, value in demo.links(base, shown).items():
        print(f"  {label:>16}: {value}")
    print(f"  {'admin secret':>16}: {settings.admin_secret}")
    sys.stdout.flush()
    if args.no_serve:
        return 0
    served = argparse.Namespace(
        host=host,
        port=port,
        workers=args.workers,
        no_migrate=True,
        ssl_keyfile=args.ssl_keyfile,
        ssl_certfile=args.ssl_certfile,
    )
    return _serve(settings, served)


if __name__ == "__main__":
    raise SystemExit(main())
