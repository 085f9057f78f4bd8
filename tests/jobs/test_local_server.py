"""The private nats-server the embedded default starts when no NATS URL is configured."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.local_server import LocalNatsServer, local_nats
from forge_core.domain.errors import ConfigurationError, MessagingError
from forge_core.settings.nats import NatsSettings


def test_a_private_server_with_jetstream_keeps_its_store_in_the_state_dir(tmp_path: Path) -> None:
    async def stream_names(url: str) -> list[str]:
        client = await connect(NatsSettings(token=server.token), url)
        try:
            js = client.jetstream()
            if not [s for s in await js.streams_info() if s.config.name == "kept"]:
                await js.add_stream(name="kept", subjects=["kept.>"])
            return [s.config.name or "" for s in await js.streams_info()]
        finally:
            await client.close()

    with local_nats(tmp_path) as server:
        assert server.url.startswith("nats://127.0.0.1:")
        assert asyncio.run(stream_names(server.url)) == ["kept"]
        server.restart()
        assert asyncio.run(stream_names(server.url)) == ["kept"]  # the store survived the restart
        url = server.url
    assert (tmp_path / "jetstream").is_dir()
    with pytest.raises(MessagingError, match="cannot connect"):
        asyncio.run(connect(NatsSettings(token=server.token), url))


def test_a_second_server_on_one_store_is_refused_and_the_first_keeps_running(tmp_path: Path) -> None:
    with local_nats(tmp_path / "nats") as first:
        second = LocalNatsServer(tmp_path / "nats")
        with pytest.raises(ConfigurationError, match="two private NATS servers on one JetStream store"):
            second.start()
        assert second.process is None
        assert first.process is not None and first.process.poll() is None
    again = LocalNatsServer(tmp_path / "nats")  # the claim ends with the first server
    again.start()
    again.stop()


def test_the_private_server_refuses_clients_without_its_token(tmp_path: Path) -> None:
    with local_nats(tmp_path) as server:
        with pytest.raises(MessagingError, match="cannot connect"):
            asyncio.run(connect(NatsSettings(), server.url))
        with pytest.raises(MessagingError, match="cannot connect"):
            asyncio.run(connect(NatsSettings(token="guess"), server.url))
        config = tmp_path / "nats-server.conf"
        assert config.stat().st_mode & 0o077 == 0, "the token file is readable by others"
        assert server.token not in " ".join(Path(f"/proc/{server.process.pid}/cmdline").read_text().split("\0"))


def test_the_private_server_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from forge_core.adapters.bus.local_server import LocalNatsServer
            server = LocalNatsServer(Path({str(tmp_path)!r}))
            server.start()
            print(server.process.pid, flush=True)
            time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert starter.stdout is not None
        pid = int(starter.stdout.readline())
        starter.kill()  # SIGKILL: no cleanup code of the starter runs
        starter.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        assert not _alive(pid), "nats-server outlived the process that started it"
    finally:
        if starter.poll() is None:
            starter.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
