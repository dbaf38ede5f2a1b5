"""`genfoundry train` and `genfoundry jobs ...` driven through Typer against the real session server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from genfoundry import cli_jobs
from genfoundry.cli import app
from genfoundry.client_jobs import JobsClient, parse_sse
from tests.conftest import Keys, LiveServer, free_port, image_bytes
from tests.helpers import make_zip, upload_zip

FINAL = ("succeeded", "failed", "cancelled")


def run(live: LiveServer, key: str | None, *args: str) -> Result:
    env = {"GENFOUNDRY_SERVER": live.url, "GENFOUNDRY_API_KEY": key or ""}
    return CliRunner().invoke(app, list(args), env=env)


def wait_until_final(live: LiveServer, key: str, job_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with live.client(key) as client:
        while True:
            job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in FINAL or time.monotonic() > deadline:
                return job
            time.sleep(0.3)


def assert_clean_failure(result: Result, *words: str) -> None:
    """Exit 1 with an `error:` line naming `words`, and no traceback."""
    assert result.exit_code == 1, result.output
    assert "error:" in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture(scope="module")
def dataset_id(live: LiveServer, keys: Keys) -> str:
    archive = make_zip({f"red{i}.png": image_bytes((230, 20 + i, 20), size=(64, 64)) for i in range(4)})
    with live.client(keys.alice) as client:
        response = upload_zip(client, archive, trigger_word="rdx")
    assert response.status_code == 201, response.text
    dataset: str = response.json()["id"]
    return dataset


TRAIN = ("--model", "tiny-sd15", "--rank", "4", "--resolution", "64", "--seed", "3")


@pytest.fixture(scope="module")
def trained(live: LiveServer, keys: Keys, dataset_id: str) -> tuple[Result, str]:
    """`train --follow` of a 4-step LoRA, run once for the module: (its result, the job id)."""
    result = run(live, keys.alice, "train", "--dataset", dataset_id, *TRAIN, "--steps", "4", "--follow")
    return result, result.stdout.splitlines()[0] if result.stdout else ""


def test_train_follow_to_success(live: LiveServer, keys: Keys, trained: tuple[Result, str]) -> None:
    result, job_id = trained
    assert result.exit_code == 0, result.output
    with live.client(keys.alice) as client:
        job = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["fine_tuned_model"]
    lines = result.stdout.splitlines()
    assert lines[0] == job_id
    assert lines[-2:] == ["status: succeeded", f"fine_tuned_model: {job['fine_tuned_model']}"]
    # The job's log lines as they came (stdout), then the bar's final state (stderr): every step, the last loss
    # and rate, no time left.
    assert any(line.endswith(" running") for line in lines)
    assert lines[-3].endswith(" succeeded")
    bar = [line for line in result.stderr.splitlines() if line.startswith("training")]
    assert bar, result.stderr
    assert "4/4" in bar[-1]
    assert "loss " in bar[-1]
    assert " it/s" in bar[-1]
    assert "ETA 0:00:00" in bar[-1]


def test_train_follow_of_a_failing_job_exits_1(live: LiveServer, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_zip({f"blue{i}.png": image_bytes((20, 20, 230 - i), size=(64, 64)) for i in range(2)})
    with live.client(keys.alice) as client:
        doomed = upload_zip(client, archive).json()["id"]
    real_create = JobsClient.create_fine_tuning_job

    def create_then_delete_dataset(self: JobsClient, body: dict[str, Any]) -> dict[str, Any]:
        job = real_create(self, body)
        with live.client(keys.alice) as client:  # gone before the job's process reads it
            assert client.delete(f"/v1/datasets/{doomed}").status_code < 300
        return job

    monkeypatch.setattr(JobsClient, "create_fine_tuning_job", create_then_delete_dataset)
    result = run(live, keys.alice, "train", "--dataset", doomed, *TRAIN, "--steps", "2", "--follow")
    job_id = result.stdout.splitlines()[0]
    assert_clean_failure(result, f"job {job_id} failed", "deleted")
    assert "status: " not in result.stdout


def test_jobs_list_show_logs(live: LiveServer, keys: Keys, trained: tuple[Result, str]) -> None:
    _, job_id = trained
    listed = run(live, keys.alice, "jobs", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if job_id in line)
    assert "fine_tune_lora" in row
    assert "succeeded" in row
    assert "4/4" in row

    as_json = json.loads(run(live, keys.alice, "jobs", "list", "--json", "--limit", "100").stdout)
    assert job_id in [job["id"] for job in as_json["data"]]
    only_captions = json.loads(run(live, keys.alice, "jobs", "list", "--json", "--kind", "dataset_caption").stdout)
    assert job_id not in [job["id"] for job in only_captions["data"]]

    shown = run(live, keys.alice, "jobs", "show", job_id)
    assert shown.exit_code == 0, shown.output
    with live.client(keys.alice) as client:
        over_http = client.get(f"/v1/jobs/{job_id}").json()
    assert "succeeded" in shown.stdout
    assert over_http["result"]["fine_tuned_model"] in shown.stdout
    assert json.loads(run(live, keys.alice, "jobs", "show", job_id, "--json").stdout) == over_http

    logs = run(live, keys.alice, "jobs", "logs", job_id, "--tail", "2")
    assert logs.exit_code == 0, logs.output
    lines = logs.stdout.splitlines()
    assert len(lines) == 2
    assert lines[-1].endswith("succeeded")

    # Following a finished job prints its last lines and ends at once (the stream says [DONE]).
    followed = run(live, keys.alice, "jobs", "logs", job_id, "-f", "--tail", "3")
    assert followed.exit_code == 0, followed.output
    assert len(followed.stdout.splitlines()) == 3
    assert followed.stdout.splitlines()[-1].endswith("succeeded")


def test_cancel_twice_then_resume(live: LiveServer, keys: Keys, dataset_id: str) -> None:
    created = run(live, keys.alice, "train", "--dataset", dataset_id, *TRAIN, "--steps", "8")
    assert created.exit_code == 0, created.output
    job_id = created.stdout.strip()

    # The job's process needs seconds to load the model before its first step, so this cancel lands first.
    cancelled = run(live, keys.alice, "jobs", "cancel", job_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"cancel requested: {job_id}" in cancelled.stdout
    assert wait_until_final(live, keys.alice, job_id)["status"] == "cancelled"
    assert_clean_failure(run(live, keys.alice, "jobs", "cancel", job_id), "409", "already cancelled")

    resumed = run(live, keys.alice, "jobs", "resume", job_id)
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed: {job_id}" in resumed.stdout
    # Followed live from here: the resumed run's log lines, its bar, and the end of the stream.
    followed = run(live, keys.alice, "jobs", "logs", job_id, "-f", "--tail", "1")
    assert followed.exit_code == 0, followed.output
    assert followed.stdout.splitlines()[-1].endswith(" succeeded")
    assert "8/8" in [line for line in followed.stderr.splitlines() if line.startswith("training")][-1]
    assert wait_until_final(live, keys.alice, job_id)["status"] == "succeeded"


def test_unknown_and_foreign_jobs(live: LiveServer, keys: Keys, trained: tuple[Result, str]) -> None:
    _, job_id = trained
    assert_clean_failure(run(live, keys.alice, "jobs", "show", "job_nope"), "404", "job_nope")
    for command in (("show",), ("logs",), ("logs", "-f"), ("cancel",), ("resume",)):
        assert_clean_failure(run(live, keys.bob, "jobs", command[0], job_id, *command[1:]), "404")
    assert_clean_failure(run(live, keys.alice, "jobs", "resume", job_id), "409", "succeeded")
    assert_clean_failure(
        run(live, keys.alice, "train", "--dataset", "ds_nope", "--model", "tiny-sd15", "--follow"), "ds_nope"
    )
    assert_clean_failure(run(live, None, "jobs", "list"), "401")


def test_unreachable_server(live: LiveServer, keys: Keys) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    for args in (("jobs", "list"), ("jobs", "logs", "job_x", "-f"), ("train", "--dataset", "d", "--model", "m")):
        result = run(live, keys.alice, *args, "--server", nowhere)
        assert_clean_failure(result, "cannot reach the genfoundry server", nowhere)


def test_ctrl_c_while_following_leaves_the_job_running(
    live: LiveServer, keys: Keys, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_stream = JobsClient.stream_events

    def interrupted_after_first_event(self: JobsClient, job_id: str, *, after: str | None = None) -> Iterator[Any]:
        with closing(real_stream(self, job_id, after=after)) as events:
            yield from islice(events, 1)
        raise KeyboardInterrupt  # what Ctrl-C raises while the CLI waits for the next event

    monkeypatch.setattr(JobsClient, "stream_events", interrupted_after_first_event)
    result = run(live, keys.alice, "train", "--dataset", dataset_id, *TRAIN, "--steps", "4", "--follow")
    assert result.exit_code == 130, result.output
    job_id = result.stdout.splitlines()[0]
    assert f"still running: genfoundry jobs logs -f {job_id}" in result.stderr
    assert "Traceback" not in result.output
    with live.client(keys.alice) as client:
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running", "succeeded")
    assert run(live, keys.alice, "jobs", "logs", job_id, "-f").exit_code == 130
    assert wait_until_final(live, keys.alice, job_id)["status"] == "succeeded"


class DroppingEvents(BaseHTTPRequestHandler):
    """Sends ev_1 and ev_2, then cuts the connection; a reconnect gets what follows Last-Event-ID, then [DONE]."""

    seen_last_event_ids: list[str | None] = []

    def do_GET(self) -> None:
        last = self.headers.get("Last-Event-ID")
        self.seen_last_event_ids.append(last)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        first = 1 if last is None else int(last.removeprefix("ev_")) + 1
        for seq in range(first, 4):
            body = {"id": f"ev_{seq}", "type": "log", "message": f"line {seq}", "created_at": 0, "data": {}}
            self.wfile.write(f": keep-alive\n\nid: ev_{seq}\nevent: log\ndata: {json.dumps(body)}\n\n".encode())
            self.wfile.flush()
            if last is None and seq == 2:
                self.close_connection = True
                return  # no [DONE]: the connection just ends
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: object) -> None:
        pass


def test_stream_reconnects_from_the_last_event() -> None:
    """A dropped SSE connection cannot be forced on the real server, so a small server here drops it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), DroppingEvents)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with JobsClient(f"http://127.0.0.1:{server.server_address[1]}") as client:
            events = list(client.stream_events("job_x"))
    finally:
        server.shutdown()
    assert [event["message"] for event in events] == ["line 1", "line 2", "line 3"]
    assert DroppingEvents.seen_last_event_ids == [None, "ev_2"]


def test_parse_sse_blocks() -> None:
    lines = [": ping", "", "id: ev_1", "event: metrics", 'data: {"a":', "data: 1}", "", "data: [DONE]", ""]
    messages = list(parse_sse(lines))
    assert [(m.id, m.event, m.data) for m in messages] == [
        ("ev_1", "metrics", '{"a":\n1}'),
        (None, "message", "[DONE]"),
    ]
    assert json.loads(messages[0].data) == {"a": 1}


def test_event_lines() -> None:
    base = {"created_at": 0, "data": {}}
    assert cli_jobs.event_line({**base, "type": "metrics", "message": "step 1"}) is None
    failed = cli_jobs.event_line({**base, "type": "status", "message": "failed", "data": {"error": "out of memory"}})
    assert failed is not None
    assert failed.endswith(" failed: out of memory")
    checkpoint = cli_jobs.event_line({**base, "type": "checkpoint", "message": "p", "data": {"step": 5, "path": "p"}})
    assert checkpoint is not None
    assert checkpoint.endswith("checkpoint at step 5: p")
