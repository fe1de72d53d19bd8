"""The Graph emulator: a local stand-in for Meta's Graph API, one module per Meta surface (see `app`).

Only `bot.app` (demo mode) and `bot.cli` import it among the product code; tests and bench use it freely.
"""
