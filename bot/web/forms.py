"""The one reader of the HTML forms people post (the inbox's, the checkout's): `read_form`.

aiohttp's `request.post()` raises whatever its decoders raise on a body a browser never sends: an unknown
charset (LookupError), bytes that are not UTF-8 (UnicodeDecodeError), a multipart body without a boundary
or with a broken part (ValueError, aiohttp's own BadHttpMessage, RuntimeError for an unknown transfer
encoding). Each was a 500 before anyone was signed in; here it is a 400 that says so, and nothing runs.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict, MultiDictProxy


async def read_form(
    request: web.Request, what: str = "the form", hint: str = "reload the page and try again"
) -> MultiDictProxy[str]:
    """The posted form's text fields (files and other non-text parts are dropped), or 400 with the reason.

    `what` names the form in the refusal ("the checkout form"), `hint` what to do. A body over the app's
    limit is still 413.
    """
    try:
        posted = await request.post()
    except (ValueError, LookupError, RuntimeError, HttpProcessingError) as exc:
        # ValueError covers UnicodeDecodeError; the reason is aiohttp's or the codec's, never the body.
        reason = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
        # ASCII only: the reason may quote the Content-Type header, undecodable bytes and all.
        reason = reason[:200].encode("ascii", "backslashreplace").decode()
        raise web.HTTPBadRequest(text=f"{what} could not be read ({reason}): {hint}\n") from None
    return MultiDictProxy(MultiDict((key, value) for key, value in posted.items() if isinstance(value, str)))
