"""The shop file's utility message templates as rows per Page (`message_template`), before and after Meta.

`apply_templates` (called by `apply_shop`) writes what the shop file declares; `bot.outbound.templates`
makes each row on the Page (a row without `meta_id` is not made yet) and records Meta's review.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.tables import MessageTemplate
from config.templates_file import TemplateSpec

log = logging.getLogger(__name__)


class TemplateStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


async def apply_templates(
    session: AsyncSession, page_id: str, specs: Sequence[TemplateSpec], now: datetime
) -> tuple[int, int]:
    """Rows for each template and language of the shop file on `page_id`; (created, updated)."""
    rows = (await session.execute(select(MessageTemplate).where(MessageTemplate.page_id == page_id))).scalars()
    known = {(row.name, row.language): row for row in rows}
    created = updated = 0
    for spec in specs:
        fields = json.dumps(list(spec.fields))
        for language, body in spec.bodies.items():
            row = known.get((spec.name, language))
            if row is None:
                session.add(
                    MessageTemplate(
                        page_id=page_id,
                        name=spec.name,
                        language=language,
                        body=body,
                        fields=fields,
                        status=TemplateStatus.PENDING.value,
                        created_at=now,
                    )
                )
                created += 1
            elif (row.body, row.fields) != (body, fields):
                if row.meta_id is not None and row.body != body:
                    # Meta keeps one body per name and language once made: the Page goes on sending the old one.
                    log.warning(
                        "template %s/%s is already on Page %s; its new body is not used", spec.name, language, page_id
                    )
                    continue
                row.body, row.fields = body, fields
                session.add(row)
                updated += 1
    await session.flush()
    return created, updated
