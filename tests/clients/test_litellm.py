"""LiteLLM's OpenAI provider (`model="openai/<id>"`, `api_base` at /v1) against the real server: chat, streaming,
tools, embeddings and images."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import Keys, LiveServer

litellm = pytest.importorskip("litellm")

USER = [{"role": "user", "content": "A sequence diagram of a login"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def server(live: LiveServer, keys: Keys) -> dict[str, Any]:
    return {"api_base": f"{live.url}/v1", "api_key": keys.alice, "num_retries": 0}


def test_completion(server: dict[str, Any]) -> None:
    response = litellm.completion(model="openai/tiny-llm", messages=USER, max_tokens=8, temperature=0, **server)
    assert isinstance(response.choices[0].message.content, str)
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage.completion_tokens > 0


def test_streaming(server: dict[str, Any]) -> None:
    chunks = list(litellm.completion(model="openai/tiny-llm", messages=USER, max_tokens=8, stream=True, **server))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] in ("stop", "length")


def test_tools_are_accepted(server: dict[str, Any]) -> None:
    response = litellm.completion(
        model="openai/tiny-llm", messages=USER, tools=[WEATHER], tool_choice="auto", max_tokens=8, **server
    )
    assert response.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_model_auto(server: dict[str, Any]) -> None:
    messages = [{"role": "user", "content": "what is the capital of france?"}]
    response = litellm.completion(model="openai/auto", messages=messages, max_tokens=8, **server)
    assert isinstance(response.choices[0].message.content, str)


def test_embedding(server: dict[str, Any]) -> None:
    response = litellm.embedding(model="openai/all-MiniLM-L6-v2", input=["a red fox", "a blue whale"], **server)
    vectors = np.array([item["embedding"] for item in response.data])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_image_generation(server: dict[str, Any]) -> None:
    # LiteLLM refuses `response_format` for a model it does not know, so the answer is the default: a URL.
    response = litellm.image_generation(model="openai/tiny-sd15", prompt="a lighthouse", size="64x64", **server)
    url = response.data[0].url
    assert url and "/v1/images/" in url
    image = Image.open(io.BytesIO(httpx.get(url, timeout=60).raise_for_status().content))
    assert image.size == (64, 64)
