"""Loading a whole shop file into the database: catalog, campaigns, the shop row, membership programme, FAQ.

`apply_shop(session, shop)` makes the tables match a `config.shop_file.ShopConfig`, in the caller's
transaction (the caller commits or rolls back). It lives in the app rather than in `carts` because one
file feeds several domains: the catalog (`carts.catalog`), the membership programme
(`crm_bridge.program`) and the FAQ (`bot.store.faq_rules`).

- The shop's name and currency go in the one `shop_info` row (its time zone and default Page only shape
  the campaigns), with the `orders:` and `shipping:` sections as JSON (`carts.orders.fetch_sale_rules`).
- Products are upserted by code (matched case-insensitively, like shoppers' codes); products missing from
  the file are set inactive (never deleted: orders refer to them). A product's new stock goes through
  `carts.catalog.update_product`, so it never drops below what is held or sold (invariant 3); a file
  that would do so is refused with `ShopApplyError` before anything is written.
- Campaigns are upserted by key and their products made to match. Campaigns missing from the file are
  ended (their `ends_at` moved to now): they may have carts and orders, so they stay. What runs is not in
  the file and is kept: a "next live" campaign keeps the live video it took when the live started
  (reloading the file during a live must not stop the sale).
- Loading the same file twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.clock import utcnow
from bot.store.faq_rules import apply_faq
from bot.store.message_templates import apply_templates
from bot.store.messenger_profile import save_messenger_profile
from bot.store.tables import InstagramAccount
from carts.catalog import nicknames_json, stock_below_committed, stock_error, update_product
from carts.coupons import create_offer, fetch_offers
from carts.order_rules import OrderRules, ShippingRules
from carts.payments import fetch_shop_payments, save_shop_payments
from carts.tables import Campaign, CampaignProduct, Product
from carts.tables import ShopInfo as ShopRow  # not config.shop_file.ShopInfo, the file's `shop:` section
from config.shop_file import CAMPAIGN_FIELDS, CampaignConfig, InstagramAccountConfig, ShopConfig, ShopInfo
from crm_bridge.program import apply_program
from crm_bridge.segments import set_shop_lapse_days
from parsers.order_comment import code_key

__all__ = ["ChangeCounts", "ShopChanges", "apply_shop", "apply_shop_settings", "replace_campaign_products"]

# The campaign columns the file sets: every campaign field but the key it is found by and its products
# (an Instagram media id is kept as the campaign's post id: the column its comments are matched on).
_CAMPAIGN_FILE_FIELDS = tuple(
    f for f in CAMPAIGN_FIELDS if f not in ("key", "products", "instagram_media_id", "offers")
)


@dataclass(frozen=True, slots=True)
class ChangeCounts:
    """What a load did to one kind of row."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0  # products: set inactive; campaigns: ended

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ShopChanges:
    """What `apply_shop` did, per kind. A second load of the same file is all `unchanged`."""

    products: ChangeCounts
    campaigns: ChangeCounts
    shop: ChangeCounts = ChangeCounts()  # the shop_info row: created, updated or unchanged
    faq: ChangeCounts | None = None  # FAQ rules (deactivated: deleted); None when the file has no faq: section

    @property
    def changed(self) -> bool:
        kinds = (self.shop, self.products, self.campaigns, self.faq or ChangeCounts())
        return any(c.created or c.updated or c.deactivated for c in kinds)

    def to_dict(self) -> dict[str, dict[str, int]]:
        counts = {
            "shop": self.shop.to_dict(),
            "products": self.products.to_dict(),
            "campaigns": self.campaigns.to_dict(),
        }
        return counts if self.faq is None else {**counts, "faq": self.faq.to_dict()}

    def summary_lines(self) -> list[str]:
        """One line per kind, for the command line."""
        s, p, c, f = self.shop, self.products, self.campaigns, self.faq
        lines = [
            f"shop: {s.created} created, {s.updated} updated, {s.unchanged} unchanged",
            f"products: {p.created} created, {p.updated} updated, {p.unchanged} unchanged, {p.deactivated} deactivated",
            f"campaigns: {c.created} created, {c.updated} updated, {c.unchanged} unchanged, {c.deactivated} ended",
        ]
        if f is not None:
            lines.append(
                f"faq rules: {f.created} created, {f.updated} updated, {f.unchanged} unchanged, {f.deactivated} deleted"
            )
        return lines


