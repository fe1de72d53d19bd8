"""Alembic revision scripts (a package only so that they ship with PlusOne; Alembic skips this file)."""
