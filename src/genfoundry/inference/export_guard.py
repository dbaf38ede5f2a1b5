"""Model runs and a torch.export never overlap in one process.

torch.export puts the whole process in export mode (`torch.compiler.is_exporting()` is a global), so torch code that
another thread runs meanwhile takes export-only paths: two threads then edit torch.fx's global annotation dict at
once, and an SD pipeline call failed with `KeyError: 'custom'` while the router's encoder was exported at start-up.
Model runs (the image and text engines' batches) hold `EXPORT_GUARD.running()`, any number at once; an export holds
`EXPORT_GUARD.exporting()`, alone: it waits for the runs in progress, and runs that arrive meanwhile wait for it.
Take it before `MODULE_BUILD_LOCK`, never inside it, and never re-enter `running()` on one thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ExportGuard:
    """A shared (model runs) / exclusive (an export) lock; a waiting export goes before new runs."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._runs = 0
        self._exports_waiting = 0
        self._exporting = False

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._cond:
            while self._exporting or self._exports_waiting:
                self._cond.wait()
            self._runs += 1
        try:
            yield
        finally:
            with self._cond:
                self._runs -= 1
                self._cond.notify_all()

    @contextmanager
    def exporting(self) -> Iterator[None]:
        with self._cond:
            self._exports_waiting += 1
            while self._exporting or self._runs:
                self._cond.wait()
            self._exports_waiting -= 1
            self._exporting = True
        try:
            yield
        finally:
            with self._cond:
                self._exporting = False
                self._cond.notify_all()


EXPORT_GUARD = ExportGuard()
