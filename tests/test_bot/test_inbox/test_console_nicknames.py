"""The catalog page's nicknames (issue 20): set in the console, the next comment orders by them; a bad
nickname is named beside the field and nothing is written; the page and the admin API refuse the same."""

from __future__ import annotations

import json

from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_console_catalog import (
    _field_error,
    _owner,
    _post,
    _product,
    _product_form,
    _reply_to,
)


async def test_nicknames_set_in_the_console_order_the_product_on_the_next_comment(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    page = await (await bot_stack.client.get("/inbox/catalog/p/A")).text()
    assert 'id="nicknames"' in page and 'name="name_keyword" value="on" checked' in page
    fields = _product_form(nicknames="玫瑰花束，紅玫瑰、 rose", name_keyword="on")
    status, _page = await _post(bot_stack, "/inbox/catalog/p/A", "/inbox/catalog/p/A", **fields)
    assert status == 303
    product = await _product(bot_stack, "A")
    assert json.loads(product.nicknames) == ["玫瑰花束", "紅玫瑰", "rose"]
    assert product.name_keyword is True
    text = await _reply_to(bot_stack, "3000000000311", "我要兩件紅玫瑰", 1)
    assert "A Rose bouquet ×2" in text
    shown = await (await bot_stack.client.get("/inbox/catalog/p/A")).text()
    assert 'value="玫瑰花束, 紅玫瑰, rose"' in shown


async def test_a_bad_nickname_is_named_beside_the_field_in_both_languages_and_nothing_changes(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    bad = _product_form(name="Red roses", nicknames="紅玫瑰, x!, 紅玫瑰")
    status, page = await _post(bot_stack, "/inbox/catalog/p/A", "/inbox/catalog/p/A", **bad)
    assert status == 400
    error = _field_error(page, "nicknames")
    assert "(#2)" in error and "紅裙" in error
    assert 'value="紅玫瑰, x!, 紅玫瑰"' in page and 'value="Red roses"' in page  # shown again as typed
    product = await _product(bot_stack, "A")
    assert (product.name, product.nicknames) == ("Rose bouquet", "[]")
    status, page = await _post(bot_stack, "/inbox/catalog/p/A?lang=zh_Hant", "/inbox/catalog/p/A", **bad)
    assert status == 400
    assert "請以逗號分隔別名" in _field_error(page, "nicknames")  # the same refusal for a reader of Chinese


async def test_a_nickname_that_is_another_products_code_is_refused_by_the_page_and_the_api(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    new = _product_form(code="CD", name="Candle", price="99", stock="")
    assert (await _post(bot_stack, "/inbox/catalog/new", "/inbox/catalog/new", **new))[0] == 303
    status, page = await _post(bot_stack, "/inbox/catalog/p/A", "/inbox/catalog/p/A", **_product_form(nicknames="cd"))
    assert status == 400
    assert "CD" in _field_error(page, "nicknames")
    assert (await _product(bot_stack, "A")).nicknames == "[]"
