"""Stream keys: a secret a host pastes into OBS (or any WHIP encoder) to publish one show.

A host token lasts ``LIVESHOP_TOKEN_TTL_S`` (12 h) and renews itself only inside a page; a
token pasted into OBS cannot, so it dies mid-season. A stream key lasts until it is
revoked. It is shown once, when it is made: the database keeps only its SHA-256, a label,
when it was made, last used and revoked. The key is ``lsk_`` and 32 random bytes
(``secrets.token_urlsafe(32)``: 256 bits), so a plain hash is as strong as a keyed one and
survives a rotation of ``LIVESHOP_SECRET_KEY``; it is found by that hash (an index lookup,
no comparison of secrets in Python).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, new_id, utcnow
from web.errors import ApiError

PREFIX = "lsk_"
LABEL_MAX_CHARS = 80
MAX_ACTIVE_PER_SHOW = 10
"""Keys a show may have that are not revoked (one per encoder is plenty)."""
IDENTITY_PREFIX = "streamkey:"
"""The publisher identity of a WHIP session opened with a stream key: this and the key id."""


class StreamKey(Base):
    __tablename__ = "stream_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sk"))
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id"), index=True)
    label: Mapped[str] = mapped_column(String(LABEL_MAX_CHARS))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256, hex
    created_by: Mapped[str] = mapped_column(String(40))  # a user id, or "admin"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(bearer: str | None) -> bool:
    return bearer is not None and bearer.startswith(PREFIX)


async def create(
    session: AsyncSession, show_id: str, label: str, created_by: str
) -> tuple[StreamKey, str]:
    """A new key for ``show_id`` (which must exist): the row and the key, this once."""
    active = await session.scalar(
        select(func.count())
        .select_from(StreamKey)
        .where(StreamKey.show_id == show_id, StreamKey.revoked_at.is_(None))
    )
    if (active or 0) >= MAX_ACTIVE_PER_SHOW:
        raise ApiError(
            "stream_key_limit",
            f"a show has at most {MAX_ACTIVE_PER_SHOW} stream keys: revoke one first",
            extra={"limit": MAX_ACTIVE_PER_SHOW},
        )
    key = new_key()
    row = StreamKey(show_id=show_id, label=label, key_hash=key_hash(key), created_by=created_by)
    session.add(row)
    await session.flush()
    return row, key


async def list_for_show(session: AsyncSession, show_id: str) -> list[StreamKey]:
    """Every key of the show, revoked ones too, newest first."""
    rows = await session.scalars(
        select(StreamKey)
        .where(StreamKey.show_id == show_id)
        .order_by(StreamKey.created_at.desc(), StreamKey.id.desc())
    )
    return list(rows)


async def revoke(session: AsyncSession, show_id: str, key_id: str) -> StreamKey:
    """Revoke the key (again: nothing changes, its first revocation time stays)."""
    row = await session.get(StreamKey, key_id)
    if row is None or row.show_id != show_id:
        raise ApiError("stream_key_not_found", "no such stream key for this show")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row


async def find(session: AsyncSession, key: str) -> StreamKey | None:
    return await session.scalar(select(StreamKey).where(StreamKey.key_hash == key_hash(key)))


def identity(row: StreamKey) -> str:
    return IDENTITY_PREFIX + row.id
