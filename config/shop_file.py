"""The shop file (issue 5): shop details, the catalog's products with stock, and campaigns, in YAML or JSON.

Only `load_shop_file` touches the disk; `parse_shop_text` and the `check_*`/`parse_time` helpers are pure
(the admin API validates its JSON fields with the same helpers). Errors are `CatalogFileError`s (the
`products:` entries are checked by `config.catalog_file`) or its subclass `ShopFileError`, each one line
naming the file, line and field: `shop.yaml:23: campaigns[0].ends_at: must be after starts_at`.

    shop: {name: Blossom Florist, currency: HKD, page_id: "1000000000001", timezone: Asia/Hong_Kong}
    products:                     # exactly the catalog file's entries
      - {code: A, name: Floral wrap dress, price: 1280, stock: 12, variants: {size: [S, M, L]}}
    campaigns:
      - key: xmas-live
        title: Christmas live sale
        post_id: "1000000000001_2000000000001"   # or live_video_id, or next_live: true
        starts_at: 2026-12-20 19:00               # no offset: the shop's time zone
        ends_at: 2026-12-20 23:00
        products: [{product: A, code: Flower}]    # code: what shoppers type here (default the product's)
    faq: {rules: [{key: hours, keywords: [hours, 營業時間], reply: ...}]}   # see config.faq_file
    orders: {pay_within: 48h, pay_within_by_method: {cash_on_pickup: 7d}}  # see config.sale_file
    shipping: {delivery: [{key: courier, name: Courier, fee: 30}]}          # see config.sale_file
    templates: {shipped: {fields: [order_number], languages: {en: "Order {{1}} shipped."}}}   # config.templates_file
    instagram: [{account_id: "17841400000000001", page_id: "1000000000001"}]  # each Page's Instagram account
    messenger_profile: {persistent_menu: {default: [cart, checkout, points, person]}}  # messenger_profile_file
    segments: {lapse_days: 60}    # lapsed after 60 days without an order (`auto`: derived); config.segments_file

A campaign on an Instagram post or reel names it by `instagram_media_id` (the IG media id, stored bare as
Instagram's webhooks name it); one on an Instagram live names the live media id as its `live_video_id`.

Times come out as aware UTC datetimes. A post id may be written bare (`2000000000001`); it is stored the
way Meta's webhooks name it, `{page id}_{post id}`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from carts.coupon_rules import OfferSpec
from carts.order_rules import OrderRules, ShippingRules
from carts.payment_rules import PaymentMethod

# The catalog loader's node helpers: the shop file reads its nodes the same way (text as written,
# duplicate keys refused, lines from the node marks).
from config.catalog_file import (
    CatalogFileError,
    ProductConfig,
    _is_null,
    _line,
    _mapping_fields,
    _text,
    compose_yaml,
    parse_products_node,
)
from config.faq_file import FaqConfig, parse_faq_node
from config.membership_file import parse_membership_node
from config.messenger_profile_file import MessengerProfileConfig, parse_messenger_profile_node
from config.payments_file import parse_payments_node
from config.sale_file import parse_orders_node, parse_shipping_node
from config.segments_file import SegmentsConfig, parse_segments_node
from config.templates_file import TemplateSpec, parse_templates_node
from crm_bridge.rules import Program
from parsers.order_comment import check_code, code_key

__all__ = [
    "CAMPAIGN_FIELDS",
    "CAMPAIGN_PRODUCT_FIELDS",
    "CLOSED_REPLY_MAX",
    "HOLD_MINUTES_DEFAULT",
    "HOLD_MINUTES_MAX",
    "INT_MAX",
    "NAME_MAX",
    "PINNED_TEXT_MAX",
    "PRICE_LIMIT",
    "ROOT_FIELDS",
    "SHOP_FIELDS",
    "CampaignConfig",
    "CampaignProductConfig",
    "InstagramAccountConfig",
    "ShopConfig",
    "ShopFileError",
    "ShopInfo",
    "check_campaign_key",
    "check_hold_minutes",
    "check_per_shopper_limit",
    "check_price",
    "check_stock",
    "check_text",
    "load_shop_file",
    "parse_shop_text",
    "parse_time",
]

ROOT_FIELDS = (
    "shop",
    "products",
    "campaigns",
    "faq",
    "membership",
    "orders",
    "shipping",
    "payments",
    "templates",
    "instagram",
    "messenger_profile",
    "segments",
)
INSTAGRAM_FIELDS = ("account_id", "page_id", "username")
SHOP_FIELDS = ("name", "currency", "page_id", "timezone", "language")
CAMPAIGN_FIELDS = (
    "key",
    "title",
    "page_id",
    "post_id",
    "instagram_media_id",
    "live_video_id",
    "next_live",
    "starts_at",
    "ends_at",
    "per_shopper_limit",
    "hold_minutes",
    "pinned_text",
    "closed_reply",
    "products",
    "offers",
)
CAMPAIGN_PRODUCT_FIELDS = ("product", "code")

# Column sizes of carts/tables.py, so that a file that loads always fits the database (PostgreSQL
# refuses longer text; SQLite would keep it silently).
NAME_MAX = 200
KEY_MAX = 80
PRICE_LIMIT = Decimal("10000000000")  # Numeric(12, 2)
INT_MAX = 2**31 - 1  # an INTEGER column on PostgreSQL
_CENT = Decimal("0.01")
LANGUAGES = ("en", "zh_Hant")  # the catalogs of bot/locale
HOLD_MINUTES_DEFAULT = 30
HOLD_MINUTES_MAX = 7 * 24 * 60
IMAGE_URL_MAX = 2000  # product.image_url
PINNED_TEXT_MAX = 8000  # a Facebook comment's limit
CLOSED_REPLY_MAX = 1999  # Messenger's text limit is 2,000 characters

_TAG = "tag:yaml.org,2002:"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_KEY = re.compile(r"[a-z0-9][a-z0-9-]*")
_DIGITS = re.compile(r"[0-9]{1,64}")
_POST_ID = re.compile(r"([0-9]{1,64})_([0-9]{1,64})")
_CURRENCY = re.compile(r"[A-Z]{3}")
_TIME_EXAMPLE = "like 2026-12-20 19:00 or 2026-12-20T19:00+08:00"


class ShopFileError(CatalogFileError):
    """A shop file that cannot be used. `str()` is one line naming the file, line and field."""


@dataclass(frozen=True, slots=True)
class ShopInfo:
    """The `shop:` section: who sells, in which currency, on which Page by default, in which time zone."""

    name: str
    currency: str
    page_id: str | None = None
    timezone: str = "UTC"
    language: str = "en"  # what shoppers read by default: en | zh_Hant (bot.replies.i18n)


@dataclass(frozen=True, slots=True)
class CampaignProductConfig:
    """A product on sale in a campaign: `product` is its code in `products:`, `code` what shoppers type."""

    product: str
    code: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    """One campaign: a sale on one post, one live video or the Page's next live, open between two times."""

    key: str
    title: str
    page_id: str
    starts_at: datetime  # aware, UTC
    ends_at: datetime
    products: tuple[CampaignProductConfig, ...]
    post_id: str | None = None  # "{page id}_{post id}"
    live_video_id: str | None = None
    next_live: bool = False
    per_shopper_limit: int | None = None
    hold_minutes: int = HOLD_MINUTES_DEFAULT
    pinned_text: str | None = None
    closed_reply: str | None = None
    # First-N keyword offers (carts.coupon_rules.OfferSpec), made on load when the campaign has none with
    # the same keywords yet (bot.store.shop); the console and the admin API make and stop them too.
    offers: tuple[OfferSpec, ...] = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class InstagramAccountConfig:
    """An Instagram professional account linked to a Page: the Page's token sends for it (Facebook Login)."""

    account_id: str
    page_id: str
    username: str | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ShopConfig:
    """A whole shop file, validated."""

    shop: ShopInfo
    products: tuple[ProductConfig, ...]
    campaigns: tuple[CampaignConfig, ...] = ()
    faq: tuple[FaqConfig, ...] = ()  # per Page (config.faq_file); empty when the file has no faq: section
    membership: Program | None = None  # the `membership:` section (config.membership_file), if any
    # The `orders:` section (config.sale_file): time to pay; `shipping:`: delivery options and pickup points.
    orders: OrderRules = field(default_factory=OrderRules)
    shipping: ShippingRules = field(default_factory=ShippingRules)
    payments: tuple[PaymentMethod, ...] | None = None  # the `payments:` section (config.payments_file), if any
    templates: tuple[TemplateSpec, ...] = ()  # the `templates:` section (config.templates_file)
    # The `instagram:` section: each Page's Instagram account; None: no section (the links made before stay).
    instagram: tuple[InstagramAccountConfig, ...] | None = None
    # The `messenger_profile:` section (config.messenger_profile_file); None: PlusOne's default profile.
    messenger_profile: MessengerProfileConfig | None = None
    # The `segments:` section (config.segments_file): the lapse threshold; None: no section (the setting stays).
    segments: SegmentsConfig | None = None
    source: str = field(default="<shop>", compare=False)  # the file name, for later messages


