"""/v1/batches through the real server: the official openai client uploads a batch file, creates, retrieves, lists
and cancels batches and reads their output and error files; bad lines are reported per line while the rest run;
hostile input is a clear 4xx that changes nothing; a batch stopped with its server resumes without re-running
the lines it finished."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import update

from genfoundry.config import DatasetSettings, RouterSettings, Settings
from genfoundry.db.tables import Batch, utcnow
from genfoundry.repo import users as users_repo
from genfoundry.services.local import open_database
from tests.conftest import LiveServer, free_port, make_home, start_server
from tests.helpers import JSONL_OK, assert_error
from tests.openai_schema import assert_matches_openai

CHAT = {"model": "tiny-llm", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4, "temperature": 0}
IMAGE = {"model": "tiny-sd15", "prompt": "a red fox", "size": "64x64", "steps": 2, "response_format": "b64_json"}
ENDED = ("completed", "failed", "expired", "cancelled")


def line(custom_id: str, url: str, body: dict[str, Any]) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def jsonl(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def upload(client: httpx.Client, data: bytes, purpose: str = "batch") -> httpx.Response:
    return client.post("/v1/files", files={"file": ("requests.jsonl", data)}, data={"purpose": purpose})


def wait_for_batch(client: openai.OpenAI, batch_id: str, timeout: float = 120) -> Any:
    """Polls the batch until it has ended; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ENDED:
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} did not end")


def read_jsonl(client: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(text) for text in client.files.content(file_id).text.splitlines()]


