"""`POST /v1/diagrams`: a text model writes PlantUML for a scenario, PlantUML checks it, invalid code is retried,
and the valid one is drawn."""

from __future__ import annotations

import base64
import time

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.api.routes.diagrams import content_path
from genfoundry.schemas import DiagramAttemptPublic, DiagramGeneratePublic, DiagramGenerateRequest
from genfoundry.services.diagram_generation import public_errors

router = APIRouter(prefix="/v1/diagrams", tags=["diagrams"])


@router.post("", response_model_exclude_none=True)
async def generate_diagram(
    body: DiagramGenerateRequest, request: Request, services: ServicesDep, principal: PrincipalDep
) -> DiagramGeneratePublic:
    """`model` (a text base or your adapter; default from settings) writes PlantUML for `prompt`; invalid code is
    regenerated with a new seed up to `max_attempts` times. `valid: false` (and no image) when no try passed;
    `tries` lists each with PlantUML's errors (line and message)."""
    made = await run_in_threadpool(
        lambda: services.diagram_generator.generate(
            owner_id=principal.user_id,
            prompt=body.prompt,
            model=body.model,
            fmt=body.format,
            max_attempts=body.max_attempts,
            seed=body.seed,
            max_tokens=body.max_tokens,
        )
    )
    final = made.final
    public = DiagramGeneratePublic(
        id=made.stored.id if made.stored else None,
        created=int(time.time()),
        model=made.model,
        plantuml=final.plantuml,
        valid=final.valid,
        attempts=len(made.attempts),
        errors=[] if final.valid else public_errors(list(final.errors)),
        tries=[
            DiagramAttemptPublic(
                seed=attempt.seed,
                temperature=attempt.temperature,
                valid=attempt.valid,
                errors=public_errors(list(attempt.errors)),
            )
            for attempt in made.attempts
        ],
        format=body.format,
    )
    if made.stored is not None:
        public.diagram_type = made.stored.diagram.diagram_type
        if body.response_format == "b64_json":
            public.b64_json = base64.b64encode(made.stored.diagram.data).decode("ascii")
        else:
            public.url = services.signer.path_url(str(request.base_url), content_path(made.stored.id))
    return public
