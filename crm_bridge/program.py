"""The membership programme in SQL: the one stored set of tiers, points and referral rules.

`apply_program` stores what a shop file says (`bot.store.shop`); `fetch_program` gives it back, or the
default programme before any file was loaded. The rules themselves are pure (`crm_bridge.rules`).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.rules import DEFAULT_PROGRAM, Program, program_from_dict, program_to_dict
from crm_bridge.tables import MembershipProgram


async def fetch_program(session: AsyncSession) -> Program:
    row = await session.get(MembershipProgram, 1)
    return DEFAULT_PROGRAM if row is None else program_from_dict(json.loads(row.rules))


async def apply_program(session: AsyncSession, program: Program, now: datetime) -> bool:
    """Store the shop file's programme; False when it already was this one."""
    rules = json.dumps(program_to_dict(program), sort_keys=True)
    row = await session.get(MembershipProgram, 1)
    if row is not None and row.rules == rules:
        return False
    if row is None:
        row = MembershipProgram(id=1, rules=rules, updated_at=now)
    row.rules, row.updated_at = rules, now
    session.add(row)
    await session.flush()
    return True