def load_shop_file(path: str | os.PathLike[str]) -> ShopConfig:
    """Read and validate a shop file. Raises `CatalogFileError` (or `ShopFileError`) naming file, line, field."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ShopFileError(source, "no such file") from None
    except IsADirectoryError:
        raise ShopFileError(source, "is a directory, not a shop file") from None
    except UnicodeDecodeError as exc:
        raise ShopFileError(source, f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ShopFileError(source, f"cannot be read: {exc.strerror or exc}") from None
    return parse_shop_text(text, source)


def parse_shop_text(text: str, source: str = "<shop>") -> ShopConfig:
    """Validate the text of a shop file. Pure, apart from reading time zone data for `shop.timezone`."""
    try:
        root = compose_yaml(text, source)
    except RecursionError:  # PyYAML composes nested lists and mappings recursively: `[[[[...` a few thousand deep
        raise ShopFileError(source, "invalid YAML: nested too deeply") from None
    if root is None:
        raise ShopFileError(source, "missing (the file is empty)", 1, "shop")
    if not isinstance(root, yaml.MappingNode):
        raise ShopFileError(source, "must be a mapping with shop:, products: and campaigns:", _line(root), "shop file")
    fields = _fields(root, source, "", ROOT_FIELDS)
    for name in ("shop", "products"):
        if name not in fields:
            raise ShopFileError(source, "missing", _line(root), name)
    shop = _shop_info(fields["shop"], source)
    products_node = fields["products"]
    products = parse_products_node(products_node, source)
    _check_products_fit(products_node, products, source)
    campaigns_node = fields.get("campaigns")
    campaigns: tuple[CampaignConfig, ...] = ()
    if campaigns_node is not None and not _is_null(campaigns_node):
        campaigns = _campaigns(campaigns_node, source, shop, products)
    faq_node = fields.get("faq")
    faq: tuple[FaqConfig, ...] = ()
    if faq_node is not None and not _is_null(faq_node):
        faq = parse_faq_node(faq_node, source, shop.page_id)
    membership_node = fields.get("membership")
    membership = None
    if membership_node is not None and not _is_null(membership_node):
        membership = parse_membership_node(membership_node, source)
    orders_node = fields.get("orders")
    orders = OrderRules()
    if orders_node is not None and not _is_null(orders_node):
        orders = parse_orders_node(orders_node, source)
    shipping_node = fields.get("shipping")
    shipping = ShippingRules()
    if shipping_node is not None and not _is_null(shipping_node):
        shipping = parse_shipping_node(shipping_node, source)
    payments_node = fields.get("payments")
    payments = None
    if payments_node is not None and not _is_null(payments_node):
        payments = parse_payments_node(payments_node, source)
    templates_node = fields.get("templates")
    templates: tuple[TemplateSpec, ...] = ()
    if templates_node is not None and not _is_null(templates_node):
        templates = parse_templates_node(templates_node, source)
        if templates and shop.page_id is None:
            # Templates are made on a Page: the shop's.
            raise ShopFileError(
                source, "templates need shop.page_id (the Page they are made on)", _line(templates_node), "templates"
            )
    instagram_node = fields.get("instagram")
    instagram: tuple[InstagramAccountConfig, ...] | None = None
    if instagram_node is not None and not _is_null(instagram_node):
        instagram = _instagram_accounts(instagram_node, source, shop)
    profile_node = fields.get("messenger_profile")
    messenger_profile = None
    if profile_node is not None and not _is_null(profile_node):
        messenger_profile = parse_messenger_profile_node(profile_node, source)
    segments_node = fields.get("segments")
    segments = None
    if segments_node is not None and not _is_null(segments_node):
        segments = parse_segments_node(segments_node, source)
    return ShopConfig(
        shop=shop,
        products=products,
        campaigns=campaigns,
        faq=faq,
        membership=membership,
        orders=orders,
        shipping=shipping,
        payments=payments,
        templates=templates,
        instagram=instagram,
        messenger_profile=messenger_profile,
        segments=segments,
        source=source,
    )


def _instagram_accounts(node: yaml.Node, source: str, shop: ShopInfo) -> tuple[InstagramAccountConfig, ...]:
    """The `instagram:` section: a list of {account_id, page_id (default shop.page_id), username}."""
    if not isinstance(node, yaml.SequenceNode):
        raise ShopFileError(source, "must be a list of {account_id, page_id}", _line(node), "instagram")
    accounts: list[InstagramAccountConfig] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(node.value):
        where = f"instagram[{index}]"
        fields = _fields(item, source, where, INSTAGRAM_FIELDS)
        account_node = _required(fields, "account_id", item, source, where)
        account_id = _digits(
            account_node,
            source,
            f"{where}.account_id",
            'the Instagram professional account\'s numeric id, like "17841400000000001"',
        )
        page_node = _given(fields, "page_id")
        if page_node is not None:
            page_id = _page_id(page_node, source, f"{where}.page_id")
        elif shop.page_id is not None:
            page_id = shop.page_id
        else:
            raise ShopFileError(source, "missing (and shop.page_id gives no default)", _line(item), f"{where}.page_id")
        if account_id in seen:
            raise ShopFileError(
                source, f"account {account_id} is listed twice (also {seen[account_id]})", _line(account_node), where
            )
        if page_id in seen.values():
            raise ShopFileError(
                source, f"Page {page_id} already has an Instagram account", _line(item), f"{where}.page_id"
            )
        seen[account_id] = page_id
        username_node = _given(fields, "username")
        username = None
        if username_node is not None:
            username = _checked_text(username_node, source, f"{where}.username", NAME_MAX).strip().lstrip("@")
        accounts.append(InstagramAccountConfig(account_id, page_id, username, _line(item)))
    return tuple(accounts)


# --- checks shared with the admin API (each returns the problem, or None when the value is fine) ---


def check_text(text: str, limit: int) -> str | None:
    if not text.strip():
        return "must not be empty"
    if "\x00" in text:  # PostgreSQL text cannot hold it
        return "must not contain NUL characters"
    if len(text) > limit:
        return f"must be at most {limit} characters"
    return None


def check_image_url(url: str) -> str | None:
    """A product's picture: an http(s) address (anything else is never shown as an image)."""
    if not re.fullmatch(r"https?://[^\s<>\"']+", url, flags=re.IGNORECASE):
        return "must be an http:// or https:// address, like https://example.com/rose.jpg"
    if len(url) > IMAGE_URL_MAX:
        return f"must be at most {IMAGE_URL_MAX} characters"
    return None


