"""The catalog page (owners): products with their options, stock, price, picture, nicknames and whether they sell.

    GET  /inbox/catalog[?q=]               the products, searched by code or name
    GET  /inbox/catalog/new · POST          a new product
    GET  /inbox/catalog/p/{code} · POST     one product's form

Values are checked by the admin API's parsers (bot.web.shop_api, the shop file's own rules) and written by
carts.catalog, so the file, the API and this page agree; a stock below what carts hold or orders sold is
refused by the same conditional update. A refused form is shown again as typed, each error beside its
field in the reader's language, and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.inbox.views.common import FORM, USER, redirect, render, signed_in
from bot.replies.i18n import gettext, pick_locale
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS
from bot.web.shop_api import PRODUCT_PARSERS
from carts.catalog import (
    NicknameClash,
    ShopApplyError,
    apply_product_fields,
    create_product,
    fetch_product,
    fetch_products,
    product_to_dict,
)
from carts.payments import fetch_shop_payments
from carts.tables import Product, ShopInfo
from parsers.order_comment import check_code, code_key

routes = web.RouteTableDef()

FIELDS = ("code", "name", "price", "stock", "variants", "image_url", "nicknames", "name_keyword", "active")


@dataclass
class ProductForm:
    """What the form shows: the typed text of each field and the error beside it."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def owner_only(request: web.Request) -> None:
    """Managing the shop is the owners'; an agent gets the 403 page."""
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may change the shop\n")


async def locale_of(request: web.Request) -> str:
    """The reader's language as `render` picks it: their own choice, else the shop's."""
    async with request.app[READ_SESSIONS]() as session:
        shop_language = (await fetch_shop_payments(session)).language
    return pick_locale(request.query.get("lang"), request[USER].locale, shop_language)


def variants_text(variants: dict[str, list[str]]) -> str:
    """One option a line, as the form takes it back: "size: S, M, L"."""
    return "\n".join(f"{option}: {', '.join(values)}" for option, values in variants.items())


def _read_variants(text: str) -> dict[str, list[str]] | None:
    """The form's lines as option -> values; None when a line has no "option: values" shape."""
    variants: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        option, colon, values = line.replace("：", ":").partition(":")  # a full-width colon from a Chinese keyboard
        if not colon:
            return None
        words = values.replace("，", ",").replace("、", ",").split(",")
        variants[option.strip()] = [w.strip() for w in words if w.strip()]
    return variants


def _read_nicknames(text: str) -> list[str]:
    """The form's nicknames: separated by commas (a Chinese keyboard's ，、 too) or new lines."""
    for comma in ("，", "、", "\n"):
        text = text.replace(comma, ",")
    return [word.strip() for word in text.split(",") if word.strip()]


def _form_of(product: Product) -> ProductForm:
    shown = product_to_dict(product)
    return ProductForm(
        {
            "code": product.code,
            "name": product.name,
            "price": shown["price"],
            "stock": "" if product.stock is None else str(product.stock),
            "variants": variants_text(shown["variants"]),
            "image_url": product.image_url or "",
            "nicknames": ", ".join(shown["nicknames"]),
            "name_keyword": "on" if product.name_keyword else "",
            "active": "on" if product.active else "",
        }
    )


def _checked(locale: str, form: ProductForm) -> dict[str, Any]:
    """The form's values parsed by the admin API's parsers; what is wrong goes to `form.errors`."""
    typed = form.values
    raw: dict[str, Any] = {
        "name": typed["name"],
        "price": typed["price"],
        "active": typed["active"] == "on",
        "image_url": typed["image_url"].strip() or None,
        "nicknames": _read_nicknames(typed["nicknames"]),
        "name_keyword": typed["name_keyword"] == "on",
    }
    stock = typed["stock"].strip()
    if not stock:
        raw["stock"] = None
    elif stock.isascii() and stock.isdigit():
        raw["stock"] = int(stock)
    else:
        raw["stock"] = -1  # not a whole number: the parser's refusal names the field
    variants = _read_variants(typed["variants"])
    raw["variants"] = variants if variants is not None else []
    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values[name] = PRODUCT_PARSERS[name](value)
        except ValueError as exc:
            form.errors[name] = _field_error(locale, name, str(exc))
    return values


def _field_error(locale: str, name: str, detail: str) -> str:
    if name == "name":
        return gettext(locale, "Enter a name, at most 200 characters.")
    if name == "price":
        return gettext(locale, "Enter a price of 0 or more with at most 2 decimals, like 1280 or 1280.50.")
    if name == "stock":
        return gettext(locale, "Enter a whole number of 0 or more, or leave it empty for unlimited.")
    if name == "image_url":
        return gettext(locale, "Enter an address that starts with http:// or https://, or leave it empty.")
    if name == "nicknames":
        word = detail.split(":", 1)[0].strip("[] ") if detail.startswith("[") else ""  # "[1]: ..." names one
        return gettext(
            locale,
            "Separate nicknames with commas, like “紅裙, red dress”: each starts with a letter (2+ for Latin), once.",
        ) + (f" (#{int(word) + 1})" if word.isdigit() else "")
    where = detail.split(":", 1)[0] if ":" in detail else ""
    return gettext(
        locale,
        "Write one option a line with its values, like “size: S, M, L”; each value once, with a letter or a digit.",
    ) + (f" ({where})" if where and " " not in where else "")