async def apply_shop(session: AsyncSession, shop: ShopConfig) -> ShopChanges:
    """Make products, campaigns and campaign products match `shop`, in the caller's transaction.

    Raises `ShopApplyError` (before writing anything) when a product's new stock is below what is
    already held or sold; the caller rolls back.
    """
    now = utcnow()
    # Locked (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) so that two loads, or a
    # load and an admin PATCH, cannot interleave their reads and writes of the same rows.
    rows = (await session.execute(select(Product).order_by(Product.id).with_for_update())).scalars().all()
    by_key = {code_key(row.code): row for row in rows}
    _refuse_stock_below_committed(shop, by_key)
    shop_counts = await _apply_shop_row(session, shop, now)

    created = updated = unchanged = deactivated = 0
    product_ids: dict[str, int] = {}
    new_products: list[Product] = []
    for index, product in enumerate(shop.products):
        values: dict[str, Any] = {
            "code": product.code,
            "name": product.name,
            "price": product.price,
            "variants": _variants_json(product.variants),
            "stock": product.stock,
            "nicknames": nicknames_json(product.nicknames),
            "name_keyword": product.name_keyword,
            "active": True,
        }
        row = by_key.get(code_key(product.code))
        if row is None:
            new = Product(**values, held=0, sold=0, created_at=now, updated_at=now)
            session.add(new)
            new_products.append(new)
            created += 1
            continue
        assert row.id is not None
        product_ids[product.code] = row.id
        changed = {name: value for name, value in values.items() if getattr(row, name) != value}
        if not changed:
            unchanged += 1
            continue
        if not await update_product(session, row.id, changed, now):
            # A hold landed after the check above (possible on PostgreSQL only).
            raise await stock_error(session, row.id, product.stock, f"{shop.source}:{product.line}: products[{index}]")
        updated += 1
    in_file = {code_key(product.code) for product in shop.products}
    for row in rows:
        if row.active and code_key(row.code) not in in_file:
            assert row.id is not None
            await update_product(session, row.id, {"active": False}, now)
            deactivated += 1
    await session.flush()
    product_ids.update({new.code: new.id for new in new_products if new.id is not None})
    product_counts = ChangeCounts(created, updated, unchanged, deactivated)
    campaign_counts = await _apply_campaigns(session, shop.campaigns, product_ids, now)
    if shop.membership is not None:
        await apply_program(session, shop.membership, now)  # crm_bridge: tiers, points and referral rules
    # The shop's language and payment methods (no `payments:` section: the ones set before stay).
    current = await fetch_shop_payments(session)
    methods = shop.payments if shop.payments is not None else current.methods
    await save_shop_payments(session, methods, shop.shop.language, now)
    # The Page's Messenger profile (Get Started, greeting, menu): the profile keeper sets it on Meta.
    await save_messenger_profile(session, shop.messenger_profile, now)
    if shop.templates and shop.shop.page_id is not None:
        await apply_templates(session, shop.shop.page_id, shop.templates, now)
    if shop.instagram is not None:
        await _apply_instagram(session, shop.instagram, now)
    if shop.segments is not None:
        # The lapse threshold, as the Segments page and the admin API set it (everyone's state follows).
        await set_shop_lapse_days(session, shop.segments.lapse_days, now)
    faq_counts = None
    if shop.faq:
        faq = await apply_faq(session, shop.faq)
        faq_counts = ChangeCounts(faq.created, faq.updated, faq.unchanged, faq.deleted)
    return ShopChanges(products=product_counts, campaigns=campaign_counts, shop=shop_counts, faq=faq_counts)


