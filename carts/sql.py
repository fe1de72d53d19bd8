"""SQL helpers shared by every repository (carts is the lowest package that talks SQL, so the CRM and the
bot use them from here).

- `dialect_insert(session)`: the INSERT construct of the session's database. Only the dialects' own
  `insert` has `on_conflict_do_nothing` / `on_conflict_do_update`; PostgreSQL's and SQLite's take the same
  arguments for what PlusOne uses (`index_elements`, `set_`, `returning`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(session: AsyncSession) -> Any:
    """`postgresql.insert` or `sqlite.insert`, whichever the session is bound to (SQLite when unbound)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert
