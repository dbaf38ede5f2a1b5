"""ExportGuard: an export waits for the model runs in progress, and runs that arrive meanwhile wait for the export."""

from __future__ import annotations

import threading

from genfoundry.inference.export_guard import ExportGuard


def wait_until(condition: threading.Condition, check: object) -> None:
    with condition:
        assert condition.wait_for(check, timeout=30)  # type: ignore[arg-type]


def test_export_waits_for_the_run_in_progress_and_new_runs_wait_for_the_export() -> None:
    guard = ExportGuard()
    events: list[str] = []
    first_running, first_may_end = threading.Event(), threading.Event()

    def first_run() -> None:
        with guard.running():
            events.append("run 1 starts")
            first_running.set()
            first_may_end.wait(30)
            events.append("run 1 ends")

    def export() -> None:
        with guard.exporting():
            events.append("export")

    def second_run() -> None:
        with guard.running():
            events.append("run 2")

    threads = [threading.Thread(target=first_run)]
    threads[0].start()
    first_running.wait(30)
    threads.append(threading.Thread(target=export))
    threads[1].start()
    wait_until(guard._cond, lambda: guard._exports_waiting == 1)  # the export now waits for run 1
    threads.append(threading.Thread(target=second_run))
    threads[2].start()
    first_may_end.set()
    for thread in threads:
        thread.join(30)
    assert events == ["run 1 starts", "run 1 ends", "export", "run 2"]
