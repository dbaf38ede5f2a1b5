"""/v1/embeddings through the real server with the shared all-MiniLM-L6-v2, by HTTP and the official client."""

from __future__ import annotations

import base64
from typing import Any, cast

import httpx
import numpy as np
import openai
import pytest

from genfoundry.router.encoder import ENCODER_ALIASES, encoder_dir
from tests.conftest import LiveServer
from tests.helpers import assert_error
from tests.openai_schema import assert_matches_openai

MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module", autouse=True)
def loaded_encoder(live: LiveServer) -> None:
    """The encoder loaded before the first request (its ONNX export takes minutes on a busy machine, longer than
    a request's timeout); the server runs in this process, so its services are at hand."""
    cast(Any, live.server.config.app).state.services.embeddings.encoder.load()


@pytest.fixture(scope="module")
def tokenizer() -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(encoder_dir())


def vectors(body: dict) -> np.ndarray:
    return np.array([item["embedding"] for item in body["data"]], dtype=np.float32)


def test_strings_embed_in_openai_shape(alice: httpx.Client) -> None:
    texts = ["a red fox in the snow", "a fox in snow, red", "a sequence diagram of a login"]
    response = alice.post("/v1/embeddings", json={"model": MODEL, "input": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["model"] == MODEL
    assert [(item["object"], item["index"]) for item in body["data"]] == [("embedding", i) for i in range(3)]
    rows = vectors(body)
    assert rows.shape == (3, 384)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    similarity = rows @ rows.T
    assert similarity[0, 1] > similarity[0, 2]  # a real sentence encoder: paraphrases are closer
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 3 * 2
    assert_matches_openai(body, "POST", "/v1/embeddings")


def test_one_string_equals_its_tokens_and_base64(alice: httpx.Client, tokenizer: object) -> None:
    text = "draw a cat on a skateboard"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    by_text = alice.post("/v1/embeddings", json={"model": MODEL, "input": text}).json()
    by_ids = alice.post("/v1/embeddings", json={"model": MODEL, "input": ids}).json()
    by_lists = alice.post("/v1/embeddings", json={"model": MODEL, "input": [ids, ids[:2]]}).json()
    encoded = alice.post("/v1/embeddings", json={"model": MODEL, "input": text, "encoding_format": "base64"}).json()
    assert np.allclose(vectors(by_text), vectors(by_ids), atol=1e-5)
    assert np.allclose(vectors(by_lists)[0], vectors(by_text)[0], atol=1e-5)
    assert by_ids["usage"]["prompt_tokens"] == len(ids) + 2  # [CLS] and [SEP]
    decoded = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    assert np.array_equal(decoded, vectors(by_text)[0])


def test_aliases_and_native_dimensions(alice: httpx.Client) -> None:
    for alias in sorted(ENCODER_ALIASES):
        response = alice.post("/v1/embeddings", json={"model": alias, "input": "hello", "dimensions": 384})
        assert response.status_code == 200, response.text
        assert response.json()["model"] == alias


def test_openai_client_embeds(alice_openai: openai.OpenAI) -> None:
    floats = alice_openai.embeddings.create(model=MODEL, input=["one", "two"], encoding_format="float")
    default = alice_openai.embeddings.create(model=MODEL, input=["one", "two"])  # the client asks for base64
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 384
    assert np.allclose(floats.data[1].embedding, default.data[1].embedding)
    assert floats.usage.prompt_tokens > 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": "   "}, "input"),
        ({"input": []}, "input"),
        ({"input": ["fine", ""]}, "input"),
        ({"input": ["a"] * 10_000}, "input"),
        ({"input": [1, 2, 10**9]}, "input"),
        ({"input": [[101], [-1]]}, "input"),
        ({"input": [[]]}, "input"),
        ({"input": ["text", [1, 2]]}, "input"),
        ({"input": 42}, "input"),
        ({"input": None}, "input"),
        ({"input": [True, False]}, "input"),
        ({"input": [1.5, 2]}, "input"),
        ({"input": "x", "dimensions": 385}, "dimensions"),
        ({"input": "x", "dimensions": 128}, "dimensions"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "dimensions": "many"}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "model": "tiny-llm"}, "model"),
        ({"input": "x", "model": "tiny-sd15"}, "model"),
        ({"input": "x", "model": ""}, "model"),
        ({"input": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(alice: httpx.Client, body: dict, param: str) -> None:
    response = alice.post("/v1/embeddings", json={"model": MODEL, **body})
    assert_error(response, 400, param=param)
    assert_matches_openai(response.json(), "POST", "/v1/embeddings", 400)


def test_unknown_model_is_404_and_auth_is_required(live: LiveServer, alice: httpx.Client) -> None:
    assert_error(alice.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"}), 404)
    with live.client() as anonymous:
        assert_error(anonymous.post("/v1/embeddings", json={"model": MODEL, "input": "x"}), 401)
    # The server is still up and serving after all of the above.
    assert alice.post("/v1/embeddings", json={"model": MODEL, "input": "still here"}).status_code == 200


def test_listed_among_the_models_with_its_capability(alice: httpx.Client) -> None:
    listed = {model["id"]: model for model in alice.get("/v1/models").json()["data"]}
    assert listed[MODEL]["capabilities"] == ["embeddings"] and listed[MODEL]["family"] == "text-embedding"
    only = alice.get("/v1/models", params={"capability": "embeddings"}).json()["data"]
    assert [model["id"] for model in only] == [MODEL]
    alias = alice.get("/v1/models/all-minilm-l6-v2")
    assert alias.status_code == 200 and alias.json()["capabilities"] == ["embeddings"]
    assert_error(alice.delete(f"/v1/models/{MODEL}"), 400, param="model")
    assert_error(alice.patch(f"/v1/models/{MODEL}", json={"name": "mine"}), 400, param="model")
