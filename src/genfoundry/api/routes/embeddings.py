"""OpenAI-compatible embeddings (`POST /v1/embeddings`) with the shared sentence encoder."""

from __future__ import annotations

from fastapi import APIRouter

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.presenters.embeddings import embedding_response
from genfoundry.schemas.embeddings import EmbeddingRequest, EmbeddingResponse

router = APIRouter(prefix="/v1", tags=["embeddings"])


@router.post("/embeddings")
def create_embeddings(body: EmbeddingRequest, services: ServicesDep, principal: PrincipalDep) -> EmbeddingResponse:
    """Unit-length 384-dimensional embeddings from all-MiniLM-L6-v2 (`model`: its id or an alias), one per input;
    inputs longer than its 256-token window are truncated. At most 2048 inputs per request."""
    embeddings = services.embeddings.embed(
        model=body.model, texts=body.texts(), token_arrays=body.token_arrays(), dimensions=body.dimensions
    )
    return embedding_response(embeddings, encoding_format=body.encoding_format)
