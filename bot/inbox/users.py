"""Managing inbox users after they exist (`plusone user list / set / disable / remove`, and the console's
users page); creating them is `bot.inbox.auth.add_user` (or `invite_user`). Every change that takes something
away ends the user's open sessions. Each function runs in the caller's transaction and raises `UserError`
for what cannot be done as asked.

The console keeps every Page with an active owner (`keep_an_owner`): otherwise an owner could lock the shop
out of its own users page. The CLI, run on the server itself, is the way back in and may do it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbox.auth import UserError, check_pages, check_role, new_password_hash, set_user_pages, user_pages
from bot.inbox.tables import InboxNote, InboxPasswordLink, InboxThread, InboxUser, InboxUserPage


class LastOwnerError(UserError):
    """The change would leave a Page with no active owner."""

    def __init__(self, name: str, page_id: str) -> None:
        super().__init__(f"{name} is the last active owner of Page {page_id}: make another user its owner first")
        self.name = name
        self.page_id = page_id


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


@dataclass(frozen=True)
class ConsoleUser:
    """A user as the console's users page shows them to an owner."""

    id: int
    name: str
    role: str
    active: bool
    pages: tuple[str, ...]
    locale: str | None
    link_purpose: str | None  # an unused one-time link: invite | reset
    link_expires_at: datetime | None
    manageable: bool  # every Page of theirs is the viewer's: the viewer may change them

    @property
    def invited(self) -> bool:
        """Invited and has not set a password yet."""
        return self.link_purpose == "invite"


async def users_of_pages(session: AsyncSession, viewer_pages: frozenset[str]) -> list[ConsoleUser]:
    """The users who work on at least one of `viewer_pages`, by name: an owner of one shop never sees
    another shop's staff on a shared server (docs/architecture.md, invariant 8)."""
    pages: dict[int, list[str]] = {}
    for user_id, page_id in await session.execute(
        select(InboxUserPage.user_id, InboxUserPage.page_id).order_by(InboxUserPage.page_id)
    ):
        pages.setdefault(user_id, []).append(page_id)
    shown = [user_id for user_id, theirs in pages.items() if viewer_pages.intersection(theirs)]
    if not shown:
        return []
    users = (await session.execute(select(InboxUser).where(InboxUser.id.in_(shown)).order_by(InboxUser.name))).scalars()
    links = {
        link.user_id: link
        for link in (
            await session.execute(select(InboxPasswordLink).where(InboxPasswordLink.user_id.in_(shown)))
        ).scalars()
    }
    return [
        ConsoleUser(
            id=user.id or 0,
            name=user.name,
            role=user.role,
            active=user.active,
            pages=tuple(pages[user.id or 0]),
            locale=user.locale,
            link_purpose=links[user.id].purpose if user.id in links else None,
            link_expires_at=links[user.id].expires_at if user.id in links else None,
            manageable=set(pages[user.id or 0]) <= viewer_pages,
        )
        for user in users
    ]


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
    keep_an_owner: bool = False,
) -> InboxUser:
    """Change what is given; a new password, role or Pages, disabling, or `sign_out` end every session.
    `keep_an_owner`: refuse (LastOwnerError) a change that leaves one of the user's Pages with no active owner."""
    user = await _user(session, name)
    owned = await user_pages(session, user.id or 0) if keep_an_owner and user.role == "owner" and user.active else ()
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
    if owned:
        orphaned = sorted(set(owned) - await pages_with_an_owner(session, owned))
        if orphaned:
            raise LastOwnerError(user.name, orphaned[0])  # the caller's transaction rolls the change back
    return user


async def pages_with_an_owner(session: AsyncSession, pages: Iterable[str]) -> set[str]:
    """Those of `pages` that some active owner has."""
    rows = await session.execute(
        select(InboxUserPage.page_id)
        .join(InboxUser, InboxUser.id == InboxUserPage.user_id)  # type: ignore[arg-type]
        .where(InboxUser.role == "owner", InboxUser.active.is_(True), InboxUserPage.page_id.in_(list(pages)))
    )
    return set(rows.scalars())


async def remove_user(session: AsyncSession, name: str) -> None:
    """Delete the user (their sessions end with them); their conversations become unassigned."""
    user = await _user(session, name)
    wrote = (await session.execute(select(InboxNote.id).where(InboxNote.user_id == user.id).limit(1))).first()
    if wrote is not None:
        # Notes keep who wrote them: removing the author would lose that, so disabling is the way.
        raise UserError(f"{user.name} wrote notes in the inbox: use `plusone user disable {user.name}` instead")
    await session.execute(update(InboxThread).where(InboxThread.assignee_id == user.id).values(assignee_id=None))
    await set_user_pages(session, user.id or 0, [])
    link = await session.get(InboxPasswordLink, user.id)
    if link is not None:
        await session.delete(link)
        await session.flush()  # before the user its row names
    await session.delete(user)
    await session.flush()
