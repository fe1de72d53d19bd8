"""The embedded Redis's data directory and files are its owner's alone: the append-only file holds sessions."""

from __future__ import annotations

import stat
from pathlib import Path

import redis

from bot.runtime.embedded_redis import EmbeddedRedis


def _modes(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode)
        for path in root.rglob("*")
        if path.is_file() or path.is_dir()
    }


def test_the_data_directory_is_0700_and_redis_files_0600_even_ones_left_looser(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an earlier version (or a umask of 022) left it
    (data / "redis.log").write_text("")
    (data / "redis.log").chmod(0o644)
    server = EmbeddedRedis(data, appendfsync="always")
    server.start()
    try:
        with redis.Redis(unix_socket_path=str(server.socket_path)) as client:
            client.set("plusone:inbox:session:x", "{}")
    finally:
        server.stop()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    modes = _modes(data)
    assert any(name.startswith(("redis.aof", "appendonlydir")) for name in modes), modes
    loose = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert not loose
