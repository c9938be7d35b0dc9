"""Requests of moderators (and of hosts for the queue and answers): the question queue,
chat moderation, canned replies, and a viewer's orders (through checkout's port).

An action on Redis (delete, mute, ban, shadow ban, slow mode, blocked words) and its
moderation-log row are one unit (``Context.logged``): if the row cannot be written, the
action is not applied."""

from __future__ import annotations

from typing import Any

from live.event_log import key, valid_id
from live.handlers.everyone import chat
from live.hub import staff_and
from live.models import QuestionStatus
from live.protocol import Delivery, ProtocolError, clean_text
from live.session import Context, Handler


async def queue(ctx: Context) -> dict[str, Any]:
    """The open questions, each with its drafted replies (as ``question_drafts`` said)."""
    questions = await ctx.room.questions.queue()
    drafts = await ctx.room.answers.drafts_for(questions)
    for q in questions:
        q["drafts"] = [d.to_json() for d in drafts.get(q["id"], [])]
    return {"questions": questions}


async def _question(
    ctx: Context, question_id: str, action: str, question: dict[str, Any], seen_as: str
) -> None:
    """Tell who may see it: everyone when a question in status ``seen_as`` is seen by
    everyone, else the staff and its asker only (a question waiting for a moderator)."""
    kind = "answer" if action == "answer" else "question_updated"
    public = ctx.room.questions.for_everyone(seen_as)
    await ctx.room.event_log.publish(
        kind,
        {"question": question},
        Delivery.STATE,
        key_=f"q:{question_id}",
        to="" if public else staff_and(question["viewer_id"]),
    )
    await ctx.log(action, target_id=question_id, target_viewer_id=question["viewer_id"])


async def approve(ctx: Context, question_id: str) -> None:
    q = await ctx.room.questions.move(question_id, QuestionStatus.APPROVED)
    await _question(ctx, question_id, "approve", q, q["status"])


async def answer(ctx: Context, question_id: str, text: str) -> dict[str, Any]:
    q = await ctx.room.questions.move(
        question_id, QuestionStatus.ANSWERED, answer=clean_text(text), by=ctx.uid
    )
    await _question(ctx, question_id, "answer", q, q["status"])
    return {"answer_s": q["answer_s"]}


async def retract(ctx: Context, question_id: str) -> None:
    """An automatic answer taken back: the question returns to the queue (approved)."""
    q = await ctx.room.questions.retract(question_id)
    await _question(ctx, question_id, "retract", q, q["status"])


async def pin_question(ctx: Context, question_id: str) -> None:
    q = await ctx.room.questions.pin(question_id)
    await _question(ctx, question_id, "pin_question", q, q["status"])


async def dismiss(ctx: Context, question_id: str) -> None:
    # Viewers who saw it (it was approved, or questions are public) are told it is gone.
    was, q = await ctx.room.questions.move_from(question_id, QuestionStatus.DISMISSED)
    await _question(ctx, question_id, "dismiss", q, was)


async def delete_chat(ctx: Context, message_id: str) -> None:
    if not valid_id(message_id):
        raise ProtocolError("invalid_input", "not a message id", fields={"message_id": "bad id"})
    async with ctx.logged("delete_chat", target_id=message_id):
        await ctx.redis.sadd(key(ctx.room.show_id, "deleted"), message_id)
    await ctx.room.event_log.publish("chat_deleted", {"message_id": message_id})


async def mute(ctx: Context, user_id: str, seconds: int) -> None:
    async with ctx.logged("mute", target_viewer_id=user_id, detail={"seconds": seconds}):
        await ctx.room.moderation.mute(user_id, seconds)
    await _notify(ctx, user_id, "mute", seconds=seconds)


async def ban(ctx: Context, user_id: str) -> None:
    async with ctx.logged("ban", target_viewer_id=user_id):
        await ctx.room.moderation.ban(user_id)
    await _notify(ctx, user_id, "ban")
    if ctx.room.on_removed is not None:  # their video too (WHEP sessions closed)
        await ctx.room.on_removed(user_id)


