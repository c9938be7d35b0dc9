"""Q&A: questions in SQL with the allowed transitions of QUESTION_TRANSITIONS, one upvote
per viewer (a Redis set), and the time from question to first answer.

Who sees a question: an approved or answered one, everyone; an asked one (not yet
approved), only the show's hosts and moderators and its asker, unless the service makes
questions public at once (LIVESHOP_QUESTIONS_PUBLIC); a dismissed one, nobody but them
(viewers who saw it are told it is gone)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import utcnow
from live.event_log import key
from live.models import QUESTION_TRANSITIONS, Question, QuestionStatus
from live.protocol import ProtocolError

OPEN = (QuestionStatus.ASKED, QuestionStatus.APPROVED)
SEEN = (QuestionStatus.APPROVED, QuestionStatus.ANSWERED)  # by everyone
PUBLIC_LIMIT = 30  # questions everyone sees, in a snapshot
PAST_ANSWERS = 300  # people's answers an automatic answer may repeat
PENDING_LIMIT = 200  # asked ones, in a snapshot's shared part (staff; each asker their own)


def question_json(q: Question) -> dict[str, Any]:
    return {
        "id": q.id,
        "viewer_id": q.viewer_id,
        "viewer_name": q.viewer_name,
        "text": q.text,
        "status": q.status.value,
        "votes": q.votes,
        "pinned": q.pinned,
        "answer": q.answer,
        # an automatic answer's source ("product facts", ...); null for a person's answer
        "answer_source": q.answer_source,
        "automatic": q.answer_source is not None,
        "product_name": q.product_name,
        "asked_at": q.created_at.isoformat(),
        "answered_at": q.answered_at.isoformat() if q.answered_at else None,
        "answer_s": (q.answered_at - q.created_at).total_seconds() if q.answered_at else None,
    }


class Questions:
    def __init__(
        self,
        redis: aioredis.Redis,
        sessions: async_sessionmaker[AsyncSession],
        show_id: str,
        *,
        public: bool = False,
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.show_id = show_id
        self.public = public  # asked questions are seen by everyone at once

    def for_everyone(self, status: str | QuestionStatus) -> bool:
        """Whether every viewer sees a question in this status."""
        return status in SEEN or (self.public and status == QuestionStatus.ASKED)

    async def ask(
        self, viewer_id: str, viewer_name: str, text: str, product_name: str | None = None
    ) -> dict[str, Any]:
        """``product_name``: the product pinned when it was asked (what it is about)."""
        async with self.sessions.begin() as session:
            q = Question(
                show_id=self.show_id,
                viewer_id=viewer_id,
                viewer_name=viewer_name,
                text=text,
                product_name=product_name,
                status=QuestionStatus.ASKED,
                votes=0,
                pinned=False,
                created_at=utcnow(),
            )
            session.add(q)
            await session.flush()
            return question_json(q)

    async def upvote(self, question_id: str, viewer_id: str) -> dict[str, Any]:
        q = await self._get(question_id)
        if not self.for_everyone(q.status) and q.status is not QuestionStatus.DISMISSED:
            # (a question waiting for a moderator is not there for other viewers)
            raise ProtocolError(
                "question_not_found", "no such question", fields={"question_id": "unknown"}
            )
        if q.status not in OPEN:
            raise ProtocolError("question_closed", "this question takes no more votes")
        added = await self.redis.sadd(key(self.show_id, f"qvotes:{question_id}"), viewer_id)
        if not added:
            raise ProtocolError("already_voted", "you already upvoted this question")
        async with self.sessions.begin() as session:
            await session.execute(
                update(Question).where(Question.id == question_id).values(votes=Question.votes + 1)
            )
        return question_json(await self._get(question_id))

    async def _get(self, question_id: str) -> Question:
        async with self.sessions() as session:
            q = await session.get(Question, question_id)
        if q is None or q.show_id != self.show_id:
            raise ProtocolError(
                "question_not_found", "no such question", fields={"question_id": "unknown"}
            )
        return q

    async def move(
        self,
        question_id: str,
        target: QuestionStatus,
        *,
        answer: str | None = None,
        by: str = "",
        source: str | None = None,
    ) -> dict[str, Any]:
        moved = await self.move_from(question_id, target, answer=answer, by=by, source=source)
        return moved[1]

    async def retract(self, question_id: str) -> dict[str, Any]:
        """An automatic answer taken back: the question is approved again, unanswered."""
        return (await self.move_from(question_id, QuestionStatus.APPROVED, retract=True))[1]

    async def move_from(
        self,
        question_id: str,
        target: QuestionStatus,
        *,
        answer: str | None = None,
        by: str = "",
        source: str | None = None,
        retract: bool = False,
    ) -> tuple[QuestionStatus, dict[str, Any]]:
        """(the status it was in, the question now). ``source``: where an automatic answer
        came from (None: a person answered)."""
        async with self.sessions.begin() as session:
            q = await session.get(Question, question_id, with_for_update=True)
            if q is None or q.show_id != self.show_id:
                raise ProtocolError(
                    "question_not_found", "no such question", fields={"question_id": "unknown"}
                )
            was = q.status
            automatic = was is QuestionStatus.ANSWERED and q.answer_source is not None
            if automatic and (target is QuestionStatus.ANSWERED or retract):
                q.status = target  # an automatic answer corrected, or taken back
            elif retract:
                raise ProtocolError("question_closed", "only an automatic answer can be retracted")
            else:
                q.status = QUESTION_TRANSITIONS.check(q.status, target)
            if target is QuestionStatus.ANSWERED:
                q.answer = answer
                q.answered_by = by
                q.answer_source = source
                if was is not QuestionStatus.ANSWERED:  # a correction keeps the time
                    q.answered_at = utcnow()
            elif was is QuestionStatus.ANSWERED:  # an automatic answer retracted
                q.answer = q.answered_by = q.answer_source = q.answered_at = None
            await session.flush()
            return was, question_json(q)

    async def pin(self, question_id: str) -> dict[str, Any]:
        async with self.sessions.begin() as session:
            q = await session.get(Question, question_id)
            if q is None or q.show_id != self.show_id:
                raise ProtocolError(
                    "question_not_found", "no such question", fields={"question_id": "unknown"}
                )
            q.pinned = True
            await session.flush()
            return question_json(q)

    async def queue(self, limit: int = 50) -> list[dict[str, Any]]:
        """Open questions: pinned first, then most votes, then oldest."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Question)
                .where(Question.show_id == self.show_id, Question.status.in_(OPEN))
                .order_by(Question.pinned.desc(), Question.votes.desc(), Question.created_at)
                .limit(limit)
            )
            return [question_json(q) for q in rows]

    async def seen_by_everyone(self, limit: int = PUBLIC_LIMIT) -> list[dict[str, Any]]:
        """What every viewer's snapshot lists: approved and answered questions (and asked
        ones when questions are public at once), pinned first, then most votes, then the
        newest: an answered question stays after a reload."""
        statuses = (*SEEN, QuestionStatus.ASKED) if self.public else SEEN
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Question)
                .where(Question.show_id == self.show_id, Question.status.in_(statuses))
                .order_by(Question.pinned.desc(), Question.votes.desc(), Question.created_at.desc())
                .limit(limit)
            )
            return [question_json(q) for q in rows]

    async def pending(self, limit: int = PENDING_LIMIT) -> list[dict[str, Any]]:
        """Asked questions nobody but the staff and their askers see (none when questions
        are public at once), oldest first."""
        if self.public:
            return []
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Question)
                .where(Question.show_id == self.show_id, Question.status == QuestionStatus.ASKED)
                .order_by(Question.created_at)
                .limit(limit)
            )
            return [question_json(q) for q in rows]

    async def past_answers(
        self, product_names: list[str], limit: int = PAST_ANSWERS
    ) -> list[tuple[str, str, str | None]]:
        """(question, answer, product name) of what people answered: about these products
        in any show, and this show's questions about no product; the newest first."""
        about = Question.product_name.in_(product_names) if product_names else false()
        general = (Question.show_id == self.show_id) & Question.product_name.is_(None)
        async with self.sessions() as session:
            rows = await session.execute(
                select(Question.text, Question.answer, Question.product_name)
                .where(
                    Question.status == QuestionStatus.ANSWERED,
                    Question.answer_source.is_(None),
                    Question.answer.is_not(None),
                    or_(about, general),
                )
                .order_by(Question.answered_at.desc())
                .limit(limit)
            )
            return [(row[0], str(row[1]), row[2]) for row in rows]

    async def answer_times(self) -> dict[str, Any]:
        """Time from question to answer over the show's answered questions (median, p90,
        longest), automatic and people's answers apart, and the questions still waiting
        (how many, the oldest's wait)."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Question.created_at, Question.answered_at, Question.answer_source).where(
                        Question.show_id == self.show_id, Question.answered_at.is_not(None)
                    )
                )
            ).all()
            oldest = await session.scalar(
                select(func.min(Question.created_at)).where(
                    Question.show_id == self.show_id, Question.status.in_(OPEN)
                )
            )
            waiting = await session.scalar(
                select(func.count()).where(
                    Question.show_id == self.show_id, Question.status.in_(OPEN)
                )
            )
        times = [((a - c).total_seconds(), source is not None) for c, a, source in rows if a]
        figures: dict[str, Any] = _times([t for t, _ in times], longest=True)
        figures["automatic"] = _times([t for t, auto in times if auto])
        figures["human"] = _times([t for t, auto in times if not auto])
        figures["waiting"] = int(waiting or 0)
        figures["oldest_waiting_s"] = (
            None if oldest is None else round((utcnow() - oldest).total_seconds(), 3)
        )
        return figures


def _times(seconds: list[float], *, longest: bool = False) -> dict[str, Any]:
    ordered = sorted(seconds)
    figures: dict[str, Any] = {
        "answered": len(ordered),
        "median_answer_s": ordered[len(ordered) // 2] if ordered else None,
        "p90_answer_s": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        if ordered
        else None,
    }
    if longest:
        figures["max_answer_s"] = ordered[-1] if ordered else None
    return figures
