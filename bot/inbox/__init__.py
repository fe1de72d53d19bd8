"""The merchant inbox: conversations, replies, the buyer panel, the live board, in the browser (issue 8).

- `auth`: users (argon2 hashes, owner/agent, their Pages), sessions in Redis, CSRF, sign-in rate limit.
- `queries`, `board`: reads, always limited to the user's Pages.
- `cart_edit`: cart changes on the stock rules of comments.
- `live`: the worker's after-commit notes on Redis pub/sub, fanned out to browsers over SSE.
- `views`: the pages and form posts, a module per page (rendered by bot.web.rendering; templates in
  bot/web/templates/inbox/).
"""
