"""PlantUML diagrams: render given code (`POST /v1/diagrams/render`) and fetch a rendered image."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from genfoundry.api.deps import OptionalPrincipalDep, PrincipalDep, ServicesDep
from genfoundry.errors import Unauthorized
from genfoundry.presenters.diagrams import diagram_content_path, diagram_render_public
from genfoundry.schemas import DiagramRenderPublic, DiagramRenderRequest

router = APIRouter(prefix="/v1/diagrams", tags=["diagrams"])

# An SVG opened from our origin runs no script and loads nothing; a PNG is never sniffed as anything else.
_CONTENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox",
}


@router.post("/render")
def render_diagram(
    body: DiagramRenderRequest, request: Request, services: ServicesDep, principal: PrincipalDep
) -> DiagramRenderPublic:
    """Check `plantuml` with PlantUML and draw it: 422 with line-numbered errors when invalid, 400 for directives
    that read files, URLs or the environment, 413 for a diagram too large or too slow to draw."""
    stored = services.diagrams.render(owner_id=principal.user_id, plantuml=body.plantuml, fmt=body.format)
    return diagram_render_public(
        stored, response_format=body.response_format, signer=services.signer, base_url=str(request.base_url)
    )


@router.get(
    "/{diagram_id}/content",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def read_diagram_content(
    diagram_id: str,
    services: ServicesDep,
    principal: OptionalPrincipalDep,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """A rendered diagram: for its owner's key, or anyone holding an unexpired signed URL."""
    path = diagram_content_path(diagram_id)
    signed = expires is not None and signature is not None and services.signer.verify(path, expires, signature)
    if not signed and principal is None:
        raise Unauthorized("missing API key or valid signature")
    owner_id = None
    if not signed:
        assert principal is not None
        owner_id = principal.user_id
    data, media_type = services.diagrams.content(diagram_id=diagram_id, owner_id=owner_id)
    return Response(data, media_type=media_type, headers=_CONTENT_HEADERS)
