"""Admin JSON API for the shop's payment methods: the shop file's `payments:` section, read and replaced.

    GET /api/shop/payments    {"payments": {kind: settings}, "language": "en"}
    PUT /api/shop/payments    a `payments:` section as JSON (`{"fps": {"id": "1234567", "name": "Blossom"},
                              "cash_on_pickup": true}`); replaces the shop's methods, answers them and
                              whether anything changed

The body is checked by `carts.payment_rules.parse_payment_methods`, the same check the shop file's
section goes through, so both refuse the same things; a refusal is 400 `{"error", "field"}` naming the
field (`fps.id`) and changes nothing. `{}` takes every method away (orders then ask for a receipt in
Messenger, as before payment methods existed). The admin token is checked by the middleware.
"""

from __future__ import annotations

from aiohttp import web

from bot.runtime.clock import utcnow
from bot.services import SESSIONS
from bot.web.json_api import fail, read_json_object, respond
from carts.payment_rules import PaymentConfigError, parse_payment_methods, payment_methods_to_dict
from carts.payments import ShopPayments, fetch_shop_payments, save_shop_payments

routes = web.RouteTableDef()


def _answer(payments: ShopPayments, **extra: object) -> web.Response:
    return respond({"payments": payment_methods_to_dict(payments.methods), "language": payments.language, **extra})


@routes.get("/api/shop/payments")
async def get_payments(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        payments = await fetch_shop_payments(session)
    return _answer(payments)


@routes.put("/api/shop/payments")
async def put_payments(request: web.Request) -> web.Response:
    body = await read_json_object(
        request, expected='the body must be a JSON object like the shop file\'s payments: section ({"fps": {...}})'
    )
    try:
        methods = parse_payment_methods(body)
    except PaymentConfigError as error:
        fail(web.HTTPBadRequest, str(error), field=error.field)
    async with request.app[SESSIONS]() as session, session.begin():
        # The language stays what the shop file set: this route is about paying only.
        changed = await save_shop_payments(session, methods, None, utcnow())
        payments = await fetch_shop_payments(session)
    return _answer(payments, changed=changed)
