"""A full queue answers 503 with Retry-After at once, and the server keeps serving: a request holds its place in
the engine's queue before routing, auth and planning (api/admission.py), so exactly the requests past the queue's
size are refused, and a request that fails after holding a place gives it back."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from genfoundry.api.admission import _gated_routes
from genfoundry.app import create_app
from genfoundry.config import Settings
from genfoundry.repo import users as users_repo
from genfoundry.services.local import open_database
from tests.conftest import LiveServer, free_port, make_home, start_server
from tests.helpers import assert_error


def test_full_queue_is_503_with_retry_after(tmp_path: Path, tiny_dir: Path) -> None:
    settings = Settings(home=make_home(tmp_path, tiny_dir), port=free_port(), queue_size=1, max_batch_size=1)
    server = start_server(settings)
    body = {"model": "tiny-sd15", "prompt": "a cat", "size": "128x128", "steps": 20}
    try:
        with server.client() as client:
            assert client.post("/v1/images/generations", json={**body, "steps": 1}).status_code == 200  # warm

            def send(i: int) -> httpx.Response:
                with server.client() as own:
                    return own.post("/v1/images/generations", json={**body, "seed": i})

            with ThreadPoolExecutor(8) as pool:
                responses = list(pool.map(send, range(8)))
            statuses = sorted(response.status_code for response in responses)
            assert 200 in statuses
            rejected = [response for response in responses if response.status_code == 503]
            assert rejected, statuses
            for response in rejected:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["error"]["code"] == "overloaded"
            assert set(statuses) <= {200, 503}
            history = client.get("/v1/generations", params={"limit": 100}).json()["data"]
            assert len(history) == 1 + statuses.count(200)
            assert client.post("/v1/images/generations", json={**body, "steps": 1}).status_code == 200
    finally:
        server.stop()


@dataclass
class Gate:
    """Holds an engine's worker inside its batch: `running` is set once it waits there, `open` lets it go."""

    running: threading.Event = field(default_factory=threading.Event)
    open: threading.Event = field(default_factory=threading.Event)

    def install(self, monkeypatch: pytest.MonkeyPatch, engine: Any) -> None:
        """Before the engine's first request (a base's worker binds `_run_batch` when it is created)."""
        run_batch = engine._run_batch

        def gated(slot: Any, jobs: list[Any]) -> list[Any]:
            self.running.set()
            assert self.open.wait(timeout=120), "the test never opened the gate"
            results: list[Any] = run_batch(slot, jobs)
            return results

        monkeypatch.setattr(engine, "_run_batch", gated)

    def hold(self) -> None:
        self.running.clear()
        self.open.clear()


ENGINES = {
    "image": (
        "/v1/images/generations",
        {"model": "tiny-sd15", "prompt": "a cat", "size": "64x64", "steps": 1},
    ),
    "text": (
        "/v1/chat/completions",
        {"model": "tiny-llm", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 2},
    ),
}


def _engine(server: LiveServer, kind: str) -> Any:
    app: Any = server.server.config.app  # the FastAPI app create_app made
    services = app.state.services
    return services.image_engine if kind == "image" else services.text_engine


