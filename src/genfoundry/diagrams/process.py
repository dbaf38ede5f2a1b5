"""One long-lived PlantUML process: its HTTP server on a free loopback port, started on first use and again
whenever it has died or been stopped (a render past its time limit stops it, which is how that work ends).

The JVM ends with this process however it ends: it halts when its standard input, a pipe only this process
writes, reaches end of file (launcher.py). Each JVM is recorded under the work folder, and one left behind by a
process that is gone is killed before a new one starts (jvm_records.py)."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genfoundry.diagrams.jvm_records import end_orphaned_jvms, forget_jvm, record_jvm
from genfoundry.diagrams.launcher import LAUNCHER_CLASS, write_launcher
from genfoundry.diagrams.report import RendererUnavailable
from genfoundry.diagrams.runtime import jvm_options, plantuml_environment

logger = logging.getLogger(__name__)

_PORT_PREFIX = "webPort="


@dataclass(frozen=True)
class Running:
    """A started process: its base URL and a generation number, so a failure restarts it only once."""

    url: str
    generation: int


class PlantUmlProcess:
    """Thread-safe owner of the PlantUML JVM; `running()` starts it when needed."""

    def __init__(
        self,
        *,
        java: Path,
        jar: Path,
        work_dir: Path,
        heap_mb: int,
        limit_size_px: int,
        start_timeout_s: float,
        warm_up: Callable[[str], None] | None = None,
    ) -> None:
        self.java = java
        self.jar = jar
        self.work_dir = work_dir
        self.heap_mb = heap_mb
        self.limit_size_px = limit_size_px
        self.start_timeout_s = start_timeout_s
        self.warm_up = warm_up
        self.starts = 0
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._running: Running | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._reaper: weakref.finalize[[subprocess.Popen[str], Path], PlantUmlProcess] | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def running(self) -> Running:
        """The live process, started (or restarted after a death) first if needed."""
        with self._lock:
            if self._closed:
                raise RendererUnavailable("the diagram renderer is shut down")
            if self._running is not None and self._process is not None and self._process.poll() is None:
                return self._running
            if self._process is not None:
                logger.warning("PlantUML process exited (code %s); restarting", self._process.poll())
                self._stop_locked()
            self._running = self._start_locked()
            return self._running

    def stop(self, generation: int | None = None) -> None:
        """Stop the process (only if it is still `generation`, when given); the next `running()` starts one."""
        with self._lock:
            if generation is not None and (self._running is None or self._running.generation != generation):
                return
            self._stop_locked()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop_locked()

    def _command(self, *, jvm_home: Path, jvm_tmp: Path) -> list[str]:
        launcher_dir = write_launcher(self.work_dir)
        classpath = os.pathsep.join([str(self.jar), str(launcher_dir)])
        options = jvm_options(heap_mb=self.heap_mb, user_home=jvm_home, temp_dir=jvm_tmp)
        return [str(self.java), *options, "-cp", classpath, LAUNCHER_CLASS]

    def _start_locked(self) -> Running:
        end_orphaned_jvms(self.work_dir, marker=LAUNCHER_CLASS)
        sandbox = self.work_dir / "sandbox"  # an empty working folder: nothing relative to read
        jvm_home = self.work_dir / "jvm-home"  # Java's font and preference caches, instead of the user's home
        jvm_tmp = self.work_dir / "tmp"
        for folder in (sandbox, jvm_home, jvm_tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._stderr_tail.clear()
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                self._command(jvm_home=jvm_home, jvm_tmp=jvm_tmp),
                cwd=sandbox,
                env=plantuml_environment(limit_size_px=self.limit_size_px, home=jvm_home),
                # Never written: the JVM halts at its end of file, which comes when this process dies (launcher.py).
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            raise RendererUnavailable(f"could not start Java for PlantUML: {exc}") from exc
        self._process = process
        record_jvm(self.work_dir, process.pid)
        # Should the owner never be closed (a crash, a forgotten close), the JVM still ends with this interpreter.
        self._reaper = weakref.finalize(self, _end_jvm, process, self.work_dir)
        port_found = threading.Event()
        port: list[int] = []
        threading.Thread(
            target=_read_stderr,
            args=(process, port, port_found, self._stderr_tail),
            name="plantuml-stderr",
            daemon=True,
        ).start()
        while not port_found.wait(0.05):
            if process.poll() is not None or time.monotonic() - started > self.start_timeout_s:
                tail = " | ".join(self._stderr_tail) or "no output"
                self._stop_locked()
                raise RendererUnavailable(f"PlantUML did not start: {tail}")
        url = f"http://127.0.0.1:{port[0]}"
        if self.warm_up is not None:
            # The first renders of a JVM load and compile PlantUML's classes; do that before callers' time limits.
            try:
                self.warm_up(url)
            except Exception as exc:
                self._stop_locked()
                raise RendererUnavailable(f"PlantUML started but did not render: {exc}") from exc
        self.starts += 1
        logger.info("PlantUML started (pid %d, port %d) in %.2f s", process.pid, port[0], time.monotonic() - started)
        return Running(url=url, generation=self.starts)

    def _stop_locked(self) -> None:
        process, self._process, self._running = self._process, None, None
        if self._reaper is not None:
            self._reaper.detach()
            self._reaper = None
        if process is not None:
            _end_jvm(process, self.work_dir)


def _read_stderr(
    process: subprocess.Popen[str], port: list[int], found: threading.Event, tail: collections.deque[str]
) -> None:
    """The port line, then the rest kept for error messages; holds no reference to the owner, so it can be
    collected (and its JVM ended) while this thread still runs."""
    assert process.stderr is not None
    for line in process.stderr:
        text = line.rstrip()
        if not found.is_set() and text.startswith(_PORT_PREFIX) and text[len(_PORT_PREFIX) :].isdigit():
            port.append(int(text[len(_PORT_PREFIX) :]))
            found.set()
        elif text:
            tail.append(text[:500])


def _end_jvm(process: subprocess.Popen[str], work_dir: Path) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    forget_jvm(work_dir, process.pid)
