"""Managing endpoints and reading the deliveries' log. Plain async functions over an
AsyncSession; the caller commits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from webhooks.errors import WebhookError
from webhooks.events import EVENT_TYPES
from webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from webhooks.signing import new_secret
from webhooks.urls import check_url

MAX_PAGE = 100


def check_types(types: Iterable[str] | None) -> list[str] | None:
    """The event types, sorted and once each; None (every type) stays None."""
    if types is None:
        return None
    given = list(types)
    unknown = sorted({t for t in given if t not in EVENT_TYPES})
    if unknown:
        raise WebhookError(
            "unknown_event_type",
            "unknown event types: " + ", ".join(unknown),
            fields={"event_types": "known types: " + ", ".join(sorted(EVENT_TYPES))},
        )
    return sorted(set(given))


async def create(
    session: AsyncSession,
    url: str,
    event_types: Iterable[str] | None,
    description: str = "",
    *,
    enabled: bool = True,
    allow_private: bool = False,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        url=check_url(url, allow_private=allow_private),
        secret=new_secret(),
        event_types=check_types(event_types),
        enabled=enabled,
        description=description,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise WebhookError(
            "webhook_endpoint_not_found",
            f"no webhook endpoint {endpoint_id!r}",
            fields={"endpoint_id": "unknown"},
        )
    return endpoint


async def list_all(session: AsyncSession) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    return list((await session.scalars(query)).all())


_UNSET: list[str] = []


async def update(
    session: AsyncSession,
    endpoint_id: str,
    *,
    url: str | None = None,
    event_types: list[str] | None = _UNSET,
    description: str | None = None,
    enabled: bool | None = None,
    allow_private: bool = False,
) -> WebhookEndpoint:
    """Change what is given (``event_types=None``: every type from now on)."""
    endpoint = await get(session, endpoint_id)
    if url is not None:
        endpoint.url = check_url(url, allow_private=allow_private)
    if event_types is not _UNSET:
        endpoint.event_types = check_types(event_types)
    if description is not None:
        endpoint.description = description
    if enabled is not None:
        endpoint.enabled = enabled
    await session.flush()
    return endpoint


async def remove(session: AsyncSession, endpoint_id: str) -> None:
    """Delete the endpoint and its deliveries (the messages stay for other endpoints)."""
    await get(session, endpoint_id)
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


async def rotate_secret(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    """A new secret at once: the next attempt is signed with it."""
    endpoint = await get(session, endpoint_id)
    endpoint.secret = new_secret()
    await session.flush()
    return endpoint


@dataclass(frozen=True)
class Page:
    deliveries: list[WebhookDelivery]
    next: str | None  # the ``before`` of the next page


async def deliveries(
    session: AsyncSession,
    *,
    endpoint_id: str | None = None,
    state: DeliveryState | None = None,
    limit: int = 50,
    before: str | None = None,
) -> Page:
    """Deliveries newest first, ``limit`` at a time; ``before``: the last id of a page."""
    query = select(WebhookDelivery)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if state is not None:
        query = query.where(WebhookDelivery.state == state)
    if before is not None:
        mark = await session.get(WebhookDelivery, before)
        if mark is None:
            raise WebhookError(
                "webhook_delivery_not_found",
                f"no delivery {before!r}",
                fields={"before": "unknown"},
            )
        query = query.where(
            or_(
                WebhookDelivery.created_at < mark.created_at,
                and_(
                    WebhookDelivery.created_at == mark.created_at,
                    WebhookDelivery.id < mark.id,
                ),
            )
        )
    limit = max(1, min(limit, MAX_PAGE))
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more else None)
