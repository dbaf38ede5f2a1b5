"""`model="auto"` chat routing and `POST /v1/diagrams` through the real server, the openai client and the real
router, PlantUML and the shipped models (mini-llm writes PlantUML; untrained tiny-llm shows the retry loop)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import Keys, LiveServer
from tests.helpers import assert_error


@pytest.fixture
def client(live: LiveServer, keys: Keys) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=keys.alice, max_retries=0)


def test_auto_routes_an_image_request_to_the_image_model(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "generate a photo of a red fox in the snow"}], seed=3
    )
    extra = response.model_dump()
    assert extra["route"]["route"] == "image" and extra["route"]["label"] == "image"
    assert abs(sum(extra["route"]["scores"].values()) - 1) < 1e-4
    assert response.model == "mini-sd15"
    message = extra["choices"][0]["message"]
    [attachment] = message["attachments"]
    assert attachment["type"] == "image" and attachment["url"] in message["content"]
    png = httpx.get(attachment["url"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_auto_routes_small_talk_to_the_text_model(client: openai.OpenAI) -> None:
    messages = [
        {"role": "user", "content": "draw a cat"},
        {"role": "assistant", "content": "Here is your image."},
        {"role": "user", "content": "thanks! how are you doing today?"},
    ]
    response = client.chat.completions.create(model="auto", messages=messages, max_tokens=8, temperature=0)  # type: ignore[arg-type]
    extra = response.model_dump()
    assert extra["route"]["route"] == "chat" and extra["route"]["message_index"] == 2
    assert response.model == "mini-llm"  # the pretrained one build-tiny installs, picked over tiny-llm
    assert response.usage is not None and response.usage.completion_tokens >= 1
    assert "attachments" not in extra["choices"][0]["message"] or not extra["choices"][0]["message"]["attachments"]

    stream = client.chat.completions.create(
        model="auto",
        messages=messages,
        max_tokens=4,
        temperature=0,
        stream=True,  # type: ignore[arg-type]
    )
    chunks = list(stream)
    assert chunks[0].model_dump()["route"]["route"] == "chat"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_auto_routes_a_diagram_request_through_the_retry_loop(client: openai.OpenAI) -> None:
    prompt = "make a plantuml sequence diagram of a user logging in to a bank website"
    response = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": prompt}], seed=1)
    extra = response.model_dump()
    assert extra["route"]["route"] == "diagram"
    assert response.model == "mini-llm"  # diagrams follow the default text model unless the settings name one
    content = response.choices[0].message.content or ""
    code = content.split("\n\nRendered diagram: ")[0]
    assert code.startswith("```plantuml\n@start") and code.endswith("\n```")
    [attachment] = extra["choices"][0]["message"]["attachments"]  # mini-llm's PlantUML passed the check: drawn
    assert attachment["type"] == "diagram" and attachment["url"] in content
    assert httpx.get(attachment["url"]).status_code == 200
    stream = list(
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": prompt}], seed=1, stream=True
        )
    )
    assert stream[0].model_dump()["route"]["route"] == "diagram"
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed.startswith(code + "\n\nRendered diagram: ")  # the same code; a new drawing, so a new url


def test_generate_diagram_defaults_to_the_picked_text_model(alice: httpx.Client) -> None:
    response = alice.post(
        "/v1/diagrams", json={"prompt": "a sequence diagram of a user logging in", "max_attempts": 1, "max_tokens": 48}
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == alice.get("/readyz").json()["defaults"]["text_model"] == "mini-llm"


def test_generate_diagram_retries_and_reports_every_try(alice: httpx.Client) -> None:
    response = alice.post(
        "/v1/diagrams",
        json={"prompt": "a class diagram of a library", "model": "tiny-llm", "max_attempts": 2, "max_tokens": 24},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "diagram" and body["model"] == "tiny-llm"
    assert len(body["tries"]) == body["attempts"]
    assert [t["temperature"] for t in body["tries"]][:1] == [0.0]
    if body["valid"]:  # a random model may, rarely, write something PlantUML accepts
        assert body["url"] and body["errors"] == []
    else:
        assert body["attempts"] == 2 and "url" not in body and body.get("id") is None
        assert body["errors"] and all("message" in e for e in body["errors"])
        assert [t["seed"] for t in body["tries"]] == [0, 1]


def test_generate_diagram_bad_input(alice: httpx.Client, bob: httpx.Client) -> None:
    def post(**body: object) -> httpx.Response:
        return alice.post("/v1/diagrams", json={"prompt": "a state diagram of a door", **body})

    assert_error(post(prompt=""), 400)
    assert_error(post(prompt="   "), 400, param="prompt")
    assert_error(post(model="nope"), 404, param="model")
    assert_error(post(model="tiny-sd15"), 400, param="model")
    assert_error(post(model="auto"), 400, param="model")
    assert_error(post(max_attempts=11), 400, param="max_attempts")
    assert_error(post(max_attempts=0), 400)
    assert_error(post(format="gif"), 400)
    assert_error(post(max_tokens=10**7), 422, param="max_tokens")
    assert_error(alice.post("/v1/diagrams", json={"prompt": "x" * 20_001}), 400)
    assert_error(httpx.post(str(alice.base_url) + "/v1/diagrams", json={"prompt": "a door"}), 401)
    assert_error(bob.post("/v1/diagrams", json={"prompt": "a door", "model": "ft-nope"}), 404)
