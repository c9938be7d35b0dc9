"""Requests of viewers: reactions, taps, questions and upvotes, poll votes, and the cart,
buy and notify requests they make of checkout (through its port)."""

from __future__ import annotations

from typing import Any

from live.answering import AUTO_ANSWERER
from live.event_log import key
from live.hub import STAFF, staff_and
from live.models import QuestionStatus
from live.protocol import Delivery, ProtocolError, clean_text
from live.session import Context, Handler


async def react(ctx: Context, emoji: str) -> None:
    if not 0 < len(emoji) <= 8:
        raise ProtocolError("invalid_input", "one emoji", fields={"emoji": "1..8 characters"})
    ctx.room.hub.reactions[emoji] += 1


async def tap(ctx: Context, product_id: str) -> dict[str, Any]:
    if product_id not in await ctx.room.product_ids():  # (no junk keys in the host's stats)
        raise ProtocolError(
            "product_not_found", "no such product in this show", fields={"product_id": "unknown"}
        )
    count = await ctx.redis.hincrby(key(ctx.room.show_id, "taps"), product_id, 1)
    return {"taps": count}


async def ask(ctx: Context, text: str) -> dict[str, Any]:
    text = clean_text(text)
    # A question is posted text too: mute, ban, slow mode and blocked words apply.
    verdict = await ctx.room.moderation.check_chat(ctx.uid, text)
    questions = ctx.room.questions
    if verdict.shadow:  # kept out of the queue; only its author sees it
        question = await questions.ask(ctx.uid, ctx.who.name, text)
        hidden = await questions.move(question["id"], QuestionStatus.DISMISSED)
        await ctx.room.event_log.publish("question", {"question": question}, to=ctx.uid)
        return {"question_id": hidden["id"]}
    considered = await ctx.room.answers.consider(text)
    question = await questions.ask(ctx.uid, ctx.who.name, text, considered.product_name)
    # Others see it once a moderator approves it (or at once, when questions are public).
    public = questions.for_everyone(question["status"])
    log = ctx.room.event_log
    await log.publish("question", {"question": question}, to="" if public else staff_and(ctx.uid))
    found = considered.answer
    if found is not None:  # the show's data settles it: answered at once, to everyone
        answered = await questions.move(
            question["id"],
            QuestionStatus.ANSWERED,
            answer=found.text,
            by=AUTO_ANSWERER,
            source=found.source,
        )
        await log.publish(
            "answer", {"question": answered}, Delivery.STATE, key_=f"q:{question['id']}"
        )
        return {"question_id": question["id"], "status": answered["status"]}
    if considered.drafts:  # for the moderators: where a reply could start
        await log.publish(
            "question_drafts",
            {"question_id": question["id"], "drafts": [d.to_json() for d in considered.drafts]},
            to=STAFF,
        )
    return {"question_id": question["id"], "status": question["status"]}


async def upvote(ctx: Context, question_id: str) -> dict[str, Any]:
    question = await ctx.room.questions.upvote(question_id, ctx.uid)
    await ctx.room.event_log.publish(
        "question_updated", {"question": question}, Delivery.STATE, key_=f"q:{question_id}"
    )
    return {"votes": question["votes"]}


async def vote(ctx: Context, poll_id: str, option: int) -> dict[str, Any]:
    await ctx.room.polls.vote(poll_id, option, ctx.uid)
    ctx.room.hub.poll_dirty = poll_id
    return {"option": option}


async def add_to_cart(ctx: Context, variant_id: str, quantity: int) -> dict[str, Any]:
    cart = await ctx.checkout.add_to_cart(ctx.room.show_id, ctx.uid, variant_id, quantity)
    return {"cart": cart.to_json()}


async def set_cart_quantity(ctx: Context, variant_id: str, quantity: int) -> dict[str, Any]:
    port = ctx.checkout
    cart = await port.set_cart_quantity(ctx.room.show_id, ctx.uid, variant_id, quantity)
    return {"cart": cart.to_json()}


async def remove_from_cart(ctx: Context, variant_id: str) -> dict[str, Any]:
    cart = await ctx.checkout.remove_from_cart(ctx.room.show_id, ctx.uid, variant_id)
    return {"cart": cart.to_json()}


async def view_cart(ctx: Context) -> dict[str, Any]:
    return {"cart": (await ctx.checkout.view_cart(ctx.room.show_id, ctx.uid)).to_json()}


async def checkout_cart(ctx: Context, idempotency_key: str, payment_method: str) -> dict[str, Any]:
    order = await ctx.checkout.checkout_cart(
        ctx.room.show_id, ctx.uid, idempotency_key, payment_method
    )
    return {"order": order.to_json()}


async def buy_now(
    ctx: Context, variant_id: str, quantity: int, idempotency_key: str, payment_method: str
) -> dict[str, Any]:
    order = await ctx.checkout.buy_now(
        ctx.room.show_id, ctx.uid, variant_id, quantity, idempotency_key, payment_method
    )
    return {"order": order.to_json()}


async def notify_me(ctx: Context, variant_id: str) -> None:
    await ctx.checkout.notify_me(ctx.room.show_id, ctx.uid, variant_id)


HANDLERS: dict[str, Handler] = {
    "react": react,
    "tap": tap,
    "ask": ask,
    "upvote": upvote,
    "vote": vote,
    "add_to_cart": add_to_cart,
    "set_cart_quantity": set_cart_quantity,
    "remove_from_cart": remove_from_cart,
    "view_cart": view_cart,
    "checkout_cart": checkout_cart,
    "buy_now": buy_now,
    "notify_me": notify_me,
}
