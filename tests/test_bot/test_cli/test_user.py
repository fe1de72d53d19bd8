"""`plusone user add / list / set / disable / remove` on a SQLite file in a temporary data directory."""

from __future__ import annotations

import io
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.cli.main import main as plusone
from bot.inbox.tables import InboxUser, InboxUserPage
from tests.conftest import PAGE_ID

PASSWORD = "correct horse battery"
OTHER_PAGE = "1000000000002"


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blockbuster) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PLUSONE_DATA_DIR", str(tmp_path))
    return tmp_path


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = f"{PASSWORD}\n") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return plusone(["user", *argv])


def rows(data: Path) -> dict[str, tuple[str, int, int, list[str]]]:
    """name -> (role, active, session epoch, Pages), read straight from the file."""
    with sqlite3.connect(data / "plusone.db") as db:
        users = db.execute(f"SELECT id, name, role, active, session_epoch FROM {InboxUser.__tablename__}").fetchall()
        pages = db.execute(f"SELECT user_id, page_id FROM {InboxUserPage.__tablename__}").fetchall()
    return {
        name: (role, active, epoch, sorted(p for uid, p in pages if uid == user_id))
        for user_id, name, role, active, epoch in users
    }


def test_adding_an_existing_user_again_with_overlapping_pages_replaces_them(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(monkeypatch, "add", "alice", "--role", "agent", "--page", PAGE_ID, "--password-stdin") == 0
    code = run(monkeypatch, "add", "alice", "--role", "owner", "--page", PAGE_ID, OTHER_PAGE, "--password-stdin")
    assert code == 0  # was an IntegrityError: the kept Page's row inserted again before the old one went
    role, active, epoch, pages = rows(data)["alice"]
    assert (role, active, pages) == ("owner", 1, sorted([PAGE_ID, OTHER_PAGE]))
    assert epoch == 1  # a new password: her old sessions are over


def test_list_set_disable_enable_and_remove(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, "add", "bob", "--role", "agent", "--page", PAGE_ID, "--password-stdin") == 0
    capsys.readouterr()
    assert run(monkeypatch, "list") == 0
    assert capsys.readouterr().out == f"bob\tagent\t{PAGE_ID}\n"

    assert run(monkeypatch, "set", "bob", "--page", OTHER_PAGE) == 0
    assert rows(data)["bob"] == ("agent", 1, 1, [OTHER_PAGE])
    assert run(monkeypatch, "set", "bob", "--page", OTHER_PAGE) == 0  # the same Pages: nothing ends
    assert rows(data)["bob"][2] == 1
    assert run(monkeypatch, "set", "bob", "--role", "owner") == 0
    assert run(monkeypatch, "set", "bob", "--password-stdin", stdin="another long password\n") == 0
    assert run(monkeypatch, "set", "bob", "--sign-out") == 0
    assert rows(data)["bob"] == ("owner", 1, 4, [OTHER_PAGE])

    assert run(monkeypatch, "disable", "bob") == 0
    assert rows(data)["bob"][:3] == ("owner", 0, 5)
    capsys.readouterr()
    assert run(monkeypatch, "list") == 0
    assert "(disabled)" in capsys.readouterr().out
    assert run(monkeypatch, "set", "bob", "--enable") == 0
    assert rows(data)["bob"][:3] == ("owner", 1, 5)  # enabling ends nothing (the old sessions already ended)

    assert run(monkeypatch, "remove", "bob") == 0
    assert rows(data) == {}


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["set", "nobody", "--role", "owner"], "no user 'nobody'"),
        (["disable", "nobody"], "no user 'nobody'"),
        (["remove", "nobody"], "no user 'nobody'"),
        (["set", "carol"], "nothing to change"),
        (["set", "carol", "--page", "12x"], "numeric Page id"),
        (["set", "carol", "--password-stdin"], "at least 8 characters"),
    ],
)
def test_what_cannot_be_done_exits_2_and_changes_nothing(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    assert run(monkeypatch, "add", "carol", "--role", "agent", "--page", PAGE_ID, "--password-stdin") == 0
    before = rows(data)
    capsys.readouterr()
    assert run(monkeypatch, *argv, stdin="short\n") == 2
    assert said in capsys.readouterr().err
    assert rows(data) == before
