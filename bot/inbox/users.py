"""Managing inbox users after they exist (`plusone user list / set / disable / remove`); creating them is
`bot.inbox.auth.add_user`. Every change that takes something away ends the user's open sessions. Each
function runs in the caller's transaction and raises `UserError` for what cannot be done as asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbox.auth import UserError, check_pages, check_role, new_password_hash, set_user_pages
from bot.inbox.tables import InboxNote, InboxThread, InboxUser, InboxUserPage


@dataclass(frozen=True)
class UserListing:
    name: str
    role: str
    active: bool
    pages: tuple[str, ...]


async def list_users(session: AsyncSession) -> list[UserListing]:
    users = (await session.execute(select(InboxUser).order_by(InboxUser.name))).scalars().all()
    pages: dict[int, list[str]] = {}
    for user_id, page_id in await session.execute(
        select(InboxUserPage.user_id, InboxUserPage.page_id).order_by(InboxUserPage.page_id)
    ):
        pages.setdefault(user_id, []).append(page_id)
    return [UserListing(u.name, u.role, u.active, tuple(pages.get(u.id or 0, []))) for u in users]


async def _user(session: AsyncSession, name: str) -> InboxUser:
    user = (await session.execute(select(InboxUser).where(InboxUser.name == name.strip()))).scalar_one_or_none()
    if user is None:
        raise UserError(f"no user {name!r}")
    return user


async def change_user(
    session: AsyncSession,
    name: str,
    *,
    password: str | None = None,
    role: str | None = None,
    pages: list[str] | None = None,
    active: bool | None = None,
    sign_out: bool = False,
) -> InboxUser:
    """Change what is given; a new password, role or Pages, disabling, or `sign_out` end every session."""
    user = await _user(session, name)
    ended = sign_out
    if password is not None:
        user.password_hash = await new_password_hash(password)
        ended = True
    if role is not None and check_role(role) != user.role:
        user.role, ended = role, True
    if pages is not None and await set_user_pages(session, user.id or 0, check_pages(pages)):
        ended = True
    if active is not None and active != user.active:
        user.active = active
        ended = ended or not active
    if ended:
        user.session_epoch += 1
    session.add(user)
    await session.flush()
    return user


async def remove_user(session: AsyncSession, name: str) -> None:
    """Delete the user (their sessions end with them); their conversations become unassigned."""
    user = await _user(session, name)
    wrote = (await session.execute(select(InboxNote.id).where(InboxNote.user_id == user.id).limit(1))).first()
    if wrote is not None:
        # Notes keep who wrote them: removing the author would lose that, so disabling is the way.
        raise UserError(f"{user.name} wrote notes in the inbox: use `plusone user disable {user.name}` instead")
    await session.execute(update(InboxThread).where(InboxThread.assignee_id == user.id).values(assignee_id=None))
    await set_user_pages(session, user.id or 0, [])
    await session.delete(user)
    await session.flush()
