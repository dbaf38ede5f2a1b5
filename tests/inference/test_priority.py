"""Background priority (`inference/priority.py`) on the stand-in engine of test_model_pool: a background job takes
no place in the bounded queue and runs only when no interactive job waits, alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from genfoundry.errors import Overloaded
from genfoundry.inference.model_pool import Slot
from genfoundry.inference.priority import background_priority, in_background
from tests.inference.test_model_pool import EchoJob, EchoPool, EchoRunner, Gate, Spec

A = Spec("a")


class RecordingPool(EchoPool):
    def __init__(self, gate: Gate, *, max_queue: int) -> None:
        super().__init__(gate, max_queue=max_queue)
        self.batches: list[list[int]] = []

    def _run_batch(self, slot: Slot[Spec, EchoJob, int, EchoRunner], jobs: list[EchoJob]) -> list[int]:
        self.batches.append([job.value for job in jobs])
        return super()._run_batch(slot, jobs)


@pytest.fixture
def pool() -> Iterator[RecordingPool]:
    engine = RecordingPool(Gate(), max_queue=1)
    yield engine
    engine.gate.open.set()
    engine.close()


def test_background_jobs_wait_for_interactive_ones_and_take_no_queue_place(pool: RecordingPool) -> None:
    running = pool._submit(EchoJob(A, 0))
    assert pool.gate.running.wait(timeout=30)
    with background_priority():
        assert in_background()
        background = [pool._submit(EchoJob(A, 10)), pool._submit(EchoJob(A, 11))]
    assert not in_background()
    assert pool.stats()["models"]["a"]["queue_depth"] == 0  # background jobs are not in the queue
    interactive = pool._submit(EchoJob(A, 1))  # the queue's one place is still free
    with pytest.raises(Overloaded):
        pool._submit(EchoJob(A, 2))
    pool.gate.open.set()
    assert [f.result(timeout=30) for f in (running, interactive, *background)] == [0, 1, 10, 11]
    # the interactive job ran before the background ones, which arrived earlier; each background job ran alone
    assert pool.batches == [[0], [1], [10], [11]]