TARGET_KINDS = ("post_id", "instagram_media_id", "live_video_id", "next_live")


def parse_campaign_target(kind: str, text: str, page_id: str) -> tuple[str | None, str | None, bool]:
    """What a campaign sells under, given as data (the console's form): `kind` one of TARGET_KINDS and the id.

    Returns (post_id, live_video_id, next_live) as the file's `_target` does; raises `ShopFileError` naming the
    field (`post_id`, ...) with the file's own words.
    """
    if kind not in TARGET_KINDS:
        raise ShopFileError("<form>", f"give one of {', '.join(TARGET_KINDS)}", 1, "target")
    if kind == "next_live":
        return None, None, True
    node = yaml.compose(yaml.safe_dump(text.strip()), Loader=yaml.SafeLoader)
    assert node is not None
    if kind == "post_id":
        return _post_id(node, "<form>", kind, page_id), None, False
    if kind == "instagram_media_id":
        return _digits(node, "<form>", kind, "the Instagram media's numeric id"), None, False
    return None, _digits(node, "<form>", kind, "the live video's numeric id"), False


def check_campaign_key(key: str) -> str | None:
    if not _KEY.fullmatch(key) or len(key) > KEY_MAX:
        return f"must be lower-case letters, digits and hyphens (like xmas-live), at most {KEY_MAX} characters"
    return None


