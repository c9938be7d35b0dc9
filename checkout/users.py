"""Users with roles: the people behind host and moderator tokens."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from checkout.errors import Conflict, NotFound
from checkout.models import User
from core.roles import Role


async def ensure_user(
    session: AsyncSession, role: Role, display_name: str, user_id: str | None = None
) -> User:
    """The user ``user_id`` (same role; the name is updated), or a new user."""
    if user_id is None:
        user = User(role=role, display_name=display_name)
        session.add(user)
        await session.flush()
        return user
    found = await session.get(User, user_id)
    if found is None:
        raise NotFound("user_not_found", f"no user {user_id!r}", fields={"user_id": "unknown"})
    if found.role is not role:
        raise Conflict(
            "role_mismatch", f"user {user_id!r} is a {found.role}", fields={"role": "differs"}
        )
    found.display_name = display_name
    await session.flush()
    return found
