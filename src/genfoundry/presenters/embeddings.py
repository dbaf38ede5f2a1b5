"""Embeddings in /v1/embeddings' shape: floats, or base64 of little-endian float32 as OpenAI sends them."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import numpy as np

from genfoundry.schemas.embeddings import EmbeddingPublic, EmbeddingResponse, EmbeddingUsage

if TYPE_CHECKING:
    from genfoundry.services.embeddings import Embeddings


def embedding_response(embeddings: Embeddings, *, encoding_format: str) -> EmbeddingResponse:
    data = []
    for index, row in enumerate(embeddings.vectors):
        vector: list[float] | str
        if encoding_format == "base64":
            vector = base64.b64encode(np.asarray(row, dtype="<f4").tobytes()).decode("ascii")
        else:
            vector = [float(value) for value in row]
        data.append(EmbeddingPublic(index=index, embedding=vector))
    usage = EmbeddingUsage(prompt_tokens=embeddings.prompt_tokens, total_tokens=embeddings.prompt_tokens)
    return EmbeddingResponse(data=data, model=embeddings.model, usage=usage)
