"""Requests any signed-in participant may send: ping and chat."""

from __future__ import annotations

from typing import Any

from core.roles import Role
from live.protocol import clean_text
from live.session import Context, Handler


async def ping(ctx: Context) -> dict[str, Any]:
    return {"clock_ms": await ctx.room.event_log.clock_ms()}


async def chat(ctx: Context, text: str) -> dict[str, Any]:
    text = clean_text(text)
    shadow = False
    if ctx.who.role is Role.VIEWER:
        shadow = (await ctx.room.moderation.check_chat(ctx.uid, text)).shadow
    message_id = await ctx.room.event_log.publish(
        "chat",
        {"user_id": ctx.uid, "name": ctx.who.name, "role": ctx.who.role.value, "text": text},
        to=ctx.uid if shadow else "",
    )
    return {"message_id": message_id}


HANDLERS: dict[str, Handler] = {"ping": ping, "chat": chat}
