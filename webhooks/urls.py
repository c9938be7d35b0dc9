"""Endpoint URLs: http(s) only, and, unless private addresses are allowed, never an address
of the machine's own networks (server-side request forgery: a URL an admin registers makes
liveshop's workers call it from inside, where the database, Redis and cloud metadata
services answer)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from webhooks.errors import WebhookError
from webhooks.models import URL_MAX_CHARS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PrivateAddress(Exception):
    """The endpoint's host is, or resolves to, an address that is not public."""


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if it may be registered, else ``webhook_url_invalid`` or
    ``webhook_url_private`` (an IP literal or ``localhost``; names are checked again when
    resolved at each attempt)."""

    def invalid(why: str) -> WebhookError:
        message = f"the URL is not valid: {why}"
        return WebhookError("webhook_url_invalid", message, fields={"url": why})

    if len(url) > URL_MAX_CHARS:
        raise invalid(f"at most {URL_MAX_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise invalid("no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # (ValueError when it is not a port)
    except ValueError:
        raise invalid("not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise invalid("http:// or https:// only")
    if not parts.hostname:
        raise invalid("a host is required")
    if parts.username is not None or parts.password is not None:
        raise invalid("no user or password in the URL")
    if port == 0:
        raise invalid("port 0")
    if not allow_private and _private_name(parts.hostname):
        raise WebhookError(
            "webhook_url_private",
            "the URL names a private, loopback or link-local address",
            fields={"url": "a public address is required"},
        )
    return url


def _private_name(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not is_public(ipaddress.ip_address(host))
    except ValueError:
        return False  # a name: checked when it is resolved


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def require_public(url: str) -> None:
    """Raise PrivateAddress unless every address the URL's host resolves to is public.

    (A name that resolves differently a moment later, DNS rebinding, can still slip past:
    in production, also send webhooks through an egress proxy or from a network that
    reaches nothing internal, as the Standard Webhooks spec advises.)"""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _private_name(host):
        raise PrivateAddress(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        if not is_public(ipaddress.ip_address(info[4][0])):
            raise PrivateAddress(f"{host} resolves to {info[4][0]}")
