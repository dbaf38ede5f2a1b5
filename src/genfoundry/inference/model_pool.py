"""What the image and text engines share: loaded bases in an LRU under a byte budget, each behind its own worker
thread and bounded queue (`batching.BatchWorker`).

An engine subclasses `ModelPool`, an ABC, and says in its abstract hooks how to check a job, which base it is for,
which jobs may share a batch, how to load a base (a runner and its measured bytes) and how to run a batch on that
runner. Loading happens on the base's worker thread, never on the event loop; idle bases are evicted least recently
used first to make room; a busy base is never evicted.

Admission: a request holds a `QueuePlace` in its base's queue before its other checks (auth, database, planning),
so a full queue is refused at once instead of after that work, and the place it holds cannot be taken by another
request in between; submitting the job hands the place over, `release()` gives it back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from collections.abc import Hashable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from genfoundry.errors import Overloaded
from genfoundry.inference.batching import BatchWorker, QueueFull, WorkerClosed
from genfoundry.inference.heavy_imports import import_ml_libraries
from genfoundry.inference.long_lived_heap import collect_including_frozen, freeze_long_lived_objects
from genfoundry.inference.priority import in_background
from genfoundry.inference.thread_plan import set_torch_threads, torch_threads

logger = logging.getLogger(__name__)

_REQUEST_KEYS_KEPT = 4096  # request keys remembered with the base they were queued for (most recent kept)


class BaseSpec(Protocol):
    @property
    def id(self) -> str: ...


class Runner(Protocol):
    """A loaded base: it runs batches (engine-specific), switches adapters and frees its memory."""

    adapter_ids: tuple[str, ...]  # a snapshot, read from other threads

    def unload_adapter(self, adapter_id: str) -> object: ...

    def release(self) -> None: ...


SpecT = TypeVar("SpecT", bound=BaseSpec)
JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")
RunnerT = TypeVar("RunnerT", bound=Runner)


@dataclass(eq=False)
class Slot(Generic[SpecT, JobT, ResultT, RunnerT]):
    """A base in the LRU: its worker, and once loaded its runner and measured size."""

    spec: SpecT
    worker: BatchWorker[JobT, ResultT] | None = None
    runner: RunnerT | None = None
    nbytes: int = 0
    torch_threads: int = 0  # read back on the worker thread once loaded


class QueuePlace:
    """A place in one base's queue, held for a request from before its checks until its job is submitted.

    `base_id` is None when the request's base was not known before planning: then nothing is held and the queue
    is checked when the job is submitted. `request_key` (the caller and the model it named) lets later requests
    with the same key hold their place at once: the pool remembers which base such a request was queued for.
    """

    def __init__(self, pool: ModelPool[Any, Any, Any, Any], base_id: str | None, request_key: Hashable | None) -> None:
        self._pool = pool
        self.base_id = base_id
        self.request_key = request_key
        self.held = base_id is not None  # guarded by the pool's lock

    def release(self) -> None:
        """Give the place back unless a submitted job took it; safe to call more than once."""
        self._pool._release_place(self)


class ModelPool(ABC, Generic[SpecT, JobT, ResultT, RunnerT]):
    """One worker thread and bounded queue per loaded base, LRU under a byte budget (see the module docstring)."""

    kind = "model"  # names the engine in worker names and messages

    def __init__(
        self,
        *,
        device: str,
        dtype: str,
        memory_budget_bytes: int,
        max_queue: int,
        max_batch_size: int,
        batch_timeout_s: float,
        counters: tuple[str, ...],
        threads: int | None = None,
    ) -> None:
        if memory_budget_bytes < 0:
            raise ValueError(f"memory_budget_bytes must be >= 0, got {memory_budget_bytes}")
        if max_queue < 1 or max_batch_size < 1 or batch_timeout_s < 0:
            raise ValueError(
                "need max_queue >= 1, max_batch_size >= 1 and batch_timeout_s >= 0; got "
                f"{max_queue}, {max_batch_size}, {batch_timeout_s}"
            )
        self.device = device
        self.dtype = dtype
        self.memory_budget_bytes = memory_budget_bytes
        self.max_queue = max_queue
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_s
        self.threads = threads  # torch intra-op threads per worker (`thread_plan.py`); None: torch's default
        self._lock = threading.Lock()  # guards _slots, _closed, the held places, request keys and counters
        self._slots: OrderedDict[str, Slot[SpecT, JobT, ResultT, RunnerT]] = OrderedDict()  # least recent first
        self._closed = False
        self._held_places: Counter[str] = Counter()  # base id -> places held by requests not yet queued
        self._base_by_request_key: OrderedDict[Hashable, str] = OrderedDict()
        self._resolved_device: str | None = None
        self._counters = dict.fromkeys((*counters, "loads", "evictions"), 0)

    # -- what an engine says (abstract: a subclass missing one fails when it is constructed) -------

    @abstractmethod
    def _validate(self, job: JobT) -> None:
        """Raise `Invalid` for a job that would fail its whole batch."""

    @abstractmethod
    def _job_base(self, job: JobT) -> SpecT:
        """The base the job runs on."""

    @abstractmethod
    def _batch_key(self, job: JobT) -> Hashable:
        """Jobs with equal keys may run in one batch."""

    @abstractmethod
    def _job_size(self, job: JobT) -> int:
        """How much of a batch (`max_batch_size`) the job takes."""

    @abstractmethod
    def _estimate_bytes(self, spec: SpecT) -> int:
        """The base's size before loading it (from its weight files), to make room first."""

    @abstractmethod
    def _load_runner(self, spec: SpecT, device: str) -> tuple[RunnerT, int]:
        """Load the base on `device` (on its worker thread); its runner and measured bytes."""

    @abstractmethod
    def _run_batch(self, slot: Slot[SpecT, JobT, ResultT, RunnerT], jobs: list[JobT]) -> list[ResultT]:
        """One result per job, on the base's worker thread."""

    def _slot_stats(self, spec: SpecT) -> dict[str, Any]:
        """Extra fields of a base in `stats()`."""
        return {}

    # -- public API --------------------------------------------------------------------------------

    @property
    def counter_names(self) -> tuple[str, ...]:
        """The running totals `stats()` carries (requests served, loads, evictions, ...)."""
        return tuple(self._counters)

    def hold_place(self, base_id: str | None, *, request_key: Hashable | None = None) -> QueuePlace:
        """Hold a place in `base_id`'s queue (or, when None, the base `request_key` was last queued for).

        Raises `Overloaded` at once when the queue's waiting jobs and held places fill it. Cheap and non-blocking
        (no loading, no I/O), so the API calls it on the event loop before anything else.
        """
        with self._lock:
            if self._closed:
                raise Overloaded(f"the {self.kind} engine is shutting down", retry_after=5.0)
            if base_id is None and request_key is not None:
                base_id = self._base_by_request_key.get(request_key)
            if base_id is None:
                return QueuePlace(self, None, request_key)
            slot = self._slots.get(base_id)
            if self._room(base_id, slot) < 1:
                raise Overloaded(
                    f"too many requests waiting for {base_id!r} ({self.max_queue}); retry shortly",
                    retry_after=self._retry_after(base_id, slot),
                )
            self._held_places[base_id] += 1
            return QueuePlace(self, base_id, request_key)

    def unload_adapter(self, adapter_id: str, *, wait: bool = False) -> None:
        """Remove an adapter from every loaded base (it was deleted); done on each base's worker thread."""
        with self._lock:
            slots = list(self._slots.values())
        futures: list[Future[None]] = []
        for slot in slots:
            assert slot.worker is not None
            try:
                futures.append(slot.worker.call_soon(partial(self._unload_on, slot, adapter_id)))
            except WorkerClosed:
                continue
        if wait:
            wait_futures(futures)

    def unload_base(self, base_id: str) -> None:
        """Unload a base (it was deleted): requests still queued for it fail, the running batch may finish."""
        with self._lock:
            slot = self._slots.pop(base_id, None)
        if slot is not None:
            self._retire(slot)
            self._free_memory()

    def stats(self) -> dict[str, Any]:
        """Loaded bases with their bytes, queue depths and adapters, plus totals (exposed in /metrics)."""
        with self._lock:
            slots = list(self._slots.values())
            counters = dict(self._counters)
        models: dict[str, Any] = {}
        for slot in slots:
            assert slot.worker is not None
            runner = slot.runner
            models[slot.spec.id] = {
                **self._slot_stats(slot.spec),
                "state": "loaded" if runner is not None else "loading",
                "bytes": slot.nbytes,
                "torch_threads": slot.torch_threads,
                "queue_depth": slot.worker.queue_depth,
                "adapters": list(runner.adapter_ids) if runner is not None else [],
            }
        return {
            "device": self._resolved_device or self.device,
            "memory_budget_bytes": self.memory_budget_bytes,
            "loaded_bytes": sum(slot.nbytes for slot in slots),
            "loaded": [model_id for model_id, info in models.items() if info["state"] == "loaded"],
            "models": models,
            **counters,
        }

    def close(self) -> None:
        """Stop every worker; waiting jobs fail, the running batch is given a few seconds to finish."""
        with self._lock:
            self._closed = True
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            self._retire(slot)
        self._free_memory()

    # -- queueing ----------------------------------------------------------------------------------

    def _submit(self, job: JobT, place: QueuePlace | None = None) -> Future[ResultT]:
        """Queue `job`; with a place held in its base's queue it is never refused for a full queue. Inside
        `background_priority()` it waits outside the queue until no interactive job waits (`priority.py`)."""
        self._validate(job)
        background = in_background()
        spec = self._job_base(job)
        base_id = spec.id
        with self._lock:
            # A place held for another base (the request named a model that planning resolved elsewhere) is given
            # back, and the job is checked against the queue like one that held none.
            reserved = place is not None and place.held and place.base_id == base_id
            if place is not None:
                self._release_place_locked(place)
            if self._closed:
                raise Overloaded(f"the {self.kind} engine is shutting down", retry_after=5.0)
            for _ in range(2):  # a slot closed by eviction or a failed load is replaced once
                slot = self._slots.get(base_id)
                if slot is None or slot.spec != spec:
                    slot = self._new_slot(spec)
                assert slot.worker is not None
                try:
                    # Places held by requests still being checked count as taken; a job that held one has room
                    # by construction (held places + waiting jobs never exceed max_queue).
                    if not reserved and not background and self._room(base_id, slot) < 1:
                        raise QueueFull(slot.worker.name)
                    future = slot.worker.submit(job, background=background)
                except WorkerClosed:
                    if self._slots.get(base_id) is slot:
                        del self._slots[base_id]
                    continue
                except QueueFull:
                    raise Overloaded(
                        f"too many requests waiting for {base_id!r} ({self.max_queue}); retry shortly",
                        retry_after=self._retry_after(base_id, slot),
                    ) from None
                self._slots.move_to_end(base_id)
                if place is not None and place.request_key is not None:
                    self._remember_request_key(place.request_key, base_id)
                return future
        raise Overloaded(f"model {base_id!r} is being reloaded; retry shortly", retry_after=1.0)

    def _room(self, base_id: str, slot: Slot[SpecT, JobT, ResultT, RunnerT] | None) -> int:
        """Called with the lock held: places left in `base_id`'s queue (waiting jobs and held places count)."""
        waiting = slot.worker.queue_depth if slot is not None and slot.worker is not None else 0
        return self.max_queue - waiting - self._held_places[base_id]

    def _retry_after(self, base_id: str, slot: Slot[SpecT, JobT, ResultT, RunnerT] | None) -> float:
        """Called with the lock held: seconds until the jobs ahead (waiting and held places) should have run."""
        if slot is None or slot.worker is None:
            return 1.0  # the base is not loaded yet: nothing measured to estimate from
        ahead = slot.worker.queue_depth + self._held_places[base_id]
        return float(max(1, math.ceil(slot.worker.last_batch_s * (ahead / self.max_batch_size + 1))))

    def _release_place(self, place: QueuePlace) -> None:
        with self._lock:
            self._release_place_locked(place)

    def _release_place_locked(self, place: QueuePlace) -> None:
        if place.held and place.base_id is not None:
            place.held = False
            self._held_places[place.base_id] -= 1
            if self._held_places[place.base_id] <= 0:
                del self._held_places[place.base_id]

    def _remember_request_key(self, request_key: Hashable, base_id: str) -> None:
        """Called with the lock held."""
        self._base_by_request_key[request_key] = base_id
        self._base_by_request_key.move_to_end(request_key)
        while len(self._base_by_request_key) > _REQUEST_KEYS_KEPT:
            self._base_by_request_key.popitem(last=False)

    def _new_slot(self, spec: SpecT) -> Slot[SpecT, JobT, ResultT, RunnerT]:
        """Called with the lock held: the worker's first act, on its own thread, is loading the base."""
        old = self._slots.pop(spec.id, None)
        if old is not None:  # the catalog entry changed (new source or dtype): retire the old load
            threading.Thread(target=self._retire, args=(old,), daemon=True).start()
        slot: Slot[SpecT, JobT, ResultT, RunnerT] = Slot(spec)
        slot.worker = BatchWorker(
            name=f"{self.kind}:{spec.id}",
            run_batch=partial(self._run_batch, slot),
            batch_key=self._batch_key,
            job_size=self._job_size,
            max_queue=self.max_queue,
            max_batch_size=self.max_batch_size,
            batch_timeout_s=self.batch_timeout_s,
            setup=partial(self._load, slot),
            on_setup_error=partial(self._forget, slot),
        )
        self._slots[spec.id] = slot
        slot.worker.start()
        return slot

    # -- worker-thread side ------------------------------------------------------------------------

    def _device(self) -> str:
        if self._resolved_device is None:
            from genfoundry.devices import resolve_device

            self._resolved_device = resolve_device(self.device)
        return self._resolved_device

    def _load(self, slot: Slot[SpecT, JobT, ResultT, RunnerT]) -> None:
        import_ml_libraries()
        slot.torch_threads = set_torch_threads(self.threads) if self.threads is not None else torch_threads()
        device = self._device()
        self._make_room(slot, self._estimate_bytes(slot.spec))
        started = time.perf_counter()
        runner, nbytes = self._load_runner(slot.spec, device)
        assert slot.worker is not None
        if slot.worker.closed:  # the engine closed while this base was loading
            runner.release()
            return
        with self._lock:
            slot.runner, slot.nbytes = runner, nbytes
            self._counters["loads"] += 1
        logger.info("loaded %s (%d MiB) in %.2fs", slot.spec.id, nbytes >> 20, time.perf_counter() - started)
        self._make_room(slot, nbytes)
        freeze_long_lived_objects()  # the base's objects (and the libraries it imported) live until it is unloaded

    def _forget(self, slot: Slot[SpecT, JobT, ResultT, RunnerT], _exc: BaseException) -> None:
        with self._lock:
            if self._slots.get(slot.spec.id) is slot:
                del self._slots[slot.spec.id]

    def _make_room(self, slot: Slot[SpecT, JobT, ResultT, RunnerT], need: int) -> None:
        """Evict least recently used idle bases until `need` more bytes fit; busy bases are never evicted."""
        evicted: list[Slot[SpecT, JobT, ResultT, RunnerT]] = []
        with self._lock:
            others = [other for other in self._slots.values() if other is not slot]
            total = sum(other.nbytes for other in others)
            for other in others:
                if total + need <= self.memory_budget_bytes:
                    break
                assert other.worker is not None
                if other.runner is not None and other.worker.close_if_idle():
                    del self._slots[other.spec.id]
                    total -= other.nbytes
                    evicted.append(other)
                    self._counters["evictions"] += 1
            over = total + need > self.memory_budget_bytes
        for other in evicted:
            logger.info("evicted %s to make room for %s", other.spec.id, slot.spec.id)
            self._retire(other)
        if evicted:
            self._free_memory()
        if over and need:
            logger.warning("%s goes over the memory budget: the other loaded bases are busy", slot.spec.id)

    def _retire(self, slot: Slot[SpecT, JobT, ResultT, RunnerT]) -> None:
        assert slot.worker is not None
        slot.worker.close(timeout=30.0)
        if slot.runner is not None:
            slot.runner.release()
            slot.runner = None

    def _free_memory(self) -> None:
        collect_including_frozen()  # an unloaded base's objects were frozen when it loaded
        if (self._resolved_device or "").startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _unload_on(self, slot: Slot[SpecT, JobT, ResultT, RunnerT], adapter_id: str) -> None:
        if slot.runner is not None:
            slot.runner.unload_adapter(adapter_id)
