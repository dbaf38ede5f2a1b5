"""Embeddings with the shared sentence encoder (all-MiniLM-L6-v2): resolve the model, check the inputs against its
vocabulary and dimensions, encode, count tokens.

The catalog has no other sentence-transformers models, so the encoder (under its id and aliases) is the one
embedding model. Inputs longer than its 256-token window are truncated, as sentence-transformers does; `usage`
counts the tokens embedded. `dimensions` must be the model's own (384): MiniLM was not trained for shortened
(Matryoshka) embeddings, so cutting them would quietly degrade them; vLLM refuses it the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genfoundry.catalog import Catalog
from genfoundry.errors import Invalid, NotFound
from genfoundry.router.encoder import ENCODER_ALIASES, ENCODER_ID, TextEncoder

EMBEDDING_MODEL_IDS = ENCODER_ALIASES


@dataclass(frozen=True)
class Embeddings:
    """One unit-length float32 row per input, and the tokens the encoder read."""

    model: str
    vectors: np.ndarray
    prompt_tokens: int


class EmbeddingService:
    def __init__(self, *, encoder: TextEncoder, catalog: Catalog) -> None:
        self.encoder = encoder
        self.catalog = catalog

    def check_model(self, model: str) -> None:
        """The encoder's ids pass; a chat or image model is a 400 saying so, anything else a 404."""
        if model in EMBEDDING_MODEL_IDS:
            return
        if model in self.catalog.text_models or model in self.catalog.models or model == "auto":
            raise Invalid(f"'{model}' is not an embedding model; the embedding model is '{ENCODER_ID}'", param="model")
        raise NotFound(f"The model '{model}' does not exist", param="model", code="model_not_found")

    def embed(
        self, *, model: str, texts: Sequence[str], token_arrays: Sequence[Sequence[int]], dimensions: int | None
    ) -> Embeddings:
        """Embed `texts`, or else `token_arrays` (ids in the encoder's vocabulary, without special tokens)."""
        self.check_model(model)
        native = self.encoder.dimension
        if dimensions is not None and dimensions != native:
            raise Invalid(
                f"dimensions is {dimensions}; {ENCODER_ID} makes {native}-dimensional embeddings and cannot be "
                f"shortened (it was not trained for it) or lengthened",
                param="dimensions",
            )
        if texts:
            token_ids = self.encoder.token_ids(texts)
        else:
            token_ids = [
                self.encoder.wrap_ids(self._checked(index, tokens)) for index, tokens in enumerate(token_arrays)
            ]
        vectors = self.encoder.encode_ids(token_ids)
        return Embeddings(model=model, vectors=vectors, prompt_tokens=sum(len(ids) for ids in token_ids))

    def _checked(self, index: int, tokens: Sequence[int]) -> Sequence[int]:
        """`tokens` when every id is in the encoder's vocabulary; else a 400 naming the first one that is not."""
        vocabulary = self.encoder.vocab_size
        for position, token in enumerate(tokens):
            if not 0 <= token < vocabulary:
                raise Invalid(
                    f"input[{index}][{position}] is token id {token}; {ENCODER_ID}'s vocabulary has ids 0 to "
                    f"{vocabulary - 1}",
                    param="input",
                )
        return tokens
