"""The example systemd units in docs/systemd start real `plusone` commands with settings PlusOne accepts."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from bot.cli.main import build_parser
from config.settings import load_settings

UNITS = Path(__file__).parent.parent / "docs" / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def env_file(text: str) -> dict[str, str]:
    """KEY=value lines as systemd reads an EnvironmentFile (comments skipped, one level of quotes removed)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = shlex.split(value)[0] if value[:1] in "'\"" else value
    return values


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("plusone.service", ["serve"]),
        ("plusone-web@.service", ["serve", "--no-worker"]),
        ("plusone-worker@.service", ["worker"]),
    ],
)
def test_each_unit_runs_a_plusone_command_that_exists(name: str, command: list[str]) -> None:
    service = unit(name)["Service"]
    program, *args = shlex.split(service["ExecStart"])
    assert program.endswith("/.venv/bin/plusone") and args == command
    parsed = build_parser().parse_args(args)  # exits (fails the test) on an unknown command or option
    assert parsed.command == command[0]
    assert unit(name)["Install"]["WantedBy"] == "plusone.target"


def test_the_example_environment_is_accepted_for_one_redis_and_for_a_cluster() -> None:
    text = (UNITS / "plusone.env.example").read_text()
    env = {**env_file(text), "PLUSONE_PORT": "8081"}  # the web unit sets the port from its instance name
    settings = load_settings(env)
    assert (settings.redis_url, settings.redis_cluster) == ("redis://127.0.0.1:6379/0", False)
    assert settings.sqlalchemy_url.startswith("postgresql+asyncpg://")
    assert list(settings.page_tokens) == ["1000000000001"]

    # The commented-out cluster lines, switched on, make a cluster set-up.
    cluster_lines = [line.removeprefix("# ") for line in text.splitlines() if "REDIS" in line and "=" in line]
    cluster = load_settings({**env, **env_file("\n".join(cluster_lines[1:]))})
    assert (cluster.redis_url, cluster.redis_cluster) == ("redis://10.0.0.11:7000", True)
