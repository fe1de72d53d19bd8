"""`plusone page-token` against the Graph emulator: a user's token → the Pages' long-lived tokens, printed.

The command is blocking (python-facebook-api), so it runs in a thread while the emulator serves on the
test's loop. The emulator's token answers are checked against Meta's samples in tests/data/meta/.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.cli.main import main
from bot.emulator.app import GraphEmulator
from bot.emulator.config import EmulatedPage, EmulatedUser, EmulatorConfig
from config.settings import load_settings
from tests.conftest import APP_SECRET, DATA, PAGE_ID

APP_ID = "555000555"
OTHER_PAGE = "1000000000002"
USER_ID = "4000000000001"
USER_TOKEN = "short-lived-user-token"


def sample(name: str) -> dict[str, Any]:
    data = json.loads((DATA / "meta" / name).read_text())
    data.pop("_source")
    return data


@pytest.fixture
async def emulator() -> AsyncIterator[GraphEmulator]:
    config = EmulatorConfig(
        pages={PAGE_ID: EmulatedPage("page-token-1", "Test Shop"), OTHER_PAGE: EmulatedPage("page-token-2", "Outlet")},
        app_id=APP_ID,
        app_secret=APP_SECRET,
        users={USER_ID: EmulatedUser(USER_TOKEN, "Shop Owner", (PAGE_ID, OTHER_PAGE))},
    )
    async with GraphEmulator(config) as running:
        yield running


@pytest.fixture
def env(emulator: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUSONE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLUSONE_GRAPH_URL", emulator.base_url.rstrip("/"))
    monkeypatch.setenv("PLUSONE_APP_ID", APP_ID)
    monkeypatch.setenv("PLUSONE_APP_SECRET", APP_SECRET)
    monkeypatch.delenv("PLUSONE_PAGE_TOKENS", raising=False)


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, ["page-token", *argv])


async def test_the_pages_tokens_are_printed_for_the_env_file(
    emulator: GraphEmulator, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("--user-token", USER_TOKEN) == 0
    out, err = capsys.readouterr()
    name, _, value = out.strip().partition("=")
    assert name == "PLUSONE_PAGE_TOKENS"
    [raw] = shlex.split(value)  # what a shell or systemd EnvironmentFile reads
    assert json.loads(raw) == {PAGE_ID: "page-token-1", OTHER_PAGE: "page-token-2"}
    settings = await asyncio.to_thread(load_settings, {"PLUSONE_PAGE_TOKENS": raw})
    assert {p: t.get_secret_value() for p, t in settings.page_tokens.items()} == json.loads(raw)
    assert "Test Shop" in err and "MESSAGING" in err and "page-token-1" not in err
    paths = [call["path"] for call in await emulator.calls()]
    assert paths == ["/oauth/access_token", "/v26.0/me", f"/v26.0/{USER_ID}/accounts"]
    accounts = (await emulator.calls())[-1]["params"]
    assert accounts["appsecret_proof"] == "REDACTED"  # the long-lived token's proof went with it


async def test_one_page_can_be_chosen(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run("--user-token", USER_TOKEN, "--page", OTHER_PAGE) == 0
    raw = shlex.split(capsys.readouterr().out.strip().partition("=")[2])[0]
    assert json.loads(raw) == {OTHER_PAGE: "page-token-2"}
    assert await run("--user-token", USER_TOKEN, "--page", "999") == 1
    assert "no Page 999" in capsys.readouterr().err


async def test_refusals_exit_non_zero_with_metas_words(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("--user-token", "not-a-token") == 1
    out, err = capsys.readouterr()
    assert out == "" and "Invalid OAuth access token" in err
    monkeypatch.setenv("PLUSONE_APP_SECRET", "another-apps-secret")
    assert await run("--user-token", USER_TOKEN) == 1
    assert "Error validating client secret" in capsys.readouterr().err
    monkeypatch.setenv("PLUSONE_GRAPH_URL", "http://127.0.0.1:9")  # nothing listens there
    assert await run("--user-token", USER_TOKEN) == 1
    assert "no usable answer from http://127.0.0.1:9/" in capsys.readouterr().err
    monkeypatch.delenv("PLUSONE_APP_ID")
    assert await run("--user-token", USER_TOKEN) == 2
    assert "PLUSONE_APP_ID" in capsys.readouterr().err


async def test_the_emulators_token_answers_have_metas_shape(emulator: GraphEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        params = {
            "grant_type": "fb_exchange_token",
            "client_id": APP_ID,
            "client_secret": APP_SECRET,
            "fb_exchange_token": USER_TOKEN,
        }
        async with http.get(f"{emulator.base_url}oauth/access_token", params=params) as resp:
            exchanged = await resp.json()
        async with http.get(
            f"{emulator.base_url}v26.0/{USER_ID}/accounts", params={"access_token": exchanged["access_token"]}
        ) as resp:
            accounts = await resp.json()
    expected = sample("oauth_long_lived_user_token_response.json")
    assert set(exchanged) == set(expected) and exchanged["token_type"] == expected["token_type"]
    assert exchanged["expires_in"] == expected["expires_in"] and exchanged["access_token"] != USER_TOKEN
    expected_accounts = sample("user_accounts_response.json")
    assert set(accounts) == set(expected_accounts) and set(accounts["paging"]) == set(expected_accounts["paging"])
    [template] = expected_accounts["data"]
    for page in accounts["data"]:
        assert set(page) == set(template) and set(page["category_list"][0]) == set(template["category_list"][0])
    assert [p["id"] for p in accounts["data"]] == [PAGE_ID, OTHER_PAGE]
