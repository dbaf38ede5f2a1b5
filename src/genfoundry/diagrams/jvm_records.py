"""Records of the PlantUML JVMs started under a work folder, so that a server starting up ends one left behind.

A JVM ends by itself when the process that started it dies (launcher.py watches its standard input), unless that
pipe's writing end leaked into another process. As a second guard, each JVM started gets `jvm/<pid>.json` under the
work folder (its start time and its parent); a server starting up kills a recorded JVM that still runs but whose
parent is gone (it was re-parented), and drops records of JVMs that have ended. A JVM whose parent still runs
belongs to another server on the same home and is left alone. Processes are read from Linux's /proc; where there is
none, records are kept and nothing is killed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_RECORDS = "jvm"
_PROC = Path("/proc")
_GONE_WAIT_S = 5.0


@dataclass(frozen=True)
class ProcessInfo:
    """What /proc says about a running process: its parent and its start time (clock ticks after boot)."""

    parent_pid: int
    started: int


def process_info(pid: int) -> ProcessInfo | None:
    """The process `pid` as /proc shows it; None when it has ended (or is a zombie) or /proc cannot tell."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')': the fields after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, parent_pid, started = fields[0], int(fields[1]), int(fields[19])
    return None if state in ("Z", "X") else ProcessInfo(parent_pid=parent_pid, started=started)


def _command_line(pid: int) -> list[str]:
    try:
        return (_PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def record_jvm(work_dir: Path, pid: int) -> None:
    """Note that this process started the JVM `pid` for `work_dir`."""
    info = process_info(pid)
    if info is None:
        return  # it already ended, or there is no /proc to check a record against later
    folder = work_dir / _RECORDS
    folder.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "parent_pid": os.getpid(), "started": info.started}
    tmp = folder / f".{pid}.json.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(folder / f"{pid}.json")


def forget_jvm(work_dir: Path, pid: int) -> None:
    (work_dir / _RECORDS / f"{pid}.json").unlink(missing_ok=True)


def end_orphaned_jvms(work_dir: Path, *, marker: str) -> list[int]:
    """Kill recorded JVMs of `work_dir` whose parent is gone (their command line holds `marker` and `work_dir`);
    drop records of ended ones. Returns the pids killed."""
    folder = work_dir / _RECORDS
    if not _PROC.is_dir() or not folder.is_dir():
        return []
    killed: list[int] = []
    for path in folder.glob("*.json"):
        try:
            record = json.loads(path.read_text())
            pid, parent_pid, started = int(record["pid"]), int(record["parent_pid"]), int(record["started"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # half-written or foreign: nothing to act on
            continue
        info = process_info(pid)
        if info is None or info.started != started:
            path.unlink(missing_ok=True)  # ended; the pid may since name another process
            continue
        if info.parent_pid == parent_pid:
            continue  # its server still runs (another server on this home, or this one)
        command = _command_line(pid)
        if marker not in command or not any(str(work_dir) in part for part in command):
            path.unlink(missing_ok=True)  # not our JVM after all: never kill what we cannot name
            continue
        logger.warning("ending PlantUML JVM %d left behind by process %d, which is gone", pid, parent_pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        path.unlink(missing_ok=True)
    deadline = time.monotonic() + _GONE_WAIT_S
    while any(process_info(pid) is not None for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)  # its new parent reaps it; wait so its memory and port are free before a new one starts
    return killed