def _clash_error(locale: str, clash: NicknameClash) -> str:
    return gettext(
        locale,
        "“{nickname}” is the code of product {other}: a code always means its own product.",
        nickname=clash.nickname,
        other=clash.other,
    )


def _typed(request: web.Request) -> ProductForm:
    form = request[FORM]
    return ProductForm({name: str(form.get(name, "")) for name in FIELDS})


async def _currency(request: web.Request) -> str:
    async with request.app[READ_SESSIONS]() as session:
        shop = await session.get(ShopInfo, 1)
    return shop.currency if shop is not None else "HKD"


@routes.get("/inbox/catalog")
@signed_in
async def catalog(request: web.Request) -> web.Response:
    owner_only(request)
    query = request.query.get("q", "").strip()
    async with request.app[READ_SESSIONS]() as session:
        products = await fetch_products(session)
    if query:
        key = code_key(query)
        products = [p for p in products if key in code_key(p.code) or query.casefold() in p.name.casefold()]
    return await render(
        request,
        "catalog.html",
        products=[{**product_to_dict(p), "price_value": p.price} for p in products],
        q=query,
        currency=await _currency(request),
        saved=request.query.get("saved"),
    )


@routes.get("/inbox/catalog/new")
@signed_in
async def new_product_page(request: web.Request) -> web.Response:
    owner_only(request)
    blank = ProductForm({name: "" for name in FIELDS} | {"active": "on", "name_keyword": "on"})
    return await render(request, "catalog_product.html", form=blank, product=None, currency=await _currency(request))


@routes.post("/inbox/catalog/new")
@signed_in
async def create_product_post(request: web.Request) -> web.Response:
    owner_only(request)
    locale = await locale_of(request)
    form = _typed(request)
    code = form.values["code"].strip()
    if check_code(code):
        form.errors["code"] = gettext(
            locale, "A code is one word of letters and digits that starts with a letter, like A1 (at most 32)."
        )
    values = _checked(locale, form)
    if not form.errors:
        async with request.app[SESSIONS]() as session, session.begin():
            try:
                await create_product(session, code, values, utcnow())
            except NicknameClash as exc:
                form.errors["nicknames"] = _clash_error(locale, exc)
            except ValueError:
                form.errors["code"] = gettext(locale, "Another product already has this code.")
    if form.errors:
        return await render(
            request, "catalog_product.html", 400, form=form, product=None, currency=await _currency(request)
        )
    return redirect(f"/inbox/catalog?saved={quote(code)}")


async def _product(request: web.Request) -> Product:
    async with request.app[READ_SESSIONS]() as session:
        product = await fetch_product(session, request.match_info["code"])
    if product is None:
        raise web.HTTPNotFound(text="no such product\n")
    return product


@routes.get("/inbox/catalog/p/{code}")
@signed_in
async def product_page(request: web.Request) -> web.Response:
    owner_only(request)
    product = await _product(request)
    return await render(
        request, "catalog_product.html", form=_form_of(product), product=product, currency=await _currency(request)
    )


@routes.post("/inbox/catalog/p/{code}")
@signed_in
async def update_product_post(request: web.Request) -> web.Response:
    owner_only(request)
    locale = await locale_of(request)
    product = await _product(request)
    form = _typed(request)
    form.values["code"] = product.code  # the code is what orders and campaigns know it by: not changed here
    values = _checked(locale, form)
    if not form.errors:
        async with request.app[SESSIONS]() as session, session.begin():
            locked = await fetch_product(session, product.code, lock=True)
            assert locked is not None
            try:
                product = await apply_product_fields(session, locked, values, utcnow())
            except NicknameClash as exc:
                form.errors["nicknames"] = _clash_error(locale, exc)
            except ShopApplyError:
                fresh = await fetch_product(session, product.code)
                assert fresh is not None
                form.errors["stock"] = gettext(
                    locale,
                    "Stock cannot go below {taken}: {held} are held in carts and {sold} sold.",
                    taken=fresh.held + fresh.sold,
                    held=fresh.held,
                    sold=fresh.sold,
                )
                # Leaving the block by return commits nothing: apply_product_fields wrote nothing.
    if form.errors:
        return await render(
            request, "catalog_product.html", 400, form=form, product=product, currency=await _currency(request)
        )
    return redirect(f"/inbox/catalog?saved={quote(product.code)}")
