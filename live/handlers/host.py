"""Requests of the show's host: product cards, deals (through checkout's port), polls and
the show's stats (which moderators may read too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from live.event_log import key
from live.protocol import Delivery, ProtocolError, clean_text
from live.session import Context, Handler


async def pin(ctx: Context, product_id: str) -> dict[str, Any]:
    card = await ctx.room.cards.pin(product_id)
    await ctx.room.event_log.publish(
        "card_pinned", {"card": card}, Delivery.STATE, key_=f"card:{product_id}"
    )
    await ctx.log("pin", target_id=product_id)
    return {"card": card}


async def unpin(ctx: Context, product_id: str) -> None:
    await ctx.room.cards.unpin(product_id)
    await ctx.room.event_log.publish(
        "card_unpinned", {"product_id": product_id}, Delivery.STATE, key_=f"card:{product_id}"
    )
    await ctx.log("unpin", target_id=product_id)


async def start_deal(
    ctx: Context,
    variant_id: str,
    price_minor: int,
    units: int,
    duration_s: int,
    per_buyer_limit: int = 1,
) -> dict[str, Any]:
    if not 1 <= duration_s <= 24 * 3600:
        raise ProtocolError("invalid_input", "bad duration", fields={"duration_s": "1..86400"})
    ends_at = datetime.now(UTC) + timedelta(seconds=duration_s)
    deal = await ctx.checkout.start_deal(
        ctx.room.show_id,
        variant_id,
        price_minor=price_minor,
        units=units,
        ends_at=ends_at,
        per_buyer_limit=per_buyer_limit,
    )
    await ctx.log("start_deal", target_id=variant_id, detail={"price_minor": price_minor})
    return {"deal": deal.to_json()}


async def stop_deal(ctx: Context, variant_id: str) -> None:
    await ctx.checkout.stop_deal(ctx.room.show_id, variant_id)
    await ctx.log("stop_deal", target_id=variant_id)


async def open_poll(ctx: Context, question: str, options: list[str]) -> dict[str, Any]:
    poll = await ctx.room.polls.open(
        clean_text(question, 200), [clean_text(o, 80) for o in options]
    )
    await ctx.room.event_log.publish("poll_opened", {"poll": poll}, Delivery.STATE, key_="poll")
    await ctx.log("open_poll", target_id=poll["poll_id"])
    return {"poll_id": poll["poll_id"]}


async def close_poll(ctx: Context, poll_id: str) -> dict[str, Any]:
    poll = await ctx.room.polls.close(poll_id)
    await ctx.room.event_log.publish("poll_closed", {"poll": poll}, Delivery.STATE, key_="poll")
    await ctx.log("close_poll", target_id=poll_id)
    return {"tally": poll["tally"]}


async def stats(ctx: Context) -> dict[str, Any]:
    sales = {"orders": 0, "revenue_minor": 0, "units_sold": 0}
    sales.update(await ctx.checkout.stats(ctx.room.show_id))
    taps = await ctx.redis.hgetall(key(ctx.room.show_id, "taps"))
    return {
        "viewers_now": ctx.room.hub.viewers_now,
        "viewers_peak": ctx.room.hub.viewers_peak,
        **sales,
        "taps": {k: int(v) for k, v in taps.items()},
        "questions": await ctx.room.questions.answer_times(),
        # running deals with the units they have left (the studio's countdown and units)
        "deals": [d.to_json() for d in await ctx.checkout.deals(ctx.room.show_id)],
    }


HANDLERS: dict[str, Handler] = {
    "pin": pin,
    "unpin": unpin,
    "start_deal": start_deal,
    "stop_deal": stop_deal,
    "open_poll": open_poll,
    "close_poll": close_poll,
    "stats": stats,
}