async def _apply_shop_row(session: AsyncSession, shop: ShopConfig, now: datetime) -> ChangeCounts:
    values = {
        **_settings_values(shop.shop, shop.orders),
        "shipping": json.dumps(shop.shipping.to_dict(), ensure_ascii=False, sort_keys=True),
    }
    return await _set_shop_row(session, values, now)


def _settings_values(info: ShopInfo, orders: OrderRules) -> dict[str, Any]:
    return {
        "name": info.name,
        "currency": info.currency,
        "timezone": info.timezone,
        "order_rules": json.dumps(orders.to_dict(), ensure_ascii=False, sort_keys=True),
    }


async def _set_shop_row(session: AsyncSession, values: dict[str, Any], now: datetime) -> ChangeCounts:
    row = await session.get(ShopRow, 1, with_for_update=True)
    if row is None:
        session.add(ShopRow(id=1, **values, updated_at=now))
        return ChangeCounts(created=1)
    if all(getattr(row, name) == value for name, value in values.items()):
        return ChangeCounts(unchanged=1)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = now
    return ChangeCounts(updated=1)


def _refuse_stock_below_committed(shop: ShopConfig, by_key: Mapping[str, Product]) -> None:
    for index, product in enumerate(shop.products):
        row = by_key.get(code_key(product.code))
        if row is not None and product.stock is not None and product.stock < row.held + row.sold:
            where = f"{shop.source}:{product.line}: products[{index}]"
            raise stock_below_committed(where, row.code, product.stock, row.held, row.sold)


def _variants_json(variants: Mapping[str, Sequence[str]]) -> str:
    # Compact and in file order, so the same file always gives the same text (and "unchanged").
    return json.dumps({option: list(values) for option, values in variants.items()}, ensure_ascii=False)


