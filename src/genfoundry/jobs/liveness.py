"""Who holds a running job, and whether that holder is still alive: worker ids, pids, heartbeats, exit reasons."""

from __future__ import annotations

import os
import secrets
import signal
import socket
from datetime import UTC, datetime

from genfoundry.db.tables import Job


def new_worker_id() -> str:
    """An id of the form host:pid:token; host and pid let a restarted server on this host see a dead holder."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _host_and_pid(worker_id: str) -> tuple[str, int] | None:
    parts = worker_id.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds the pid: alive, not ours to judge
        return True
    return True


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored one is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def orphan_reason(job: Job, *, stale_after_s: float, now: datetime) -> str | None:
    """Why a running job's holder is gone, or None while it may still be alive."""
    if job.worker_id is None:
        return "the server that ran it stopped"
    holder = _host_and_pid(job.worker_id)
    if holder is not None and holder[0] == socket.gethostname() and not pid_alive(holder[1]):
        return f"the server process that ran it ({job.worker_id}) stopped"
    heartbeat = job.heartbeat_at
    if heartbeat is None or (now - _aware(heartbeat)).total_seconds() > stale_after_s:
        return f"its worker ({job.worker_id}) sent no heartbeat for over {stale_after_s:g} s"
    return None


def exit_reason(code: int) -> str:
    """A process exit status in words: a negative code is the signal that ended it."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory, or killed by hand)" if name == "SIGKILL" else ""
        return f"the job's process was killed by {name}{hint}"
    return f"the job's process exited with code {code} without a final status"
