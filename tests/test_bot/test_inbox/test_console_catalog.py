"""HTTP tests of the console's catalog, campaigns and live controls (owners): edits that the next comment
obeys, refusals that name the field and change nothing, the pinned comment posted once through the Graph
emulator, and the live board's start and stop."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, update

from bot.inbox.auth import add_user
from bot.inbox.views import campaigns, catalog, live_controls
from bot.replies.i18n import translations
from bot.runtime.clock import utcnow
from bot.store.tables import LiveVideo
from carts.tables import Campaign, Product, ShopInfo
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack
from tests.test_bot.test_handlers.test_comments import POST, private_replies, seed_shop
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in


async def _owner(stack: Stack, zone: str = "Asia/Hong_Kong") -> None:
    await seed_shop(stack.sessions)
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
        session.add(ShopInfo(name="Blossom", currency="HKD", timezone=zone, updated_at=utcnow()))
    assert (await sign_in(stack, "owner"))[0] == 303


async def _post(stack: Stack, path: str, form_path: str, **fields: str) -> tuple[int, str]:
    data = {"csrf": await csrf_of(stack, form_path), **fields}
    response = await stack.client.post(path, data=data, allow_redirects=False)
    return response.status, await response.text()


async def _product(stack: Stack, code: str) -> Product:
    return (await stack.rows(select(Product).where(Product.code == code)))[0]


async def _campaign(stack: Stack, key: str = "live") -> Campaign:
    return (await stack.rows(select(Campaign).where(Campaign.key == key)))[0]


def _product_form(**changes: str) -> dict[str, str]:
    form = {"name": "Rose bouquet", "price": "380.00", "stock": "5", "variants": "", "image_url": "", "active": "on"}
    return {**form, **changes}


async def _reply_to(stack: Stack, psid: str, text: str, n: int) -> str:
    reply = await stack.emulator.deliver_comment(PAGE_ID, POST.split("_")[1], psid, text, comment_id=f"{POST}_{psid}")
    assert reply["status"] == 200

    async def replied() -> bool:
        return len(await private_replies(stack)) >= n

    await wait_until(replied, what="private reply")
    call = (await private_replies(stack))[n - 1]
    payload = call["body"]["message"]
    return str(payload.get("text") or payload["attachment"]["payload"]["text"])


def _field_error(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page)
    assert found, f"no error beside {field}"
    return found.group(1)


async def test_a_price_and_stock_edited_in_the_console_are_what_the_next_comment_gets(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    status, _page = await _post(
        bot_stack, "/inbox/catalog/p/A", "/inbox/catalog/p/A", **_product_form(price="420.50", stock="1")
    )
    assert status == 303
    product = await _product(bot_stack, "A")
    assert (str(product.price), product.stock) == ("420.50", 1)
    text = await _reply_to(bot_stack, "3000000000301", "A+2", 1)
    assert "HK$420.50" in text  # the new price; and only one left, so the second is not held
    assert (await _product(bot_stack, "A")).held == 1


async def test_stock_below_what_carts_hold_is_refused_beside_the_field_and_nothing_changes(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    await _reply_to(bot_stack, "3000000000302", "A+3", 1)
    assert (await _product(bot_stack, "A")).held == 3
    status, page = await _post(
        bot_stack, "/inbox/catalog/p/A", "/inbox/catalog/p/A", **_product_form(name="Red roses", stock="2")
    )
    assert status == 400
    assert "3" in _field_error(page, "stock") and 'value="Red roses"' in page  # what was typed, shown again
    product = await _product(bot_stack, "A")
    assert (product.name, product.stock) == ("Rose bouquet", 5)


async def test_bad_product_fields_are_each_named_and_nothing_is_written(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    bad = _product_form(
        name=" ", price="12.345", stock="-1", variants="size: S, s", image_url="javascript:alert(1)", active=""
    )
    status, page = await _post(bot_stack, "/inbox/catalog/p/A", "/inbox/catalog/p/A", **bad)
    assert status == 400
    for field in ("name", "price", "stock", "variants", "image_url"):
        assert _field_error(page, field)
    assert "size[1]" in _field_error(page, "variants")  # the file's rule: a value once per option
    assert 'value="12.345"' in page and "<img" not in page.split("<main", 1)[1]
    product = await _product(bot_stack, "A")
    assert (product.name, str(product.price), product.active, product.variants) == (
        "Rose bouquet",
        "380.00",
        True,
        "{}",
    )


async def test_a_new_product_with_options_and_a_picture_and_a_taken_code(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    fields = _product_form(
        code="T1", name="Silk scarf", price="199", stock="", variants="colour：red，blue\nsize: S, M", image_url=""
    )
    fields["image_url"] = "https://cdn.example.com/scarf.jpg"
    status, _page = await _post(bot_stack, "/inbox/catalog/new", "/inbox/catalog/new", **fields)
    assert status == 303
    scarf = await _product(bot_stack, "T1")
    assert scarf.variants == '{"colour": ["red", "blue"], "size": ["S", "M"]}' and scarf.stock is None
    listing = await (await bot_stack.client.get("/inbox/catalog?q=scarf")).text()
    assert 'src="https://cdn.example.com/scarf.jpg"' in listing and "Rose bouquet" not in listing
    status, page = await _post(bot_stack, "/inbox/catalog/new", "/inbox/catalog/new", **{**fields, "code": "t1"})
    assert status == 400 and _field_error(page, "code")
    assert len(await bot_stack.rows(select(Product))) == 3


async def test_an_agent_gets_403_on_the_management_pages(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    bot_stack.client.session.cookie_jar.clear()
    assert (await sign_in(bot_stack, "agent"))[0] == 303
    for path in (
        "/inbox/catalog",
        "/inbox/catalog/p/A",
        "/inbox/campaigns",
        "/inbox/campaigns/live",
        "/inbox/board/live/live",
    ):
        assert (await bot_stack.client.get(path)).status == 403, path
    for path in ("/inbox/catalog/p/A", "/inbox/campaigns/live/pin", "/inbox/board/live/live/start"):
        assert (await _post(bot_stack, path, "/inbox", **_product_form()))[0] == 403, path
    assert (await _product(bot_stack, "A")).price == Decimal("380")


def _campaign_form(page: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input id="[^"]+" name="([^"]+)" (?:type="datetime-local" )?value="([^"]*)"', page))
    checked = re.search(r'name="target_kind" value="([^"]+)" checked', page)
    fields["target_kind"] = checked.group(1) if checked else ""
    for name in ("pinned_text", "closed_reply"):
        found = re.search(rf'<textarea id="{name}" name="{name}"[^>]*>([^<]*)</textarea>', page)
        fields[name] = found.group(1) if found else ""
    return fields


async def test_campaign_times_are_in_the_shops_zone_and_a_new_code_is_what_the_next_comment_takes(
    bot_stack: Stack,
) -> None:
    await _owner(bot_stack)
    campaign = await _campaign(bot_stack)
    page = await (await bot_stack.client.get("/inbox/campaigns/live")).text()
    form = _campaign_form(page)
    hong_kong = campaign.starts_at + timedelta(hours=8)  # UTC+8, no summer time
    assert form["starts_at"] == hong_kong.strftime("%Y-%m-%dT%H:%M")
    rose = (await _product(bot_stack, "A")).id
    form.update({f"code-{rose}": "R", "per_shopper_limit": "2", "starts_at": "2026-12-01T10:00"})
    status, _page = await _post(bot_stack, "/inbox/campaigns/live", "/inbox/campaigns/live", **form)
    assert status == 303
    campaign = await _campaign(bot_stack)
    assert campaign.starts_at.isoformat().startswith("2026-12-01T02:00") and campaign.per_shopper_limit == 2
    text = await _reply_to(bot_stack, "3000000000303", "R+1", 1)
    assert "Rose bouquet" in text


async def test_codes_swap_a_product_is_added_and_one_taken_out_and_the_post_changes(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    async with bot_stack.sessions() as session, session.begin():
        now = utcnow()
        session.add(Product(code="C", name="Silk scarf", price=Decimal("199"), created_at=now, updated_at=now))
        await session.execute(update(Campaign).values(pinned_comment_id=f"{POST}_77"))
    rose, shirt, scarf = [(await _product(bot_stack, code)).id for code in ("A", "B", "C")]
    form = _campaign_form(await (await bot_stack.client.get("/inbox/campaigns/live")).text())
    form.update({f"code-{rose}": "B", f"code-{shirt}": "", "add_product": str(scarf), "add_code": "A"})
    form.update({"target_id": "2000000000555"})  # the post's own number, as in its address
    status, page = await _post(bot_stack, "/inbox/campaigns/live", "/inbox/campaigns/live", **form)
    assert status == 303, re.findall(r'class="field-error"[^>]*>([^<]*)', page)
    info = await (await bot_stack.client.get("/inbox/campaigns/live")).text()
    assert f'id="code-{rose}" name="code-{rose}" value="B"' in info and 'value="A"' in info
    assert f'name="code-{shirt}"' not in info  # taken out
    campaign = await _campaign(bot_stack)
    assert (campaign.post_id, campaign.pinned_comment_id) == (f"{PAGE_ID}_2000000000555", None)
    form = _campaign_form(info)
    form.update({"target_id": "999_2000000000555"})
    status, page = await _post(bot_stack, "/inbox/campaigns/live", "/inbox/campaigns/live", **form)
    assert status == 400 and _field_error(page, "target_id")
    assert (await _campaign(bot_stack)).post_id == f"{PAGE_ID}_2000000000555"


async def test_a_new_campaign_sells_on_its_post_from_the_next_comment(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    form = _campaign_form(await (await bot_stack.client.get("/inbox/campaigns/_new")).text())
    rose = (await _product(bot_stack, "A")).id
    form.update({"title": "Weekend roses", "key": "Weekend!", "target_id": "2000000000777", "add_product": ""})
    status, page = await _post(bot_stack, "/inbox/campaigns/_new", "/inbox/campaigns/_new", **form)
    assert status == 400 and _field_error(page, "key") and _field_error(page, "add_code")
    assert 'value="Weekend roses"' in page
    form.update({"key": "live"})
    status, page = await _post(bot_stack, "/inbox/campaigns/_new", "/inbox/campaigns/_new", **form)
    assert status == 400 and "already" in _field_error(page, "key")
    assert len(await bot_stack.rows(select(Campaign))) == 1  # nothing created
    form.update({"key": "weekend", "add_product": str(rose), "add_code": "K"})
    status, page = await _post(bot_stack, "/inbox/campaigns/_new", "/inbox/campaigns/_new", **form)
    assert status == 303, re.findall(r'class="field-error"[^>]*>([^<]*)', page)
    weekend = await _campaign(bot_stack, "weekend")
    assert (weekend.post_id, weekend.page_id) == (f"{PAGE_ID}_2000000000777", PAGE_ID)
    reply = await bot_stack.emulator.deliver_comment(
        PAGE_ID, "2000000000777", "3000000000304", "K+1", comment_id=f"{PAGE_ID}_2000000000777_1"
    )
    assert reply["status"] == 200

    async def replied() -> bool:
        return len(await private_replies(bot_stack)) == 1

    await wait_until(replied, what="private reply")
    message = (await private_replies(bot_stack))[0]["body"]["message"]
    assert "Rose bouquet" in str(message)


async def test_bad_campaign_fields_are_named_and_nothing_changes(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    before = await _campaign(bot_stack)
    form = _campaign_form(await (await bot_stack.client.get("/inbox/campaigns/live")).text())
    shirt = (await _product(bot_stack, "B")).id
    form.update(
        {
            "ends_at": "2020-01-01T10:00",
            "hold_minutes": "0",
            "per_shopper_limit": "x",
            f"code-{shirt}": "a",
            "title": "X",
        }
    )
    status, page = await _post(bot_stack, "/inbox/campaigns/live", "/inbox/campaigns/live", **form)
    assert status == 400
    for field in ("ends_at", "hold_minutes", "per_shopper_limit", f"code-{shirt}"):
        assert _field_error(page, field)
    after = await _campaign(bot_stack)
    assert (after.title, after.ends_at, after.hold_minutes) == (before.title, before.ends_at, before.hold_minutes)


async def test_the_pinned_comment_is_posted_on_the_post_once(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    async with bot_stack.sessions() as session, session.begin():
        await session.execute(update(Campaign).values(pinned_text="Comment A+1 to order 留言 A+1 下單"))
    # Meta refuses a post it does not know: its reason is shown, and the campaign may try again.
    status, page = await _post(bot_stack, "/inbox/campaigns/live/pin", "/inbox/campaigns/live")
    assert status == 400 and "Meta did not take the comment" in page
    assert (await _campaign(bot_stack)).pinned_comment_id is None
    await bot_stack.emulator.register_post(PAGE_ID, POST)
    status, page = await _post(bot_stack, "/inbox/campaigns/live/pin", "/inbox/campaigns/live")
    assert status == 303, re.findall(r'class="error"[^>]*>([^<]*)', page)
    campaign = await _campaign(bot_stack)
    mine = [c for c in (await bot_stack.emulator.comments())["comments"] if c.get("message") == campaign.pinned_text]
    assert [c["id"] for c in mine] == [campaign.pinned_comment_id] and mine[0]["post_id"] == POST
    status, page = await _post(bot_stack, "/inbox/campaigns/live/pin", "/inbox/campaigns/live")
    assert status == 400 and "already" in page
    again = (await bot_stack.emulator.comments())["comments"]
    assert len([c for c in again if c.get("message") == campaign.pinned_text]) == 1


async def test_close_now_and_open_now(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    assert (await _post(bot_stack, "/inbox/campaigns/live/close", "/inbox/campaigns/live"))[0] == 303
    assert (await _campaign(bot_stack)).ends_at <= utcnow()
    status, page = await _post(bot_stack, "/inbox/campaigns/live/open", "/inbox/campaigns/live")
    assert status == 400 and "closing time" in page  # it closed: a new closing time comes first


async def _next_live(stack: Stack) -> None:
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        session.add(
            Campaign(
                key="tonight",
                title="Tonight's live",
                page_id=PAGE_ID,
                next_live=True,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=3),
                created_at=now,
                updated_at=now,
            )
        )


async def test_the_live_board_attaches_starts_and_stops_a_live_video(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    await _next_live(bot_stack)
    board = "/inbox/board/tonight"
    status, page = await _post(bot_stack, f"{board}/live/start", board, video_id="7000abc")
    assert status == 400 and 'value="7000abc"' in page and (await _campaign(bot_stack, "tonight")).live_video_id is None
    status, page = await _post(bot_stack, "/inbox/board/live/live/start", "/inbox/board/live", video_id="7000000000009")
    assert status == 409 and "sells on post" in page  # the API's own refusal
    assert (await _post(bot_stack, f"{board}/live/start", board, video_id="7000000000001"))[0] == 303
    assert (await _campaign(bot_stack, "tonight")).live_video_id == "7000000000001"
    part = await (await bot_stack.client.get(f"{board}/live?part=1")).text()
    assert "7000000000001" in part and "/live/stop" in part
    assert (await _post(bot_stack, f"{board}/live/stop", board))[0] == 303
    [video] = await bot_stack.rows(select(LiveVideo).where(LiveVideo.video_id == "7000000000001"))
    assert video.ended_at is not None and video.started_by == "merchant"


def test_every_error_the_console_pages_write_in_python_has_its_chinese() -> None:
    # Texts given to gettext() in Python are not marked in a template, so the template walk does not see them.
    sources = [Path(module.__file__ or "").read_text() for module in (catalog, campaigns, live_controls)]
    msgids = {m for text in sources for m in re.findall(r'gettext\([^,"]*,\s*"((?:[^"\\]|\\.)*)"', text)}
    msgids |= set(campaigns.FIELD_ERRORS.values()) | set(campaigns.TARGET_ERRORS.values())
    assert len(msgids) > 20
    chinese = translations("zh_Hant")
    assert [m for m in sorted(msgids) if chinese.ugettext(m) == m] == []
