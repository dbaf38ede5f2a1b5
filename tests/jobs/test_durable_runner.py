"""The durable job runner on a real SQLite file with real job processes: crashes, cancels, races, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from genfoundry.db.tables import Job, JobEvent, utcnow
from genfoundry.jobs.liveness import pid_alive
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo import users as users_repo
from tests.jobs.sample_jobs import Harness, job_settings, make_runner

REPO_ROOT = Path(__file__).resolve().parents[2]
FINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(autouse=True)
def importable_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job processes import the sample kinds by dotted path, whatever folder pytest runs from."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture
def harness(home: Path) -> Iterator[Harness]:
    made = make_runner(job_settings(home))
    yield made
    made.close()


def owner(harness: Harness) -> str:
    with harness.runner.sessions() as session:
        user_id = users_repo.get_or_create_local_user(session=session).id
        session.commit()
    return user_id


def submit(harness: Harness, kind: str, params: dict[str, Any], *, start: bool = True, **options: Any) -> str:
    with harness.runner.sessions() as session:
        job = harness.runner.submit(session=session, owner_id=owner(harness), kind=kind, params=params, **options)
        session.commit()
    if start:
        harness.runner.start(job)
    return job.id


def load(harness: Harness, job_id: str) -> Job:
    with harness.runner.sessions() as session:
        job = jobs_repo.get_job(session=session, job_id=job_id)
        assert job is not None
        return job


def wait_for(harness: Harness, job_id: str, ready: Callable[[Job], bool], timeout: float = 20) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = load(harness, job_id)
        if ready(job):
            return job
        time.sleep(0.03)
    raise AssertionError(f"job {job_id} never got there: {load(harness, job_id).status}")


def wait_final(harness: Harness, job_id: str, timeout: float = 20) -> Job:
    return wait_for(harness, job_id, lambda job: job.status in FINAL, timeout)


def events(harness: Harness, job_id: str) -> list[JobEvent]:
    with harness.runner.sessions() as session:
        return jobs_repo.list_events(session=session, job_id=job_id, after=None, limit=10_000)[0]


def final_events(harness: Harness, job_id: str) -> list[str]:
    return [e.message for e in events(harness, job_id) if e.type == "status" and e.message in FINAL]


def job_pid(harness: Harness, job_id: str, attempt: int = 1) -> int:
    """The job's process, as its attempt's first log event records it."""
    job = wait_for(harness, job_id, lambda job: job.progress_step >= 1)
    assert job.attempts == attempt
    started = [e for e in events(harness, job_id) if e.type == "log" and e.data.get("attempt") == attempt]
    return int(started[0].data["pid"])


def steps_run(out: Path, job_id: str) -> list[tuple[int, int]]:
    lines = (out / f"steps-{job_id}.log").read_text().split()
    return [(int(a), int(s)) for a, s in zip(lines[::2], lines[1::2], strict=True)]


def finishes(harness: Harness, out: Path, job_id: str) -> list[str]:
    """The statuses the kind's finisher saw: it runs in the transaction that makes the job final, so a job read as
    ended has them all."""
    assert load(harness, job_id).status in FINAL
    return [e.data["saw"] for e in events(harness, job_id) if e.type == "log" and e.message == "finisher"]


def wait_dead(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(pid), f"process {pid} is still alive"


def test_count_job_succeeds_with_events_in_order(harness: Harness, out: Path) -> None:
    job_id = submit(harness, "count", {"out": str(out), "n": 4, "every": 2})
    job = wait_final(harness, job_id)
    assert (job.status, job.result, job.error) == ("succeeded", {"counted": 4, "started_at": 0}, None)
    assert (job.progress_step, job.progress_total, job.attempts) == (4, 4, 1)
    assert job.checkpoint == str(out / f"ckpt-{job_id}-4")
    kinds = [(e.type, e.message) for e in events(harness, job_id)]
    assert kinds[0] == ("status", "running")
    assert kinds[1][0] == "log" and kinds[1][1].startswith("attempt 1 started in process")
    assert kinds[2:] == [
        ("progress", "step 1"),
        ("progress", "step 2"),
        ("checkpoint", str(out / f"ckpt-{job_id}-2")),
        ("progress", "step 3"),
        ("progress", "step 4"),
        ("checkpoint", str(out / f"ckpt-{job_id}-4")),
        ("status", "succeeded"),
        ("log", "finisher"),  # in the final status's transaction
    ]
    seqs = [e.seq for e in events(harness, job_id)]
    assert seqs == sorted(seqs)
    assert job_pid(harness, job_id) != os.getpid()  # it ran in its own process
    assert finishes(harness, out, job_id) == ["succeeded"]


def test_a_failing_finisher_is_undone_and_the_status_stands(harness: Harness, out: Path) -> None:
    job_id = submit(harness, "count_bad_finish", {"out": str(out), "n": 1})
    job = wait_final(harness, job_id)
    assert (job.status, job.result) == ("succeeded", {"counted": 1, "started_at": 0})
    assert final_events(harness, job_id) == ["succeeded"]
    assert finishes(harness, out, job_id) == []  # its event was written in a savepoint, rolled back


def test_a_job_that_raises_fails_with_its_message(harness: Harness, out: Path) -> None:
    job = wait_final(harness, submit(harness, "boom", {"out": str(out)}, max_attempts=3))
    assert (job.status, job.error, job.attempts) == ("failed", "the flux capacitor broke", 1)  # no retry
    assert finishes(harness, out, job.id) == ["failed"]

    job = wait_final(harness, submit(harness, "missing", {"out": str(out)}, max_attempts=3))
    assert (job.status, job.error, job.attempts) == ("failed", "No module named 'tests.jobs.no_such_module'", 1)

    job = wait_final(harness, submit(harness, "exit_hard", {"out": str(out)}, max_attempts=1))
    assert job.status == "failed"
    assert job.error == "the job's process exited with code 3 without a final status: giving up hard"
    assert finishes(harness, out, job.id) == ["failed"]
    with pytest.raises(ValueError, match="no job function registered"):
        submit(harness, "no-such-kind", {})


def test_kill_9_without_attempts_left_fails_with_the_signal(harness: Harness, out: Path) -> None:
    job_id = submit(harness, "count", {"out": str(out), "n": 500, "step_s": 0.02}, max_attempts=1)
    os.kill(job_pid(harness, job_id), signal.SIGKILL)
    job = wait_final(harness, job_id)
    assert job.status == "failed"
    assert "SIGKILL" in (job.error or "")
    assert finishes(harness, out, job_id) == ["failed"]  # the runner ran the finisher the dead process could not


def test_kill_9_with_attempts_left_resumes_from_the_checkpoint(harness: Harness, out: Path) -> None:
    params = {"out": str(out), "n": 40, "step_s": 0.02, "every": 5}
    job_id = submit(harness, "count", params, max_attempts=2)
    pid = job_pid(harness, job_id)
    wait_for(harness, job_id, lambda job: job.checkpoint is not None)
    os.kill(pid, signal.SIGKILL)
    job = wait_final(harness, job_id)
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert job.resume_from is not None
    resumed_at = int(Path(job.resume_from).read_text())
    assert job.result == {"counted": 40, "started_at": resumed_at}
    steps = steps_run(out, job_id)
    assert [step for attempt, step in steps if attempt == 2] == list(range(resumed_at + 1, 41))
    assert {step for _, step in steps} == set(range(1, 41))
    requeued = [e for e in events(harness, job_id) if e.type == "status" and e.message == "queued"]
    assert len(requeued) == 1 and "SIGKILL" in requeued[0].data["reason"]
    assert final_events(harness, job_id) == ["succeeded"]


def test_cancel_stops_at_a_step_boundary_and_twice_is_harmless(harness: Harness, out: Path) -> None:
    job_id = submit(harness, "count", {"out": str(out), "n": 1000, "step_s": 0.02})
    pid = job_pid(harness, job_id)
    assert harness.runner.cancel(job_id) is True
    job = wait_final(harness, job_id)
    # The job stopped itself: a job the runner kills after the grace period ends with an error saying so.
    assert (job.status, job.error) == ("cancelled", None)
    wait_dead(pid)
    # At a step boundary: whole steps 1..k of one attempt, k reported as its progress, long before step 1000.
    steps = steps_run(out, job_id)
    assert steps == [(1, step) for step in range(1, len(steps) + 1)]
    assert 1 <= len(steps) < 1000 and job.progress_step == len(steps)
    progress = [e.message for e in events(harness, job_id) if e.type == "progress"]
    assert progress == [f"step {step}" for step in range(1, len(steps) + 1)]
    assert harness.runner.cancel(job_id) is False  # already ended: the API answers 409
    assert load(harness, job_id).status == "cancelled"
    assert final_events(harness, job_id) == ["cancelled"]
    assert finishes(harness, out, job_id) == ["cancelled"]

    queued = submit(harness, "count", {"out": str(out), "n": 1}, start=False)  # nobody serves it
    assert harness.runner.cancel(queued) is True
    assert load(harness, queued).status == "cancelled"
    assert finishes(harness, out, queued) == ["cancelled"]


def test_a_job_that_ignores_cancel_is_killed_after_the_grace_period(harness: Harness, out: Path) -> None:
    job_id = submit(harness, "stubborn", {"out": str(out)})
    pid = job_pid(harness, job_id)
    assert harness.runner.cancel(job_id) is True
    assert harness.runner.cancel(job_id) is True  # still running: asking again changes nothing
    job = wait_final(harness, job_id)
    assert job.status == "cancelled"
    # It ignored the cancel and SIGTERM too: only the kill after the 1 s grace period ended it.
    assert "did not stop within 1 s of the cancel request and was killed" in (job.error or "")
    wait_dead(pid)
    assert final_events(harness, job_id) == ["cancelled"]
    assert finishes(harness, out, job_id) == ["cancelled"]


@pytest.mark.parametrize("grace", [1.0, 0.0], ids=["cooperative", "kill-at-once"])
def test_a_cancel_racing_the_finish_ends_in_one_final_state(home: Path, out: Path, grace: float) -> None:
    """Cancels land as the job writes its own final status (with grace 0 the runner's kill races that write
    too), and right after submission, racing the claim."""
    harness = make_runner(job_settings(home, cancel_grace_s=grace))
    try:
        params = {"out": str(out), "n": 2, "step_s": 0.01}
        at_finish = [submit(harness, "count", params | {"tail_s": 0.1 * i}) for i in range(4)]
        at_claim = [submit(harness, "count", {"out": str(out), "n": 2}) for _ in range(2)]
        for job_id in at_claim:
            assert harness.runner.cancel(job_id) is True

        def cancel_at_the_end(job_id: str) -> None:
            wait_for(harness, job_id, lambda job: job.progress_step >= 2 or job.status in FINAL)
            harness.runner.cancel(job_id)

        threads = [threading.Thread(target=cancel_at_the_end, args=(job_id,)) for job_id in at_finish]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for job_id in at_finish + at_claim:
            job = wait_final(harness, job_id)
            assert job.status in (("cancelled",) if job_id in at_claim else ("succeeded", "cancelled"))
            assert (job.result, job.error) == ({"counted": 2, "started_at": 0}, None) or job.status == "cancelled"
            assert final_events(harness, job_id) == [job.status]
            assert harness.runner.cancel(job_id) is False
            assert load(harness, job_id).status == job.status
            # The finisher ran once, in the transaction of the final write, whoever made it.
            assert finishes(harness, out, job_id) == [job.status]
    finally:
        harness.close()


def test_two_runners_on_one_database_run_each_job_once(home: Path, out: Path) -> None:
    first, second = make_runner(job_settings(home)), make_runner(job_settings(home))
    try:
        job_ids = [submit(first, "count", {"out": str(out), "n": 1}, start=False) for _ in range(10)]
        first.runner.serve()
        second.runner.serve()
        jobs = [wait_final(first, job_id, timeout=40) for job_id in job_ids]
    finally:
        first.close()
        second.close()
    assert [job.status for job in jobs] == ["succeeded"] * 10
    runs = Counter(path.name.rsplit("-", 1)[0] for path in out.glob("run-*"))
    assert runs == {f"run-{job_id}": 1 for job_id in job_ids}


def test_claims_racing_on_the_same_rows_each_win_once(harness: Harness) -> None:
    job_ids = [submit(harness, "count", {"n": 1}, start=False) for _ in range(30)]
    won: list[str] = []
    barrier = threading.Barrier(6)

    def claim_all(worker: str) -> None:
        barrier.wait()
        for job_id in job_ids:
            with harness.runner.sessions() as session:
                if jobs_repo.claim_job(session=session, job_id=job_id, worker_id=worker) is not None:
                    won.append(job_id)
                session.commit()

    threads = [threading.Thread(target=claim_all, args=(f"test:{i}:x",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == sorted(job_ids)


def test_graceful_shutdown_requeues_and_the_next_runner_resumes(home: Path, out: Path) -> None:
    first = make_runner(job_settings(home))
    params = {"out": str(out), "n": 30, "step_s": 0.02, "every": 5}
    job_id = submit(first, "count", params, max_attempts=1)
    wait_for(first, job_id, lambda job: job.checkpoint is not None)
    first.close()
    job = load(first, job_id)
    assert (job.status, job.attempts, job.resume_from) == ("queued", 0, job.checkpoint)  # the attempt given back

    second = make_runner(job_settings(home))
    try:
        second.runner.serve()
        job = wait_final(second, job_id)
    finally:
        second.close()
    assert (job.status, job.attempts) == ("succeeded", 1)
    resumed_at = int(Path(job.resume_from or "").read_text())
    assert resumed_at >= 5
    assert job.result == {"counted": 30, "started_at": resumed_at}
    assert finishes(second, out, job_id) == ["succeeded"]


def test_server_killed_mid_job_then_restarted_resumes_from_the_checkpoint(home: Path, out: Path) -> None:
    watcher = make_runner(job_settings(home))  # migrates the database; only reads and submits until the "restart"
    server = subprocess.Popen([sys.executable, "-c", f"from tests.jobs.sample_jobs import serve; serve({str(home)!r})"])
    try:
        job_id = submit(watcher, "count", {"out": str(out), "n": 40, "step_s": 0.02, "every": 5}, start=False)
        child = job_pid(watcher, job_id)
        wait_for(watcher, job_id, lambda job: job.checkpoint is not None)
        server.kill()
        server.wait()
        os.kill(child, signal.SIGKILL)
        wait_dead(child)
        assert load(watcher, job_id).status == "running"  # what a dead server leaves behind

        recovered = watcher.runner.recover()  # the restarted server's start-up
        assert recovered == [(job_id, "queued")]
        watcher.runner.serve()
        job = wait_final(watcher, job_id)
    finally:
        server.kill()
        server.wait()
        watcher.close()
    assert (job.status, job.attempts) == ("succeeded", 2)
    resumed_at = int(Path(job.resume_from or "").read_text())
    assert resumed_at >= 5
    assert [step for attempt, step in steps_run(out, job_id) if attempt == 2] == list(range(resumed_at + 1, 41))
    assert finishes(watcher, out, job_id) == ["succeeded"]


def test_recovery_leaves_live_holders_alone_and_ends_stale_ones(harness: Harness, out: Path) -> None:
    fresh, stale, spent = (submit(harness, "count", {"out": str(out), "n": 1}, start=False) for _ in range(3))
    with harness.runner.sessions() as session:
        for job_id, beat, attempts in ((fresh, 0, 1), (stale, 60, 1), (spent, 60, 3)):
            job = jobs_repo.get_job(session=session, job_id=job_id)
            assert job is not None
            job.status, job.worker_id, job.attempts, job.max_attempts = "running", "elsewhere:1:abc", attempts, 3
            job.heartbeat_at = utcnow() - timedelta(seconds=beat)
        session.commit()
    assert sorted(harness.runner.recover()) == sorted([(stale, "queued"), (spent, "failed")])
    assert load(harness, fresh).status == "running"
    assert "no heartbeat" in (load(harness, spent).error or "")
    assert finishes(harness, out, spent) == ["failed"]


def test_thread_executor_runs_jobs_in_process(home: Path, out: Path) -> None:
    harness = make_runner(job_settings(home, executor="thread"))
    try:
        done = submit(harness, "count", {"out": str(out), "n": 3, "every": 1})
        assert wait_final(harness, done).status == "succeeded"
        assert job_pid(harness, done) == os.getpid()
        slow = submit(harness, "count", {"out": str(out), "n": 1000, "step_s": 0.01})
        wait_for(harness, slow, lambda job: job.progress_step >= 1)
        harness.runner.cancel(slow)
        assert wait_final(harness, slow).status == "cancelled"
    finally:
        harness.close()


def test_a_job_that_needs_no_device_does_not_wait_behind_device_jobs(home: Path, out: Path) -> None:
    harness = make_runner(job_settings(home, device_slots=1, cpu_slots=1))
    try:
        training = submit(harness, "count", {"out": str(out), "n": 200, "step_s": 0.05})
        queued = submit(harness, "count", {"out": str(out), "n": 1})
        download = submit(harness, "download", {"out": str(out), "n": 2})
        assert wait_final(harness, download).status == "succeeded"
        assert load(harness, training).status == "running"  # the device slot is still taken...
        assert load(harness, queued).status == "queued"  # ...so the second device job waits
        harness.runner.cancel(training)
        assert wait_final(harness, queued).status == "succeeded"
    finally:
        harness.close()
