"""/v1/classify and /v1/route through the real server with the shipped router (the real all-MiniLM-L6-v2)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import httpx
import pytest

from tests.conftest import Keys, LiveServer
from tests.helpers import assert_error

LABELS = {"image", "diagram", "chat"}
CLEAR = [
    ("generate a photo of a red sports car on a mountain road at sunset", "image"),
    ("draw a plantuml sequence diagram of a user logging in with a password", "diagram"),
    ("what is the capital of france?", "chat"),
]


def check_item(item: dict[str, Any], index: int) -> None:
    assert item["index"] == index
    assert set(item["scores"]) == LABELS
    assert math.isclose(sum(item["scores"].values()), 1.0, abs_tol=1e-6)
    assert item["label"] == max(item["scores"], key=item["scores"].get)
    ranked = sorted(item["scores"].values(), reverse=True)
    assert math.isclose(item["margin"], ranked[0] - ranked[1], abs_tol=1e-5)
    assert isinstance(item["ambiguous"], bool)


def test_classify_one_text(alice: httpx.Client) -> None:
    response = alice.post("/v1/classify", json={"input": CLEAR[0][0]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    assert body["model"] == "router-default"
    assert len(body["data"]) == 1
    check_item(body["data"][0], 0)
    assert body["data"][0]["label"] == "image"


def test_classify_a_list_in_one_batch(live: LiveServer, alice: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server runs in this process, so its encoder can be watched: a list must be one forward pass.
    classifiers = cast(Any, live.server.config.app).state.services.classifiers
    encoder = classifiers.encoder_for(classifiers.default_head())
    encoder.load()
    calls: list[int] = []
    original = encoder._encode_batch

    def counted(texts: Sequence[str]) -> Any:
        calls.append(len(texts))
        return original(texts)

    monkeypatch.setattr(encoder, "_encode_batch", counted)
    texts = [text for text, _ in CLEAR] * 30  # 90: more than the encoder's default batch of 64
    response = alice.post("/v1/classify", json={"input": texts, "model": "router-default"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert calls == [len(texts)]
    assert [item["label"] for item in data] == [label for _, label in CLEAR] * 30
    for index, item in enumerate(data):
        check_item(item, index)
    # The same text gets the same scores wherever it sits in the batch.
    assert data[0]["scores"] == pytest.approx(data[3]["scores"], abs=1e-5)


def test_long_input_is_truncated_not_refused(alice: httpx.Client) -> None:
    long = "please draw a lighthouse on a cliff in a storm " + "and waves " * 10_000
    assert len(long) > 100_000
    response = alice.post("/v1/classify", json={"input": [long, long[:4000], "hi"]})
    assert response.status_code == 200, response.text
    whole, prefix, short = response.json()["data"]
    # Only the encoder's window (256 tokens, well inside 4,000 characters here) is read.
    assert whole["scores"] == pytest.approx(prefix["scores"], abs=1e-5)
    assert short["label"] == "chat"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"input": ""}, 400, "input"),
        ({"input": "   \n\t"}, 400, "input"),
        ({"input": 42}, 400, "input"),
        ({"input": None}, 400, "input"),
        ({"input": []}, 400, "input"),
        ({"input": ["fine", ""]}, 400, "input"),
        ({"input": ["fine", 3]}, 400, "input"),
        ({"input": ["fine", None]}, 400, "input"),
        ({"input": {"text": "a cat"}}, 400, "input"),
        ({}, 400, "input"),
        ({"input": "a cat", "model": "clf_no_such_model"}, 404, "model"),
        ({"input": "a cat", "model": ""}, 400, "model"),
        ({"input": "a cat", "temperature": 1}, 400, None),
    ],
)
def test_bad_classify_requests(alice: httpx.Client, body: dict[str, Any], status: int, param: str | None) -> None:
    assert_error(alice.post("/v1/classify", json=body), status, param=param)


def test_too_many_inputs_names_the_cap(live: LiveServer, alice: httpx.Client) -> None:
    cap = live.settings.router.max_inputs
    error = assert_error(alice.post("/v1/classify", json={"input": ["draw a cat"] * 10_000}), 413, param="input")
    assert str(cap) in error["message"]
    assert alice.post("/v1/classify", json={"input": ["draw a cat"] * cap}).status_code == 200


def test_classify_needs_a_key(live: LiveServer) -> None:
    with live.client() as anonymous:
        assert_error(anonymous.post("/v1/classify", json={"input": "a cat"}), 401)


def test_route_last_user_message(alice: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "what is a sequence diagram?"},
        {"role": "assistant", "content": "A sequence diagram shows messages between participants over time."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "ok, now draw a uml sequence diagram"},
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
                {"type": "text", "text": "of a customer checking out of an online shop"},
            ],
        },
        {"role": "assistant", "content": "Working on it."},
    ]
    response = alice.post("/v1/route", json={"messages": messages})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "route"
    assert body["message_index"] == 3
    assert body["route"] == body["label"] == "diagram"
    assert set(body["scores"]) == LABELS
    assert math.isclose(sum(body["scores"].values()), 1.0, abs_tol=1e-6)

    chat = alice.post("/v1/route", json={"messages": messages[:2]}).json()
    assert (chat["route"], chat["message_index"]) == ("chat", 1)
    image = alice.post("/v1/route", json={"messages": [{"role": "user", "content": "a logo for my bakery"}]})
    assert image.json()["route"] == "image"


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "system", "content": "be brief"}, {"role": "assistant", "content": "hello"}],
        [{"role": "user", "content": "   "}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]}],
        [{"role": "user", "content": 42}],
        [{"content": "no role"}],
        "draw a cat",
    ],
)
def test_bad_route_requests(alice: httpx.Client, messages: object) -> None:
    error = assert_error(alice.post("/v1/route", json={"messages": messages}), 400)
    assert error["param"].startswith("messages"), error


def test_router_is_listed_as_a_classifier(alice: httpx.Client) -> None:
    models = {model["id"]: model for model in alice.get("/v1/models").json()["data"]}
    router = models["router-default"]
    assert router["kind"] == "classifier"
    assert set(router["labels"]) == LABELS
    assert alice.get("/v1/models/router-default").json()["kind"] == "classifier"
    assert_error(alice.delete("/v1/models/router-default"), 400, param="model")


def test_concurrent_requests_share_the_encoder(live: LiveServer, keys: Keys) -> None:
    texts = [text for text, _ in CLEAR] + ["a banner for a spring sale", "er diagram of a school", "hola, qué tal?"]
    with live.client(keys.alice) as client:
        expected = [client.post("/v1/classify", json={"input": t}).json()["data"][0] for t in texts]

    def classify(text: str) -> dict[str, Any]:
        with live.client(keys.alice) as client:
            response = client.post("/v1/classify", json={"input": text})
            assert response.status_code == 200, response.text
            item: dict[str, Any] = response.json()["data"][0]
            return item

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(classify, texts * 4))
    for index, item in enumerate(results):
        want = expected[index % len(texts)]
        assert item["label"] == want["label"]
        assert item["scores"] == pytest.approx(want["scores"], abs=1e-5)


def test_the_server_loads_the_router_at_start(live: LiveServer) -> None:
    # Nothing asks for it here: the server loaded the encoder in the background when it started.
    classifiers = cast(Any, live.server.config.app).state.services.classifiers
    encoder = classifiers.encoder_for(classifiers.default_head())
    deadline = time.monotonic() + 120
    while not encoder.loaded and time.monotonic() < deadline:
        time.sleep(0.1)
    assert encoder.loaded
    assert encoder.backend == "onnx"  # the CPU default
