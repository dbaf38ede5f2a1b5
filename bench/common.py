"""Shared bench helpers: a temp home with tiny models, a real server subprocess, timing summaries."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def machine() -> str:
    cores = os.cpu_count()
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)}, {cores} CPU cores"
    except ImportError:
        pass
    return f"{platform.machine()} CPU, {cores} cores, no GPU"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="genfoundry-bench-"))
    env = {**os.environ, "GENFOUNDRY_HOME": str(home)}
    subprocess.run([str(BIN / "genfoundry"), "models", "build-tiny"], env=env, check=True, capture_output=True)
    return home


@contextmanager
def running_server(home: Path, **settings: str) -> Iterator[str]:
    """`genfoundry serve` in a subprocess on a free loopback port; yields its URL."""
    port = free_port()
    env = {**os.environ, "GENFOUNDRY_HOME": str(home), "GENFOUNDRY_PORT": str(port), **settings}
    process = subprocess.Popen(
        [str(BIN / "genfoundry"), "serve", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n## {title}  ({time.strftime('%Y-%m-%d')}, {machine()})")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
