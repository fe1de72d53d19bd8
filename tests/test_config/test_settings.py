"""Settings: environment with the PLUSONE_ prefix, a TOML settings file, generated secrets, clear errors."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.settings import SettingsError, ensure_secrets, load_settings, parse_clock_offset


def test_defaults_run_on_embedded_redis_and_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"PLUSONE_DATA_DIR": str(tmp_path)})
    assert settings.port == 8080
    assert settings.embedded_redis
    assert settings.sqlalchemy_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'plusone.db'}"
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.graph_version == "v26.0"


def test_environment_values_are_typed(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "PLUSONE_DATA_DIR": str(tmp_path),
            "PLUSONE_PORT": "9090",
            "PLUSONE_HOST": "0.0.0.0",
            "PLUSONE_REDIS_URL": "redis://localhost:6379/0",
            "PLUSONE_DATABASE_URL": "postgresql://u:p@db/shop",
            "PLUSONE_PAGE_TOKENS": '{"1000000000001": "EAAB-token"}',
            "PLUSONE_MAX_BODY_BYTES": "2048",
        }
    )
    assert (settings.port, settings.host, settings.max_body_bytes) == (9090, "0.0.0.0", 2048)
    assert not settings.embedded_redis
    assert settings.sqlalchemy_url == "postgresql+asyncpg://u:p@db/shop"
    assert settings.page_tokens["1000000000001"].get_secret_value() == "EAAB-token"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PLUSONE_PORT": "eighty"}, "PLUSONE_PORT: Input should be a valid integer"),
        ({"PLUSONE_PORT": "70000"}, "PLUSONE_PORT: Input should be less than or equal to 65535"),
        ({"PLUSONE_REDIS_URL": "localhost:6379"}, "PLUSONE_REDIS_URL: Value error, must start with redis://"),
        ({"PLUSONE_DATABASE_URL": "mysql://x"}, "PLUSONE_DATABASE_URL: Value error, must be a sqlite:/// or"),
        ({"PLUSONE_GRAPH_VERSION": "26"}, "PLUSONE_GRAPH_VERSION: String should match pattern"),
        ({"PLUSONE_PAGE_TOKENS": "{not json"}, "PLUSONE_PAGE_TOKENS: Value error, must be JSON like"),
        ({"PLUSONE_PAGE_TOKENS": '{"my-page": "t"}'}, "PLUSONE_PAGE_TOKENS: Value error, page id 'my-page' is not"),
        ({"PLUSONE_MAX_BODY_BYTES": "10"}, "PLUSONE_MAX_BODY_BYTES: Input should be greater than or equal to 1024"),
        ({"PLUSONE_COLOUR": "blue"}, "PLUSONE_COLOUR is not a PlusOne setting"),
        ({"PLUSONE_SETTINGS_FILE": "/nonexistent/plusone.toml"}, "settings file /nonexistent/plusone.toml does not"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"PLUSONE_DATA_DIR": str(tmp_path), **env})
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_secrets_are_never_echoed_in_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"PLUSONE_DATA_DIR": str(tmp_path), "PLUSONE_APP_SECRET": "", "PLUSONE_PAGE_TOKENS": "[1]"})
    assert "[1]" not in str(info.value)


def test_settings_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "plusone.toml"
    path.write_text('port = 9001\nhost = "0.0.0.0"\n[page_tokens]\n"123" = "from-file"\n')
    settings = load_settings(
        {"PLUSONE_SETTINGS_FILE": str(path), "PLUSONE_PORT": "9002", "PLUSONE_DATA_DIR": str(tmp_path)}
    )
    assert settings.port == 9002 and settings.host == "0.0.0.0"
    assert settings.page_tokens["123"].get_secret_value() == "from-file"
    path.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="'prot' is not a PlusOne setting"):
        load_settings({"PLUSONE_SETTINGS_FILE": str(path)})
    path.write_text("port = \n")
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings({"PLUSONE_SETTINGS_FILE": str(path)})


def test_secrets_are_generated_once_privately_and_then_reused(tmp_path: Path) -> None:
    env = {"PLUSONE_DATA_DIR": str(tmp_path / "data")}
    first = load_settings(env)
    assert first.app_secret is None
    generated = ensure_secrets(first)
    assert generated is not None
    assert generated.names == ("app_secret", "verify_token", "admin_token")
    assert stat.S_IMODE(generated.path.stat().st_mode) == 0o600
    again = load_settings(env)
    assert again.app_secret is not None and generated.settings.app_secret is not None
    assert again.app_secret.get_secret_value() == generated.settings.app_secret.get_secret_value()
    assert ensure_secrets(again) is None  # nothing new on the second run
    override = load_settings({**env, "PLUSONE_VERIFY_TOKEN": "from-dashboard"})
    assert override.verify_token is not None and override.verify_token.get_secret_value() == "from-dashboard"
    assert again.app_secret.get_secret_value() not in repr(again)  # secrets never show in logs or reprs


def test_email_settings_are_read_and_checked(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "PLUSONE_DATA_DIR": str(tmp_path),
            "PLUSONE_SMTP_HOST": "smtp.example.com",
            "PLUSONE_SMTP_PORT": "465",
            "PLUSONE_SMTP_TLS": "tls",
            "PLUSONE_SMTP_USER": "shop",
            "PLUSONE_SMTP_PASSWORD": "pw",
            "PLUSONE_MAIL_FROM_ADDRESS": "hello@blossom.hk",
            "PLUSONE_MAIL_FROM_NAME": "花漾小店",
            "PLUSONE_PUBLIC_URL": "https://shop.example/",
        }
    )
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_tls) == ("smtp.example.com", 465, "tls")
    assert settings.smtp_password is not None and settings.smtp_password.get_secret_value() == "pw"
    assert settings.public_base_url == "https://shop.example"  # the checkout's links and the e-mails' links
    with pytest.raises(SettingsError, match="SMTP_TLS"):
        load_settings({"PLUSONE_DATA_DIR": str(tmp_path), "PLUSONE_SMTP_TLS": "ssl3"})
    with pytest.raises(SettingsError, match="MAIL_FROM_ADDRESS"):
        load_settings({"PLUSONE_DATA_DIR": str(tmp_path), "PLUSONE_MAIL_FROM_ADDRESS": "not an address"})


def test_the_smtp_password_is_never_echoed_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "plusone.toml"
    path.write_text("smtp_password = 987654321\n")  # a number, not a string: refused
    with pytest.raises(SettingsError) as info:
        load_settings({"PLUSONE_DATA_DIR": str(tmp_path), "PLUSONE_SETTINGS_FILE": str(path)})
    assert "SMTP_PASSWORD" in str(info.value) and "987654321" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("3d", timedelta(days=3)),
        ("36h", timedelta(hours=36)),
        ("-90m", timedelta(minutes=-90)),
        ("+2d12h", timedelta(days=2, hours=12)),
        ("45s", timedelta(seconds=45)),
        ("86400", timedelta(days=1)),
        (" 1D 2H ", timedelta(days=1, hours=2)),
    ],
)
def test_a_clock_offset_is_read_in_days_hours_minutes_or_seconds(text: str, offset: timedelta) -> None:
    assert parse_clock_offset(text) == offset


@pytest.mark.parametrize("text", ["soon", "3 weeks", "3d-2h", "", "d", "1.5d", "4000d"])
def test_a_bad_clock_offset_is_refused_by_name(tmp_path: Path, text: str) -> None:
    with pytest.raises(SettingsError, match="PLUSONE_CLOCK_OFFSET"):
        load_settings({"PLUSONE_DATA_DIR": str(tmp_path), "PLUSONE_CLOCK_OFFSET": text})


def test_the_shifted_clock_moves_what_every_part_of_the_bot_reads(tmp_path: Path) -> None:
    from bot.cli.startup import set_clock
    from bot.runtime.clock import clock_offset, set_offset, utcnow

    settings = load_settings({"PLUSONE_DATA_DIR": str(tmp_path), "PLUSONE_CLOCK_OFFSET": "7d"})
    assert load_settings({"PLUSONE_DATA_DIR": str(tmp_path)}).clock_offset == timedelta(0)
    try:
        set_clock(settings)
        assert clock_offset() == timedelta(days=7)
        before = datetime.now(UTC)
        shifted = utcnow()
        assert before + timedelta(days=7) <= shifted <= datetime.now(UTC) + timedelta(days=7)
    finally:
        set_offset(timedelta(0))
    before = datetime.now(UTC)
    assert before <= utcnow() <= datetime.now(UTC)
