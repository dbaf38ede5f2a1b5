"""A full queue answers 503 with Retry-After at once, and the server keeps serving."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from genfoundry.config import Settings
from tests.conftest import free_port, make_home, start_server


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