async def shadow_ban(ctx: Context, user_id: str) -> None:
    async with ctx.logged("shadow_ban", target_viewer_id=user_id):
        await ctx.room.moderation.shadow_ban(user_id)


async def unmute(ctx: Context, user_id: str) -> dict[str, Any]:
    async with ctx.logged("unmute", target_viewer_id=user_id):
        was = await ctx.room.moderation.unmute(user_id)
    if was:
        await _notify(ctx, user_id, "unmute")
    return {"was_muted": was}


async def unban(ctx: Context, user_id: str) -> dict[str, Any]:
    """The viewer may join again (a socket resuming after the ban is no longer closed)."""
    async with ctx.logged("unban", target_viewer_id=user_id):
        was = await ctx.room.moderation.unban(user_id)
    if was:
        await _notify(ctx, user_id, "unban")
    return {"was_banned": was}


async def unshadow_ban(ctx: Context, user_id: str) -> dict[str, Any]:
    async with ctx.logged("unshadow_ban", target_viewer_id=user_id):
        was = await ctx.room.moderation.unshadow_ban(user_id)
    return {"was_shadow_banned": was}


async def moderation_state(ctx: Context) -> dict[str, Any]:
    return await ctx.room.moderation.state()


async def slow_mode(ctx: Context, user_id: str, seconds: int) -> None:
    async with ctx.logged("slow_mode", target_viewer_id=user_id, detail={"seconds": seconds}):
        await ctx.room.moderation.slow_mode(user_id, seconds)
    await _notify(ctx, user_id, "slow_mode", seconds=seconds)


async def blocked_words(ctx: Context, words: list[str]) -> dict[str, Any]:
    cleaned = ctx.room.moderation.clean_words(words)
    async with ctx.logged("blocked_words", detail={"words": cleaned}):
        await ctx.room.moderation.set_blocked_words(cleaned)
    return {"words": cleaned}


async def canned_add(ctx: Context, text: str) -> dict[str, Any]:
    canned_id = await ctx.room.moderation.canned_add(clean_text(text))
    await ctx.log("canned_add", target_id=canned_id)
    return {"canned_id": canned_id}


async def canned_list(ctx: Context) -> dict[str, Any]:
    return {"canned": await ctx.room.moderation.canned()}


async def canned_send(ctx: Context, canned_id: str) -> dict[str, Any]:
    text = (await ctx.room.moderation.canned()).get(canned_id)
    if text is None:
        raise ProtocolError("not_found", "no such canned reply", fields={"canned_id": "unknown"})
    await ctx.log("canned_send", target_id=canned_id)
    return await chat(ctx, text)


async def viewer_orders(ctx: Context, user_id: str) -> dict[str, Any]:
    orders = await ctx.checkout.orders_of(ctx.room.show_id, user_id)
    await ctx.log("viewer_orders", target_viewer_id=user_id)
    return {"orders": [o.to_json() for o in orders]}


async def _notify(ctx: Context, user_id: str, action: str, **detail: Any) -> None:
    """Tell the target (only) what happened; a ban also closes their sockets (and an
    unban lifts that for a socket that resumes from before it)."""
    await ctx.room.event_log.publish(
        "moderation",
        {"action": action, **detail},
        Delivery.PERSONAL,
        key_={"ban": "kick", "unban": "unkick"}.get(action, ""),
        to=user_id,
    )


HANDLERS: dict[str, Handler] = {
    "queue": queue,
    "approve": approve,
    "answer": answer,
    "pin_question": pin_question,
    "dismiss": dismiss,
    "retract": retract,
    "delete_chat": delete_chat,
    "mute": mute,
    "ban": ban,
    "shadow_ban": shadow_ban,
    "unmute": unmute,
    "unban": unban,
    "unshadow_ban": unshadow_ban,
    "moderation_state": moderation_state,
    "slow_mode": slow_mode,
    "blocked_words": blocked_words,
    "canned_add": canned_add,
    "canned_list": canned_list,
    "canned_send": canned_send,
    "viewer_orders": viewer_orders,
}
