"""Seed 002 (PostPulse) under /compat/postpulse, through the real server: its documented request (only the base URL
changed) answers its documented shape; a base image comes through the dataset URLs' SSRF guard."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

from tests.conftest import LiveServer, LoraFiles
from tests.helpers import assert_error, snapshot

URL = "/compat/postpulse/generate-image"
# The document's request; its `base_image_url` is a placeholder ("[optional URL ...]"), so it is left out here
# and sent as a real URL below.
SEED_REQUEST = {
    "prompt": "Professional product photo of a smartphone against a dark gradient background",
    "industry": "technology",
    "style": "professional",
}


def assert_documented_shape(answer: dict[str, str]) -> None:
    assert {"generated_image_url", "generation_time"} <= set(answer)
    assert re.fullmatch(r"\d+\.\d+s", answer["generation_time"]), answer


def test_the_documented_request_answers_the_documented_shape(live: LiveServer, alice: httpx.Client) -> None:
    response = alice.post(URL, json=SEED_REQUEST)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_documented_shape(answer)
    image = httpx.get(answer["generated_image_url"])  # a signed URL opens without the key, like theirs
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    generation = alice.get(f"/v1/generations/{answer['id']}").json()  # in the history and the studio's gallery
    assert generation["kind"] == "generation"
    assert generation["model"] == "tiny-flux"
    assert generation["params"]["style"] == "professional"
    assert generation["revised_prompt"] != generation["prompt"]  # the style's words were added


def test_base_image_url_makes_it_image_to_image(alice: httpx.Client, image_server: str) -> None:
    response = alice.post(URL, json={**SEED_REQUEST, "base_image_url": f"{image_server}/red.png"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_documented_shape(answer)
    generation = alice.get(f"/v1/generations/{answer['id']}").json()
    assert generation["kind"] == "edit"
    assert "strength" in generation["params"]


def test_industry_uses_the_callers_adapter_tagged_for_it(bob: httpx.Client, lora_files: LoraFiles) -> None:
    imported = bob.post(
        "/v1/models",
        files={"file": ("lora.safetensors", lora_files.flux.read_bytes(), "application/octet-stream")},
        data={"base": "tiny-flux", "name": "tech", "tags": "industry=technology"},
    )
    assert imported.status_code in (200, 201), imported.text
    adapter_id = imported.json()["id"]
    try:
        answer = bob.post(URL, json=SEED_REQUEST).json()
        generation = bob.get(f"/v1/generations/{answer['id']}").json()
        assert [lora["id"] for lora in generation["params"]["loras"]] == [adapter_id]
        assert generation["params"]["industry"] == "technology"
    finally:
        bob.delete(f"/v1/models/{adapter_id}")


class _Counter(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, type[_Counter]]]:
    """A server on 127.0.0.1 (not an allowed network) that counts every request it gets."""
    handler = type("Counter", (_Counter,), {"hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_private_addresses_are_refused_and_never_contacted(
    live: LiveServer, alice: httpx.Client, image_server: str, loopback_server: tuple[str, type[_Counter]]
) -> None:
    loopback, counter = loopback_server
    before = snapshot(live, alice)
    for url in (
        f"{loopback}/x.png",
        f"http://localhost:{loopback.rsplit(':', 1)[1]}/x.png",
        "http://10.0.0.1/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/x.png",
        f"{image_server}/to-private",
        f"{image_server}/to-loopback",
        f"{image_server}/page.html",
        "file:///etc/passwd",
        "[optional URL to base image for image-to-image transformation]",
    ):
        error = assert_error(alice.post(URL, json={**SEED_REQUEST, "base_image_url": url}), 400, param="base_image_url")
        assert "could not be used" in error["message"], url
    assert counter.hits == 0
    assert snapshot(live, alice) == before


def test_bad_input_is_refused_in_openai_shape(live: LiveServer, alice: httpx.Client, bob: httpx.Client) -> None:
    before = snapshot(live, alice)
    assert_error(alice.post(URL, json={"industry": "technology"}), 400, param="prompt")
    assert_error(alice.post(URL, json={**SEED_REQUEST, "prompt": 5}), 400, param="prompt")
    assert_error(alice.post(URL, json={**SEED_REQUEST, "industry": ["a"]}), 400, param="industry")
    assert_error(alice.post(URL, json={**SEED_REQUEST, "base_image_url": 3}), 400, param="base_image_url")
    assert_error(alice.post(URL, json={**SEED_REQUEST, "style": "baroque"}), 400, param="style")
    assert_error(alice.post(URL, json={**SEED_REQUEST, "colour": "red"}), 400, param="colour")
    assert_error(httpx.post(f"{live.url}{URL}", json=SEED_REQUEST), 401)
    assert snapshot(live, alice) == before
    # another user's image: the signed URL is the only way in; bob's key alone finds nothing
    answer = alice.post(URL, json=SEED_REQUEST).json()
    assert_error(bob.get(f"/v1/images/{answer['id']}"), 404)
    assert_error(bob.get(f"/v1/generations/{answer['id']}"), 404)
    assert Image.open(io.BytesIO(alice.get(f"/v1/images/{answer['id']}").content)).format == "PNG"
