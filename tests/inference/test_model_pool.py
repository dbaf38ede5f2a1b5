"""ModelPool's admission on a stand-in engine (no model: each "base" is a counter, each batch waits on a gate the
test opens): held places fill a base's queue and refuse at once, a held place is never refused, places are given
back exactly once, and a request key learns its base; and the hooks are abstract."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import pytest

from genfoundry.errors import Overloaded
from genfoundry.inference.model_pool import ModelPool, Slot


@dataclass(frozen=True)
class Spec:
    id: str


@dataclass(frozen=True)
class EchoJob:
    base: Spec
    value: int


@dataclass
class EchoRunner:
    adapter_ids: tuple[str, ...] = ()
    released: bool = False

    def unload_adapter(self, adapter_id: str) -> None:
        pass

    def release(self) -> None:
        self.released = True


@dataclass
class Gate:
    """Batches wait here: `running` is set when one has started, `open` lets them finish."""

    running: threading.Event = field(default_factory=threading.Event)
    open: threading.Event = field(default_factory=threading.Event)


class EchoPool(ModelPool[Spec, EchoJob, int, EchoRunner]):
    kind = "echo"

    def __init__(self, gate: Gate, *, max_queue: int) -> None:
        super().__init__(
            device="cpu",
            dtype="float32",
            memory_budget_bytes=1 << 30,
            max_queue=max_queue,
            max_batch_size=1,
            batch_timeout_s=0.0,
            counters=(),
        )
        self.gate = gate

    def _validate(self, job: EchoJob) -> None:
        pass

    def _job_base(self, job: EchoJob) -> Spec:
        return job.base

    def _batch_key(self, job: EchoJob) -> Hashable:
        return "echo"

    def _job_size(self, job: EchoJob) -> int:
        return 1

    def _estimate_bytes(self, spec: Spec) -> int:
        return 0

    def _load_runner(self, spec: Spec, device: str) -> tuple[EchoRunner, int]:
        return EchoRunner(), 1

    def _run_batch(self, slot: Slot[Spec, EchoJob, int, EchoRunner], jobs: list[EchoJob]) -> list[int]:
        self.gate.running.set()
        assert self.gate.open.wait(timeout=60), "the test never opened the gate"
        return [job.value for job in jobs]


A, B = Spec("a"), Spec("b")


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def pool(gate: Gate) -> Iterator[EchoPool]:
    engine = EchoPool(gate, max_queue=2)
    yield engine
    gate.open.set()
    engine.close()


def busy(pool: EchoPool, gate: Gate) -> Future[int]:
    """Submit a job and wait until the worker runs it (and waits at the gate): the base's queue is then empty."""
    future = pool._submit(EchoJob(A, -1))
    assert gate.running.wait(timeout=30)
    return future


def test_held_places_fill_the_queue_and_the_next_is_refused_at_once(pool: EchoPool, gate: Gate) -> None:
    running = busy(pool, gate)
    places = [pool.hold_place("a"), pool.hold_place("a")]
    with pytest.raises(Overloaded) as refused:
        pool.hold_place("a")
    assert refused.value.retry_after >= 1
    with pytest.raises(Overloaded):  # a job holding no place is refused too: the held places count as taken
        pool._submit(EchoJob(A, 0))
    assert pool.hold_place("b").base_id == "b"  # queues are per base

    places[0].release()
    places[0].release()  # a second release gives nothing back twice
    again = pool.hold_place("a")
    with pytest.raises(Overloaded):
        pool.hold_place("a")

    futures = [pool._submit(EchoJob(A, 1), places[1]), pool._submit(EchoJob(A, 2), again)]
    assert pool.stats()["models"]["a"]["queue_depth"] == 2
    again.release()  # taken by its job: nothing to give back
    with pytest.raises(Overloaded):
        pool.hold_place("a")
    gate.open.set()
    assert [running.result(timeout=30), *(f.result(timeout=30) for f in futures)] == [-1, 1, 2]
    assert pool.stats()["models"]["a"]["queue_depth"] == 0
    pool.hold_place("a")
    pool.hold_place("a")


def test_a_place_held_for_another_base_is_given_back(pool: EchoPool, gate: Gate) -> None:
    busy(pool, gate)
    wrong = pool.hold_place("b")
    pool._submit(EchoJob(A, 1), wrong)  # planning resolved the request to base a: b's place is freed
    pool.hold_place("b")
    pool.hold_place("b")
    with pytest.raises(Overloaded):
        pool.hold_place("b")
    pool.hold_place("a")  # a holds the job above plus this place
    with pytest.raises(Overloaded):
        pool.hold_place("a")


def test_a_request_key_holds_its_place_once_its_base_is_known(pool: EchoPool, gate: Gate) -> None:
    busy(pool, gate)
    key = ("caller", "my-adapter")
    first = pool.hold_place(None, request_key=key)
    assert first.base_id is None  # unknown before planning: nothing held, checked when submitted
    pool._submit(EchoJob(A, 1), first)
    second = pool.hold_place(None, request_key=key)
    assert second.base_id == "a"
    with pytest.raises(Overloaded):
        pool.hold_place(None, request_key=key)
    assert pool.hold_place(None, request_key=("someone else", "my-adapter")).base_id is None


def test_a_closed_pool_refuses_places(gate: Gate) -> None:
    engine = EchoPool(gate, max_queue=1)
    engine.close()
    with pytest.raises(Overloaded):
        engine.hold_place("a")


def test_an_engine_missing_a_hook_fails_when_constructed(gate: Gate) -> None:
    """The hooks are abstract: forgetting one is a TypeError naming it at construction, not on the first request."""

    class NoRunBatch(ModelPool[Spec, EchoJob, int, EchoRunner]):
        _validate = EchoPool._validate
        _job_base = EchoPool._job_base
        _batch_key = EchoPool._batch_key
        _job_size = EchoPool._job_size
        _estimate_bytes = EchoPool._estimate_bytes
        _load_runner = EchoPool._load_runner

    with pytest.raises(TypeError, match="_run_batch"):
        NoRunBatch(  # type: ignore[abstract]
            device="cpu",
            dtype="float32",
            memory_budget_bytes=0,
            max_queue=1,
            max_batch_size=1,
            batch_timeout_s=0.0,
            counters=(),
        )
    assert ModelPool.__abstractmethods__ == {
        "_validate",
        "_job_base",
        "_batch_key",
        "_job_size",
        "_estimate_bytes",
        "_load_runner",
        "_run_batch",
    }
    EchoPool(gate, max_queue=1).close()  # every hook given: constructs
