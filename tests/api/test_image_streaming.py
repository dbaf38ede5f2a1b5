"""Streamed generations and edits (`stream: true`, `partial_images`): OpenAI's named SSE events through the real
server and through the official `openai` client, each event valid against OpenAI's published schema."""

from __future__ import annotations

import base64
import io
import json

import httpx
import openai
import pytest
from PIL import Image

from genfoundry.inference.image_previews import preview_steps
from tests.conftest import LiveServer
from tests.helpers import assert_error, snapshot
from tests.openai_schema import assert_matches_openai


def read_events(response: httpx.Response) -> list[tuple[str, dict]]:
    """(event name, parsed data) of each SSE block."""
    events = []
    for block in response.text.strip().split("\n\n"):
        lines = block.split("\n")
        name = next(line.removeprefix("event: ") for line in lines if line.startswith("event: "))
        data = "\n".join(line.removeprefix("data: ") for line in lines if line.startswith("data: "))
        events.append((name, json.loads(data)))
    return events


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def png(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_preview_steps_are_evenly_spaced_and_never_the_last() -> None:
    assert preview_steps(4, 3) == [0, 1, 2]
    assert preview_steps(30, 2) == [9, 19]
    assert preview_steps(8, 1) == [3]
    assert preview_steps(2, 3) == [0]  # a short run gives fewer, as OpenAI allows
    assert preview_steps(10, 0) == []


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl", "tiny-flux"])
def test_streamed_generation_sends_partials_then_completed(alice: httpx.Client, model: str) -> None:
    body = {"model": model, "prompt": "a fox", "size": "64x64", "steps": 4, "seed": 5, "stream": True}
    response = alice.post("/v1/images/generations", json={**body, "partial_images": 3, "output_format": "jpeg"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = read_events(response)
    assert [name for name, _ in events] == [*["image_generation.partial_image"] * 3, "image_generation.completed"]
    for name, event in events:
        assert event["type"] == name
        assert_matches_openai(event, "POST", "/v1/images/generations", stream_event=True)
        assert event["output_format"] == "jpeg"
        assert decode(event["b64_json"]).format == "JPEG"
        assert decode(event["b64_json"]).size == (64, 64)
    assert [event["partial_image_index"] for _, event in events[:-1]] == [0, 1, 2]
    completed = events[-1][1]
    assert completed["usage"]["total_tokens"] == 0
    # the final image is the one a plain request makes, and it is in the history
    plain = alice.post(
        "/v1/images/generations",
        json={**body, "stream": False, "output_format": "jpeg", "response_format": "b64_json"},
    )
    assert plain.json()["data"][0]["b64_json"] == completed["b64_json"]  # previews leave the denoising alone
    row = alice.get(f"/v1/generations/{completed['id']}").json()
    assert row["seed"] == 5
    assert row["params"]["output_format"] == "jpeg"


def test_no_partials_is_one_completed_event(alice: httpx.Client) -> None:
    response = alice.post(
        "/v1/images/generations",
        json={"model": "tiny-sd15", "prompt": "a fox", "size": "64x64", "steps": 2, "stream": True},
    )
    assert response.status_code == 200, response.text
    [(name, event)] = read_events(response)
    assert name == "image_generation.completed"
    assert event["output_format"] == "png"
    assert event["quality"] == "auto"


def test_streamed_edit_sends_image_edit_events(alice: httpx.Client) -> None:
    response = alice.post(
        "/v1/images/edits",
        files={"image": ("in.png", png(), "image/png")},
        data={
            "prompt": "a blue square",
            "model": "tiny-sd15",
            "size": "64x64",
            "steps": "8",
            "strength": "0.5",
            "stream": "true",
            "partial_images": "2",
        },
    )
    assert response.status_code == 200, response.text
    events = read_events(response)
    assert [name for name, _ in events] == [*["image_edit.partial_image"] * 2, "image_edit.completed"]
    for _, event in events:
        assert_matches_openai(event, "POST", "/v1/images/edits", stream_event=True)
    assert alice.get(f"/v1/generations/{events[-1][1]['id']}").json()["kind"] == "edit"


def test_bad_stream_requests_are_refused_before_the_stream(live: LiveServer, alice: httpx.Client) -> None:
    before = snapshot(live, alice)
    body = {"model": "tiny-sd15", "prompt": "a fox", "size": "64x64", "steps": 2, "stream": True}
    assert_error(alice.post("/v1/images/generations", json={**body, "partial_images": 4}), 400, param="partial_images")
    assert_error(alice.post("/v1/images/generations", json={**body, "n": 2}), 400, param="n")
    assert_error(alice.post("/v1/images/generations", json={**body, "model": "nope"}), 404, param="model")
    assert snapshot(live, alice) == before


def test_openai_client_streams_partial_images(alice_openai: openai.OpenAI) -> None:
    client = alice_openai
    stream = client.images.generate(
        model="tiny-flux",
        prompt="a lighthouse",
        size="64x64",
        stream=True,
        partial_images=2,
        output_format="webp",
        extra_body={"steps": 4, "seed": 3},
    )
    events = list(stream)
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [event.partial_image_index for event in events[:2]] == [0, 1]  # type: ignore[union-attr]
    assert decode(events[-1].b64_json).format == "WEBP"


def test_openai_client_streams_an_edit(alice_openai: openai.OpenAI) -> None:
    client = alice_openai
    stream = client.images.edit(
        model="tiny-sd15",
        image=("in.png", png(), "image/png"),
        prompt="a blue square",
        size="64x64",
        stream=True,
        partial_images=1,
        extra_body={"steps": 4, "strength": 0.75},
    )
    assert [event.type for event in stream] == ["image_edit.partial_image", "image_edit.completed"]


def test_a_failure_after_the_stream_began_is_one_error_event(
    live: LiveServer, alice: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine fails after a preview went out (mocked: a pipeline crash cannot be provoked with valid input):
    the stream ends with an `error` event in OpenAI's error shape, nothing is stored, the server goes on."""
    from genfoundry.inference.image_runner import ImageRunner

    def crash(self: ImageRunner, jobs: list) -> None:
        if jobs[0].on_partial is not None:
            jobs[0].on_partial(0, Image.new("RGB", (64, 64)))
        raise RuntimeError("the pipeline crashed")

    body = {"model": "tiny-sd15", "prompt": "a fox", "size": "64x64", "steps": 4, "stream": True, "partial_images": 1}
    before = snapshot(live, alice)
    with monkeypatch.context() as patch:
        patch.setattr(ImageRunner, "run", crash)
        response = alice.post("/v1/images/generations", json=body)
    assert response.status_code == 200  # the status line went out with the first event
    events = read_events(response)
    assert [name for name, _ in events] == ["image_generation.partial_image", "error"]
    error = events[-1][1]["error"]
    assert (error["type"], error["code"]) == ("server_error", "internal_error")
    assert "crashed" not in error["message"]  # no internals leak
    assert snapshot(live, alice) == before
    assert alice.post("/v1/images/generations", json=body).status_code == 200
