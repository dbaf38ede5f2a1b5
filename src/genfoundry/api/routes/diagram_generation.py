"""`POST /v1/diagrams`: a text model writes PlantUML for a scenario, PlantUML checks it, invalid code is retried,
and the valid one is drawn."""

from __future__ import annotations

from fastapi import APIRouter, Request

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.presenters.diagrams import diagram_generate_public
from genfoundry.schemas import DiagramGeneratePublic, DiagramGenerateRequest

router = APIRouter(prefix="/v1/diagrams", tags=["diagrams"])


@router.post("")
def generate_diagram(
    body: DiagramGenerateRequest, request: Request, services: ServicesDep, principal: PrincipalDep
) -> DiagramGeneratePublic:
    """`model` (a text base or your adapter; default from settings) writes PlantUML for `prompt`; invalid code is
    regenerated with a new seed up to `max_attempts` times. `valid: false` (and no image) when no try passed;
    `tries` lists each with PlantUML's errors (line and message)."""
    made = services.diagram_generator.generate(
        owner_id=principal.user_id,
        prompt=body.prompt,
        model=body.model,
        fmt=body.format,
        max_attempts=body.max_attempts,
        seed=body.seed,
        max_tokens=body.max_tokens,
    )
    return diagram_generate_public(
        made,
        fmt=body.format,
        response_format=body.response_format,
        signer=services.signer,
        base_url=str(request.base_url),
    )
