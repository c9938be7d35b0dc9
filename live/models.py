"""Tables owned by the live channel: questions and the moderation log."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, new_id, utcnow
from core.transitions import Transitions


class QuestionStatus(enum.StrEnum):
    ASKED = "asked"
    APPROVED = "approved"
    ANSWERED = "answered"
    DISMISSED = "dismissed"


QUESTION_TRANSITIONS = Transitions(
    "question",
    {
        QuestionStatus.ASKED: frozenset(
            {QuestionStatus.APPROVED, QuestionStatus.ANSWERED, QuestionStatus.DISMISSED}
        ),
        QuestionStatus.APPROVED: frozenset({QuestionStatus.ANSWERED, QuestionStatus.DISMISSED}),
        # final; but an automatic answer may be corrected or retracted (Questions.move_from)
        QuestionStatus.ANSWERED: frozenset(),
        QuestionStatus.DISMISSED: frozenset(),
    },
)


class Question(Base):
    __tablename__ = "questions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("qst"))
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id"), index=True)
    viewer_id: Mapped[str] = mapped_column(String(64), index=True)
    viewer_name: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[QuestionStatus] = mapped_column(
        Enum(
            QuestionStatus,
            name="question_status",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=QuestionStatus.ASKED,
    )
    votes: Mapped[int] = mapped_column(Integer, default=0)
    pinned: Mapped[bool] = mapped_column(default=False)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Where an automatic answer came from ("product facts", ...); None: a person's answer.
    answer_source: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The product it was about (pinned when asked): earlier answers are found by its name.
    product_name: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ModerationAction(Base):
    __tablename__ = "moderation_actions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mod"))
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id"), index=True)
    moderator_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target_viewer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
