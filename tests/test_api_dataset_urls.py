"""Datasets from image URLs through the real server: a job with progress, and the SSRF guard."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.test_api_bad_input import assert_error
from tests.test_api_datasets import image_bytes

PAGES: dict[str, tuple[int, str, bytes]] = {
    "/red.png": (200, "image/png", image_bytes((255, 0, 0))),
    "/blue.jpg": (200, "image/jpeg", image_bytes((0, 0, 255), fmt="JPEG")),
    "/red-again.png": (200, "image/png", image_bytes((255, 0, 0))),
    "/page.html": (200, "text/html", b"<html><body>not an image</body></html>"),
    "/fake.jpg": (200, "image/jpeg", b"<html>pretending</html>"),
}


class ImageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/to-private":
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.1/x.png")
            self.end_headers()
            return
        if self.path == "/to-loopback":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/x.png")
            self.end_headers()
            return
        status, content_type, body = PAGES.get(self.path, (404, "text/plain", b"missing"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.2", 0), ImageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_dataset_from_urls(alice: httpx.Client, bob: httpx.Client, image_server: str) -> None:
    urls = [
        f"{image_server}/red.png",
        f"{image_server}/blue.jpg",
        f"{image_server}/red-again.png",
        f"{image_server}/page.html",
        f"{image_server}/fake.jpg",
        f"{image_server}/missing.png",
        f"{image_server}/to-private",
        f"{image_server}/to-loopback",
        "http://127.0.0.1:9/x.png",
        "http://[::1]:9/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/x.png",
        "http://localhost:9/x.png",
        "file:///etc/passwd",
        "ftp://example.com/x.png",
    ]
    response = alice.post("/v1/datasets/from-urls", json={"name": "from web", "urls": urls, "trigger_word": "zq"})
    assert response.status_code == 202, response.text
    dataset = response.json()
    assert dataset["status"] in ("processing", "ready")
    job = wait_for_job(alice, dataset["job_id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"step": len(urls), "total": len(urls)}
    assert bob.get(f"/v1/jobs/{dataset['job_id']}").status_code == 404

    final = alice.get(f"/v1/datasets/{dataset['id']}").json()
    assert final["status"] == "ready"
    assert final["trigger_word"] == "zq"
    assert (final["stats"]["accepted"], final["stats"]["duplicates"]) == (2, 1)
    items = {item["source"]: item for item in alice.get(f"/v1/datasets/{dataset['id']}/items").json()["data"]}
    assert items[urls[0]]["status"] == "ok"
    assert items[urls[2]]["status"] == "duplicate"
    for url in urls[3:]:
        assert items[url]["status"] == "rejected", (url, items[url])
        assert items[url]["reason"], url
    assert "404" in items[f"{image_server}/missing.png"]["reason"]
    events = alice.get(f"/v1/jobs/{dataset['job_id']}/events").json()["data"]
    assert [e["message"] for e in events if e["type"] == "status"][-1] == "succeeded"


def test_urls_with_nothing_valid_fail_the_dataset(alice: httpx.Client) -> None:
    response = alice.post("/v1/datasets/from-urls", json={"name": "bad", "urls": ["http://127.0.0.1:9/x.png"]})
    dataset = response.json()
    job = wait_for_job(alice, dataset["job_id"])
    assert job["status"] == "failed"
    final = alice.get(f"/v1/datasets/{dataset['id']}").json()
    assert final["status"] == "failed"
    assert "no URL" in final["error"]


def test_bad_url_requests(alice: httpx.Client) -> None:
    assert_error(alice.post("/v1/datasets/from-urls", json={"name": "x", "urls": []}), 400)
    assert_error(alice.post("/v1/datasets/from-urls", json={"name": "x", "urls": ["u"] * 1001}), 400)
    assert_error(alice.post("/v1/datasets/from-urls", json={"name": "x", "urls": "http://a"}), 400)
    assert_error(alice.post("/v1/datasets/from-urls", json={"urls": ["http://a"]}), 400)