def test_a_chat_batch_runs_its_good_lines_and_reports_each_bad_one(
    alice_openai: openai.OpenAI, alice: httpx.Client
) -> None:
    lines = [
        line("first", "/v1/chat/completions", CHAT),
        "this is not JSON",
        line("speech", "/v1/audio/speech", {"input": "hi"}),
        line("picture", "/v1/images/generations", IMAGE),  # not the batch's endpoint
        line("too-long", "/v1/chat/completions", {**CHAT, "max_tokens": 10**9}),  # the route's own limit
        line("second", "/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "bye"}]}),
    ]
    file = alice_openai.files.create(file=("requests.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    assert file.purpose == "batch"
    created = alice_openai.batches.create(
        input_file_id=file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"catalogue": "spring"},
    )
    assert created.id.startswith("batch_") and created.object == "batch"
    assert created.status in ("validating", "in_progress", "finalizing", "completed")
    assert created.request_counts is not None and created.request_counts.total == 6
    batch = wait_for_batch(alice_openai, created.id)
    assert batch.status == "completed", batch
    assert batch.metadata == {"catalogue": "spring"}
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (6, 2, 4)
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at and batch.expires_at
    raw = alice.get(f"/v1/batches/{batch.id}").json()
    assert_matches_openai(raw, "GET", f"/v1/batches/{batch.id}")

    assert batch.output_file_id is not None and batch.error_file_id is not None
    outputs = read_jsonl(alice_openai, batch.output_file_id)
    assert [o["custom_id"] for o in outputs] == ["first", "second"]
    for output in outputs:
        assert output["id"].startswith("batch_req_") and output["error"] is None
        assert output["response"]["status_code"] == 200 and output["response"]["request_id"]
        body = output["response"]["body"]
        assert body["object"] == "chat.completion" and body["model"] == "tiny-llm"
        assert_matches_openai(body, "POST", "/v1/chat/completions")  # the route's answer, as OpenAI's
    errors = {
        (e["custom_id"], (e["error"] or {}).get("code")): e for e in read_jsonl(alice_openai, batch.error_file_id)
    }
    assert set(errors) == {
        (None, "invalid_json"),
        ("speech", "invalid_url"),
        ("picture", "mismatched_endpoint"),
        ("too-long", None),
    }
    assert "line 2" in errors[None, "invalid_json"]["error"]["message"]
    refused = errors["too-long", None]["response"]
    assert refused["status_code"] == 422 and refused["body"]["error"]["param"] == "max_tokens"  # as the route answers
    output_file = alice_openai.files.retrieve(batch.output_file_id)
    assert output_file.purpose == "batch_output"


def test_an_image_batch_goes_through_the_image_service_and_lists_page_by_page(
    alice_openai: openai.OpenAI, alice: httpx.Client
) -> None:
    before = len(alice.get("/v1/generations", params={"limit": 100}).json()["data"])
    file = alice_openai.files.create(
        file=("shots.jsonl", io.BytesIO(jsonl([line(f"shot-{i}", "/v1/images/generations", IMAGE) for i in range(2)]))),
        purpose="batch",
    )
    created = alice_openai.batches.create(
        input_file_id=file.id, endpoint="/v1/images/generations", completion_window="24h"
    )
    batch = wait_for_batch(alice_openai, created.id)
    assert batch.status == "completed" and batch.error_file_id is None
    assert batch.output_file_id is not None
    outputs = read_jsonl(alice_openai, batch.output_file_id)
    assert [o["custom_id"] for o in outputs] == ["shot-0", "shot-1"]
    assert all(o["response"]["body"]["data"][0]["b64_json"] for o in outputs)
    assert len(alice.get("/v1/generations", params={"limit": 100}).json()["data"]) == before + 2  # history rows

    page = alice_openai.batches.list(limit=1)
    assert [b.id for b in page.data] == [batch.id] and page.has_more
    raw = alice.get("/v1/batches", params={"limit": 1}).json()
    assert_matches_openai(raw, "GET", "/v1/batches")
    assert raw["first_id"] == raw["last_id"] == batch.id
    older = alice.get("/v1/batches", params={"limit": 100, "after": batch.id}).json()["data"]
    assert batch.id not in [b["id"] for b in older] and older


def test_an_embeddings_batch_answers_as_the_embeddings_route(alice_openai: openai.OpenAI, alice: httpx.Client) -> None:
    body = {"model": "all-MiniLM-L6-v2", "input": ["a red kettle", "a blue teapot"]}
    lines = [line("two", "/v1/embeddings", body), line("empty", "/v1/embeddings", {**body, "input": ""})]
    file = alice_openai.files.create(file=("embed.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    created = alice_openai.batches.create(input_file_id=file.id, endpoint="/v1/embeddings", completion_window="24h")
    batch = wait_for_batch(alice_openai, created.id)
    assert batch.status == "completed" and batch.output_file_id and batch.error_file_id
    [output] = read_jsonl(alice_openai, batch.output_file_id)
    assert output["response"]["body"] == alice.post("/v1/embeddings", json=body).json()
    [error] = read_jsonl(alice_openai, batch.error_file_id)
    assert error["custom_id"] == "empty" and error["response"]["status_code"] == 400


def test_cancel_stops_before_the_next_line_keeps_what_ran_and_answers_twice(
    alice_openai: openai.OpenAI, alice: httpx.Client
) -> None:
    lines = [line(f"q{i}", "/v1/chat/completions", CHAT) for i in range(300)]
    file = alice_openai.files.create(file=("many.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    created = alice_openai.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    first = alice_openai.batches.cancel(created.id)
    assert first.status in ("cancelling", "cancelled") and first.cancelling_at
    second = alice.post(f"/v1/batches/{created.id}/cancel")  # a clear answer, not a 5xx
    assert second.status_code == 200 and second.json()["status"] in ("cancelling", "cancelled")
    assert_matches_openai(second.json(), "POST", f"/v1/batches/{created.id}/cancel")
    batch = wait_for_batch(alice_openai, created.id)
    assert batch.status == "cancelled" and batch.cancelled_at
    counts = batch.request_counts
    assert counts is not None and counts.completed + counts.failed < 300
    ran = read_jsonl(alice_openai, batch.output_file_id) if batch.output_file_id else []
    assert len(ran) == counts.completed  # the partial output is kept
    assert alice.post(f"/v1/batches/{created.id}/cancel").json()["status"] == "cancelled"


def test_cancelling_a_completed_batch_is_a_conflict(alice_openai: openai.OpenAI, alice: httpx.Client) -> None:
    file = alice_openai.files.create(
        file=("one.jsonl", io.BytesIO(jsonl([line("a", "/v1/chat/completions", CHAT)]))), purpose="batch"
    )
    created = alice_openai.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert wait_for_batch(alice_openai, created.id).status == "completed"
    error = assert_error(alice.post(f"/v1/batches/{created.id}/cancel"), 409)
    assert "completed" in error["message"]
    assert alice_openai.batches.retrieve(created.id).status == "completed"


def test_hostile_batch_input_is_a_clear_4xx_that_changes_nothing(
    alice: httpx.Client, bob: httpx.Client, alice_openai: openai.OpenAI
) -> None:
    good = upload(alice, jsonl([line("a", "/v1/chat/completions", CHAT)])).json()["id"]
    fine_tune = upload(alice, JSONL_OK, purpose="fine-tune").json()["id"]
    too_many = upload(alice, jsonl(["{}"] * 50_001)).json()["id"]
    before = alice.get("/v1/batches", params={"limit": 100}).json()["data"]
    body = {"input_file_id": good, "endpoint": "/v1/chat/completions", "completion_window": "24h"}

    error = assert_error(
        alice.post("/v1/batches", json={**body, "input_file_id": too_many}), 400, param="input_file_id"
    )
    assert "50000" in error["message"].replace(",", "")
    assert_error(alice.post("/v1/batches", json={**body, "input_file_id": fine_tune}), 400, param="input_file_id")
    assert_error(bob.post("/v1/batches", json=body), 404, param="input_file_id")  # alice's file
    assert_error(alice.post("/v1/batches", json={**body, "endpoint": "/v1/audio/speech"}), 400, param="endpoint")
    assert_error(alice.post("/v1/batches", json={**body, "completion_window": "48h"}), 400, param="completion_window")
    assert_error(alice.post("/v1/batches", json={**body, "metadata": {str(i): "x" for i in range(17)}}), 400)
    assert_error(
        alice.post("/v1/batches", json={k: v for k, v in body.items() if k != "endpoint"}), 400, param="endpoint"
    )
    assert alice.get("/v1/batches", params={"limit": 100}).json()["data"] == before

    mine = alice_openai.batches.create(input_file_id=good, endpoint="/v1/chat/completions", completion_window="24h")
    assert_error(bob.get(f"/v1/batches/{mine.id}"), 404, param="batch_id")
    assert_error(bob.post(f"/v1/batches/{mine.id}/cancel"), 404, param="batch_id")
    assert mine.id not in [b["id"] for b in bob.get("/v1/batches").json()["data"]]
    assert_error(bob.get("/v1/batches", params={"after": mine.id}), 404)
    assert_error(alice.get("/v1/batches/batch_nope"), 404)
    assert wait_for_batch(alice_openai, mine.id).status == "completed"  # bob's cancel changed nothing
    assert alice.get("/healthz").status_code == 200


# A server of its own: a small file-size cap, and a restart in the middle of a batch.


@pytest.fixture
def own_server(tmp_path: Path, tiny_dir: Path) -> Iterator[tuple[Settings, str]]:
    home = make_home(tmp_path, tiny_dir)
    settings = Settings(
        home=home,
        port=free_port(),
        datasets=DatasetSettings(max_batch_file_bytes=64 * 1024),
        router=RouterSettings(preload=False),  # no chat here: the router's encoder is not needed
    )
    with open_database(settings) as session:
        key = users_repo.create_key(session=session, name="carol").key
        session.commit()
    yield settings, key


def test_a_batch_file_over_the_size_cap_is_refused(own_server: tuple[Settings, str]) -> None:
    settings, key = own_server
    server = start_server(settings)
    try:
        with server.client(key) as client:
            error = assert_error(upload(client, b"{}\n" * 30_000), 413, param="file")
            assert str(64 * 1024) in error["message"]
            assert client.get("/v1/files").json()["data"] == []
    finally:
        server.stop()


def stop_mid_batch(settings: Settings, key: str, count: int) -> str:
    """Start the server, create a batch of `count` image lines, stop the server once two have run; the batch's id."""
    server = start_server(settings)
    try:
        with server.client(key) as client:
            file_id = upload(client, jsonl([line(f"s{i}", "/v1/images/generations", IMAGE) for i in range(count)]))
            body = {
                "input_file_id": file_id.json()["id"],
                "endpoint": "/v1/images/generations",
                "completion_window": "24h",
            }
            batch_id: str = client.post("/v1/batches", json=body).json()["id"]
            deadline = time.monotonic() + 120
            while client.get(f"/v1/batches/{batch_id}").json()["request_counts"]["completed"] < 2:
                assert time.monotonic() < deadline, "the batch did not start"
                time.sleep(0.05)
    finally:
        server.stop()  # mid-batch: the job goes back to the queue
    return batch_id


@pytest.fixture
def restart(own_server: tuple[Settings, str]) -> Iterator[Callable[[], LiveServer]]:
    """Starts the server again on the same home (a new port); stopped at the end of the test."""
    settings, _key = own_server
    started: list[LiveServer] = []

    def start() -> LiveServer:
        started.append(start_server(settings.model_copy(update={"port": free_port()})))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def test_a_batch_resumes_after_a_restart_without_rerunning_finished_lines(
    own_server: tuple[Settings, str], restart: Callable[[], LiveServer]
) -> None:
    settings, key = own_server
    count = 6
    batch_id = stop_mid_batch(settings, key, count)
    server = restart()
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120) as client_openai:
        batch = wait_for_batch(client_openai, batch_id)
        assert batch.status == "completed", batch
        assert batch.output_file_id is not None
        outputs = read_jsonl(client_openai, batch.output_file_id)
    assert sorted(o["custom_id"] for o in outputs) == sorted(f"s{i}" for i in range(count))  # each line once
    with server.client(key) as client:
        generations = client.get("/v1/generations", params={"limit": 100}).json()["data"]
    assert count <= len(generations) <= count + 1  # at most the line running at the stop ran twice


def test_lines_not_run_when_the_window_ends_are_expired(
    own_server: tuple[Settings, str], restart: Callable[[], LiveServer]
) -> None:
    settings, key = own_server
    count = 60
    batch_id = stop_mid_batch(settings, key, count)
    with open_database(settings) as session:  # the 24 h went by while the server was down
        session.execute(update(Batch).where(Batch.id == batch_id).values(expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    server = restart()
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120) as client_openai:
        batch = wait_for_batch(client_openai, batch_id)
        assert batch.status == "expired" and batch.expired_at, batch
        counts = batch.request_counts
        assert counts is not None and counts.completed >= 2 and counts.completed + counts.failed == count
        assert batch.output_file_id is not None and batch.error_file_id is not None
        assert len(read_jsonl(client_openai, batch.output_file_id)) == counts.completed
        expired = read_jsonl(client_openai, batch.error_file_id)
    assert len(expired) == counts.failed and {e["error"]["code"] for e in expired} == {"batch_expired"}
    with server.client(key) as client:
        assert_matches_openai(client.get(f"/v1/batches/{batch_id}").json(), "GET", f"/v1/batches/{batch_id}")