def check_price(price: Decimal) -> str | None:
    if not price.is_finite() or price < 0:
        return "must be a number >= 0"
    if price >= PRICE_LIMIT:
        return "must be below 10000000000"
    if price.quantize(_CENT) != price:
        return "must have at most 2 decimal places"
    return None


def check_stock(stock: int) -> str | None:
    if not 0 <= stock <= INT_MAX:
        return f"must be a whole number from 0 to {INT_MAX}"
    return None


def check_per_shopper_limit(limit: int) -> str | None:
    if not 1 <= limit <= INT_MAX:
        return f"must be a whole number from 1 to {INT_MAX}"
    return None


def check_hold_minutes(minutes: int) -> str | None:
    if not 1 <= minutes <= HOLD_MINUTES_MAX:
        return f"must be a whole number of minutes from 1 to {HOLD_MINUTES_MAX} (a week)"
    return None


def parse_time(text: str, zone: tzinfo | None) -> datetime:
    """A date and time as an aware UTC datetime; a time without an offset is in `zone`.

    Raises `ValueError` with the problem. `zone=None` requires an offset (the admin API has no shop
    time zone to fall back on).
    """
    text = text.strip()
    # fromisoformat also takes a bare date (and week dates), which as midnight would quietly end a
    # campaign a day early: a time is required.
    if ":" not in text:
        raise ValueError(f"must be a date and a time, {_TIME_EXAMPLE}")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"must be a date and a time, {_TIME_EXAMPLE}") from None
    return _as_utc(value, zone)


