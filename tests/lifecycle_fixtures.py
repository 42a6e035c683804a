"""The fixtures of the lifecycle tests: a moto server in another process, the toggleable proxy
in front of it, per-test streams, a spool directory and a runner of child programs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lifecycle import STAGE, Lake, MotoProcess, Proxy, Runner


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoProcess]:
    server = MotoProcess()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy_server(moto: MotoProcess) -> Iterator[Proxy]:
    proxy = Proxy(moto.port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(proxy_server: Proxy) -> Iterator[Proxy]:
    """The proxy, up, with fresh counts; up again after the test."""
    proxy_server.set_mode("up")
    proxy_server.reset_counts()
    yield proxy_server
    proxy_server.set_mode("up")


@pytest.fixture
def lake(moto: MotoProcess) -> Iterator[Lake]:
    made = Lake.create(moto)
    yield made
    made.delete_streams()


@pytest.fixture(scope="session")
def default_lake(moto: MotoProcess) -> Lake:
    """The streams a stage-prod configure() uses by default, on the moto server."""
    return Lake.create(moto, f"dxtrack-error-input-{STAGE}", f"dxtrack-metric-input-{STAGE}")


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def runner(tmp_path: Path, proxy: Proxy, spool_dir: Path, lake: Lake) -> Iterator[Runner]:
    run = Runner(tmp_path, proxy, spool_dir, lake)
    yield run
    run.stop_all()
