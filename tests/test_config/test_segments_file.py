"""The shop file's `segments:` section: the lapse threshold, refused as the console and the API refuse it,
and applied by a load so the Segments page shows what the file says."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.store.shop import apply_shop
from config.catalog_file import CatalogFileError
from config.shop_file import parse_shop_text
from crm_bridge.segment_tables import RfmCuts
from tests.conftest import database_sessions, database_url
from tests.test_config.test_shop_file import BASE


def parse(section: str):  # type: ignore[no-untyped-def]
    return parse_shop_text(BASE + section, "shop.yaml")


def test_the_lapse_threshold_is_read_or_left_to_the_shop_customers() -> None:
    assert parse("segments: {lapse_days: 60}\n").segments.lapse_days == 60
    assert parse("segments: {lapse_days: auto}\n").segments.lapse_days is None
    assert parse("").segments is None  # no section: the setting stays as the console left it


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "segments: {lapse_days: 2}\n",
            "shop.yaml:19: segments.lapse_days: must be a whole number from 3 to 3650, or auto",
        ),
        ("segments: {lapse: 60}\n", "shop.yaml:19: segments.lapse: unknown field (expected lapse_days)"),
        ("segments: [60]\n", "shop.yaml:19: segments: must be a mapping with lapse_days"),
    ],
)
def test_a_bad_segments_section_names_its_line_and_field(section: str, message: str) -> None:
    with pytest.raises(CatalogFileError) as refused:
        parse(section)
    assert str(refused.value) == message


async def test_a_load_sets_the_threshold_the_segments_page_shows(tmp_path: Path) -> None:
    async with database_sessions(database_url(tmp_path)) as sessions:
        for section, expected in (
            ("segments: {lapse_days: 45}\n", 45),
            ("", 45),
            ("segments: {lapse_days: auto}\n", None),
        ):
            config = await asyncio.to_thread(parse, section)
            async with sessions() as session, session.begin():
                await apply_shop(session, config)
            async with sessions() as session:
                cuts = (await session.execute(select(RfmCuts))).scalar_one()
            assert cuts.shop_lapse_days == expected, section
            assert cuts.lapse_days == (expected or 90) and cuts.lapse_source == ("shop" if expected else "default")
