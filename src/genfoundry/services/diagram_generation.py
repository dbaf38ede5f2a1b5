"""Diagrams from words: a text model writes PlantUML, PlantUML checks it, a new seed retries, the valid one is drawn."""

from __future__ import annotations

from dataclasses import dataclass

from genfoundry.config import AssistantSettings
from genfoundry.diagrams.report import DiagramFormat
from genfoundry.errors import Invalid
from genfoundry.schemas import ChatCompletionRequest
from genfoundry.services.diagrams import DiagramService, StoredDiagram
from genfoundry.services.text import TextService
from genfoundry.text.plantuml import DiagramAttempt, generate_until_valid


@dataclass(frozen=True)
class GeneratedDiagram:
    model: str
    attempts: list[DiagramAttempt]
    stored: StoredDiagram | None  # the drawing of the valid attempt; None when none was valid

    @property
    def final(self) -> DiagramAttempt:
        return self.attempts[-1]


class DiagramGenerator:
    def __init__(
        self, *, text: TextService, diagrams: DiagramService, settings: AssistantSettings, default_model: str
    ) -> None:
        self.text = text
        self.diagrams = diagrams
        self.settings = settings
        self.default_model = default_model  # the settings' diagram_model, else the text model picked at start-up

    def generate(
        self,
        *,
        owner_id: str,
        prompt: str,
        model: str | None = None,
        fmt: DiagramFormat = "png",
        max_attempts: int | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
    ) -> GeneratedDiagram:
        """Up to `max_attempts` generations (the first greedy, then sampled with seeds `seed + i`); the first whose
        PlantUML passes the check is rendered and stored. Blocking: call it from a worker thread."""
        model = model or self.default_model
        tries = max_attempts or self.settings.diagram_attempts
        if tries > self.settings.max_diagram_attempts:
            raise Invalid(f"max_attempts must be at most {self.settings.max_diagram_attempts}", param="max_attempts")
        if not prompt.strip():
            raise Invalid("prompt must not be empty", param="prompt")
        self.text.resolve(owner_id=owner_id, model=model)  # an image or unknown model fails before any work

        def generate(attempt_seed: int, temperature: float) -> str:
            request = ChatCompletionRequest.model_validate(
                {
                    "model": model,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                    "seed": attempt_seed,
                }
            )
            return str(self.text.chat_sync(owner_id, request).choices[0].message.content or "")

        attempts = generate_until_valid(generate, self.diagrams.renderer.check, tries=tries, seed=seed or 0)
        stored = None
        if attempts[-1].valid:
            stored = self.diagrams.render(owner_id=owner_id, plantuml=attempts[-1].plantuml, fmt=fmt)
        return GeneratedDiagram(model=model, attempts=attempts, stored=stored)