def _as_utc(value: datetime, zone: tzinfo | None) -> datetime:
    if value.tzinfo is None:
        if zone is None:
            raise ValueError("must include a UTC offset, like 2026-12-20T19:00:00+08:00")
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last datetime in UTC
        raise ValueError("must be between the years 1 and 9999 in UTC") from None


# --- the sections ---


def _fields(node: yaml.Node, source: str, where: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
    """A mapping's value nodes by name; unknown names are errors. `where` names the mapping."""
    if not isinstance(node, yaml.MappingNode):
        raise ShopFileError(source, f"must be a mapping with {', '.join(allowed)}", _line(node), where or "shop file")
    fields = _mapping_fields(node, source, where)
    for key, (key_node, _) in fields.items():
        if key not in allowed:
            path = f"{where}.{key}" if where else key
            raise ShopFileError(source, f"unknown field (expected {', '.join(allowed)})", _line(key_node), path)
    return {key: value for key, (_, value) in fields.items()}


def _given(fields: dict[str, yaml.Node], name: str) -> yaml.Node | None:
    """The field's node, or None when it is absent or null (an optional field left empty)."""
    node = fields.get(name)
    return None if node is None or _is_null(node) else node


def _required(fields: dict[str, yaml.Node], name: str, parent: yaml.Node, source: str, where: str) -> yaml.Node:
    node = _given(fields, name)
    if node is None:
        raise ShopFileError(source, "missing", _line(parent), f"{where}.{name}")
    return node


def _checked_text(node: yaml.Node, source: str, where: str, limit: int) -> str:
    text = _text(node, source, where).strip()
    problem = check_text(text, limit)
    if problem:
        raise ShopFileError(source, problem, _line(node), where)
    return text


def _optional_text(fields: dict[str, yaml.Node], name: str, source: str, where: str, limit: int) -> str | None:
    node = _given(fields, name)
    if node is None:
        return None
    text = _text(node, source, f"{where}.{name}").strip()
    if not text:
        raise ShopFileError(source, "must not be empty (leave it out for none)", _line(node), f"{where}.{name}")
    problem = check_text(text, limit)
    if problem:
        raise ShopFileError(source, problem, _line(node), f"{where}.{name}")
    return text


def _whole(node: yaml.Node, source: str, where: str, check: Callable[[int], str | None]) -> int:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _TAG + "int":
        # Every check refuses 0 with a message that also fits a value that is no whole number.
        raise ShopFileError(source, check(0) or "must be a whole number", _line(node), where)
    value = int(_CONSTRUCTOR.construct_yaml_int(node))
    problem = check(value)
    if problem:
        raise ShopFileError(source, problem, _line(node), where)
    return value


def _page_id(node: yaml.Node, source: str, where: str) -> str:
    # A number or text: ids are digits either way, and the text as written keeps every digit.
    if not isinstance(node, yaml.ScalarNode) or node.tag not in (_TAG + "int", _TAG + "str"):
        raise ShopFileError(source, 'must be the Page\'s numeric id, like "1000000000001"', _line(node), where)
    text = str(node.value).strip()
    if not _DIGITS.fullmatch(text):
        raise ShopFileError(source, 'must be the Page\'s numeric id, like "1000000000001"', _line(node), where)
    return text


def _shop_info(node: yaml.Node, source: str) -> ShopInfo:
    fields = _fields(node, source, "shop", SHOP_FIELDS)
    name = _checked_text(_required(fields, "name", node, source, "shop"), source, "shop.name", NAME_MAX)
    currency_node = _required(fields, "currency", node, source, "shop")
    currency = _text(currency_node, source, "shop.currency").strip()
    if not _CURRENCY.fullmatch(currency):
        raise ShopFileError(source, "must be 3 upper-case letters, like HKD", _line(currency_node), "shop.currency")
    page_node = _given(fields, "page_id")
    page_id = _page_id(page_node, source, "shop.page_id") if page_node is not None else None
    zone_node = _given(fields, "timezone")
    timezone = "UTC"
    if zone_node is not None:
        timezone = _text(zone_node, source, "shop.timezone").strip()
        _zone(timezone, zone_node, source)
    language_node = _given(fields, "language")
    language = "en"
    if language_node is not None:
        language = _text(language_node, source, "shop.language").strip()
        if language not in LANGUAGES:
            raise ShopFileError(source, f"must be one of {', '.join(LANGUAGES)}", _line(language_node), "shop.language")
    return ShopInfo(name=name, currency=currency, page_id=page_id, timezone=timezone, language=language)


def _zone(name: str, node: yaml.Node, source: str) -> tzinfo:
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ShopFileError(
            source, f"unknown time zone {name!r} (use an IANA name like Asia/Hong_Kong)", _line(node), "shop.timezone"
        ) from None


def _check_products_fit(node: yaml.SequenceNode, products: tuple[ProductConfig, ...], source: str) -> None:
    """What the catalog allows but the product table cannot keep: long names, prices past cents, huge stock."""
    for index, (item, product) in enumerate(zip(node.value, products, strict=True)):
        where = f"products[{index}]"
        fields = {key: value for key, (_, value) in _mapping_fields(item, source, where).items()}
        problem = check_text(product.name, NAME_MAX)
        if problem:
            raise ShopFileError(source, problem, _line(fields["name"]), f"{where}.name")
        problem = check_price(product.price)
        if problem:
            raise ShopFileError(source, problem, _line(fields["price"]), f"{where}.price")
        problem = check_stock(product.stock) if product.stock is not None else None
        if problem:
            raise ShopFileError(source, problem, _line(fields["stock"]), f"{where}.stock")


def _campaigns(
    node: yaml.Node, source: str, shop: ShopInfo, products: tuple[ProductConfig, ...]
) -> tuple[CampaignConfig, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise ShopFileError(source, "must be a list of campaigns", _line(node), "campaigns")
    zone = _zone(shop.timezone, node, source)
    by_code = {code_key(product.code): product for product in products}
    campaigns: list[CampaignConfig] = []
    keys: dict[str, int] = {}
    for index, item in enumerate(node.value):
        where = f"campaigns[{index}]"
        campaign = _campaign(item, source, where, shop, zone, by_code)
        if campaign.key in keys:
            first = keys[campaign.key]
            raise ShopFileError(
                source,
                f"duplicate key {campaign.key!r} (campaigns[{first}] at line {campaigns[first].line})",
                _line(_fields(item, source, where, CAMPAIGN_FIELDS)["key"]),
                f"{where}.key",
            )
        _check_no_overlap(campaign, campaigns, item, source, where)
        keys[campaign.key] = index
        campaigns.append(campaign)
    return tuple(campaigns)


def _campaign(
    node: yaml.Node, source: str, where: str, shop: ShopInfo, zone: tzinfo, by_code: dict[str, ProductConfig]
) -> CampaignConfig:
    fields = _fields(node, source, where, CAMPAIGN_FIELDS)
    key_node = _required(fields, "key", node, source, where)
    key = _text(key_node, source, f"{where}.key").strip()
    problem = check_campaign_key(key)
    if problem:
        raise ShopFileError(source, problem, _line(key_node), f"{where}.key")
    title = _checked_text(_required(fields, "title", node, source, where), source, f"{where}.title", NAME_MAX)

    page_node = _given(fields, "page_id")
    if page_node is not None:
        page_id = _page_id(page_node, source, f"{where}.page_id")
    elif shop.page_id is not None:
        page_id = shop.page_id
    else:
        raise ShopFileError(source, "missing (and shop.page_id gives no default)", _line(node), f"{where}.page_id")

    post_id, live_video_id, next_live = _target(fields, node, source, where, page_id)
    starts_node = _required(fields, "starts_at", node, source, where)
    ends_node = _required(fields, "ends_at", node, source, where)
    starts_at = _time(starts_node, source, f"{where}.starts_at", zone)
    ends_at = _time(ends_node, source, f"{where}.ends_at", zone)
    if ends_at <= starts_at:
        raise ShopFileError(source, "must be after starts_at", _line(ends_node), f"{where}.ends_at")

    limit_node = _given(fields, "per_shopper_limit")
    per_shopper_limit = None
    if limit_node is not None:
        per_shopper_limit = _whole(limit_node, source, f"{where}.per_shopper_limit", check_per_shopper_limit)
    hold_node = _given(fields, "hold_minutes")
    hold_minutes = HOLD_MINUTES_DEFAULT
    if hold_node is not None:
        hold_minutes = _whole(hold_node, source, f"{where}.hold_minutes", check_hold_minutes)

    return CampaignConfig(
        key=key,
        title=title,
        page_id=page_id,
        starts_at=starts_at,
        ends_at=ends_at,
        products=_campaign_products(_required(fields, "products", node, source, where), source, where, by_code),
        post_id=post_id,
        live_video_id=live_video_id,
        next_live=next_live,
        per_shopper_limit=per_shopper_limit,
        hold_minutes=hold_minutes,
        pinned_text=_optional_text(fields, "pinned_text", source, where, PINNED_TEXT_MAX),
        closed_reply=_optional_text(fields, "closed_reply", source, where, CLOSED_REPLY_MAX),
        offers=_offers(_given(fields, "offers"), source, where, zone),
        line=_line(node),
    )


def _plain(node: yaml.Node) -> object:
    """A YAML node as the plain value an offer's check reads (text, or a list of texts)."""
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item) for item in node.value]
    if isinstance(node, yaml.ScalarNode):
        return None if _is_null(node) else str(node.value)
    return node  # a mapping: refused by the check as not a number or text


