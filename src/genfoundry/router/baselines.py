"""Baselines the benchmark measures the trained head against: a keyword rule, and zero-shot cosine similarity
between a prompt and label descriptions with the same encoder (no training at all)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from genfoundry.router.encoder import TextEncoder

ROUTER_LABELS = ("image", "diagram", "chat")

_DIAGRAM_WORDS = (
    "diagram", "diagrama", "uml", "plantuml", "flowchart", "flow chart", "gantt", "mind map", "mindmap",
    "sequence chart", "er model", "entity relationship", "state machine", "class chart", "organigram",
)  # fmt: skip
_IMAGE_WORDS = (
    "draw", "picture", "photo", "image", "illustration", "illustrate", "logo", "poster", "banner", "render",
    "painting", "paint", "sketch", "wallpaper", "icon", "portrait", "dibuja", "imagen", "foto", "cartel",
    "generate a pic", "pic of", "artwork", "mockup", "thumbnail", "flyer",
)  # fmt: skip
_QUESTION_START = re.compile(
    r"^\s*(how|what|why|when|where|who|which|is|are|can you explain|explain|tell me|describe"
    r"|qué|que|cómo|como|por qué)\b",
    re.IGNORECASE,
)


def keyword_label(text: str) -> str:
    """A hand-written rule: diagram words win, then image words, unless the text reads as a question."""
    lowered = text.lower()
    if _QUESTION_START.search(lowered) or lowered.rstrip().endswith("?"):
        return "chat"
    if any(word in lowered for word in _DIAGRAM_WORDS):
        return "diagram"
    if any(word in lowered for word in _IMAGE_WORDS):
        return "image"
    return "chat"


def keyword_labels(texts: Sequence[str]) -> list[str]:
    return [keyword_label(text) for text in texts]


# Several phrasings per label; a prompt's score for a label is its best cosine to any of them.
LABEL_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "image": (
        "a request to generate an image, picture, photo or illustration",
        "create a logo, poster, banner or product photo",
        "draw or paint a picture of something",
    ),
    "diagram": (
        "a request to draw a UML or PlantUML diagram",
        "create a sequence diagram, class diagram, flowchart, ER diagram or Gantt chart",
        "model this process as a diagram",
    ),
    "chat": (
        "a question or a conversation",
        "explain something or answer a question",
        "casual chat, advice or information",
    ),
}


class ZeroShotRouter:
    """Cosine similarity of each prompt to label descriptions with the shared encoder; the best label wins."""

    def __init__(self, encoder: TextEncoder, descriptions: dict[str, tuple[str, ...]] | None = None) -> None:
        self.encoder = encoder
        self.descriptions = descriptions or LABEL_DESCRIPTIONS
        self.labels = tuple(self.descriptions)
        phrases = [phrase for label in self.labels for phrase in self.descriptions[label]]
        self._owner = np.array([i for i, label in enumerate(self.labels) for _ in self.descriptions[label]])
        self._phrases = encoder.encode(phrases)

    def predict(self, texts: Sequence[str]) -> list[str]:
        similarity = self.encoder.encode(list(texts)) @ self._phrases.T
        best = np.full((len(texts), len(self.labels)), -np.inf)
        for column, owner in enumerate(self._owner):
            best[:, owner] = np.maximum(best[:, owner], similarity[:, column])
        return [self.labels[int(i)] for i in best.argmax(axis=1)]
