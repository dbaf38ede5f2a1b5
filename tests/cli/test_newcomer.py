"""A newcomer's first hour, literally as the README tells it, in a temp home: `make serve`'s commands start the
server, the quickstart's curl block and the Python blocks run against it, a dataset is made in single-user mode,
the first key is created and still sees that work, and `genfoundry generate` goes through the server."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import free_port, image_bytes, make_home
from tests.helpers import make_zip, run_cli
from tests.test_readme import README, bash_blocks, python_blocks

BIN = Path(sys.executable).parent
QUICKSTART_URL = "http://127.0.0.1:8000"


def make_serve_commands() -> list[str]:
    """The Makefile's `serve` recipe, with $(BIN) made absolute."""
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^serve:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert recipe is not None, "the Makefile has no serve target"
    return [line.strip().replace("$(BIN)", str(BIN)) for line in recipe.group(1).splitlines()]


@dataclass
class Server:
    """`genfoundry serve` as a process; its log is read as it comes so start-up is awaited, never slept on."""

    process: subprocess.Popen[str]
    url: str
    log: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            if "Uvicorn running on" in line:  # logged once the socket listens (startup completes before the bind)
                self.started.set()
        self.started.set()  # the process ended: stop waiting


@pytest.fixture
def newcomer(tmp_path: Path, tiny_dir: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    """`make serve` in a temp home (its models already built by the session), on a free port the CLI defaults to."""
    home = make_home(tmp_path, tiny_dir)
    port = free_port()
    env = {**os.environ, "GENFOUNDRY_HOME": str(home), "GENFOUNDRY_PORT": str(port), "COLUMNS": "250"}
    env.pop("GENFOUNDRY_API_KEY", None)
    env.pop("GENFOUNDRY_SERVER", None)
    *setup, serve = make_serve_commands()
    for command in setup:
        subprocess.run(shlex.split(command), check=True, env=env, cwd=tmp_path, timeout=300)
    process = subprocess.Popen(
        shlex.split(serve), env=env, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    threading.Thread(target=server.drain, daemon=True).start()
    try:
        assert server.started.wait(timeout=240) and process.poll() is None, "".join(server.log)
        yield server, env
    finally:
        process.terminate()
        process.wait(timeout=60)


def cli(env: dict[str, str], *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    """`genfoundry *args` as the newcomer types it: no --server, the defaults of the home's settings."""
    extra = {"GENFOUNDRY_PORT": env["GENFOUNDRY_PORT"], **({"GENFOUNDRY_API_KEY": key} if key else {})}
    return run_cli(Path(env["GENFOUNDRY_HOME"]), *args, env=extra)


@pytest.mark.timeout(600)  # a server start and eight CLI processes: about a minute idle, far more on a loaded CPU
def test_a_newcomer_follows_the_readme(newcomer: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    server, env = newcomer
    assert any("single-user mode" in line for line in server.log)

    # 1. The quickstart's curl block, as pasted into another shell (the CLI reaches the server by default).
    quickstart = next(block for block in bash_blocks() if "curl " in block)
    script = quickstart.replace(QUICKSTART_URL, server.url).replace(".venv/bin/", f"{BIN}/")
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stderr
    answer, _end = json.JSONDecoder().raw_decode(ran.stdout)  # curl's JSON, then generate's line
    assert answer["data"], ran.stdout
    assert Image.open(tmp_path / "circle.png").format == "PNG"
    assert "in this process" not in ran.stderr  # it went to the server

    # 2. The Python blocks, with the README's placeholder key (any string in single-user mode).
    namespace: dict[str, object] = {}
    for block in python_blocks():
        exec(compile(block.replace(QUICKSTART_URL, server.url), str(README), "exec"), namespace)
    assert namespace["png"][:8] == b"\x89PNG\r\n\x1a\n"  # type: ignore[index]

    # 3. A dataset in single-user mode, through the server.
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(make_zip({"red.png": image_bytes((200, 10, 10)), "blue.png": image_bytes((10, 10, 200))}))
    dataset_id = json.loads(cli(env, "datasets", "create", "shapes", "--zip", str(archive)).stdout)["id"]
    with httpx.Client(base_url=server.url, timeout=60) as anyone:
        history = anyone.get("/v1/generations", params={"limit": 100}).json()["data"]
    prompts = {item["prompt"] for item in history}
    assert "a red circle on a green background" in prompts  # the CLI's generate was served by the server

    # 4. The first key: the server now wants keys, and the key still sees the earlier work.
    created = cli(env, "keys", "create", "--name", "me")
    key = created.stdout.strip()
    assert "the first key owns what single-user mode made" in created.stderr
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        assert anonymous.get("/v1/datasets").status_code == 401
    assert dataset_id in cli(env, "datasets", "list", key=key).stdout
    with httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as mine:
        assert {item["prompt"] for item in mine.get("/v1/generations", params={"limit": 100}).json()["data"]} == prompts

        # 5. generate through the server with the key: the image is written here, the server records it.
        out = tmp_path / "after-key.png"
        cli(
            env, "generate", "a blue square in the center on a white background", "--seed", "3", "-o", str(out), key=key
        )
        assert Image.open(out).format == "PNG"
        newest = mine.get("/v1/generations", params={"limit": 1}).json()["data"][0]
        assert newest["prompt"] == "a blue square in the center on a white background"
