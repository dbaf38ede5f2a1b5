"""LangChain's OpenAI integration (`ChatOpenAI`, `OpenAIEmbeddings` with `base_url` at /v1) against the real
server. `OpenAIEmbeddings` needs `check_embedding_ctx_length=False`: by default it sends tiktoken (cl100k) token
ids, which are not the embedding model's vocabulary (and tiktoken would download its encoding)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conftest import Keys, LiveServer

langchain_openai = pytest.importorskip("langchain_openai")


@pytest.fixture
def server(live: LiveServer, keys: Keys) -> dict[str, Any]:
    return {"base_url": f"{live.url}/v1", "api_key": keys.alice, "max_retries": 0}


def test_chat_invoke_and_stream(server: dict[str, Any]) -> None:
    chat = langchain_openai.ChatOpenAI(model="tiny-llm", max_tokens=8, temperature=0, **server)
    answer = chat.invoke("A sequence diagram of a login")
    assert isinstance(answer.content, str) and answer.content
    assert answer.response_metadata["finish_reason"] in ("stop", "length")
    pieces = list(chat.stream("A sequence diagram of a login"))
    assert "".join(str(piece.content) for piece in pieces) == answer.content  # greedy: the same text


def test_bound_tools_are_accepted(server: dict[str, Any]) -> None:
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    chat = langchain_openai.ChatOpenAI(model="tiny-llm", max_tokens=8, temperature=0, **server)
    answer = chat.bind_tools([get_weather]).invoke("What is the weather in Paris?")
    assert answer.response_metadata["finish_reason"] in ("stop", "length", "tool_calls")
    assert all(call["name"] == "get_weather" for call in answer.tool_calls)


def test_embeddings(server: dict[str, Any]) -> None:
    embeddings = langchain_openai.OpenAIEmbeddings(model="all-MiniLM-L6-v2", check_embedding_ctx_length=False, **server)
    documents = embeddings.embed_documents(["a red fox in the snow", "a sequence diagram of a login"])
    query = embeddings.embed_query("a fox in the snow")
    assert np.array(documents).shape == (2, 384)
    assert np.dot(query, documents[0]) > np.dot(query, documents[1])
