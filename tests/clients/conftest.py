"""Clients no one here wrote, pointed at the real test server. LiteLLM fetches its model cost map from GitHub
when imported unless told to use its bundled copy, so that is set before any test imports it."""

from __future__ import annotations

import os
from typing import Any, cast

import pytest

from tests.conftest import LiveServer

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"


@pytest.fixture(scope="package", autouse=True)
def loaded_encoder(live: LiveServer) -> None:
    """The sentence encoder (embeddings, the router behind model "auto") loaded before the first request: its
    ONNX export can take longer than a client's timeout on a busy machine."""
    cast(Any, live.server.config.app).state.services.embeddings.encoder.load()
