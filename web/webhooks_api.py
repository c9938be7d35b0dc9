"""The admin API of outbound webhooks: endpoints (register, list, change, delete, rotate
the secret) and the deliveries' log (list, replay). Admin only; the rules live in
``webhooks/``, this module maps HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from web.api import require_admin
from web.errors import ApiError
from web.http import json_body
from web.parts import Parts, parts
from web.schemas import Strict, dump_time
from webhooks import endpoints
from webhooks.events import EVENT_TYPES
from webhooks.models import (
    DESCRIPTION_MAX_CHARS,
    URL_MAX_CHARS,
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
)

Url = Annotated[str, StringConstraints(min_length=1, max_length=URL_MAX_CHARS)]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX_CHARS)]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=40)]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES))]


class EndpointIn(Strict):
    url: Url
    event_types: EventTypes | None = None  # None: every type
    description: Description = ""
    enabled: bool = True


class EndpointPatch(Strict):
    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None


def endpoint_json(endpoint: WebhookEndpoint, *, secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "description": endpoint.description,
        "created_at": dump_time(endpoint.created_at),
    }
    if secret:
        out["secret"] = endpoint.secret
    return out


def delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "message_id": delivery.message_id,
        "endpoint_id": delivery.endpoint_id,
        "state": delivery.state.value,
        "attempts": delivery.attempts,
        "next_attempt_at": dump_time(delivery.next_attempt_at),
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "delivered_at": dump_time(delivery.delivered_at),
        "created_at": dump_time(delivery.created_at),
    }


def _parts(request: Request) -> Parts:
    require_admin(request)
    return parts(request.app)


async def create_endpoint(request: Request) -> Response:
    made = _parts(request)
    body = await json_body(request, EndpointIn)
    async with made.resources.sessions.begin() as session:
        endpoint = await endpoints.create(
            session,
            body.url,
            body.event_types,
            body.description,
            enabled=body.enabled,
            allow_private=made.settings.webhook_allow_private,
        )
        payload = endpoint_json(endpoint, secret=True)
    return JSONResponse(payload, status_code=201)


async def list_endpoints(request: Request) -> Response:
    made = _parts(request)
    async with made.resources.sessions() as session:
        found = await endpoints.list_all(session)
    return JSONResponse({"endpoints": [endpoint_json(e) for e in found]})


async def get_endpoint(request: Request) -> Response:
    made = _parts(request)
    async with made.resources.sessions() as session:
        endpoint = await endpoints.get(session, request.path_params["endpoint_id"])
    return JSONResponse(endpoint_json(endpoint))


async def patch_endpoint(request: Request) -> Response:
    made = _parts(request)
    body = await json_body(request, EndpointPatch)
    changes: dict[str, Any] = {
        name: getattr(body, name)
        for name in ("url", "description", "enabled")
        if name in body.model_fields_set
    }
    if "event_types" in body.model_fields_set:  # (null: every type)
        changes["event_types"] = body.event_types
    async with made.resources.sessions.begin() as session:
        endpoint = await endpoints.update(
            session,
            request.path_params["endpoint_id"],
            allow_private=made.settings.webhook_allow_private,
            **changes,
        )
        payload = endpoint_json(endpoint)
    return JSONResponse(payload)


async def delete_endpoint(request: Request) -> Response:
    made = _parts(request)
    async with made.resources.sessions.begin() as session:
        await endpoints.remove(session, request.path_params["endpoint_id"])
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    made = _parts(request)
    async with made.resources.sessions.begin() as session:
        endpoint = await endpoints.rotate_secret(session, request.path_params["endpoint_id"])
        payload = endpoint_json(endpoint, secret=True)
    return JSONResponse(payload)


async def list_deliveries(request: Request) -> Response:
    made = _parts(request)
    query = request.query_params
    fields: dict[str, str] = {}
    state: DeliveryState | None = None
    if query.get("state"):
        try:
            state = DeliveryState(query["state"])
        except ValueError:
            fields["state"] = "pending, delivered or failed"
    limit = query.get("limit", "50")
    if not (limit.isdigit() and 1 <= int(limit) <= endpoints.MAX_PAGE):
        fields["limit"] = f"an integer from 1 to {endpoints.MAX_PAGE}"
    for name in ("endpoint", "before"):
        if len(query.get(name, "")) > 40:
            fields[name] = "at most 40 characters"
    if fields:
        raise ApiError("invalid_input", "some query parameters are not valid", fields=fields)
    async with made.resources.sessions() as session:
        page = await endpoints.deliveries(
            session,
            endpoint_id=query.get("endpoint") or None,
            state=state,
            limit=int(limit),
            before=query.get("before") or None,
        )
    return JSONResponse(
        {"deliveries": [delivery_json(d) for d in page.deliveries], "next": page.next}
    )


async def replay_delivery(request: Request) -> Response:
    made = _parts(request)
    delivery_id = request.path_params["delivery_id"]
    await made.webhooks.replay(delivery_id)
    async with made.resources.sessions() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        assert delivery is not None  # (replay found it)
    return JSONResponse(delivery_json(delivery))


def routes() -> list[Route]:
    base = "/api/webhooks"
    return [
        Route(f"{base}/endpoints", create_endpoint, methods=["POST"]),
        Route(f"{base}/endpoints", list_endpoints, methods=["GET"]),
        Route(f"{base}/endpoints/{{endpoint_id}}", get_endpoint, methods=["GET"]),
        Route(f"{base}/endpoints/{{endpoint_id}}", patch_endpoint, methods=["PATCH"]),
        Route(f"{base}/endpoints/{{endpoint_id}}", delete_endpoint, methods=["DELETE"]),
        Route(f"{base}/endpoints/{{endpoint_id}}/rotate-secret", rotate_secret, methods=["POST"]),
        Route(f"{base}/deliveries", list_deliveries, methods=["GET"]),
        Route(f"{base}/deliveries/{{delivery_id}}/replay", replay_delivery, methods=["POST"]),
    ]
