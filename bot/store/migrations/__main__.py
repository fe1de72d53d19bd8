"""Developer tool: `python -m bot.store.migrations new "what changed"` writes the next revision script.

It migrates a scratch SQLite database to the current head, lets Alembic's autogenerate compare it with
the models, and writes bot/store/migrations/versions/<date>_<rev>_<slug>.py. Read the script before you commit
it (autogenerate misses renames and some server defaults). `python -m bot.store.migrations check` prints the
differences between the models and the migrations and exits 1 when there are any.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command

from bot.store.db import create_engine
from bot.store.migrations import alembic_config, current_differences, describe_differences, load_scripts, upgrade


async def _scratch_head(url: str) -> list:
    engine = create_engine(url)
    try:
        if load_scripts().get_current_head() is not None:  # none yet: the first revision creates everything
            await upgrade(engine)
        return await current_differences(engine)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.store.migrations", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    new = sub.add_parser("new", help="autogenerate the next revision from the models")
    new.add_argument("message", help="what changed, like 'add order notes'")
    sub.add_parser("check", help="exit 1 if the models and the migrations differ")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"
        diffs = asyncio.run(_scratch_head(url))
        if args.action == "check":
            if diffs:
                print(f"models and migrations differ: {describe_differences(diffs)}", file=sys.stderr)
                return 1
            print("models and migrations agree")
            return 0
        if not diffs:
            print("models and migrations agree: no revision needed", file=sys.stderr)
            return 1
        config = alembic_config()
        config.attributes["url"] = url
        # Written ruff-clean, as the rest of the code (Alembic's post-write hooks, `python -m ruff`).
        config.set_section_option("post_write_hooks", "hooks", "ruff_format, ruff_fix")
        config.set_section_option("post_write_hooks", "ruff_fix.type", "module")
        config.set_section_option("post_write_hooks", "ruff_fix.module", "ruff")
        config.set_section_option("post_write_hooks", "ruff_fix.options", "check --fix REVISION_SCRIPT_FILENAME")
        config.set_section_option("post_write_hooks", "ruff_format.type", "module")
        config.set_section_option("post_write_hooks", "ruff_format.module", "ruff")
        config.set_section_option("post_write_hooks", "ruff_format.options", "format REVISION_SCRIPT_FILENAME")
        command.revision(config, message=args.message, autogenerate=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