async def _apply_campaigns(
    session: AsyncSession, campaigns: Sequence[CampaignConfig], product_ids: Mapping[str, int], now: datetime
) -> ChangeCounts:
    rows = (await session.execute(select(Campaign).order_by(Campaign.id).with_for_update())).scalars().all()
    by_key = {row.key: row for row in rows}
    links: dict[int, list[CampaignProduct]] = {}
    for link in (await session.execute(select(CampaignProduct).order_by(CampaignProduct.id))).scalars():
        links.setdefault(link.campaign_id, []).append(link)

    created = updated = unchanged = deactivated = 0
    for config in campaigns:
        wanted = {product_ids[entry.product]: entry.code for entry in config.products}
        row = by_key.get(config.key)
        if row is None:
            row = Campaign(
                key=config.key,
                **{name: getattr(config, name) for name in _CAMPAIGN_FILE_FIELDS},
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            assert row.id is not None
            session.add_all(
                CampaignProduct(campaign_id=row.id, product_id=product_id, order_code=code)
                for product_id, code in wanted.items()
            )
            created += 1
            await _apply_offers(session, row, config, now)
            continue
        assert row.id is not None
        await _apply_offers(session, row, config, now)
        fields_changed = False
        for name in _CAMPAIGN_FILE_FIELDS:
            value = getattr(config, name)
            if name == "live_video_id" and _keeps_attached_live(row, config):
                continue
            if getattr(row, name) != value:
                setattr(row, name, value)
                fields_changed = True
        links_changed = await replace_campaign_products(session, row.id, links.get(row.id, []), wanted)
        if fields_changed or links_changed:
            row.updated_at = now
            updated += 1
        else:
            unchanged += 1
    in_file = {config.key for config in campaigns}
    for row in rows:
        if row.key not in in_file and row.ends_at > now:
            # Ended rather than deleted: carts and orders may refer to it, and putting it back in the file
            # (with its times) reopens it.
            row.ends_at = now
            row.starts_at = min(row.starts_at, now)
            row.updated_at = now
            deactivated += 1
    await session.flush()
    return ChangeCounts(created, updated, unchanged, deactivated)


async def _apply_offers(session: AsyncSession, row: Campaign, config: CampaignConfig, now: datetime) -> None:
    """The file's first-N offers of a campaign, made once each (by their keywords): a load again keeps the
    vouchers already given, and an offer stopped in the console stays stopped. One whose campaign has
    ended or whose vouchers' end has passed is not made (as the console and the API refuse it)."""
    if not config.offers:
        return
    assert row.id is not None
    made = {tuple(o.keywords) for o in await fetch_offers(session, campaign_id=row.id)}
    for spec in config.offers:
        if spec.keywords in made or row.ends_at <= now or (spec.valid_until and spec.valid_until <= now):
            continue
        await create_offer(session, row, spec, now)
        made.add(spec.keywords)


def _keeps_attached_live(row: Campaign, config: CampaignConfig) -> bool:
    """Whether the stored campaign's live video is one it took at run time, which the file cannot name.

    A "next live" campaign (still one in the file) is given its video when the live starts
    (`carts.comment_order_repository.attach_live_video`, or the merchant's `POST /api/live-videos`).
    """
    return config.next_live and config.live_video_id is None and row.next_live and row.live_video_id is not None


async def replace_campaign_products(
    session: AsyncSession, campaign_id: int, current: Iterable[CampaignProduct], wanted: Mapping[int, str]
) -> bool:
    """Make the campaign's products exactly `wanted` (product id -> order code); rows of kept products stay.

    The shop file's load and the console's campaign form both change a campaign's codes through this."""
    by_product = {link.product_id: link for link in current}
    removed = [link.id for product_id, link in by_product.items() if product_id not in wanted]
    renamed = [
        (link, wanted[product_id])
        for product_id, link in by_product.items()
        if product_id in wanted and link.order_code != wanted[product_id]
    ]
    added = [(product_id, code) for product_id, code in wanted.items() if product_id not in by_product]
    if removed:
        await session.execute(delete(CampaignProduct).where(CampaignProduct.id.in_(removed)))  # type: ignore[union-attr]
    if renamed:
        # (campaign, order code) is unique and checked per statement, so swapping two codes (A <-> B)
        # needs each row to step aside first. "#" can never start a real code.
        for link, _ in renamed:
            link.order_code = f"#{link.id}"
        await session.flush()
        for link, code in renamed:
            link.order_code = code
        await session.flush()
    session.add_all(
        CampaignProduct(campaign_id=campaign_id, product_id=product_id, order_code=code) for product_id, code in added
    )
    return bool(removed or renamed or added)


async def _apply_instagram(session: AsyncSession, accounts: Sequence[InstagramAccountConfig], now: datetime) -> None:
    """The linked Instagram accounts become exactly the file's (an account left out is unlinked: its
    events are then ignored, never handled as some Page's)."""
    rows = {row.account_id: row for row in (await session.execute(select(InstagramAccount))).scalars()}
    wanted = {a.account_id: a for a in accounts}
    for account_id, row in rows.items():
        if account_id not in wanted:
            await session.delete(row)
    for account_id, account in wanted.items():
        row = rows.get(account_id)
        if row is None:
            session.add(
                InstagramAccount(
                    account_id=account_id, page_id=account.page_id, username=account.username, updated_at=now
                )
            )
        elif (row.page_id, row.username) != (account.page_id, account.username):
            row.page_id, row.username, row.updated_at = account.page_id, account.username, now
            session.add(row)


async def apply_shop_settings(session: AsyncSession, info: ShopInfo, orders: OrderRules) -> ChangeCounts:
    """The console's settings (issue 19), written as a shop file's `shop:` and `orders:` sections write them:
    the shop row's name, currency, time zone and order rules, and the shop's language. Shipping and the
    payment methods stay as they are."""
    now = utcnow()
    values = _settings_values(info, orders)
    if await session.get(ShopRow, 1) is None:  # no file loaded yet: no delivery options, as a file without any
        values["shipping"] = json.dumps(ShippingRules().to_dict(), ensure_ascii=False, sort_keys=True)
    counts = await _set_shop_row(session, values, now)
    current = await fetch_shop_payments(session)
    await save_shop_payments(session, current.methods, info.language, now)
    await session.flush()
    return counts
