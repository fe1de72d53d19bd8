"""FAQ rules and per-Page welcome/fallback texts in SQL (issue 6). Repository: talks SQL in the caller's
transaction, the caller commits or rolls back.

- `apply_faq(session, configs)` makes each Page named in a shop file's `faq:` section match it: rules
  upserted by key, rules missing from the file deleted, the Page's welcome and fallback set (None: the
  settings' defaults). Pages the file does not name keep their rules. Loading the same file twice
  changes nothing.
- `fetch_page_faq` loads what the bot needs for one Page; `save_rule` / `delete_rule` serve the admin API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.clock import utcnow
from bot.store.tables import FaqRuleRow, PageReplies
from config.faq_file import FaqConfig
from parsers.faq import FaqButton, FaqQuickReply, FaqReply, FaqRule, MatchMode

__all__ = [
    "FaqChanges",
    "PageFaqInfo",
    "apply_faq",
    "delete_rule",
    "fetch_page_faq",
    "rule_to_dict",
    "save_rule",
]


@dataclass(frozen=True, slots=True)
class FaqChanges:
    """What a load did to FAQ rules (welcome and fallback texts are not counted)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


@dataclass(frozen=True, slots=True)
class PageFaqInfo:
    """One Page's FAQ as loaded: rules in file order, and its own texts (None: the default)."""

    page_id: str
    rules: tuple[FaqRule, ...]
    welcome: str | None = None
    fallback: str | None = None

    def rule(self, key: str) -> FaqRule | None:
        return next((r for r in self.rules if r.key == key), None)


def rule_to_dict(rule: FaqRule) -> dict[str, Any]:
    """A rule as the admin API shows it (and `parse_faq_rule_json` reads it back)."""
    reply = _reply_to_dict(rule.reply)
    return {
        "key": rule.key,
        "keywords": list(rule.keywords),
        "match": rule.match.value,
        "priority": rule.priority,
        "reply": reply.get("texts") or reply["text"],  # one text, or {"en": ..., "zh_Hant": ...}
        "quick_replies": reply["quick_replies"],
        "buttons": reply["buttons"],
    }


def _reply_to_dict(reply: FaqReply) -> dict[str, Any]:
    # The per-language texts only when there are some: a one-text rule's row stays as it always was.
    return {
        **({"texts": dict(reply.texts)} if reply.texts else {}),
        "text": reply.text,
        "quick_replies": [{"title": q.title, "rule": q.rule} for q in reply.quick_replies],
        "buttons": [
            {k: v for k, v in (("title", b.title), ("url", b.url), ("rule", b.rule)) if v is not None}
            for b in reply.buttons
        ],
    }


def _row_values(rule: FaqRule, position: int) -> dict[str, Any]:
    return {
        "position": position,
        "match": rule.match.value,
        "priority": rule.priority,
        "keywords": json.dumps(list(rule.keywords), ensure_ascii=False),
        "reply": json.dumps(_reply_to_dict(rule.reply), ensure_ascii=False, sort_keys=True),
    }


def _rule_from_row(row: FaqRuleRow) -> FaqRule:
    reply = json.loads(row.reply)
    return FaqRule(
        key=row.key,
        keywords=tuple(json.loads(row.keywords)),
        reply=FaqReply(
            reply["text"],
            tuple(FaqQuickReply(q["title"], q["rule"]) for q in reply.get("quick_replies", [])),
            tuple(FaqButton(b["title"], b.get("url"), b.get("rule")) for b in reply.get("buttons", [])),
            tuple(reply.get("texts", {}).items()),
        ),
        match=MatchMode(row.match),
        priority=row.priority,
    )


async def _rows(session: AsyncSession, page_id: str) -> list[FaqRuleRow]:
    stmt = select(FaqRuleRow).where(FaqRuleRow.page_id == page_id).order_by(FaqRuleRow.position, FaqRuleRow.id)
    return list((await session.execute(stmt)).scalars())


async def fetch_page_faq(session: AsyncSession, page_id: str) -> PageFaqInfo:
    rows = await _rows(session, page_id)
    texts = await session.get(PageReplies, page_id)
    return PageFaqInfo(
        page_id=page_id,
        rules=tuple(_rule_from_row(row) for row in rows),
        welcome=texts.welcome if texts else None,
        fallback=texts.fallback if texts else None,
    )


async def apply_faq(session: AsyncSession, configs: tuple[FaqConfig, ...]) -> FaqChanges:
    created = updated = unchanged = deleted = 0
    now = utcnow()
    for config in configs:
        existing = {row.key: row for row in await _rows(session, config.page_id)}
        for position, rule in enumerate(config.rules):
            values = _row_values(rule, position)
            row = existing.pop(rule.key, None)
            if row is None:
                session.add(FaqRuleRow(page_id=config.page_id, key=rule.key, updated_at=now, **values))
                created += 1
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                row.updated_at = now
                session.add(row)
                updated += 1
            else:
                unchanged += 1
        for row in existing.values():
            await session.delete(row)
            deleted += 1
        texts = await session.get(PageReplies, config.page_id)
        if texts is None:
            if config.welcome is not None or config.fallback is not None:
                session.add(
                    PageReplies(
                        page_id=config.page_id, welcome=config.welcome, fallback=config.fallback, updated_at=now
                    )
                )
        elif (texts.welcome, texts.fallback) != (config.welcome, config.fallback):
            texts.welcome, texts.fallback, texts.updated_at = config.welcome, config.fallback, now
            session.add(texts)
    await session.flush()
    return FaqChanges(created, updated, unchanged, deleted)


async def save_rule(session: AsyncSession, page_id: str, rule: FaqRule) -> bool:
    """Create or replace one rule (a new rule goes last); True if it was created."""
    rows = await _rows(session, page_id)
    row = next((r for r in rows if r.key == rule.key), None)
    now = utcnow()
    if row is None:
        position = max((r.position for r in rows), default=-1) + 1
        session.add(FaqRuleRow(page_id=page_id, key=rule.key, updated_at=now, **_row_values(rule, position)))
        await session.flush()
        return True
    for name, value in _row_values(rule, row.position).items():
        setattr(row, name, value)
    row.updated_at = now
    session.add(row)
    await session.flush()
    return False


async def delete_rule(session: AsyncSession, page_id: str, key: str) -> bool:
    result = await session.execute(delete(FaqRuleRow).where(FaqRuleRow.page_id == page_id, FaqRuleRow.key == key))
    return bool(result.rowcount)  # type: ignore[attr-defined]
