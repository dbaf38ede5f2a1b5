"""Fixtures for the inference tests."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from genfoundry.config import ImageSpeedSettings
from genfoundry.inference.image import ImageEngine

EngineFactory = Callable[[ImageSpeedSettings], ImageEngine]


@pytest.fixture
def make_engine() -> Iterator[EngineFactory]:
    """Makes CPU image engines with the given `image_speed` settings; each is closed after the test."""
    made: list[ImageEngine] = []

    def make(speed: ImageSpeedSettings) -> ImageEngine:
        engine = ImageEngine(
            device="cpu",
            dtype="float32",
            memory_budget_bytes=4 * 1024**3,
            max_queue=8,
            max_batch_size=4,
            batch_timeout_s=0.0,
            speed=speed,
        )
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name lookup and TCP connect the code under test attempts, recorded and refused instead of made: an
    offline load must leave it empty (a lookup or connect is what would hang on a machine without network)."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"lookup {host}:{port}")
        raise socket.gaierror(socket.EAI_NONAME, "name lookup refused by the test")

    def refused(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        attempts.append(f"connect {address}")
        return True

    def connect(self: socket.socket, address: Any) -> None:
        if refused(self, address):
            raise ConnectionRefusedError("connect refused by the test")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        return errno.ECONNREFUSED if refused(self, address) else real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts
