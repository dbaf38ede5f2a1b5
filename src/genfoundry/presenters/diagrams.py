"""Diagrams as /v1/diagrams/render and /v1/diagrams answer: the drawing as a signed URL or base64, PlantUML's errors
(line and message) for each try."""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING

from genfoundry.schemas import (
    DiagramAttemptPublic,
    DiagramErrorPublic,
    DiagramGeneratePublic,
    DiagramRenderPublic,
)

if TYPE_CHECKING:
    from genfoundry.diagrams.report import DiagramFormat
    from genfoundry.services.diagram_generation import GeneratedDiagram
    from genfoundry.services.diagrams import StoredDiagram
    from genfoundry.services.urls import UrlSigner


def diagram_content_path(diagram_id: str) -> str:
    """The server path of a stored diagram's image (what its signed URL signs)."""
    return f"/v1/diagrams/{diagram_id}/content"


def diagram_errors_public(errors: object) -> list[DiagramErrorPublic]:
    """PlantUML's errors (line and message) or a refusal's message, in the API's shape."""
    out = []
    for error in errors if isinstance(errors, list | tuple) else [errors]:
        line = getattr(error, "line", None)
        message = getattr(error, "message", None)
        out.append(DiagramErrorPublic(line=line, message=str(message if message is not None else error)))
    return out


def diagram_render_public(
    stored: StoredDiagram, *, response_format: str, signer: UrlSigner, base_url: str
) -> DiagramRenderPublic:
    diagram = stored.diagram
    public = DiagramRenderPublic(
        id=stored.id,
        created=stored.created,
        valid=True,
        diagram_type=diagram.diagram_type,
        errors=[],
        format=diagram.format,
        width=diagram.width,
        height=diagram.height,
        render_time_s=round(diagram.render_time_s, 4),
    )
    if response_format == "b64_json":
        public.b64_json = base64.b64encode(diagram.data).decode("ascii")
    else:
        public.url = signer.path_url(base_url, diagram_content_path(stored.id))
    return public


def diagram_generate_public(
    made: GeneratedDiagram, *, fmt: DiagramFormat, response_format: str, signer: UrlSigner, base_url: str
) -> DiagramGeneratePublic:
    """Every try with its errors; the drawing only when one was valid."""
    final = made.final
    public = DiagramGeneratePublic(
        id=made.stored.id if made.stored else None,
        created=int(time.time()),
        model=made.model,
        plantuml=final.plantuml,
        valid=final.valid,
        attempts=len(made.attempts),
        errors=[] if final.valid else diagram_errors_public(list(final.errors)),
        tries=[
            DiagramAttemptPublic(
                seed=attempt.seed,
                temperature=attempt.temperature,
                valid=attempt.valid,
                errors=diagram_errors_public(list(attempt.errors)),
            )
            for attempt in made.attempts
        ],
        format=fmt,
    )
    if made.stored is not None:
        public.diagram_type = made.stored.diagram.diagram_type
        if response_format == "b64_json":
            public.b64_json = base64.b64encode(made.stored.diagram.data).decode("ascii")
        else:
            public.url = signer.path_url(base_url, diagram_content_path(made.stored.id))
    return public