def _offers(node: yaml.Node | None, source: str, where: str, zone: tzinfo) -> tuple[OfferSpec, ...]:
    """A campaign's `offers:` (keywords, quantity, kind, value, min_spend, valid_until), checked as the
    console and the admin API check them (config.offers_file). Whether an end is still ahead is judged
    when the offer is made (a file keeps loading after its offers' vouchers have run out)."""
    if node is None or _is_null(node):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise ShopFileError(source, "must be a list of offers", _line(node), f"{where}.offers")
    from config.offers_file import OFFER_FIELDS, parse_offer_fields  # offers_file reads times with parse_time

    offers: list[OfferSpec] = []
    for index, item in enumerate(node.value):
        at = f"{where}.offers[{index}]"
        fields = _fields(item, source, at, OFFER_FIELDS)
        spec, errors = parse_offer_fields(
            {name: _plain(value) for name, value in fields.items()}, zone, datetime.min.replace(tzinfo=UTC)
        )
        if errors:
            name, problem = next(iter(errors.items()))
            raise ShopFileError(source, problem, _line(fields.get(name, item)), f"{at}.{name}")
        assert spec is not None
        offers.append(spec)
    return tuple(offers)


def _target(
    fields: dict[str, yaml.Node], node: yaml.Node, source: str, where: str, page_id: str
) -> tuple[str | None, str | None, bool]:
    """Which post or live video the campaign sells under: exactly one of the three ways."""
    post_id = live_video_id = None
    next_live = False
    given: list[str] = []
    post_node = _given(fields, "post_id")
    if post_node is not None:
        post_id = _post_id(post_node, source, f"{where}.post_id", page_id)
        given.append("post_id")
    media_node = _given(fields, "instagram_media_id")
    if media_node is not None:
        # Instagram names a media by its own id, with no Page prefix: stored as its webhooks send it.
        post_id = _digits(media_node, source, f"{where}.instagram_media_id", "the Instagram media's numeric id")
        given.append("instagram_media_id")
    live_node = _given(fields, "live_video_id")
    if live_node is not None:
        live_video_id = _digits(live_node, source, f"{where}.live_video_id", "the live video's numeric id")
        given.append("live_video_id")
    next_node = _given(fields, "next_live")
    if next_node is not None:
        if not isinstance(next_node, yaml.ScalarNode) or next_node.tag != _TAG + "bool":
            raise ShopFileError(source, "must be true or false", _line(next_node), f"{where}.next_live")
        next_live = bool(_CONSTRUCTOR.construct_yaml_bool(next_node))
        if next_live:
            given.append("next_live")
    if not given:
        raise ShopFileError(
            source, "give one of post_id, instagram_media_id, live_video_id or next_live: true", _line(node), where
        )
    if len(given) > 1:
        second = fields[given[1]]
        raise ShopFileError(
            source,
            f"give only one of post_id, instagram_media_id, live_video_id and next_live: true (also {given[0]})",
            _line(second),
            f"{where}.{given[1]}",
        )
    return post_id, live_video_id, next_live


