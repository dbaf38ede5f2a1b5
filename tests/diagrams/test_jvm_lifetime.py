"""The PlantUML JVM lives exactly as long as the process that started it: a SIGKILLed server leaves none behind,
a server starting up ends one that was left anyway, and the JVM writes nothing outside its work folder."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from genfoundry.config import DiagramSettings
from genfoundry.diagrams.launcher import LAUNCHER_CLASS, write_launcher
from genfoundry.diagrams.renderer import LocalRenderer
from genfoundry.diagrams.runtime import find_java, find_plantuml_jar
from tests.conftest import free_port

SEQUENCE = "@startuml\nAlice -> Bob : hello\n@enduml"
DEADLINE_S = 120.0  # generous: the machine is shared; the JVM ends in well under a second


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its new parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def plantuml_jvms(folder: Path) -> list[int]:
    """Live PlantUML JVMs started for `folder`: our launcher class and a path under `folder` on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if LAUNCHER_CLASS in command and any(str(folder) in part for part in command) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from Linux's /proc")


# 1. A real server, SIGKILLed, then started again on the same home.


def start_server(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GENFOUNDRY_HOME": str(home), "GENFOUNDRY_PORT": str(port)}
    with log.open("ab") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "genfoundry"), "serve", "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def ready() -> bool:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, "the server answers")
    return server


def render_through(port: int) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/diagrams/render", json={"plantuml": SEQUENCE, "format": "svg"}, timeout=120
    )
    assert response.status_code == 200, response.text


def test_a_sigkilled_server_leaves_no_jvm_and_a_restarted_one_runs_one(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "server.log"
    servers: list[subprocess.Popen[bytes]] = []
    try:
        port = free_port()
        servers.append(start_server(home, port, log))
        render_through(port)
        jvms = plantuml_jvms(home)
        assert len(jvms) == 1 and parent_of(jvms[0]) == servers[0].pid
        first_jvm = jvms[0]

        servers[0].send_signal(signal.SIGKILL)
        servers[0].wait(timeout=60)
        wait_until(lambda: not alive(first_jvm), "the JVM of the killed server ends")

        port = free_port()
        servers.append(start_server(home, port, log))
        render_through(port)
        jvms = plantuml_jvms(home)
        assert len(jvms) == 1 and jvms[0] != first_jvm and parent_of(jvms[0]) == servers[1].pid
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=60)
    wait_until(lambda: plantuml_jvms(home) == [], "no JVM of this home is left")


# 2. A JVM left behind anyway (its end-of-input pipe leaked into another process) is ended by the next start.

_LEAKING_SERVER = """
import subprocess, sys, time
from pathlib import Path
from genfoundry.config import DiagramSettings
from genfoundry.diagrams.renderer import LocalRenderer

renderer = LocalRenderer(DiagramSettings(), work_dir=Path(sys.argv[1]), warm_up_sources=())
assert renderer.check(sys.argv[2]).valid
# The failure this guards against: the pipe's writing end held by another process, so the JVM never sees its end.
stdin = renderer.process._process.stdin
holder = subprocess.Popen(["sleep", "600"], pass_fds=[stdin.fileno()])
print(renderer.process.pid, holder.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture
def leaked_jvm(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A JVM whose server was SIGKILLed but which lives on: (its work folder, its pid)."""
    work_dir = tmp_path / "plantuml"
    server = subprocess.Popen(
        [sys.executable, "-c", _LEAKING_SERVER, str(work_dir), SEQUENCE], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    jvm, holder = (int(number) for number in server.stdout.readline().split())
    try:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=60)
        wait_until(lambda: parent_of(jvm) != server.pid, "the JVM is re-parented")
        assert alive(jvm)  # left behind, as a server from before this guard would leave it
        yield work_dir, jvm
    finally:
        os.kill(holder, signal.SIGKILL)
        if alive(jvm):
            os.kill(jvm, signal.SIGKILL)


def test_a_starting_renderer_ends_a_jvm_left_behind_on_its_home(leaked_jvm: tuple[Path, int]) -> None:
    work_dir, left_behind = leaked_jvm
    renderer = LocalRenderer(DiagramSettings(), work_dir=work_dir, warm_up_sources=())
    try:
        wait_until(lambda: not alive(left_behind), "the JVM left behind ends")
        assert renderer.check(SEQUENCE).valid
        assert plantuml_jvms(work_dir) == [renderer.process.pid]
    finally:
        renderer.close()


def test_a_jvm_whose_server_runs_is_left_alone(tmp_path: Path) -> None:
    """Two renderers on one work folder (two servers on one home): neither ends the other's JVM."""
    first = LocalRenderer(DiagramSettings(), work_dir=tmp_path, warm_up_sources=())
    try:
        assert first.check(SEQUENCE).valid
        second = LocalRenderer(DiagramSettings(), work_dir=tmp_path, warm_up_sources=())
        try:
            assert second.check(SEQUENCE).valid
            assert sorted(plantuml_jvms(tmp_path)) == sorted([first.process.pid, second.process.pid])
            assert first.check(SEQUENCE).valid and first.process.starts == 1
        finally:
            second.close()
    finally:
        first.close()


# 3. The JVM outlives the thread that started it (the server starts it from a short-lived worker thread).


def test_the_jvm_outlives_the_thread_that_started_it(tmp_path: Path) -> None:
    renderer = LocalRenderer(DiagramSettings(), work_dir=tmp_path, warm_up_sources=())
    try:
        worker = threading.Thread(target=lambda: renderer.check(SEQUENCE))
        worker.start()
        worker.join()
        pid = renderer.process.pid
        assert pid is not None and alive(pid)
        assert renderer.check(SEQUENCE).valid
        assert renderer.process.pid == pid and renderer.process.starts == 1
    finally:
        renderer.close()


# 4. Nothing written outside the work folder: no /tmp/hsperfdata_<user>/<pid>, Java's caches under the folder.


def test_the_jvm_writes_no_perf_data_file(tmp_path: Path) -> None:
    perf_data = Path("/tmp") / f"hsperfdata_{getpass.getuser()}"
    # Control: a JVM started without our options does write one, so the check below can fail.
    bare = subprocess.Popen(
        [str(find_java()), "-cp", f"{find_plantuml_jar()}{os.pathsep}{write_launcher(tmp_path)}", LAUNCHER_CLASS],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert bare.stderr is not None and bare.stderr.readline().startswith(b"webPort=")
        assert (perf_data / str(bare.pid)).exists()
    finally:
        bare.kill()
        bare.wait(timeout=60)

    renderer = LocalRenderer(DiagramSettings(), work_dir=tmp_path / "plantuml", warm_up_sources=())
    try:
        assert renderer.render(SEQUENCE, "png").startswith(b"\x89PNG")
        pid = renderer.process.pid
        assert pid is not None and alive(pid)
        assert not (perf_data / str(pid)).exists()
        assert list((tmp_path / "plantuml" / "jvm-home" / ".java").rglob("fcinfo*"))  # fonts cache: ours
    finally:
        renderer.close()
