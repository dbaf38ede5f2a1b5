"""Fixtures for the inference tests."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from genfoundry.config import ImageSpeedSettings
from genfoundry.inference.image import GeneratedImage, ImageEngine, ImageJob, LoraSpec
from genfoundry.inference.loader import BaseModelSpec

EngineFactory = Callable[[ImageSpeedSettings], ImageEngine]


def image_job(spec: BaseModelSpec, *loras: LoraSpec, seed: int = 11) -> ImageJob:
    """A small text-to-image job on `spec` (64x64, 2 steps, one seed) with `loras`."""
    return ImageJob(
        base=spec,
        prompt="a red square",
        negative_prompt=None,
        width=64,
        height=64,
        steps=2,
        guidance_scale=5.0,
        seeds=(seed,),
        loras=loras,
    )


def pixels(result: list[GeneratedImage]) -> np.ndarray:
    """The first image's RGB pixels, signed so that differences do not wrap."""
    return np.asarray(result[0].image.convert("RGB"), dtype=np.int16)


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