def _digits(node: yaml.Node, source: str, where: str, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.tag not in (_TAG + "int", _TAG + "str"):
        raise ShopFileError(source, f"must be {what}", _line(node), where)
    text = str(node.value).strip()
    if not _DIGITS.fullmatch(text):
        raise ShopFileError(source, f"must be {what}", _line(node), where)
    return text


def _post_id(node: yaml.Node, source: str, where: str, page_id: str) -> str:
    example = f'like "{page_id}_2000000000001"'
    if not isinstance(node, yaml.ScalarNode) or node.tag not in (_TAG + "int", _TAG + "str"):
        raise ShopFileError(source, f"must be the post's id, {example}", _line(node), where)
    text = str(node.value).strip()
    if _DIGITS.fullmatch(text):
        return f"{page_id}_{text}"  # as copied from the post's address; webhooks name it with the Page
    match = _POST_ID.fullmatch(text)
    if match is None:
        raise ShopFileError(source, f"must be the post's id, {example}", _line(node), where)
    if match.group(1) != page_id:
        raise ShopFileError(
            source, f"is a post of Page {match.group(1)}, not of the campaign's Page {page_id}", _line(node), where
        )
    return text


def _time(node: yaml.Node, source: str, where: str, zone: tzinfo) -> datetime:
    if not isinstance(node, yaml.ScalarNode) or node.tag not in (_TAG + "str", _TAG + "timestamp"):
        raise ShopFileError(source, f"must be a date and a time, {_TIME_EXAMPLE}", _line(node), where)
    try:
        return parse_time(str(node.value), zone)
    except ValueError as exc:
        problem = str(exc)
    if node.tag == _TAG + "timestamp" and ":" in str(node.value):
        # YAML's own spellings that Python's ISO parser does not take, like `2026-12-20 19:00:00 +8`.
        return _as_utc(_CONSTRUCTOR.construct_yaml_timestamp(node), zone)
    raise ShopFileError(source, problem, _line(node), where)


def _campaign_products(
    node: yaml.Node, source: str, where: str, by_code: dict[str, ProductConfig]
) -> tuple[CampaignProductConfig, ...]:
    where = f"{where}.products"
    if not isinstance(node, yaml.SequenceNode):
        raise ShopFileError(
            source, "must be a list like [{product: A}, {product: B, code: Flower}]", _line(node), where
        )
    if not node.value:
        raise ShopFileError(source, "must list at least one product", _line(node), where)
    entries: list[CampaignProductConfig] = []
    codes: dict[str, int] = {}
    listed: dict[str, int] = {}
    for index, item in enumerate(node.value):
        path = f"{where}[{index}]"
        fields = _fields(item, source, path, CAMPAIGN_PRODUCT_FIELDS)
        product_node = _required(fields, "product", item, source, path)
        product_code = _text(product_node, source, f"{path}.product").strip()
        product = by_code.get(code_key(product_code))
        if product is None:
            raise ShopFileError(
                source, f"unknown product {product_code!r} (not in products:)", _line(product_node), f"{path}.product"
            )
        if product.code in listed:
            raise ShopFileError(
                source,
                f"product {product.code!r} is already listed ({where}[{listed[product.code]}])",
                _line(product_node),
                f"{path}.product",
            )
        listed[product.code] = index
        code_node = _given(fields, "code")
        code = product.code
        if code_node is not None:
            code = _text(code_node, source, f"{path}.code").strip()
            problem = check_code(code)
            if problem:
                raise ShopFileError(source, problem, _line(code_node), f"{path}.code")
        key = code_key(code)
        if key in codes:
            first = codes[key]
            raise ShopFileError(
                source,
                f"duplicate code {code!r} ({where}[{first}] is {entries[first].code!r})",
                _line(code_node if code_node is not None else product_node),
                f"{path}.code",
            )
        codes[key] = index
        entries.append(CampaignProductConfig(product=product.code, code=code, line=_line(item)))
    return tuple(entries)


def _check_no_overlap(
    campaign: CampaignConfig, earlier: list[CampaignConfig], node: yaml.Node, source: str, where: str
) -> None:
    """Two campaigns on one post (or one live, or one Page's next live) at once would make a comment's
    campaign a guess."""
    for index, other in enumerate(earlier):
        if campaign.starts_at >= other.ends_at or other.starts_at >= campaign.ends_at:
            continue
        if campaign.post_id is not None and campaign.post_id == other.post_id:
            field_name, what = "post_id", f"post {campaign.post_id}"
        elif campaign.live_video_id is not None and campaign.live_video_id == other.live_video_id:
            field_name, what = "live_video_id", f"live video {campaign.live_video_id}"
        elif campaign.next_live and other.next_live and campaign.page_id == other.page_id:
            field_name, what = "next_live", f"Page {campaign.page_id}'s next live"
        else:
            continue
        fields = _fields(node, source, where, CAMPAIGN_FIELDS)
        raise ShopFileError(
            source,
            f"{what} is also sold in campaigns[{index}] ({other.key}) at overlapping times",
            _line(fields[field_name]),
            f"{where}.{field_name}",
        )
