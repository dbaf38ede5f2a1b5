"""A bounded queue served by one worker thread that runs compatible requests together (micro-batching).

Life cycle: `start()` runs `setup` on the worker thread (load the model), then the thread serves batches
until `close()`. A batch starts with the oldest waiting request and takes further waiting requests with the
same batch key, in arrival order, until `max_batch_size` units (images) or `batch_timeout_s` has passed.
While it runs, `run_batch` may take more waiting jobs with its key into it (`take_joining`, continuous
batching); their results follow its own.
Background jobs (`submit(job, background=True)`) wait outside the bounded queue and run alone, one at a time,
only when no interactive job waits (`inference/priority.py`).
Only the worker thread calls `run_batch`, so the model behind it is never used by two threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


class QueueFull(Exception):
    """`max_queue` requests are already waiting."""


class WorkerClosed(RuntimeError):
    """The worker was closed (evicted, failed to set up, or shut down) and takes no new work."""


@dataclass(eq=False)
class _Pending(Generic[J, R]):
    job: J
    key: Hashable | None
    size: int
    future: Future[R] = field(default_factory=Future)


class BatchWorker(Generic[J, R]):
    """One thread, one bounded FIFO; `run_batch(jobs)` returns one result per job, in order.

    `batch_key(job)` returns None for a job that must run alone; `job_size(job)` counts its units (images).
    A job larger than `max_batch_size` runs alone, whole. An exception from `run_batch` goes to every job of
    that batch and the thread lives on.
    """

    def __init__(
        self,
        *,
        name: str,
        run_batch: Callable[[list[J]], list[R]],
        batch_key: Callable[[J], Hashable | None],
        job_size: Callable[[J], int],
        max_queue: int,
        max_batch_size: int,
        batch_timeout_s: float,
        setup: Callable[[], None] | None = None,
        on_setup_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if max_queue < 1 or max_batch_size < 1 or batch_timeout_s < 0:
            raise ValueError(
                f"need max_queue >= 1, max_batch_size >= 1, batch_timeout_s >= 0; got {max_queue}, "
                f"{max_batch_size}, {batch_timeout_s}"
            )
        self.name = name
        self._run_batch = run_batch
        self._batch_key = batch_key
        self._job_size = job_size
        self._max_queue = max_queue
        self._max_batch = max_batch_size
        self._timeout = batch_timeout_s
        self._setup = setup
        self._on_setup_error = on_setup_error
        self._cond = threading.Condition()
        self._queue: deque[_Pending[J, R]] = deque()
        self._background: deque[_Pending[J, R]] = deque()  # unbounded: each background caller has one at a time
        self._control: deque[tuple[Callable[[], None], Future[None]]] = deque()
        self._closed = False
        self._pending = 0  # queued + running; 0 means idle
        self._running: list[_Pending[J, R]] = []  # the batch being run, with the jobs that joined it
        self._thread = threading.Thread(target=self._serve, name=f"batch-worker:{name}", daemon=True)
        self.requests_served = 0
        self.batches_served = 0
        self.last_batch_s = 0.0

    # -- caller side -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: J, *, background: bool = False) -> Future[R]:
        """Queue `job`; raises `QueueFull` at once when `max_queue` jobs wait, `WorkerClosed` if closed.

        A `background` job is not counted in the queue; it runs alone once no interactive job waits.
        """
        item: _Pending[J, R] = _Pending(job, self._batch_key(job), max(1, self._job_size(job)))
        with self._cond:
            if self._closed:
                raise WorkerClosed(self.name)
            if background:
                self._background.append(item)
            elif len(self._queue) >= self._max_queue:
                raise QueueFull(self.name)
            else:
                self._queue.append(item)
            self._pending += 1
            self._cond.notify()
        return item.future

    def call_soon(self, fn: Callable[[], None]) -> Future[None]:
        """Run `fn` on the worker thread before the next batch (model surgery that must not race a batch)."""
        future: Future[None] = Future()
        with self._cond:
            if self._closed:
                raise WorkerClosed(self.name)
            self._control.append((fn, future))
            self._cond.notify()
        return future

    def take_joining(self, units: int, accept: Callable[[J], bool]) -> list[J]:
        """From inside `run_batch` (the worker thread): waiting jobs with the running batch's key, in arrival
        order, that `accept` takes and that fit in `units`; they join the running batch, and `run_batch` returns
        their results after its own jobs', in this order."""
        if not self._running:
            raise RuntimeError("take_joining is for run_batch, on the worker thread")
        key = self._running[0].key
        joined: list[_Pending[J, R]] = []
        with self._cond:
            for item in list(self._queue):
                if units <= 0:
                    break
                if key is None or item.key != key or item.size > units or not accept(item.job):
                    continue
                units -= self._take(item, joined)
        self._running += joined
        return [item.job for item in joined]

    @property
    def queue_depth(self) -> int:
        """Requests waiting, not counting the batch being run."""
        with self._cond:
            return len(self._queue)

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._pending == 0 and not self._control

    @property
    def closed(self) -> bool:
        return self._closed

    def close_if_idle(self) -> bool:
        """Close atomically iff nothing waits or runs (eviction); True when closed by this call."""
        with self._cond:
            if self._closed or self._pending or self._control:
                return False
            self._closed = True
            self._cond.notify_all()
        return True

    def close(self, *, timeout: float | None = 10.0) -> None:
        """Stop taking work, fail what still waits, and wait up to `timeout` for the running batch."""
        with self._cond:
            self._closed = True
            waiting, self._queue = [*self._queue, *self._background], deque()
            self._background = deque()
            controls, self._control = list(self._control), deque()
            self._pending -= len(waiting)
            self._cond.notify_all()
        error = WorkerClosed(f"{self.name} is shutting down")
        for item in waiting:
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)
        for _, future in controls:
            future.set_exception(error)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- worker thread -----------------------------------------------------------------------------

    def _serve(self) -> None:
        if self._setup is not None:
            try:
                self._setup()
            except BaseException as exc:  # the load failed: every waiting job gets the reason
                logger.warning("worker %s: setup failed: %s", self.name, exc)
                self._fail_all(exc)
                if self._on_setup_error is not None:
                    self._on_setup_error(exc)
                return
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._run(batch)

    def _fail_all(self, exc: BaseException) -> None:
        with self._cond:
            self._closed = True
            waiting, self._queue = [*self._queue, *self._background], deque()
            self._background = deque()
            controls, self._control = list(self._control), deque()
            self._pending = 0
        for item in waiting:
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(exc)
        for _, future in controls:
            future.set_exception(exc)

    def _run_controls(self) -> None:
        while True:
            with self._cond:
                if not self._control:
                    return
                fn, future = self._control.popleft()
            try:
                fn()
            except Exception as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)

    def _take(self, item: _Pending[J, R], batch: list[_Pending[J, R]]) -> int:
        """Move `item` from the queue into `batch` unless its caller gave up; returns units added."""
        self._queue.remove(item)
        if item.future.set_running_or_notify_cancel():
            batch.append(item)
            return item.size
        self._pending -= 1
        return 0

    def _next_batch(self) -> list[_Pending[J, R]] | None:
        """Block for work; None when closed and drained, [] when only control work was done."""
        with self._cond:
            while not self._queue and not self._background and not self._control and not self._closed:
                self._cond.wait()
            has_control = bool(self._control)
        if has_control:
            self._run_controls()
            return []
        with self._cond:
            if not self._queue:
                if self._background:  # nothing interactive waits: one background job, alone
                    item = self._background.popleft()
                    if item.future.set_running_or_notify_cancel():
                        return [item]
                    self._pending -= 1
                    return []
                return None if self._closed else []
            batch: list[_Pending[J, R]] = []
            first = self._queue[0]
            units = self._take(first, batch)
            if not batch or first.key is None:
                return batch
            deadline = time.monotonic() + self._timeout
            while units < self._max_batch:
                for item in list(self._queue):
                    if item.key == first.key and units + item.size <= self._max_batch:
                        units += self._take(item, batch)
                remaining = deadline - time.monotonic()
                if units >= self._max_batch or self._closed or remaining <= 0:
                    break
                self._cond.wait(remaining)
            return batch

    def _run(self, first: list[_Pending[J, R]]) -> None:
        started = time.perf_counter()
        batch = self._running = list(first)  # grows as jobs join (take_joining)
        try:
            results = self._run_batch([item.job for item in first])
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} jobs")
        except Exception as exc:  # every job of the batch gets the error; the worker keeps serving
            for item in batch:
                item.future.set_exception(exc)
        else:
            for item, result in zip(batch, results, strict=True):
                item.future.set_result(result)
        finally:
            self._running = []
            with self._cond:
                self._pending -= len(batch)
                self.requests_served += len(batch)
                self.batches_served += 1
                self.last_batch_s = time.perf_counter() - started