def _assert_overloaded(response: httpx.Response) -> None:
    """OpenAI's error shape, `overloaded`, and when to retry."""
    error = assert_error(response, 503)
    assert (error["type"], error["code"], error["param"]) == ("server_error", "overloaded", None)
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("kind", ENGINES)
def test_exactly_the_requests_past_the_queue_are_refused(
    tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The worker is held inside a batch, so exactly `queue_size` of the concurrent requests fit in the queue;
    every other one is a 503 before the worker moves, and the queued ones are answered once it does."""
    queue_size, concurrent = 3, 12
    settings = Settings(home=make_home(tmp_path, tiny_dir), port=free_port(), queue_size=queue_size, max_batch_size=1)
    server = start_server(settings)
    path, body = ENGINES[kind]
    gate = Gate()
    gate.install(monkeypatch, _engine(server, kind))
    gate.open.set()
    try:
        with server.client() as client, ThreadPoolExecutor(concurrent + 1) as pool:
            assert client.post(path, json=body).status_code == 200  # loads the base

            def send(seed: int) -> httpx.Response:
                with server.client() as own:
                    return own.post(path, json={**body, "seed": seed})

            gate.hold()
            running = pool.submit(send, 100)
            assert gate.running.wait(timeout=60)  # the worker is busy with it; the queue is empty
            futures = [pool.submit(send, seed) for seed in range(concurrent)]
            refused = []
            for future in as_completed(futures, timeout=120):  # 503s arrive while the worker is still held
                refused.append(future.result())
                if len(refused) == concurrent - queue_size:
                    break
            for response in refused:
                _assert_overloaded(response)
            assert not gate.open.is_set() and not running.done()
            gate.open.set()
            statuses = sorted(future.result(timeout=120).status_code for future in futures)
            assert statuses == [200] * queue_size + [503] * (concurrent - queue_size)
            assert running.result(timeout=120).status_code == 200
            assert client.post(path, json=body).status_code == 200  # still serving, queue empty again
            assert client.get("/readyz").status_code == 200
            if kind == "image":
                history = client.get("/v1/generations", params={"limit": 100}).json()["data"]
                assert len(history) == 1 + 1 + queue_size + 1
    finally:
        gate.open.set()
        server.stop()


def test_refused_and_failed_requests_give_their_place_back(
    tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A place held by a request that then fails (bad input found by planning, unknown model) is free again for
    the next request; one queue place: with the worker held, one request waits and the next is refused."""
    settings = Settings(home=make_home(tmp_path, tiny_dir), port=free_port(), queue_size=1, max_batch_size=1)
    server = start_server(settings)
    path, body = ENGINES["image"]
    gate = Gate()
    gate.install(monkeypatch, _engine(server, "image"))
    gate.open.set()
    try:
        with server.client() as client, ThreadPoolExecutor(2) as pool:
            assert client.post(path, json=body).status_code == 200
            gate.hold()
            running = pool.submit(client.post, path, json=body)
            assert gate.running.wait(timeout=60)
            for _ in range(3):  # each holds the only place, fails after it, and gives it back
                assert client.post(path, json={**body, "size": "65x65"}).status_code == 400
                assert client.post(path, json={**body, "model": "no-such-model"}).status_code == 404
                assert client.post(path, json={**body, "steps": "many"}).status_code == 400
            waiting = pool.submit(client.post, path, json=body)
            engine = _engine(server, "image")
            deadline = time.monotonic() + 60
            while engine.stats()["models"]["tiny-sd15"]["queue_depth"] < 1:  # until `waiting` is queued
                assert time.monotonic() < deadline and not waiting.done()
                time.sleep(0.01)
            with server.client() as other:
                _assert_overloaded(other.post(path, json=body))
                # A multipart edit is not read by the gate before routing: its dependency holds the place.
                png = io.BytesIO()
                Image.new("RGB", (64, 64), (200, 30, 30)).save(png, format="PNG")
                form = {"prompt": "a red square", "model": "tiny-sd15", "size": "64x64", "steps": "4"}
                files = {"image": ("in.png", png.getvalue(), "image/png")}
                _assert_overloaded(other.post("/v1/images/edits", data=form, files=files))
                # A streamed request waits in the same queue: refused with the 503 before any event.
                _assert_overloaded(other.post(path, json={**body, "stream": True, "partial_images": 1}))
            gate.open.set()
            assert running.result(timeout=120).status_code == 200
            assert waiting.result(timeout=120).status_code == 200
            assert client.post("/v1/images/edits", data=form, files=files).status_code == 200
            streamed = client.post(path, json={**body, "stream": True})
            assert streamed.status_code == 200 and "event: image_generation.completed" in streamed.text
    finally:
        gate.open.set()
        server.stop()


def test_a_full_queue_is_refused_before_auth(tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The place is held before the key is checked: with the queue full even a bad key gets the 503 (no database
    read for it), and the same bad key gets its 401 once there is room."""
    home = make_home(tmp_path, tiny_dir)
    settings = Settings(home=home, port=free_port(), queue_size=1, max_batch_size=1)
    with open_database(settings) as session:
        key = users_repo.create_key(session=session, name="alice").key
        session.commit()
    server = start_server(settings)
    path, body = ENGINES["image"]
    gate = Gate()
    gate.install(monkeypatch, _engine(server, "image"))
    gate.open.set()
    try:
        with server.client(key) as client, server.client("gf-not-a-key") as stranger, ThreadPoolExecutor(2) as pool:
            assert stranger.post(path, json=body).status_code == 401
            assert client.post(path, json=body).status_code == 200
            gate.hold()
            running = pool.submit(client.post, path, json=body)
            assert gate.running.wait(timeout=60)
            waiting = pool.submit(client.post, path, json=body)
            engine = _engine(server, "image")
            deadline = time.monotonic() + 60
            while engine.stats()["models"]["tiny-sd15"]["queue_depth"] < 1:
                assert time.monotonic() < deadline and not waiting.done()
                time.sleep(0.01)
            _assert_overloaded(stranger.post(path, json=body))
            _assert_overloaded(client.post(path, json=body))
            gate.open.set()
            assert [running.result(timeout=120).status_code, waiting.result(timeout=120).status_code] == [200, 200]
            assert stranger.post(path, json=body).status_code == 401
    finally:
        gate.open.set()
        server.stop()


def test_the_gate_covers_every_json_generation_route(tmp_path: Path, tiny_dir: Path) -> None:
    """Routes whose handlers take a queue place are admitted before routing (a renamed route or a FastAPI change
    must not quietly send them back through routing and dependencies first)."""
    app = create_app(Settings(home=make_home(tmp_path, tiny_dir), port=free_port()))
    gated = {path: route.path for path, (_lane, route) in _gated_routes(app.routes)}
    generating = (
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/chat/completions",
        "/v1/completions",
        # the seed systems' generation routes queue in the same engines (api/routes/compat)
        "/compat/super-realism/generate/",
        "/compat/postpulse/generate-image",
        "/compat/dreambooth/generate",
    )
    assert gated == {path: path for path in generating}
